// Errors keep their kind, message and Shape trace, and what the function printed before it
// failed; limits apply per call.
//   ./errors                             prints the three reports below and exits 0
#include <shapex/shapex.h>

#include <cstdio>

constexpr const char* kSource = R"(function ratio(a, b) {
  print(f"dividing {a} by {b}")
  check(b)
  a / b
}
function check(b) { assert(b != 0, "b must not be zero") }
function spin() { var i = 0; while true { i = i + 1 } }
)";

int main() {
  shapex::Runtime rt = shapex::Runtime::Connect().value();
  shapex::Module m = rt.LoadSource(kSource, "ratio.shape").value();

  shapex::CallResult<int64_t> ok = m.Call<int64_t>("ratio", 84, 2);
  std::printf("ratio(84, 2) = %lld, it printed: %s", static_cast<long long>(ok.value()),
              ok.output().c_str());

  shapex::CallResult<int64_t> bad = m.Call<int64_t>("ratio", 1, 0);
  if (bad) return 1;
  std::printf("ratio(1, 0) printed: %s", bad.output().c_str());
  std::printf("and failed with kind %s:\n%s", std::string(bad.error().kind_name()).c_str(),
              bad.error().ToString().c_str());

  shapex::CallOptions limits;
  limits.fuel = 100000;  // instructions
  shapex::CallResult<shapex::Void> spun = m.CallWith<shapex::Void>(limits, "spin");
  std::printf("spin() under 100000 fuel: %s", spun.error().ToString().c_str());
  return spun ? 1 : 0;
}
