// The ten-line embedding: call `add` of examples/add.shape in a sandboxed executor.
//   ./hello [path/to/add.shape]          prints 42
#include <shapex/shapex.h>

#include <cstdio>

int main(int argc, char** argv) {
  shapex::Runtime rt = shapex::Runtime::Connect().value();  // finds or starts the supervisor
  shapex::Module m = rt.Load(argc > 1 ? argv[1] : "examples/add.shape").value();
  int64_t r = m.Call<int64_t>("add", 10, 32).value();       // C++ values in and out
  std::printf("%lld\n", static_cast<long long>(r));
}
