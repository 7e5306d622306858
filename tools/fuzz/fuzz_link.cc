// libFuzzer target: decode + verify + link + run. The input is a sequence of frames
// (u32 little-endian length + EncodeBlob bytes); the first blob is the entry. Hashes of
// single-function blobs are recomputed so that mutated bodies get past the hash check and
// exercise the linker, the verifier and the VM. Linking may fail with a typed error; a linked
// program must run under tight limits without crashing.
//
//   ./build/fuzz/tools/fuzz_link -max_total_time=600 tests/fuzz/link/
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shapex/engine/blob.h"
#include "shapex/engine/vm.h"

using namespace shapex;
using namespace shapex::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<FunctionBlob> blobs;
  size_t pos = 0;
  while (size - pos >= 4 && blobs.size() < 64) {
    uint32_t len;
    std::memcpy(&len, data + pos, 4);
    pos += 4;
    if (len > size - pos) break;
    auto blob = DecodeBlob(std::span<const uint8_t>(data + pos, len));
    pos += len;
    if (!blob.has_value()) continue;
    if (blob->group.empty()) blob->hash = Sha256(blob->canonical);
    blobs.push_back(std::move(*blob));
  }
  if (blobs.empty()) return 0;
  auto linked = ProgramFromBlobs(blobs[0].hash, blobs);
  if (!linked.has_value()) {
    ErrorKind k = linked.error().kind();
    if (k != ErrorKind::kProtocolError && k != ErrorKind::kInvalidArgument &&
        k != ErrorKind::kMissingModuleFunction && k != ErrorKind::kFunctionNotFound) {
      std::fprintf(stderr, "unexpected link error: %s\n", linked.error().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  Vm vm(*linked->program, Limits{.fuel = 20000, .memory = 16 << 20, .stack = 100});
  vm.SetOutput([](std::string_view) {});
  const Proto& entry = *linked->program->protos[linked->entry];
  std::vector<Value> args;
  for (uint32_t i = 0; i < entry.num_params; ++i) args.push_back(Value::Int(i + 1));
  Value out;
  (void)vm.CallFunction(linked->entry, args, &out);
  return 0;
}
