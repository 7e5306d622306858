// The embedding API (client/runtime.h): shapex::Runtime and shapex::Module against a real
// supervisor (SupervisorFixture: a private `shapex serve`, pool of two), and the same calls with
// RuntimeOptions::local, which must give the same results.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "shapex/shapex.h"
#include "testing/supervisor_fixture.h"

namespace shapex {
namespace {

using ::testing::HasSubstr;

constexpr const char* kSource = R"(let greeting = "hi"
var calls = 0

function add(a, b) { a + b }
function greet(name) { print(f"{greeting}, {name}"); f"{greeting} {name}" }
function half(x) { x / 2 }
function flip(b) { !b }
function total(xs) { var t = 0; for x in xs { t = t + x }; t }
function counts(words) {
  let m = {}
  for w in words { if m.has(w) { m[w] = m[w] + 1 } else { m[w] = 1 } }
  m
}
function maybe(x) { if x > 0 { Some(x * 2) } else { None } }
function bump() { calls = calls + 1; calls }
function fail(n) { print("before"); inner(n) }
function inner(n) { 10 / n }
function spin() { var i = 0; while true { i = i + 1 } }
function nothing() { None }
function point() { [1, "two", 3.5] }
function twice(xs) { xs.map(|x| x * 2) }
function ends(v) { [v.len(), v[0], v[v.len() - 1], type_of(v)] }
)";

// Both ways in: a supervisor's executors (the default) and in process (local).
class RuntimeTest : public shapex_testing::SupervisorFixture,
                    public ::testing::WithParamInterface<bool> {
 protected:
  bool local() const { return GetParam(); }

  Runtime Connect(RuntimeOptions options = {}) {
    options.client = Options();
    options.local = local();
    Result<Runtime> rt = Runtime::Connect(options);
    EXPECT_TRUE(rt.has_value()) << rt.error().ToString();
    return std::move(rt).value();
  }
  Module Load(const Runtime& rt) {
    CallResult<Module> m = rt.LoadSource(kSource, "mod.shape");
    EXPECT_TRUE(m.has_value()) << m.error().ToString();
    return std::move(m).value();
  }
};

TEST_P(RuntimeTest, TenLinesGive42) {
  Runtime rt = Connect();
  Module m = Load(rt);
  CallResult<int64_t> r = m.Call<int64_t>("add", 10, 32);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r.value(), 42);
}

TEST_P(RuntimeTest, ConvertsEveryBasicKindBothWays) {
  Module m = Load(Connect());
  EXPECT_EQ(m.Call<double>("half", 3.0).value(), 1.5);
  EXPECT_EQ(m.Call<int64_t>("half", 3).value(), 1);
  EXPECT_EQ(m.Call<double>("add", 1.25, 2).value(), 3.25);
  EXPECT_EQ(m.Call<bool>("flip", false).value(), true);
  EXPECT_EQ(m.Call<std::string>("add", std::string("a"), "b").value(), "ab");
  EXPECT_EQ(m.Call<int>("total", std::vector<int>{1, 2, 3, 4}).value(), 10);
  std::map<std::string, int64_t> counts =
      m.Call<std::map<std::string, int64_t>>("counts",
                                             std::vector<std::string>{"a", "b", "a"})
          .value();
  EXPECT_EQ(counts, (std::map<std::string, int64_t>{{"a", 2}, {"b", 1}}));
  EXPECT_EQ(m.Call<std::optional<int>>("maybe", 4).value(), std::optional<int>(8));
  EXPECT_EQ(m.Call<std::optional<int>>("maybe", -1).value(), std::nullopt);
  EXPECT_EQ(m.Call<std::vector<int>>("twice", std::vector<int>{1, 2}).value(),
            (std::vector<int>{2, 4}));
  EXPECT_EQ(m.Call<Formatted>("point").value().text, "[1, \"two\", 3.5]");
  EXPECT_TRUE(m.Call("nothing").has_value());
}

TEST_P(RuntimeTest, KeepsWhatTheFunctionPrinted) {
  Module m = Load(Connect());
  CallResult<std::string> r = m.Call<std::string>("greet", "ann");
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r.value(), "hi ann");
  EXPECT_EQ(r.output(), "hi, ann\n");
}

TEST_P(RuntimeTest, ErrorsKeepKindMessageTraceAndOutput) {
  Module m = Load(Connect());
  CallResult<int64_t> r = m.Call<int64_t>("fail", 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::kRuntimeError);
  EXPECT_THAT(r.error().message(), HasSubstr("division by zero"));
  ASSERT_GE(r.error().trace().size(), 2u);
  EXPECT_EQ(r.error().trace()[0].function, "inner");
  EXPECT_EQ(r.error().trace()[0].file, "mod.shape");
  EXPECT_EQ(r.error().trace()[0].line, 17u);
  EXPECT_EQ(r.error().trace()[1].function, "fail");
  EXPECT_EQ(r.output(), "before\n");
  EXPECT_THAT(r.error().ToString(), HasSubstr("error[RuntimeError]: "));
  EXPECT_THAT(r.error().ToString(), HasSubstr("  at inner (mod.shape:17)\n"));

  CallResult<int64_t> missing = m.Call<int64_t>("no_such", 1);
  EXPECT_EQ(missing.error().kind(), ErrorKind::kFunctionNotFound);
  CallResult<int64_t> arity = m.Call<int64_t>("add", 1);
  EXPECT_EQ(arity.error().kind(), ErrorKind::kArgumentError) << arity.error().ToString();
  CallResult<int64_t> wrong = m.Call<int64_t>("add", std::string("a"), "b");
  EXPECT_EQ(wrong.error().kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(wrong.error().message(), HasSubstr("expected Int"));
}

TEST_P(RuntimeTest, LimitsPerCall) {
  Module m = Load(Connect());
  CallOptions fuel;
  fuel.fuel = 10000;
  CallResult<Void> spun = m.CallWith<Void>(fuel, "spin");
  EXPECT_EQ(spun.error().kind(), ErrorKind::kResourceExhausted) << spun.error().ToString();
  CallOptions time;
  time.timeout = 0.2;
  auto start = std::chrono::steady_clock::now();
  CallResult<Void> timed = m.CallWith<Void>(time, "spin");
  EXPECT_EQ(timed.error().kind(), ErrorKind::kTimeout) << timed.error().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // The module still works after both.
  EXPECT_EQ(m.Call<int64_t>("add", 1, 2).value(), 3);
}

TEST_P(RuntimeTest, NothingOfOneCallIsSeenByTheNext) {
  Module m = Load(Connect());
  // Send-copy: a callee's change to a global stays in that call.
  EXPECT_EQ(m.Call<int64_t>("bump").value(), 1);
  EXPECT_EQ(m.Call<int64_t>("bump").value(), 1);
}

TEST_P(RuntimeTest, ManyCallsInFlightFromManyThreads) {
  Module m = Load(Connect());
  std::vector<std::future<CallResult<int64_t>>> calls;
  for (int i = 0; i < 16; ++i) calls.push_back(m.CallAsync<int64_t>("add", i, 100));
  for (int i = 0; i < 16; ++i) {
    CallResult<int64_t> r = calls[static_cast<size_t>(i)].get();
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(r.value(), i + 100);
  }
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, &good, t] {
      for (int i = 0; i < 10; ++i) {
        if (m.Call<int64_t>("add", t, i).value_or(-1) == t + i) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 40);
}

TEST_P(RuntimeTest, LoadReportsCompileAndTopLevelErrors) {
  Runtime rt = Connect();
  CallResult<Module> bad = rt.LoadSource("function f( { 1 }", "bad.shape");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().kind(), ErrorKind::kCompileError);
  CallResult<Module> top = rt.LoadSource("let x = 1 / 0\nfunction f() { x }", "top.shape");
  ASSERT_FALSE(top.has_value());
  EXPECT_EQ(top.error().kind(), ErrorKind::kRuntimeError);
  CallResult<Module> missing = rt.Load("/nonexistent/x.shape");
  EXPECT_EQ(missing.error().kind(), ErrorKind::kIoError);
}

// The peak resident set of this process, in bytes (VmHWM).
size_t PeakRss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

TEST_P(RuntimeTest, SharedVecArgumentsAreNotCopiedHere) {
  Module m = Load(Connect());
  constexpr size_t kN = size_t{16} << 20;  // 128 MiB of doubles
  Result<ipc::SharedVec<double>> v = ipc::SharedVec<double>::Create(kN);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  for (size_t i = 0; i < kN; ++i) (*v)[i] = static_cast<double>(i);
  const size_t before = PeakRss();
  CallResult<Formatted> r = m.Call<Formatted>("ends", *v);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r.value().text, fmt::format("[{}, 0.0, {}.0, \"Vec<f64>\"]", kN, kN - 1));
  if (!local()) {
    // A copy on this side (into a sidecar segment) would raise the peak by 128 MiB; the
    // segment's descriptor goes instead.
    EXPECT_LT(PeakRss() - before, size_t{32} << 20);
  }
  // The same memory: a second call sees a change made here.
  (*v)[0] = 7;
  EXPECT_EQ(m.Call<Formatted>("ends", *v).value().text,
            fmt::format("[{}, 7.0, {}.0, \"Vec<f64>\"]", kN, kN - 1));
}

INSTANTIATE_TEST_SUITE_P(BothWays, RuntimeTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Local" : "Executor"; });

}  // namespace
}  // namespace shapex
