#include "shapex/ipc/frame.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>

namespace shapex::ipc {
namespace {

// Smallest buffer the reader allocates; small frames then never cause a reallocation.
constexpr size_t kMinReaderCapacity = 4096;

void StoreLe32(uint8_t* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
void StoreLe64(uint8_t* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t LoadLe32(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}
uint64_t LoadLe64(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}

Status OversizeError(uint32_t size, uint32_t max) {
  return ProtocolError(
      fmt::format("frame payload of {} bytes exceeds the maximum of {} bytes", size, max));
}

}  // namespace

std::array<uint8_t, kFrameHeaderSize> EncodeFrameHeader(const FrameHeader& header) {
  std::array<uint8_t, kFrameHeaderSize> out;
  StoreLe32(out.data(), header.payload_size);
  out[4] = header.type;
  StoreLe64(out.data() + 5, header.call_id);
  return out;
}

FrameHeader DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderSize> bytes) {
  return FrameHeader{LoadLe32(bytes.data()), bytes[4], LoadLe64(bytes.data() + 5)};
}

Result<Frame> DecodeSingleFrame(std::span<const uint8_t> bytes, uint32_t max_payload) {
  if (bytes.size() < kFrameHeaderSize) {
    return ProtocolError(fmt::format("frame of {} bytes is shorter than its header", bytes.size()));
  }
  FrameHeader header = DecodeFrameHeader(bytes.first<kFrameHeaderSize>());
  if (header.payload_size > max_payload) return OversizeError(header.payload_size, max_payload);
  if (bytes.size() - kFrameHeaderSize != header.payload_size) {
    return ProtocolError(fmt::format("frame declares {} payload bytes but carries {}",
                                     header.payload_size, bytes.size() - kFrameHeaderSize));
  }
  return Frame{header.type, header.call_id, bytes.subspan(kFrameHeaderSize)};
}

Status FrameWriter::Append(uint8_t type, uint64_t call_id, std::span<const uint8_t> payload) {
  if (payload.size() > max_payload_) {
    return InvalidArgument(fmt::format("frame payload of {} bytes exceeds the maximum of {} bytes",
                                       payload.size(), max_payload_));
  }
  auto header = EncodeFrameHeader({static_cast<uint32_t>(payload.size()), type, call_id});
  buffer_.insert(buffer_.end(), header.begin(), header.end());
  buffer_.insert(buffer_.end(), payload.begin(), payload.end());
  return Status::Ok();
}

Result<std::span<const uint8_t>> FrameWriter::Encode(uint8_t type, uint64_t call_id,
                                                     std::span<const uint8_t> payload) {
  Clear();
  RETURN_IF_ERROR(Append(type, call_id, payload));
  return data();
}

Status FrameReader::Reserve(size_t extra) {
  if (capacity_ - end_ >= extra) return Status::Ok();
  size_t buffered = end_ - begin_;
  if (extra > SIZE_MAX / 2 - buffered) return ResourceExhausted("frame reader buffer overflow");
  size_t needed = buffered + extra;
  if (needed <= capacity_) {
    // Enough room once the consumed prefix is dropped. Only a partial frame (plus whatever the
    // caller just fed) is buffered here, so the move is bounded by one frame.
    std::memmove(data_.get(), data_.get() + begin_, buffered);
  } else {
    // Grow geometrically for streams of growing frames, but never past what is needed for the
    // largest legal frame plus this write.
    size_t limit = std::max(needed, kFrameHeaderSize + size_t{max_payload_} + extra);
    size_t capacity = std::min(std::max({needed, capacity_ * 2, kMinReaderCapacity}), limit);
    // new[] without () leaves the bytes uninitialised: no cost for zero-filling 64 MiB.
    std::unique_ptr<uint8_t[]> grown(new (std::nothrow) uint8_t[capacity]);
    if (!grown) return ResourceExhausted(fmt::format("cannot allocate {} bytes", capacity));
    if (buffered > 0) std::memcpy(grown.get(), data_.get() + begin_, buffered);
    data_ = std::move(grown);
    capacity_ = capacity;
  }
  begin_ = 0;
  end_ = buffered;
  return Status::Ok();
}

Status FrameReader::Feed(std::span<const uint8_t> bytes) {
  if (!error_.ok()) return error_;
  if (bytes.empty()) return Status::Ok();
  RETURN_IF_ERROR(Reserve(bytes.size()));
  std::memcpy(data_.get() + end_, bytes.data(), bytes.size());
  end_ += bytes.size();
  return Status::Ok();
}

Result<std::span<uint8_t>> FrameReader::PrepareWrite(size_t min_size) {
  if (!error_.ok()) return error_;
  size_t want = std::max<size_t>(min_size, 1);
  size_t buffered = end_ - begin_;
  if (buffered >= kFrameHeaderSize) {
    // The header is known: check it before reserving room for the rest of its frame.
    FrameHeader header = DecodeFrameHeader(
        std::span<const uint8_t, kFrameHeaderSize>(data_.get() + begin_, kFrameHeaderSize));
    if (header.payload_size > max_payload_) {
      error_ = OversizeError(header.payload_size, max_payload_);
      return error_;
    }
    size_t frame_size = kFrameHeaderSize + header.payload_size;
    if (frame_size > buffered) want = std::max(want, frame_size - buffered);
  }
  RETURN_IF_ERROR(Reserve(want));
  return std::span<uint8_t>(data_.get() + end_, capacity_ - end_);
}

void FrameReader::CommitWrite(size_t size) { end_ += std::min(size, capacity_ - end_); }

Result<ReadProgress> FrameReader::Next(Frame* frame) {
  if (!error_.ok()) return error_;
  size_t buffered = end_ - begin_;
  if (buffered == 0) {
    begin_ = end_ = 0;  // free compaction: nothing to move
    return ReadProgress::kNeedMore;
  }
  if (buffered < kFrameHeaderSize) return ReadProgress::kNeedMore;
  const uint8_t* start = data_.get() + begin_;
  FrameHeader header =
      DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderSize>(start, kFrameHeaderSize));
  if (header.payload_size > max_payload_) {
    error_ = OversizeError(header.payload_size, max_payload_);
    return error_;
  }
  if (buffered - kFrameHeaderSize < header.payload_size) return ReadProgress::kNeedMore;
  frame->type = header.type;
  frame->call_id = header.call_id;
  frame->payload = std::span<const uint8_t>(start + kFrameHeaderSize, header.payload_size);
  begin_ += kFrameHeaderSize + header.payload_size;
  return ReadProgress::kFrame;
}

}  // namespace shapex::ipc
