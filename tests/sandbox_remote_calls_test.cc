// Tests for client/remote_calls.h against a real supervisor and jailed executors: a Vm's
// @remote calls and pmaps leave the process, with the same values, output and errors as a
// local run, and pmap spreads its calls over the executors.
#include "shapex/client/remote_calls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdlib>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "shapex/engine/compiler.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"
#include "testing/status_matchers.h"
#include "testing/supervisor_fixture.h"

namespace shapex {
namespace {

using ::shapex_testing::IsError;
using ::shapex_testing::JsonInt;

constexpr char kProgram[] = R"(
let factor = 3
var log = []
@remote
function triple(x: int) -> int { print("triple", x); x * factor }
@remote
function fail_on(x) { if x == 2 { panic("two") }; print("ok", x); x }
@remote
function remember(x) { log.push(x); log.len() }
function local_only(x) { x + 1 }
function main(args) {
  print(triple(2))
  print(pmap([1, 2, 3, 4, 5], triple))
  let k = 10
  print(pmap(0..4, |x| triple(x) + k))
  print(pmap([1, 2, 3], local_only))
  print(remember(1), remember(2), log.len())
}
)";

// How many executors a `status --json` answer shows as leased.
size_t LeasedCount(const std::string& json) {
  size_t leased = 0;
  for (size_t pos = 0; (pos = json.find("\"state\": \"leased\"", pos)) != std::string::npos;
       ++pos) {
    ++leased;
  }
  return leased;
}

struct Outcome {
  Status status;
  std::string out;
  std::vector<engine::TraceFrame> trace;
};

class RemoteCallsTest : public shapex_testing::SupervisorFixture {
 protected:
  // pmap spreads over both executors of the pool: one client may hold both here (the default
  // share is pool size - 1).
  std::vector<std::string> ExtraServeArgs() const override {
    return {"--max-leases-per-client", "2"};
  }

  std::unique_ptr<engine::Program> Compile(const std::string& source) {
    engine::Diagnostic diag;
    auto program = engine::Compile(source, "t.shape", &diag);
    EXPECT_TRUE(program.has_value()) << diag.message;
    return program.has_value() ? std::move(*program) : nullptr;
  }

  // Runs `source`'s main, with `remote` installed or (nullptr) locally.
  Outcome Run(const engine::Program& program, RemoteCalls* remote) {
    engine::Vm vm(program, engine::Limits{});
    Outcome o;
    vm.SetOutput([&](std::string_view text) { o.out.append(text); });
    if (remote != nullptr) remote->Install(vm);
    o.status = vm.RunMain({});
    o.trace = vm.trace();
    return o;
  }

  void SetUp() override {
    SupervisorFixture::SetUp();
    WaitForSettledPool();  // so a pmap finds both executors idle
  }

  RemoteCallsOptions RemoteOptions(size_t max_parallel = 2) {
    RemoteCallsOptions options;
    options.client = Options();
    options.max_parallel = max_parallel;
    options.window = 2;
    return options;
  }

  // `source`'s main run locally, then with RemoteCalls (RemoteOptions()), which is kept for its
  // statistics.
  struct BothWays {
    std::unique_ptr<engine::Program> program;  // outlives `remote`
    std::unique_ptr<RemoteCalls> remote;
    Outcome local, got;
  };
  BothWays RunBothWays(const std::string& source) {
    BothWays r;
    r.program = Compile(source);
    if (r.program == nullptr) return r;
    r.local = Run(*r.program, nullptr);
    r.remote = std::make_unique<RemoteCalls>(*r.program, RemoteOptions());
    r.got = Run(*r.program, r.remote.get());
    return r;
  }
};

TEST_F(RemoteCallsTest, SameOutputAsLocalAndPmapUsesBothExecutors) {
  BothWays run = RunBothWays(kProgram);
  ASSERT_NE(run.program, nullptr);
  const Outcome& local = run.local;
  const Outcome& got = run.got;
  const RemoteCalls& remote = *run.remote;
  ASSERT_OK(local.status);
  ASSERT_OK(got.status);
  // Globals are send-copy: `remember` pushes onto its own copy of `log` each time.
  std::string expected = local.out;
  ASSERT_NE(expected.find("1 2 2\n"), std::string::npos) << expected;
  expected.replace(expected.find("1 2 2\n"), 6, "1 1 0\n");
  EXPECT_EQ(got.out, expected);
  // In process (--local): the same copies, so exactly the remote output.
  RemoteCallsOptions in_process = RemoteOptions();
  in_process.in_process = true;
  RemoteCalls local_calls(*run.program, in_process);
  Outcome same = Run(*run.program, &local_calls);
  ASSERT_OK(same.status);
  EXPECT_EQ(same.out, got.out);
  EXPECT_EQ(local_calls.stats().leases, 0u);
  // Only the pmap of a @remote function is spread; the closure's items call triple one by one.
  EXPECT_EQ(remote.stats().batches, 1u);
  EXPECT_EQ(remote.stats().max_executors, 2u);
  EXPECT_EQ(remote.stats().calls, 1u + 5u + 4u + 2u);
  EXPECT_EQ(remote.stats().leases, 2u);
}

TEST_F(RemoteCallsTest, FirstFailingItemWinsWithItsOutputAndTrace) {
  BothWays run = RunBothWays(R"(
@remote
function fail_on(x) { print("item", x); if x == 2 { panic("two") }; x }
function main(args) { print(pmap([0, 1, 2, 3, 4, 5, 6, 7], fail_on)) }
)");
  ASSERT_NE(run.program, nullptr);
  const Outcome& local = run.local;
  const Outcome& got = run.got;
  RemoteCalls& remote = *run.remote;
  EXPECT_THAT(local.status, IsError(ErrorKind::kRuntimeError));
  EXPECT_THAT(got.status, IsError(ErrorKind::kRuntimeError));
  EXPECT_EQ(got.status.message(), local.status.message());
  EXPECT_EQ(got.out, "item 0\nitem 1\nitem 2\n") << "nothing after the failing item";
  EXPECT_EQ(got.out, local.out);
  ASSERT_EQ(got.trace.size(), local.trace.size());
  for (size_t i = 0; i < got.trace.size(); ++i) {
    EXPECT_EQ(got.trace[i].function, local.trace[i].function);
    EXPECT_EQ(got.trace[i].line, local.trace[i].line);
  }
  // Both executors still had later items in flight (window 2: items 3 and 5 on one, 4 on the
  // other) and were killed through the supervisor.
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  std::string json = StatusWhen(client, [](const std::string& j) { return JsonInt(j, "kills") >= 2; });
  EXPECT_EQ(JsonInt(json, "kills"), 2) << json;
  // The next call leases a fresh executor.
  engine::Vm vm(*run.program, engine::Limits{});
  remote.Install(vm);
  engine::Value v;
  std::string out;
  vm.SetOutput([&](std::string_view text) { out.append(text); });
  ASSERT_OK(vm.CallByName("fail_on", {engine::Value::Int(5)}, &v));
  EXPECT_EQ(out, "item 5\n");
  EXPECT_EQ(remote.stats().leases, 3u);
}

TEST_F(RemoteCallsTest, ArgumentCheckFailsAfterTheItemsBeforeIt) {
  BothWays run = RunBothWays(R"(
@remote
function sq(x: int) { print("sq", x); x * x }
function main(args) { print(pmap([1, 2, "three", 4], sq)) }
)");
  ASSERT_NE(run.program, nullptr);
  const Outcome& local = run.local;
  const Outcome& got = run.got;
  const RemoteCalls& remote = *run.remote;
  EXPECT_THAT(got.status, IsError(ErrorKind::kArgumentError));
  EXPECT_EQ(got.status.message(), local.status.message());
  EXPECT_EQ(got.out, "sq 1\nsq 2\n");
  EXPECT_EQ(got.out, local.out);
  EXPECT_EQ(remote.stats().calls, 2u);
}

// A pmap of a local function or closure (even one capturing a value that could not be sent)
// never needs the service: here there is no supervisor to reach at all.
TEST_F(RemoteCallsTest, LocalPmapNeedsNoSupervisor) {
  auto program = Compile(R"(
function double(x) { x * 2 }
function main(args) {
  let f = print
  print(pmap([1, 2, 3], double), pmap(0..3, |x| { if x < 0 { f(x) }; x + 1 }))
}
)");
  ASSERT_NE(program, nullptr);
  RemoteCallsOptions options;
  options.client.socket_path = dir_ + "/nobody/sock";
  options.client.start_supervisor = false;
  RemoteCalls remote(*program, options);
  Outcome got = Run(*program, &remote);
  ASSERT_OK(got.status);
  EXPECT_EQ(got.out, "[2, 4, 6] [1, 2, 3]\n");
  EXPECT_EQ(remote.stats().batches, 0u);
  EXPECT_EQ(remote.stats().leases, 0u);
}

TEST_F(RemoteCallsTest, MoreParallelismThanThePoolUsesWhatIsIdle) {
  auto program = Compile(R"(
@remote
function id(x) { x }
function main(args) { print(pmap(0..20, id).len()) }
)");
  ASSERT_NE(program, nullptr);
  RemoteCalls remote(*program, RemoteOptions(/*max_parallel=*/8));
  Outcome got = Run(*program, &remote);
  ASSERT_OK(got.status);
  EXPECT_EQ(got.out, "20\n");
  EXPECT_GE(remote.stats().max_executors, 1u);
  EXPECT_LE(remote.stats().max_executors, 2u) << "the pool has two executors";
}

}  // namespace
}  // namespace shapex

namespace shapex {
namespace {

// An executor lost in the middle of a pmap is ExecutorCrashed, whether the loss shows while
// requests are being sent to it or while its answers are awaited (never a bare IoError).
TEST_F(RemoteCallsTest, AnExecutorLostDuringPmapIsExecutorCrashed) {
  auto program = Compile(R"(
@remote
function spin(x) { var i = 0; while true { i = i + 1 }; x }
function main(args) { print(pmap([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], spin)) }
)");
  ASSERT_NE(program, nullptr);
  RemoteCalls remote(*program, RemoteOptions());
  Outcome outcome;
  std::thread run([&] { outcome = Run(*program, &remote); });
  // Once both executors run items, kill one of them.
  ASSERT_OK_AND_ASSIGN(Client watcher, Client::Connect(Options()));
  std::string json = StatusWhen(watcher, [](const std::string& j) { return LeasedCount(j) == 2; });
  size_t at = json.find("\"state\": \"leased\"");
  ASSERT_NE(at, std::string::npos) << json;
  size_t pid_at = json.rfind("\"pid\": ", at);
  pid_t victim = static_cast<pid_t>(std::strtol(json.c_str() + pid_at + 7, nullptr, 10));
  ASSERT_GT(victim, 0);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  run.join();
  EXPECT_THAT(outcome.status, IsError(ErrorKind::kExecutorCrashed));
  // The other executor, still spinning an item, was killed by the pmap: the pool settles.
  EXPECT_TRUE(shapex_testing::PoolSettled(StatusWhen(watcher, shapex_testing::PoolSettled)));
}

}  // namespace
}  // namespace shapex

namespace shapex {
namespace {

// pmap in batches (docs/wire-protocol.md "CallBatch"): many items, few messages, the same
// values, output and errors as one call after another.
TEST_F(RemoteCallsTest, ManyItemsComeBackInOrderFromFewBatches) {
  BothWays run = RunBothWays(R"(
let offset = 7
@remote
function sq(x) { if x % 5000 == 0 { print("at", x) }; x * x + offset }
function main(args) {
  let r = pmap(0..20000, sq)
  var ok = true
  for i in 0..20000 { if r[i] != i * i + offset { ok = false } }
  print(ok, r.len(), r[19999])
  print(pmap(["a", "bb"], |s| s.len()), pmap([[1, 2], [3]], sq2))
}
@remote
function sq2(xs) { xs.push(0); xs.len() }
)");
  ASSERT_NE(run.program, nullptr);
  ASSERT_OK(run.local.status);
  ASSERT_OK(run.got.status);
  EXPECT_EQ(run.got.out, run.local.out);
  EXPECT_NE(run.got.out.find("true 20000 399960008\n"), std::string::npos) << run.got.out;
  const RemoteCallsStats& stats = run.remote->stats();
  EXPECT_EQ(stats.calls, 20000u + 2u);
  EXPECT_LT(stats.batch_messages, 2000u) << "items travel many to a message";
  EXPECT_EQ(stats.max_executors, 2u);
}

TEST_F(RemoteCallsTest, FirstFailingItemOfABigBatchWinsAndLaterItemsAreCancelled) {
  BothWays run = RunBothWays(R"(
@remote
function f(x) { if x % 1000 == 0 { print("at", x) }; if x == 6500 { helper(x) }; x }
function helper(x) { x / 0 }
function main(args) { print(pmap(0..20000, f).len()) }
)");
  ASSERT_NE(run.program, nullptr);
  EXPECT_THAT(run.local.status, IsError(ErrorKind::kRuntimeError));
  EXPECT_THAT(run.got.status, IsError(ErrorKind::kRuntimeError));
  EXPECT_EQ(run.got.status.message(), run.local.status.message());
  EXPECT_EQ(run.got.out, run.local.out);
  EXPECT_EQ(run.got.out.substr(run.got.out.size() - 8), "at 6000\n") << "nothing after the error";
  ASSERT_EQ(run.got.trace.size(), run.local.trace.size());
  for (size_t i = 0; i < run.got.trace.size(); ++i) {
    EXPECT_EQ(run.got.trace[i].function, run.local.trace[i].function);
    EXPECT_EQ(run.got.trace[i].line, run.local.trace[i].line);
  }
  EXPECT_EQ(run.remote->stats().calls, 6501u) << "items after the failing one are not taken";
}

// Fuel crosses batches as it crosses calls: whatever the budget, the remote run prints,
// fails and traces exactly as the in-process one (--local: one call after another, same copies) (items that ran with more fuel than one call after
// another would have left them run again one by one).
TEST_F(RemoteCallsTest, FuelRunsOutAtTheSamePointAsOneByOne) {
  auto program = Compile(R"(
@remote
function inc(x) { if x % 400 == 0 { print("inc", x) }; x + 1 }
@remote
function deep(n) { deep(n + 1) + 1 }
function main(args) {
  print(pmap(0..3000, inc).len())
  print(deep(0))
}
)");
  ASSERT_NE(program, nullptr);
  for (uint64_t fuel : {3000u, 9000u, 21000u, 40000u, 400000u}) {
    SCOPED_TRACE(fuel);
    auto run = [&](RemoteCalls* remote) {
      engine::Limits limits;
      limits.fuel = fuel;
      engine::Vm vm(*program, limits);
      Outcome o;
      vm.SetOutput([&](std::string_view text) { o.out.append(text); });
      if (remote != nullptr) remote->Install(vm);
      o.status = vm.RunMain({});
      o.trace = vm.trace();
      return o;
    };
    // --local: the same copies, one call after another, in this process.
    RemoteCallsOptions in_process = RemoteOptions();
    in_process.in_process = true;
    RemoteCalls local_calls(*program, in_process);
    Outcome local = run(&local_calls);
    RemoteCalls remote(*program, RemoteOptions());
    Outcome got = run(&remote);
    EXPECT_THAT(local.status, IsError(ErrorKind::kResourceExhausted));
    EXPECT_EQ(got.status.kind(), local.status.kind());
    EXPECT_EQ(got.status.message(), local.status.message());
    EXPECT_EQ(got.out, local.out);
    EXPECT_EQ(got.trace.size(), local.trace.size());
  }
}

// An executor killed in the middle of a batch: ExecutorCrashed, with every item answered
// before the lost batch printed in order, and no executor left behind.
TEST_F(RemoteCallsTest, AnExecutorKilledMidBatchIsExecutorCrashed) {
  auto program = Compile(R"(
@remote
function f(x) {
  if x % 1000 == 0 { print("at", x) }
  if x == 3000 { var i = 0; while true { i = i + 1 } }
  x
}
function main(args) { print(pmap(0..6000, f).len()) }
)");
  ASSERT_NE(program, nullptr);
  RemoteCalls remote(*program, RemoteOptions());
  Outcome outcome;
  std::thread run([&] { outcome = Run(*program, &remote); });
  ASSERT_OK_AND_ASSIGN(Client watcher, Client::Connect(Options()));
  std::string json = StatusWhen(watcher, [](const std::string& j) { return LeasedCount(j) == 2; });
  // Let the items before 3000 finish, then kill both executors.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (size_t at = json.find("\"state\": \"leased\""); at != std::string::npos;
       at = json.find("\"state\": \"leased\"", at + 1)) {
    size_t pid_at = json.rfind("\"pid\": ", at);
    pid_t victim = static_cast<pid_t>(std::strtol(json.c_str() + pid_at + 7, nullptr, 10));
    ASSERT_GT(victim, 0);
    kill(victim, SIGKILL);
  }
  run.join();
  EXPECT_THAT(outcome.status, IsError(ErrorKind::kExecutorCrashed));
  std::string all = "at 0\nat 1000\nat 2000\nat 3000\n";
  EXPECT_EQ(all.compare(0, outcome.out.size(), outcome.out), 0)
      << "a prefix of the items' output, in order: " << outcome.out;
  EXPECT_LE(remote.stats().calls, 3000u);
  EXPECT_TRUE(shapex_testing::PoolSettled(StatusWhen(watcher, shapex_testing::PoolSettled)));
}

}  // namespace
}  // namespace shapex
