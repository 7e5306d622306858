// libFuzzer target: decode + verify + link + run. The input is a sequence of frames
// (u32 little-endian length + EncodeBlob bytes); the first blob is the entry. Hashes of
// single-function blobs are recomputed so that mutated bodies get past the hash check and
// exercise the linker, the verifier and the VM. Linking may fail with a typed error; a linked
// program must run under tight limits without crashing.
//
//   ./build/fuzz/tools/fuzz_link -max_total_time=600 tests/fuzz/link/
//
// Seeds: tools/fuzz/make_blob_seeds.sh runs this binary with SHAPEX_FUZZ_WRITE_SEEDS=<dir> and
// a list of .shape files; it writes this corpus (<dir>/link/) and fuzz_blob_decode's
// (<dir>/blob_decode/), see WriteSeeds.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/vm.h"

using namespace shapex;
using namespace shapex::engine;

namespace {

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

// Each program is compiled (label: the file name without ".shape") and every other blob of
// all the programs, counted across them in the order given, becomes two seeds named
// <label>_<proto>: blob_decode/<...>.blob (EncodeBlob of the proto's blob) and link/<...>.link
// (the proto's minimal blob set as frames, the proto first). Programs that do not compile
// are skipped.
void WriteSeeds(const std::string& dir, const std::vector<std::string>& files) {
  size_t counter = 0, written = 0;
  for (const std::string& path : files) {
    std::ifstream file(path, std::ios::binary);
    std::stringstream source;
    source << file.rdbuf();
    std::string label = path.substr(path.find_last_of('/') + 1);
    label.resize(label.size() - 6);
    auto program = Compile(source.str(), label + ".shape");
    if (!program.has_value()) continue;
    auto pb = BuildProgramBlobs(**program);
    if (!pb.has_value()) continue;
    for (size_t i = 0; i < pb->blobs.size(); ++i) {
      if (counter++ % 2 != 0) continue;
      auto set = MinimalBlobsByHash(*pb, pb->proto_hashes[i]);
      if (!set.has_value()) continue;
      std::string name = label + "_" + std::to_string(i);
      WriteFile(dir + "/blob_decode/" + name + ".blob", EncodeBlob(pb->blobs[i]));
      std::vector<uint8_t> frames;
      auto add_frame = [&](const FunctionBlob& b) {
        std::vector<uint8_t> bytes = EncodeBlob(b);
        for (int k = 0; k < 4; ++k) frames.push_back(static_cast<uint8_t>(bytes.size() >> (8 * k)));
        frames.insert(frames.end(), bytes.begin(), bytes.end());
      };
      for (const FunctionBlob& b : set->blobs)
        if (b.hash == set->entry) add_frame(b);
      for (const FunctionBlob& b : set->blobs)
        if (b.hash != set->entry) add_frame(b);
      WriteFile(dir + "/link/" + name + ".link", frames);
      ++written;
    }
  }
  std::fprintf(stderr, "wrote %zu blob_decode and %zu link seeds from %zu blobs\n", written,
               written, counter);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (const char* dir = std::getenv("SHAPEX_FUZZ_WRITE_SEEDS")) {
    std::vector<std::string> files;
    for (int i = 1; i < *argc; ++i)
      if (std::string_view((*argv)[i]).ends_with(".shape")) files.push_back((*argv)[i]);
    WriteSeeds(dir, files);
    std::exit(0);
  }
  return 0;
}

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
