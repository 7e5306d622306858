#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "shapex/ipc/frame.h"
#include "testing/status_matchers.h"

namespace shapex::ipc {
namespace {

using ::shapex_testing::IsError;
using ::testing::ElementsAre;

struct OwnedFrame {
  uint8_t type;
  uint64_t call_id;
  std::vector<uint8_t> payload;
  bool operator==(const OwnedFrame&) const = default;
};

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

// Drains every complete frame from `reader`, copying them out.
Status Drain(FrameReader* reader, std::vector<OwnedFrame>* out) {
  Frame frame;
  for (;;) {
    ASSIGN_OR_RETURN(ReadProgress progress, reader->Next(&frame));
    if (progress == ReadProgress::kNeedMore) return Status::Ok();
    out->push_back({frame.type, frame.call_id, {frame.payload.begin(), frame.payload.end()}});
  }
}

std::vector<OwnedFrame> SampleFrames() {
  std::vector<OwnedFrame> frames = {
      {1, 7, Bytes("hello")},
      {2, 0, {}},  // empty payload
      {3, 0xFFFFFFFFFFFFFFFFull, std::vector<uint8_t>(300, 0xAB)},
      {255, 1ull << 40, Bytes("x")},
  };
  return frames;
}

std::vector<uint8_t> EncodeAll(const std::vector<OwnedFrame>& frames) {
  FrameWriter writer;
  for (const OwnedFrame& f : frames) EXPECT_OK(writer.Append(f.type, f.call_id, f.payload));
  return {writer.data().begin(), writer.data().end()};
}

TEST(FrameHeaderTest, LayoutIsLittleEndianLengthTypeCallId) {
  FrameWriter writer;
  ASSERT_OK(writer.Append(0x42, 0x0102030405060708ull, Bytes("ab")));
  EXPECT_THAT(writer.data(), ElementsAre(0x02, 0x00, 0x00, 0x00,                          // length
                                         0x42,                                            // type
                                         0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // id
                                         'a', 'b'));
  auto header = EncodeFrameHeader({2, 0x42, 0x0102030405060708ull});
  EXPECT_TRUE(std::equal(header.begin(), header.end(), writer.data().begin()));
  FrameHeader decoded = DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderSize>(header));
  EXPECT_EQ(decoded.payload_size, 2u);
  EXPECT_EQ(decoded.type, 0x42);
  EXPECT_EQ(decoded.call_id, 0x0102030405060708ull);
}

TEST(FrameWriterTest, OversizePayloadIsRejectedAndBufferUnchanged) {
  FrameWriter writer(/*max_payload=*/4);
  ASSERT_OK(writer.Append(1, 1, Bytes("abcd")));
  size_t size = writer.data().size();
  EXPECT_THAT(writer.Append(1, 2, Bytes("abcde")), IsError(ErrorKind::kInvalidArgument));
  EXPECT_EQ(writer.data().size(), size);
}

TEST(FrameWriterTest, EncodeReplacesAndClearKeepsCapacity) {
  FrameWriter writer;
  ASSERT_OK(writer.Append(1, 1, std::vector<uint8_t>(1000)));
  auto encoded = writer.Encode(2, 3, Bytes("z"));
  ASSERT_OK(encoded);
  EXPECT_EQ(encoded->size(), kFrameHeaderSize + 1);
  const uint8_t* before = writer.data().data();
  writer.Clear();
  ASSERT_OK(writer.Append(1, 1, std::vector<uint8_t>(1000)));
  EXPECT_EQ(writer.data().data(), before);  // no reallocation
}

TEST(FrameReaderTest, WholeStreamAtOnce) {
  auto frames = SampleFrames();
  auto bytes = EncodeAll(frames);
  FrameReader reader;
  ASSERT_OK(reader.Feed(bytes));
  std::vector<OwnedFrame> got;
  ASSERT_OK(Drain(&reader, &got));
  EXPECT_EQ(got, frames);
  EXPECT_FALSE(reader.has_partial_frame());
}

TEST(FrameReaderTest, SplitAtEveryByteBoundary) {
  auto frames = SampleFrames();
  auto bytes = EncodeAll(frames);
  std::span<const uint8_t> all(bytes);
  for (size_t split = 0; split <= bytes.size(); ++split) {
    FrameReader reader;
    std::vector<OwnedFrame> got;
    ASSERT_OK(reader.Feed(all.first(split)));
    ASSERT_OK(Drain(&reader, &got));
    ASSERT_OK(reader.Feed(all.subspan(split)));
    ASSERT_OK(Drain(&reader, &got));
    ASSERT_EQ(got, frames) << "split at " << split;
  }
}

TEST(FrameReaderTest, OneByteAtATime) {
  auto frames = SampleFrames();
  auto bytes = EncodeAll(frames);
  FrameReader reader;
  std::vector<OwnedFrame> got;
  for (uint8_t b : bytes) {
    ASSERT_OK(reader.Feed(std::span<const uint8_t>(&b, 1)));
    ASSERT_OK(Drain(&reader, &got));
  }
  EXPECT_EQ(got, frames);
}

TEST(FrameReaderTest, RandomSplitsThroughPrepareWrite) {
  std::mt19937 rng(1234);
  auto frames = SampleFrames();
  for (int i = 0; i < 50; ++i) {
    frames.push_back({static_cast<uint8_t>(i), static_cast<uint64_t>(i) * 977,
                      std::vector<uint8_t>(rng() % 5000, static_cast<uint8_t>(i))});
  }
  auto bytes = EncodeAll(frames);
  for (int round = 0; round < 20; ++round) {
    FrameReader reader;
    std::vector<OwnedFrame> got;
    size_t pos = 0;
    while (pos < bytes.size()) {
      size_t chunk = std::min<size_t>(bytes.size() - pos, 1 + rng() % 3000);
      auto window = reader.PrepareWrite(chunk);
      ASSERT_OK(window);
      ASSERT_GE(window->size(), chunk);
      std::memcpy(window->data(), bytes.data() + pos, chunk);
      reader.CommitWrite(chunk);
      pos += chunk;
      ASSERT_OK(Drain(&reader, &got));
    }
    ASSERT_EQ(got, frames);
  }
}

TEST(FrameReaderTest, MaximumPayloadIsAcceptedOneMoreIsNot) {
  FrameWriter writer(/*max_payload=*/100);
  ASSERT_OK(writer.Append(1, 1, std::vector<uint8_t>(100, 7)));
  FrameReader reader(/*max_payload=*/100);
  ASSERT_OK(reader.Feed(writer.data()));
  std::vector<OwnedFrame> got;
  ASSERT_OK(Drain(&reader, &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload.size(), 100u);

  auto header = EncodeFrameHeader({101, 1, 1});
  ASSERT_OK(reader.Feed(header));
  Frame frame;
  EXPECT_THAT(reader.Next(&frame), IsError(ErrorKind::kProtocolError));
}

TEST(FrameReaderTest, OversizeHeaderFailsBeforeAllocatingAndStaysFailed) {
  FrameReader reader;  // default 64 MiB maximum
  auto header = EncodeFrameHeader({0xFFFFFFFFu, 1, 1});
  // Through the zero-copy path the header is checked before room for the payload is reserved.
  auto window = reader.PrepareWrite(kFrameHeaderSize);
  ASSERT_OK(window);
  std::memcpy(window->data(), header.data(), header.size());
  reader.CommitWrite(header.size());
  EXPECT_THAT(reader.PrepareWrite(1), IsError(ErrorKind::kProtocolError));
  EXPECT_LT(reader.buffer_capacity(), 1u << 20);
  EXPECT_TRUE(reader.failed());
  // Sticky: every later call fails the same way, even with valid input.
  Frame frame;
  EXPECT_THAT(reader.Next(&frame), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(reader.Feed(EncodeAll(SampleFrames())), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(reader.Next(&frame), IsError(ErrorKind::kProtocolError));
}

TEST(FrameReaderTest, OversizeHeaderThroughFeed) {
  FrameReader reader(/*max_payload=*/1000);
  auto good = EncodeAll({{1, 1, Bytes("ok")}});
  auto bad = EncodeFrameHeader({1001, 1, 2});
  ASSERT_OK(reader.Feed(good));
  ASSERT_OK(reader.Feed(bad));
  std::vector<OwnedFrame> got;
  EXPECT_THAT(Drain(&reader, &got), IsError(ErrorKind::kProtocolError));
  ASSERT_EQ(got.size(), 1u);  // the frame before the bad header was delivered
  EXPECT_LT(reader.buffer_capacity(), 1000u + 4096u);
}

TEST(FrameReaderTest, TruncatedFrameIsReportedAsPartial) {
  auto bytes = EncodeAll({{1, 1, Bytes("hello")}});
  FrameReader reader;
  ASSERT_OK(reader.Feed(std::span<const uint8_t>(bytes).first(bytes.size() - 1)));
  Frame frame;
  auto progress = reader.Next(&frame);
  ASSERT_OK(progress);
  EXPECT_EQ(*progress, ReadProgress::kNeedMore);
  EXPECT_TRUE(reader.has_partial_frame());  // at EOF the caller reports a truncated frame
}

TEST(FrameReaderTest, SteadyStateReusesTheBuffer) {
  FrameWriter writer;
  FrameReader reader;
  std::vector<uint8_t> payload(2000, 1);
  Frame frame;
  const uint8_t* first_payload = nullptr;
  size_t capacity = 0;
  for (int i = 0; i < 1000; ++i) {
    auto encoded = writer.Encode(1, i, payload);
    ASSERT_OK(encoded);
    ASSERT_OK(reader.Feed(*encoded));
    auto progress = reader.Next(&frame);
    ASSERT_OK(progress);
    ASSERT_EQ(*progress, ReadProgress::kFrame);
    ASSERT_EQ(frame.call_id, static_cast<uint64_t>(i));
    ASSERT_EQ(*reader.Next(&frame), ReadProgress::kNeedMore);
    if (i == 0) {
      first_payload = frame.payload.data();
      capacity = reader.buffer_capacity();
    }
    ASSERT_EQ(reader.buffer_capacity(), capacity);
  }
  ASSERT_OK(reader.Feed(*writer.Encode(1, 5, payload)));
  ASSERT_EQ(*reader.Next(&frame), ReadProgress::kFrame);
  EXPECT_EQ(frame.payload.data(), first_payload);  // same bytes, no reallocation
}

TEST(FrameReaderTest, GarbageNeverCrashes) {
  std::mt19937 rng(99);
  for (int round = 0; round < 200; ++round) {
    FrameReader reader(/*max_payload=*/4096);
    std::vector<uint8_t> garbage(rng() % 20000);
    for (auto& b : garbage) b = static_cast<uint8_t>(rng());
    // Keep some lengths small so that frames are actually produced.
    if (garbage.size() >= 4 && round % 2 == 0) garbage[2] = garbage[3] = 0;
    Status status = reader.Feed(garbage);
    std::vector<OwnedFrame> got;
    if (status.ok()) status = Drain(&reader, &got);
    if (!status.ok()) {
      EXPECT_THAT(status, IsError(ErrorKind::kProtocolError));
    }
    for (const auto& f : got) EXPECT_LE(f.payload.size(), 4096u);
  }
}

TEST(DecodeSingleFrameTest, AcceptsExactlyOneFrame) {
  auto bytes = EncodeAll({{9, 10, Bytes("abc")}});
  auto frame = DecodeSingleFrame(bytes);
  ASSERT_OK(frame);
  EXPECT_EQ(frame->type, 9);
  EXPECT_EQ(frame->call_id, 10u);
  EXPECT_EQ(frame->payload.size(), 3u);

  std::span<const uint8_t> all(bytes);
  EXPECT_THAT(DecodeSingleFrame(all.first(5)), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeSingleFrame(all.first(all.size() - 1)), IsError(ErrorKind::kProtocolError));
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_THAT(DecodeSingleFrame(longer), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeSingleFrame(bytes, /*max_payload=*/2), IsError(ErrorKind::kProtocolError));
}

}  // namespace
}  // namespace shapex::ipc
