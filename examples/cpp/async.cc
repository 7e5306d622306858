// Many calls in flight: CallAsync returns a std::future; a Module runs up to
// RuntimeOptions::max_in_flight calls at once, each on its own executor.
//   ./async [path/to/add.shape]          prints the sum of add(i, i) for i < 100: 9900
#include <shapex/shapex.h>

#include <cstdio>
#include <future>
#include <vector>

int main(int argc, char** argv) {
  shapex::RuntimeOptions options;
  options.max_in_flight = 2;
  shapex::Runtime rt = shapex::Runtime::Connect(options).value();
  shapex::Module m = rt.Load(argc > 1 ? argv[1] : "examples/add.shape").value();
  std::vector<std::future<shapex::CallResult<int64_t>>> calls;
  for (int i = 0; i < 100; ++i) calls.push_back(m.CallAsync<int64_t>("add", i, i));
  long long sum = 0;
  for (auto& call : calls) {
    shapex::CallResult<int64_t> r = call.get();
    if (!r) {
      std::fputs(r.error().ToString().c_str(), stderr);
      return 1;
    }
    sum += r.value();
  }
  std::printf("%lld\n", sum);
}
