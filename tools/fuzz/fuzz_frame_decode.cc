// libFuzzer target: FrameReader fed a byte stream in input-chosen splits, checked against a
// one-pass reference parse of the same stream. Splitting must never change the result: the same
// frames in the same order, and an oversize header failing at the same frame.
//
// Input: byte 0 seeds the split sizes, bytes 1-2 (LE) choose the maximum payload (1..4096, small
// so that the oversize path is reachable), the rest is the stream.
//
//   ./build/fuzz/tools/fuzz_frame_decode -runs=1000000 tests/fuzz/frame_decode/
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_check.h"
#include "shapex/ipc/frame.h"

using namespace shapex::ipc;

namespace {

using shapex_fuzz::Check;

struct Decoded {
  std::vector<Frame> frames;  // type and call id (payloads are copied separately)
  std::vector<std::vector<uint8_t>> payloads;
  bool failed = false;
  size_t consumed = 0;  // reference only: bytes that formed complete frames
};

Decoded Reference(std::span<const uint8_t> stream, uint32_t max_payload) {
  Decoded out;
  size_t pos = 0;
  while (stream.size() - pos >= kFrameHeaderSize) {
    FrameHeader header = DecodeFrameHeader(stream.subspan(pos).first<kFrameHeaderSize>());
    if (header.payload_size > max_payload) {
      out.failed = true;
      break;
    }
    if (stream.size() - pos - kFrameHeaderSize < header.payload_size) break;
    auto payload = stream.subspan(pos + kFrameHeaderSize, header.payload_size);
    out.frames.push_back({header.type, header.call_id, {}});
    out.payloads.emplace_back(payload.begin(), payload.end());
    pos += kFrameHeaderSize + header.payload_size;
  }
  out.consumed = pos;
  return out;
}

bool DrainInto(FrameReader& reader, Decoded& out, uint32_t max_payload) {
  Frame frame;
  for (;;) {
    auto progress = reader.Next(&frame);
    if (!progress.has_value()) {
      Check(progress.error().kind() == shapex::ErrorKind::kProtocolError, "wrong error kind");
      Check(reader.failed(), "error without failed()");
      return false;
    }
    if (*progress == ReadProgress::kNeedMore) return true;
    Check(frame.payload.size() <= max_payload, "payload above maximum");
    out.frames.push_back({frame.type, frame.call_id, {}});
    out.payloads.emplace_back(frame.payload.begin(), frame.payload.end());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  uint32_t split_state = data[0] * 2654435761u + 1;
  uint32_t max_payload = 1 + ((data[1] | (data[2] << 8)) % 4096);
  std::span<const uint8_t> stream(data + 3, size - 3);

  Decoded expected = Reference(stream, max_payload);
  Decoded got;
  FrameReader reader(max_payload);
  size_t pos = 0;
  bool ok = true;
  while (ok && pos < stream.size()) {
    split_state = split_state * 1103515245u + 12345u;
    size_t chunk = std::min<size_t>(stream.size() - pos, 1 + (split_state >> 16) % 97);
    if (split_state & 0x100) {
      ok = reader.Feed(stream.subspan(pos, chunk)).ok();
    } else {
      auto window = reader.PrepareWrite(chunk);
      ok = window.has_value();
      if (ok) {
        Check(window->size() >= chunk, "PrepareWrite window too small");
        std::memcpy(window->data(), stream.data() + pos, chunk);
        reader.CommitWrite(chunk);
      }
    }
    pos += chunk;
    if (ok) ok = DrainInto(reader, got, max_payload);
  }
  Check(reader.failed() == expected.failed, "failure differs from the reference");
  Check(got.frames.size() == expected.frames.size(), "frame count differs");
  for (size_t i = 0; i < got.frames.size(); ++i) {
    Check(got.frames[i].type == expected.frames[i].type, "type differs");
    Check(got.frames[i].call_id == expected.frames[i].call_id, "call id differs");
    Check(got.payloads[i] == expected.payloads[i], "payload differs");
  }
  Check(
      reader.buffer_capacity() <= std::max<size_t>(4096, 2 * (kFrameHeaderSize + max_payload + 97)),
      "receive buffer grew beyond one frame");
  if (!expected.failed) {
    Check(reader.has_partial_frame() == (expected.consumed < stream.size()),
          "leftover bytes differ from the reference");
  }
  return 0;
}
