// A 64 MiB array to a sandboxed function with no copy: a SharedVec lives in a shared-memory
// segment, and the executor maps that segment (read-only) instead of receiving the bytes.
//   ./zero_copy                          prints "8388608 elements, sum 35184367894528"
#include <shapex/shapex.h>

#include <cstdio>

constexpr const char* kSource = R"(
@remote
function total(v) { v.sum() }
)";

int main() {
  constexpr size_t kN = size_t{8} << 20;  // 8 Mi doubles = 64 MiB
  shapex::ipc::SharedVec<double> v = shapex::ipc::SharedVec<double>::Create(kN).value();
  for (size_t i = 0; i < kN; ++i) v[i] = static_cast<double>(i);

  shapex::Runtime rt = shapex::Runtime::Connect().value();
  shapex::Module m = rt.LoadSource(kSource, "total.shape").value();
  double sum = m.Call<double>("total", v).value();
  std::printf("%zu elements, sum %.0f\n", v.size(), sum);
}
