// Length-prefixed frames: the unit every shapex connection exchanges, on the socket and inside
// call-ring records. docs/wire-protocol.md ("Framing") is the normative description.
//
// Layout (all integers little-endian, no padding):
//   offset 0  u32  payload_size   bytes of payload after the header (<= max payload size)
//   offset 4  u8   type           frame type; interpreted by the protocol layer, not here
//   offset 5  u64  call_id        matches a response to its request (0 = not tied to a call)
//   offset 13      payload
//
// Usage:
//   FrameWriter writer;                          // reuses one buffer for every frame
//   RETURN_IF_ERROR(writer.Append(kTypeCall, id, payload));
//   Send(writer.data()); writer.Clear();
//
//   FrameReader reader;                          // one per connection
//   RETURN_IF_ERROR(reader.Feed(bytes_from_socket));   // any split: 1 byte, 3 frames and a half
//   Frame frame;
//   for (;;) {
//     ASSIGN_OR_RETURN(ReadProgress p, reader.Next(&frame));
//     if (p == ReadProgress::kNeedMore) break;
//     Handle(frame);                             // frame.payload points into the reader
//   }
//
// Guarantees:
// - The payload size in a header is checked against the maximum before any memory is reserved for
//   the frame, so a peer cannot make us allocate more than header + max payload bytes.
// - An oversize header is a ProtocolError and the reader stays failed: every later call returns
//   the same error (a stream that lost framing cannot be resynchronised; close the connection).
// - The reader's buffer grows to the largest frame seen and is then reused: no allocation per
//   frame in steady state. FrameWriter likewise keeps its capacity across Clear().
// - Frame::payload views the reader's buffer and stays valid until the next non-const call on the
//   reader.
// - Not thread-safe: one reader/writer per connection, used from one thread at a time.
#ifndef SHAPEX_IPC_FRAME_H_
#define SHAPEX_IPC_FRAME_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/status.h"

namespace shapex::ipc {

inline constexpr size_t kFrameHeaderSize = 13;
inline constexpr uint32_t kDefaultMaxFramePayload = 64u << 20;  // 64 MiB

// A decoded frame header.
struct FrameHeader {
  uint32_t payload_size = 0;
  uint8_t type = 0;
  uint64_t call_id = 0;
};

// A decoded frame. `payload` is a view; see the owner's guarantee for how long it stays valid.
struct Frame {
  uint8_t type = 0;
  uint64_t call_id = 0;
  std::span<const uint8_t> payload;
};

// Writes the 13-byte header for `header` (no checks). Useful for scatter/gather writes.
std::array<uint8_t, kFrameHeaderSize> EncodeFrameHeader(const FrameHeader& header);

// Reads a header from the first kFrameHeaderSize bytes of `bytes` (caller checks the size).
FrameHeader DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderSize> bytes);

// Decodes `bytes` as exactly one complete frame (used for call-ring records, which arrive whole).
// ProtocolError if the bytes are short, the declared size exceeds `max_payload`, or bytes follow
// the frame. The returned payload views `bytes`.
Result<Frame> DecodeSingleFrame(std::span<const uint8_t> bytes,
                                uint32_t max_payload = kDefaultMaxFramePayload);

// Encodes frames back to back into one reusable buffer.
class FrameWriter {
 public:
  explicit FrameWriter(uint32_t max_payload = kDefaultMaxFramePayload)
      : max_payload_(max_payload) {}

  // Appends one frame. InvalidArgument if the payload exceeds the maximum (large values belong in
  // a shared-memory sidecar); the buffer is unchanged then.
  Status Append(uint8_t type, uint64_t call_id, std::span<const uint8_t> payload);

  // Clear() + Append(); returns the encoded frame (valid until the next non-const call).
  Result<std::span<const uint8_t>> Encode(uint8_t type, uint64_t call_id,
                                          std::span<const uint8_t> payload);

  std::span<const uint8_t> data() const { return buffer_; }
  // Drops the encoded bytes, keeps the capacity.
  void Clear() { buffer_.clear(); }
  uint32_t max_payload() const { return max_payload_; }

 private:
  uint32_t max_payload_;
  std::vector<uint8_t> buffer_;
};

enum class ReadProgress { kFrame, kNeedMore };

// Reassembles frames from a byte stream fed in arbitrary pieces.
class FrameReader {
 public:
  explicit FrameReader(uint32_t max_payload = kDefaultMaxFramePayload)
      : max_payload_(max_payload) {}

  FrameReader(FrameReader&&) noexcept = default;
  FrameReader& operator=(FrameReader&&) noexcept = default;

  // Copies `bytes` into the receive buffer. Fails (with the sticky error) once the reader failed.
  // Call Next() until kNeedMore after each Feed(): then at most one partial frame stays buffered.
  Status Feed(std::span<const uint8_t> bytes);

  // Zero-copy alternative to Feed() for reading straight from a socket: returns a writable
  // window of at least `min_size` bytes (more if the current partial frame needs it, up to the
  // frame's full size) at the end of the buffered data; then call CommitWrite(n) with the number
  // of bytes actually written there. Fails once the reader failed.
  Result<std::span<uint8_t>> PrepareWrite(size_t min_size);
  void CommitWrite(size_t size);

  // Extracts the next complete frame into `*frame`: kFrame, kNeedMore, or a ProtocolError for an
  // oversize header (sticky).
  Result<ReadProgress> Next(Frame* frame);

  // True if bytes of an unfinished frame are buffered (at EOF this means a truncated frame).
  bool has_partial_frame() const { return end_ > begin_; }
  bool failed() const { return !error_.ok(); }
  size_t buffer_capacity() const { return capacity_; }
  uint32_t max_payload() const { return max_payload_; }

 private:
  // Makes room for `extra` bytes after end_, compacting and growing as needed.
  Status Reserve(size_t extra);

  uint32_t max_payload_;
  Status error_;                     // sticky
  std::unique_ptr<uint8_t[]> data_;  // not zero-filled on growth
  size_t capacity_ = 0;
  size_t begin_ = 0;  // first byte not yet returned as a frame
  size_t end_ = 0;    // one past the last buffered byte
};

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_FRAME_H_
