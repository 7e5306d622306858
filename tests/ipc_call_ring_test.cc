#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "shapex/ipc/call_ring.h"
#include "shapex/ipc/shared_memory.h"
#include "testing/open_fds.h"
#include "testing/status_matchers.h"

namespace shapex::ipc {
namespace {

using ::shapex_testing::CountOpenFds;
using ::shapex_testing::IsError;
using std::chrono::milliseconds;

// Documented segment layout (call_ring.h).
constexpr size_t kRequestControl = 64;
constexpr size_t kResponseControl = 320;
constexpr size_t kHead = 0;
constexpr size_t kTail = 64;
constexpr size_t kData = 1024;

std::vector<uint8_t> Record(size_t size, uint32_t seed) {
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(seed * 31 + i);
  return out;
}

// Waits for a forked child and expects exit code 0.
void ExpectChildSucceeded(pid_t child) {
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

double ProcessCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

class CallRingTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = CountOpenFds(); }
  void TearDown() override {
    client_ = CallRing();
    server_ = CallRing();
    raw_.Reset();
    EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak";
  }

  // A client ring plus a server ring attached to the same segment, and a raw writable view of
  // the segment for corrupting it.
  void MakePair(const CallRingOptions& options = {}) {
    auto client = CallRing::Create(RingSide::kClient, options);
    ASSERT_OK(client);
    client_ = std::move(*client);
    auto fd = client_.ShareFd();
    ASSERT_OK(fd);
    auto raw = SharedMapping::Map(fd->get(), CallRing::SegmentSize(options.capacity),
                                  SharedMapping::Access::kReadWrite);
    ASSERT_OK(raw);
    raw_ = std::move(*raw);
    auto server = CallRing::Attach(std::move(*fd), RingSide::kServer, options.max_spin);
    ASSERT_OK(server);
    server_ = std::move(*server);
  }

  uint64_t Load64(size_t offset) {
    uint64_t v;
    std::memcpy(&v, raw_.data() + offset, 8);
    return v;
  }
  void Store64(size_t offset, uint64_t v) {
    std::memcpy(raw_.mutable_bytes().data() + offset, &v, 8);
  }
  void Store32(size_t offset, uint32_t v) {
    std::memcpy(raw_.mutable_bytes().data() + offset, &v, 4);
  }

  size_t fds_before_ = 0;
  CallRing client_;
  CallRing server_;
  SharedMapping raw_;
};

TEST_F(CallRingTest, RequestAndResponseTravelInTheirOwnRings) {
  MakePair();
  std::vector<uint8_t> got;
  ASSERT_OK(client_.TryWrite(Record(5, 1)));
  auto none = client_.TryRead(&got);  // the client reads responses, not its own request
  ASSERT_OK(none);
  EXPECT_FALSE(*none);
  auto read = server_.TryRead(&got);
  ASSERT_OK(read);
  ASSERT_TRUE(*read);
  EXPECT_EQ(got, Record(5, 1));
  ASSERT_OK(server_.TryWrite(Record(0, 2)));  // empty records are fine
  ASSERT_TRUE(*client_.TryRead(&got));
  EXPECT_TRUE(got.empty());
}

TEST_F(CallRingTest, FullRingRefusesUntilTheConsumerFreesRoom) {
  MakePair({.capacity = 256});
  // 20-byte records occupy 24 bytes: ten fit in 256.
  for (int i = 0; i < 10; ++i) {
    auto ok = client_.TryWrite(Record(20, i));
    ASSERT_OK(ok);
    ASSERT_TRUE(*ok) << i;
  }
  auto full = client_.TryWrite(Record(20, 10));
  ASSERT_OK(full);
  EXPECT_FALSE(*full);
  EXPECT_THAT(client_.Write(Record(20, 10), milliseconds(2)), IsError(ErrorKind::kTimeout));
  std::vector<uint8_t> got;
  ASSERT_TRUE(*server_.TryRead(&got));
  EXPECT_EQ(got, Record(20, 0));
  EXPECT_TRUE(*client_.TryWrite(Record(20, 10)));
  for (int i = 1; i <= 10; ++i) {
    ASSERT_TRUE(*server_.TryRead(&got));
    EXPECT_EQ(got, Record(20, i));
  }
  EXPECT_FALSE(*server_.TryRead(&got));
  EXPECT_THAT(server_.Read(&got, milliseconds(2)), IsError(ErrorKind::kTimeout));
}

TEST_F(CallRingTest, OversizeRecordIsResourceExhaustedAndTheRingStaysUsable) {
  MakePair({.capacity = 256});
  EXPECT_EQ(client_.max_record_size(), 252u);
  EXPECT_FALSE(client_.Fits(253));
  EXPECT_THAT(client_.TryWrite(Record(253, 0)), IsError(ErrorKind::kResourceExhausted));
  EXPECT_OK(client_.error());
  ASSERT_TRUE(*client_.TryWrite(Record(252, 0)));  // exactly the whole ring
  std::vector<uint8_t> got;
  ASSERT_TRUE(*server_.TryRead(&got));
  EXPECT_EQ(got, Record(252, 0));
}

// Writes and reads `count` records of random sizes in random batches, checking every byte.
void Churn(CallRing& producer, CallRing& consumer, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  size_t max = std::min<size_t>(producer.max_record_size(), 300);
  std::vector<std::vector<uint8_t>> in_flight;
  std::vector<uint8_t> got;
  int written = 0;
  size_t next_read = 0;
  while (next_read < static_cast<size_t>(count)) {
    int batch = 1 + rng() % 8;
    for (int i = 0; i < batch && written < count; ++i) {
      auto record = Record(rng() % (max + 1), written);
      auto ok = producer.TryWrite(record);
      ASSERT_OK(ok);
      if (!*ok) break;
      in_flight.push_back(std::move(record));
      ++written;
    }
    int reads = 1 + rng() % 8;
    for (int i = 0; i < reads; ++i) {
      auto ok = consumer.TryRead(&got);
      ASSERT_OK(ok);
      if (!*ok) break;
      ASSERT_EQ(got, in_flight[next_read]) << "record " << next_read;
      ++next_read;
    }
  }
}

TEST_F(CallRingTest, RecordsWrapAroundTheDataArea) {
  MakePair({.capacity = 1024});
  Churn(client_, server_, 20000, 7);
  Churn(server_, client_, 20000, 8);
}

TEST_F(CallRingTest, IndicesWrapAt2To64) {
  constexpr uint64_t kStart = std::numeric_limits<uint64_t>::max() - 1023;  // 2^64 - 1024
  MakePair({.capacity = 512, .initial_index = kStart});
  EXPECT_EQ(Load64(kRequestControl + kHead), kStart);
  Churn(client_, server_, 5000, 9);
  uint64_t head = Load64(kRequestControl + kHead);
  EXPECT_LT(head, kStart);  // wrapped past zero
  EXPECT_EQ(head, Load64(kRequestControl + kTail));
  EXPECT_OK(client_.error());
  EXPECT_OK(server_.error());
}

TEST_F(CallRingTest, InitialIndexMustBeAligned) {
  EXPECT_THAT(CallRing::Create(RingSide::kClient, {.initial_index = 4}),
              IsError(ErrorKind::kInvalidArgument));
  EXPECT_THAT(CallRing::Create(RingSide::kClient, {.capacity = 1000}),
              IsError(ErrorKind::kInvalidArgument));
  EXPECT_THAT(CallRing::Create(RingSide::kClient, {.capacity = 32}),
              IsError(ErrorKind::kInvalidArgument));
}

// Corruption of the shared state by the peer (the segment is writable by both processes).
class CallRingCorruptionTest : public CallRingTest {};

TEST_F(CallRingCorruptionTest, ConsumerRejectsEveryInconsistentHead) {
  const uint64_t kStart = std::numeric_limits<uint64_t>::max() - 255;
  struct Case {
    const char* name;
    uint64_t head_delta;  // head = tail + delta
  } cases[] = {
      {"beyond capacity", 256 + 8},
      {"far beyond (wrapped negative)", static_cast<uint64_t>(-8)},
      {"unaligned", 4},
      {"claims a record larger than published", 8},  // length field below says 100
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    MakePair({.capacity = 256, .initial_index = kStart});
    Store32(kData + (kStart & 255), 100);
    Store64(kRequestControl + kHead, kStart + c.head_delta);
    std::vector<uint8_t> got;
    EXPECT_THAT(server_.TryRead(&got), IsError(ErrorKind::kProtocolError));
    // Sticky: the connection is dead, both directions.
    EXPECT_THAT(server_.TryRead(&got), IsError(ErrorKind::kProtocolError));
    EXPECT_THAT(server_.TryWrite(Record(1, 1)), IsError(ErrorKind::kProtocolError));
    EXPECT_THAT(server_.Read(&got, milliseconds(1)), IsError(ErrorKind::kProtocolError));
  }
}

TEST_F(CallRingCorruptionTest, ConsumerRejectsLengthsTheProducerNeverWrote) {
  for (uint32_t length : {253u, 1000u, 0xFFFFFFFFu, 0x80000000u}) {
    MakePair({.capacity = 256});
    ASSERT_TRUE(*client_.TryWrite(Record(8, 1)));
    Store32(kData, length);  // the record's length field, rewritten after publication
    std::vector<uint8_t> got;
    EXPECT_THAT(server_.TryRead(&got), IsError(ErrorKind::kProtocolError)) << length;
    EXPECT_LE(got.capacity(), 256u);  // nothing was allocated from the bogus length
  }
}

TEST_F(CallRingCorruptionTest, ProducerRejectsInconsistentTail) {
  // The producer re-reads the tail only when its cached copy shows too little room, so the
  // corruption is caught at the latest when the ring looks full.
  for (uint64_t tail_delta : {uint64_t{1} << 20, static_cast<uint64_t>(-264), uint64_t{1} << 63}) {
    MakePair({.capacity = 256});
    ASSERT_TRUE(*client_.TryWrite(Record(8, 1)));
    uint64_t head = Load64(kRequestControl + kHead);
    Store64(kRequestControl + kTail, head + tail_delta);
    Status status;
    for (int i = 0; i < 100 && status.ok(); ++i) status = client_.TryWrite(Record(8, 2)).error();
    EXPECT_THAT(status, IsError(ErrorKind::kProtocolError)) << tail_delta;
    EXPECT_THAT(client_.TryWrite(Record(8, 2)), IsError(ErrorKind::kProtocolError));
  }
}

TEST_F(CallRingCorruptionTest, AttachValidatesTheSegment) {
  auto attach_after = [&](auto corrupt) {
    MakePair({.capacity = 256});
    corrupt();
    auto fd = client_.ShareFd();
    EXPECT_OK(fd);
    return CallRing::Attach(std::move(*fd), RingSide::kServer);
  };
  EXPECT_THAT(attach_after([&] { Store32(0, 0xDEADBEEF); }), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(attach_after([&] { Store32(4, 2); }), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(attach_after([&] { Store32(8, 255); }), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(attach_after([&] { Store32(8, 512); }), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(attach_after([&] { Store32(8, 1u << 31); }), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(attach_after([&] { Store64(kRequestControl + kTail, 3); }),
              IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(attach_after([&] { Store64(kResponseControl + kHead, 5); }),
              IsError(ErrorKind::kProtocolError));

  // Unsealed memfd: could be truncated under us.
  ScopedFd unsealed(memfd_create("ring", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_EQ(ftruncate(unsealed.get(), CallRing::SegmentSize(256)), 0);
  EXPECT_THAT(CallRing::Attach(std::move(unsealed), RingSide::kServer),
              IsError(ErrorKind::kProtocolError));
  // Tiny sealed memfd.
  auto tiny = SealedSegment::CreateFrom(Record(100, 0));
  ASSERT_OK(tiny);
  auto tiny_fd = tiny->ShareFd();
  ASSERT_OK(tiny_fd);
  EXPECT_THAT(CallRing::Attach(std::move(*tiny_fd), RingSide::kServer),
              IsError(ErrorKind::kProtocolError));

  alignas(64) static uint8_t image[2048];
  EXPECT_THAT(CallRing::AttachMemory(std::span(image).subspan(8), RingSide::kServer),
              IsError(ErrorKind::kInvalidArgument));
  EXPECT_THAT(CallRing::AttachMemory(image, RingSide::kServer),
              IsError(ErrorKind::kProtocolError));  // zero magic
}

// The child inherits the segment descriptor across fork (in production it arrives over the
// socket) and echoes every request incremented by one.
TEST_F(CallRingTest, PingPongBetweenTwoProcesses) {
  auto client = CallRing::Create(RingSide::kClient, {.capacity = 4096});
  ASSERT_OK(client);
  auto fd = client->ShareFd();
  ASSERT_OK(fd);
  constexpr int kRounds = 20000;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto server = CallRing::Attach(std::move(*fd), RingSide::kServer);
    if (!server.has_value()) _exit(1);
    std::vector<uint8_t> request;
    for (int i = 0; i < kRounds; ++i) {
      if (!server->Read(&request, std::chrono::seconds(10)).ok()) _exit(2);
      if (request.size() != 8) _exit(3);
      uint64_t v;
      std::memcpy(&v, request.data(), 8);
      ++v;
      std::memcpy(request.data(), &v, 8);
      if (!server->Write(request, std::chrono::seconds(10)).ok()) _exit(4);
    }
    _exit(0);
  }
  fd->reset();
  std::vector<uint8_t> message(8);
  std::vector<uint8_t> reply;
  for (uint64_t i = 0; i < kRounds; ++i) {
    uint64_t v = i * 1000;
    std::memcpy(message.data(), &v, 8);
    ASSERT_OK(client->Write(message, std::chrono::seconds(10)));
    ASSERT_OK(client->Read(&reply, std::chrono::seconds(10)));
    ASSERT_EQ(reply.size(), 8u);
    std::memcpy(&v, reply.data(), 8);
    ASSERT_EQ(v, i * 1000 + 1);
  }
  ExpectChildSucceeded(child);
}

TEST_F(CallRingTest, ProducerBlocksOnAFullRingUntilTheConsumerCatchesUp) {
  auto client = CallRing::Create(RingSide::kClient, {.capacity = 256});
  ASSERT_OK(client);
  auto fd = client->ShareFd();
  ASSERT_OK(fd);
  constexpr int kRecords = 3000;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto server = CallRing::Attach(std::move(*fd), RingSide::kServer);
    if (!server.has_value()) _exit(1);
    std::vector<uint8_t> got;
    for (int i = 0; i < kRecords; ++i) {
      if (i % 500 == 0) usleep(20000);  // make the producer sleep on the futex now and then
      if (!server->Read(&got, std::chrono::seconds(10)).ok()) _exit(2);
      if (got != Record(100, i)) _exit(3);
    }
    _exit(0);
  }
  fd->reset();
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_OK(client->Write(Record(100, i), std::chrono::seconds(10)));  // two fit at a time
  }
  ExpectChildSucceeded(child);
  EXPECT_GT(client->stats().sleeps, 0u);
}

TEST_F(CallRingTest, SleepingReaderIsWokenAndIdleWaitUsesNoCpu) {
  auto client = CallRing::Create(RingSide::kClient);
  ASSERT_OK(client);
  auto fd = client->ShareFd();
  ASSERT_OK(fd);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto server = CallRing::Attach(std::move(*fd), RingSide::kServer);
    if (!server.has_value()) _exit(1);
    usleep(300000);
    if (!server->Write(Record(3, 3), std::chrono::seconds(1)).ok()) _exit(2);
    _exit(server->stats().wakes == 1 ? 0 : 3);  // the reader announced it was asleep
  }
  fd->reset();
  double cpu_before = ProcessCpuMs();
  auto start = std::chrono::steady_clock::now();
  std::vector<uint8_t> got;
  ASSERT_OK(client->Read(&got, std::chrono::seconds(10)));
  double waited_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  double cpu_ms = ProcessCpuMs() - cpu_before;
  EXPECT_EQ(got, Record(3, 3));
  EXPECT_GE(client->stats().sleeps, 1u);
  EXPECT_GT(waited_ms, 200.0);
  EXPECT_LT(cpu_ms, 30.0) << "waited " << waited_ms << " ms";  // spun ~20 µs, then slept
  ExpectChildSucceeded(child);
}

TEST_F(CallRingTest, SpinWindowShrinksWhenIdleAndRecoversWhenThePeerIsActive) {
  constexpr auto kMaxSpin = milliseconds(2);
  MakePair({.max_spin = kMaxSpin});
  EXPECT_EQ(server_.spin_window(), kMaxSpin);
  std::vector<uint8_t> got;
  for (int i = 0; i < 6; ++i) {
    EXPECT_THAT(server_.Read(&got, milliseconds(3)), IsError(ErrorKind::kTimeout));
  }
  EXPECT_EQ(server_.spin_window(), std::chrono::nanoseconds(kMaxSpin) / 16);
  // Data that arrives shortly after the reader fell asleep restores the full window.
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(1));
    EXPECT_OK(client_.TryWrite(Record(1, 1)));
  });
  ASSERT_OK(server_.Read(&got, std::chrono::seconds(5)));
  writer.join();
  EXPECT_EQ(server_.spin_window(), kMaxSpin);
  EXPECT_GE(server_.stats().sleeps, 1u);
}

// A hostile peer rewrites random parts of the segment while we use it. We must never crash or
// read out of bounds; every failure is a ProtocolError (or a timeout of a blocking read).
TEST_F(CallRingCorruptionTest, PeerScribblingOverTheRingCausesOnlyProtocolErrors) {
  constexpr uint32_t kCapacity = 512;
  auto owner = CallRing::Create(RingSide::kClient, {.capacity = kCapacity});
  ASSERT_OK(owner);
  auto fd = owner->ShareFd();
  ASSERT_OK(fd);
  size_t size = CallRing::SegmentSize(kCapacity);
  auto mapping = SharedMapping::Map(fd->get(), size, SharedMapping::Access::kReadWrite);
  ASSERT_OK(mapping);
  constexpr auto kDuration = milliseconds(400);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The peer mixes legitimate traffic (so that valid records do flow) with random 8-byte
    // writes anywhere in the segment: indices, futex words, lengths, payload, header.
    std::mt19937_64 rng(getpid());
    uint8_t* base = mapping->mutable_bytes().data();
    uint8_t header[16];
    std::memcpy(header, base, sizeof(header));
    auto end = std::chrono::steady_clock::now() + kDuration;
    std::vector<uint8_t> scratch;
    while (std::chrono::steady_clock::now() < end) {
      auto peer = CallRing::AttachMemory(mapping->mutable_bytes(), RingSide::kClient,
                                         std::chrono::nanoseconds(0));
      if (!peer.has_value() || rng() % 4 == 0) {
        // Now and then "repair" the segment (header, empty rings) so traffic can resume.
        std::memcpy(base, header, sizeof(header));
        for (size_t control : {kRequestControl, kResponseControl}) {
          uint64_t index = 8 * (rng() % 1000);
          std::memcpy(base + control + kHead, &index, 8);
          std::memcpy(base + control + kTail, &index, 8);
        }
        continue;
      }
      for (int op = 0; op < 100; ++op) {
        uint64_t r = rng();
        Status status;
        if (r % 10 < 4) {
          status = peer->TryWrite(Record(rng() % 120, static_cast<uint32_t>(r))).error();
        } else if (r % 10 < 8) {
          status = peer->TryRead(&scratch).error();
        } else {
          size_t offset = (rng() % (size / 8)) * 8;
          if (offset < 64 && rng() % 100 != 0) continue;
          std::memcpy(base + offset, &r, 8);
        }
        if (!status.ok()) break;
      }
    }
    _exit(0);
  }
  fd->reset();
  int attaches = 0, records = 0, protocol_errors = 0, timeouts = 0, closed = 0;
  std::vector<uint8_t> got;
  auto end = std::chrono::steady_clock::now() + kDuration;
  while (std::chrono::steady_clock::now() < end) {
    auto ring = CallRing::AttachMemory(mapping->mutable_bytes(), RingSide::kServer);
    ++attaches;
    if (!ring.has_value()) {
      ASSERT_THAT(ring.error(), IsError(ErrorKind::kProtocolError));
      ++protocol_errors;
      continue;
    }
    for (int op = 0; op < 200; ++op) {
      Status status;
      if (op % 3 == 0) {
        auto r = ring->TryWrite(Record(op % 40, op));
        status = r.error();
      } else if (op % 3 == 1) {
        auto r = ring->TryRead(&got);
        status = r.error();
        if (r.has_value() && *r) {
          ++records;
          ASSERT_LE(got.size(), ring->max_record_size());
        }
      } else {
        status = ring->Read(&got, std::chrono::microseconds(50));
        if (status.ok()) ++records;
      }
      if (status.kind() == ErrorKind::kTimeout) {
        ++timeouts;
        continue;
      }
      // A scribble over the closed flags reads as the peer closing: an IoError, not a crash.
      if (status.kind() == ErrorKind::kIoError && ring->peer_closed()) {
        ++closed;
        break;
      }
      if (!status.ok()) {
        ASSERT_THAT(status, IsError(ErrorKind::kProtocolError));
        ++protocol_errors;
        break;
      }
    }
  }
  ExpectChildSucceeded(child);
  EXPECT_GT(protocol_errors, 0);
  EXPECT_GT(records, 0);
  RecordProperty("attaches", attaches);
  RecordProperty("protocol_errors", protocol_errors);
  RecordProperty("records", records);
  RecordProperty("timeouts", timeouts);
  RecordProperty("closed", closed);
}

}  // namespace
}  // namespace shapex::ipc
