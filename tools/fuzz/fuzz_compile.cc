// libFuzzer target: any byte string is compiled; a program that compiles must verify (the
// compiler promises that) and must run under tight limits without crashing, hanging or
// exhausting the process. Output is discarded.
//
//   cmake --preset fuzz && cmake --build --preset fuzz
//   ./build/fuzz/tools/fuzz_compile -max_total_time=600 tests/fuzz/compile/
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "shapex/engine/compiler.h"
#include "shapex/engine/verifier.h"
#include "shapex/engine/vm.h"

using namespace shapex;
using namespace shapex::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto program = Compile(source, "fuzz.shape");
  if (!program.has_value()) return 0;
  Status verified = Verify(**program);
  if (!verified.ok()) {
    // A compiled program that fails verification is a compiler bug.
    std::fprintf(stderr, "compiled program failed verification: %s\n", verified.ToString().c_str());
    std::abort();
  }
  Vm vm(**program, Limits{.fuel = 20000, .memory = 16 << 20, .stack = 200});
  vm.SetOutput([](std::string_view) {});
  Status ran = vm.RunMain({"fuzz"});
  if (ran.kind() == ErrorKind::kInternal || ran.kind() == ErrorKind::kInvalidArgument) {
    std::fprintf(stderr, "unexpected error kind: %s\n", ran.ToString().c_str());
    std::abort();
  }
  return 0;
}
