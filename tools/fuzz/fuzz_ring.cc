// libFuzzer target: the input becomes the image of a call-ring segment (as a hostile peer could
// leave it), which is attached and then read and written until it fails. Nothing may crash or
// touch memory outside the image (it is allocated to the exact size, so ASan sees any overrun);
// every failure must be a ProtocolError and must be sticky.
//
// Input: byte 0 holds flags (bit 0: attach as client instead of server; bit 1: the input also
// overwrites the 16-byte segment header, otherwise a valid header for a 256-byte ring is kept);
// the rest is copied over the image from offset 16 (or 0). The image is 1024 + 2 * 256 bytes.
//
//   ./build/fuzz/tools/fuzz_ring -runs=1000000 tests/fuzz/ring/
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "fuzz_check.h"
#include "shapex/ipc/call_ring.h"

using namespace shapex::ipc;

namespace {

using shapex_fuzz::Check;

constexpr uint32_t kCapacity = 256;
constexpr uint32_t kMagic = 0x47525853;
constexpr uint32_t kVersion = 1;

void CheckFailure(const shapex::Status& status) {
  Check(status.kind() == shapex::ErrorKind::kProtocolError ||
            status.kind() == shapex::ErrorKind::kTimeout,
        "unexpected error kind");
}

struct AlignedDelete {
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t image_size = CallRing::SegmentSize(kCapacity);
  std::unique_ptr<uint8_t[], AlignedDelete> image(
      static_cast<uint8_t*>(::operator new[](image_size, std::align_val_t(64))));
  std::memset(image.get(), 0, image_size);
  uint32_t header[4] = {kMagic, kVersion, kCapacity, 0};
  std::memcpy(image.get(), header, sizeof(header));
  size_t offset = (data[0] & 2) ? 0 : sizeof(header);
  std::memcpy(image.get() + offset, data + 1, std::min(size - 1, image_size - offset));

  RingSide side = (data[0] & 1) ? RingSide::kClient : RingSide::kServer;
  auto ring = CallRing::AttachMemory({image.get(), image_size}, side, std::chrono::nanoseconds(0));
  if (!ring.has_value()) {
    CheckFailure(ring.error());
    return 0;
  }
  std::vector<uint8_t> record;
  std::vector<uint8_t> outgoing(40, 0xA5);
  for (int op = 0; op < 64; ++op) {
    shapex::Status status;
    switch (op % 4) {
      case 0:
      case 1: {
        auto r = ring->TryRead(&record);
        status = r.error();
        if (r.has_value() && *r) Check(record.size() <= ring->max_record_size(), "record too big");
        break;
      }
      case 2:
        status = ring->TryWrite(std::span(outgoing).first(op % 41)).error();
        break;
      case 3:
        status = ring->Read(&record, std::chrono::nanoseconds(0));
        break;
    }
    if (status.ok() || status.kind() == shapex::ErrorKind::kTimeout) continue;
    // The input may set the peer's closed flag: a wait then ends with IoError (not sticky: the
    // ring is closed, not corrupt).
    if (status.kind() == shapex::ErrorKind::kIoError) {
      Check(ring->peer_closed(), "IoError without a closed peer");
      break;
    }
    CheckFailure(status);
    Check(!ring->TryRead(&record).has_value(), "error is not sticky (read)");
    Check(!ring->TryWrite(outgoing).has_value(), "error is not sticky (write)");
    break;
  }
  return 0;
}
