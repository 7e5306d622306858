// End-to-end tests of the service: the real `shapex serve` binary (supervisor, zygote, jailed
// executors) driven through the public client library, with real sockets and processes.
#include "shapex/sandbox/supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/shared_memory.h"
#include "testing/status_matchers.h"
#include "testing/supervisor_fixture.h"
#include "testing/test_natives.h"
#include "testing/wire_test_util.h"

namespace shapex::sandbox {
namespace {

using ipc::WireValue;
using ipc::testing::WireTestProgram;
using ::shapex_testing::IsError;
using ::shapex_testing::JsonInt;
using ::shapex_testing::PoolSettled;
using ::testing::HasSubstr;
using std::chrono::milliseconds;

constexpr char kProgram[] = R"(
function add(a: int, b: int) -> int { a + b }
function spin() { var i = 0; while true { i = i + 1 } }
function big(n) { Vec::f64(n).fill(2.5) }
)";

std::string Readlink(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? "" : target.string();
}

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != decltype(it)();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

// The test process compiles programs that call the test natives too.
const bool kTestNativesRegistered = [] {
  shapex_testing::RegisterTestNatives();
  return true;
}();

class SupervisorTest : public shapex_testing::SupervisorFixture {
 protected:
  SupervisorTest() : program_(kProgram) {}

  Result<ipc::RemoteCallRequest> Request(const std::string& name, std::vector<WireValue> args) {
    return ipc::BuildCallRequest(program_.program(), program_.blobs(), name, std::move(args));
  }

  WireTestProgram program_;
};

TEST_F(SupervisorTest, CallRunsInAJailedExecutorInAnotherPidAndUserNamespace) {
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  ASSERT_OK_AND_ASSIGN(Lease lease, client.LeaseFor(program_.program(), program_.blobs(), "add"));
  ASSERT_GT(lease.executor_pid, 0);
  std::string proc = "/proc/" + std::to_string(lease.executor_pid);
  EXPECT_NE(Readlink(proc + "/ns/pid"), Readlink("/proc/self/ns/pid"));
  EXPECT_NE(Readlink(proc + "/ns/user"), Readlink("/proc/self/ns/user"));
  EXPECT_NE(Readlink(proc + "/ns/net"), Readlink("/proc/self/ns/net"));
  EXPECT_NE(Readlink(proc + "/ns/mnt"), Readlink("/proc/self/ns/mnt"));
  ASSERT_OK_AND_ASSIGN(auto request, Request("add", {WireValue::Int(10), WireValue::Int(32)}));
  ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, client.CallOn(lease, std::move(request)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r.value(), WireValue::Int(42));
  lease.session.Close();
}

TEST_F(SupervisorTest, LargeResultsComeBackAsSealedSegmentsFromTheJail) {
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  // 2 MiB of f64: above the sidecar threshold, so the jailed executor writes a sealed memfd.
  ASSERT_OK_AND_ASSIGN(WireValue v, client.Call(program_.program(), program_.blobs(), "big",
                                                {WireValue::Int(1 << 18)}));
  ASSERT_EQ(v.kind, ipc::WireKind::kTypedArray);
  ASSERT_NE(v.buffer().segment, nullptr) << "came back by descriptor";
  ASSERT_EQ(v.buffer().data().size(), size_t{8} << 18);
  double last;
  std::memcpy(&last, v.buffer().data().data() + v.buffer().data().size() - 8, 8);
  EXPECT_EQ(last, 2.5);

  // More on one lease: from the second on, the executor writes into spare pages it prepared
  // (pwrite, MAP_POPULATE) inside the jail after answering the previous call.
  ASSERT_OK_AND_ASSIGN(Lease lease, client.LeaseFor(program_.program(), program_.blobs(), "big"));
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(auto request, Request("big", {WireValue::Int(1 << 18)}));
    ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, client.CallOn(lease, std::move(request)));
    ASSERT_TRUE(r.ok()) << "round " << round << ": " << r.status();
    std::span<const uint8_t> bytes = r.value().buffer().data();
    ASSERT_EQ(bytes.size(), size_t{8} << 18);
    ASSERT_NE(r.value().buffer().segment, nullptr);
    EXPECT_EQ(fcntl(r.value().buffer().segment->fd, F_GET_SEALS), ipc::ImmutableSeals());
    double first;
    std::memcpy(&first, bytes.data(), 8);
    std::memcpy(&last, bytes.data() + bytes.size() - 8, 8);
    EXPECT_EQ(first, 2.5);
    EXPECT_EQ(last, 2.5);
  }
  lease.session.Close();
  std::string json = StatusWhen(client, [](const std::string& j) {
    return j.find("\"state\": \"idle\"") != std::string::npos;
  });
  EXPECT_EQ(JsonInt(json, "seccomp_kills"), 0);
}

// A lease waits a bounded time: then ResourceExhausted names the cause, and the queue forgets
// it (the executor freed later goes to nobody in particular; the pool settles).
TEST_F(SupervisorTest, ALeaseWaitsABoundedTimeAndLearnsWhy) {
  WaitForSettledPool();
  ASSERT_OK_AND_ASSIGN(Client a, Client::Connect(Options()));
  ASSERT_OK_AND_ASSIGN(Client b, Client::Connect(Options()));
  ASSERT_OK_AND_ASSIGN(Lease first, a.LeaseExecutor({}));
  ASSERT_OK_AND_ASSIGN(Lease second, b.LeaseExecutor({}));
  ClientOptions impatient = Options();
  impatient.lease_wait = milliseconds(300);
  ASSERT_OK_AND_ASSIGN(Client waiter, Client::Connect(impatient));
  Result<Lease> none = waiter.LeaseExecutor({});
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().kind(), ErrorKind::kResourceExhausted) << none.error();
  EXPECT_THAT(none.error().message(), HasSubstr("all 2 executors leased")) << none.error();
  EXPECT_THAT(none.error().message(), HasSubstr("waited")) << none.error();
  a.Release(first);
  b.Release(second);
  std::string json = StatusWhen(waiter, PoolSettled);
  EXPECT_TRUE(PoolSettled(json)) << json;
  EXPECT_EQ(JsonInt(json, "leases_granted"), 2) << json;
  EXPECT_EQ(JsonInt(json, "lease_wait_timeouts"), 1) << json;
  EXPECT_EQ(JsonInt(json, "queued_leases"), 0) << json;
}

// One client holds at most pool size - 1 executors (here 1): another request of its own waits
// for one of its leases to end, not for other clients.
TEST_F(SupervisorTest, AClientHoldsAtMostItsShareOfThePool) {
  WaitForSettledPool();
  ClientOptions options = Options();
  options.lease_wait = milliseconds(300);
  ASSERT_OK_AND_ASSIGN(Client greedy, Client::Connect(options));
  ASSERT_OK_AND_ASSIGN(Lease first, greedy.LeaseExecutor({}));
  Result<Lease> now = greedy.LeaseExecutor({}, /*wait=*/false);
  ASSERT_FALSE(now.has_value());
  EXPECT_EQ(now.error().kind(), ErrorKind::kResourceExhausted);
  Result<Lease> later = greedy.LeaseExecutor({});
  ASSERT_FALSE(later.has_value());
  EXPECT_THAT(later.error().message(), HasSubstr("already holds 1 of 2")) << later.error();
  // Another client gets the executor the greedy one could not.
  ASSERT_OK_AND_ASSIGN(Client other, Client::Connect(Options()));
  ASSERT_OK_AND_ASSIGN(Lease second, other.LeaseExecutor({}));
  EXPECT_NE(second.executor_pid, first.executor_pid);
  other.Release(second);
  greedy.Release(first);
  EXPECT_TRUE(PoolSettled(StatusWhen(other, PoolSettled)));
}

// A client waiting for a lease when the supervisor dies learns it as SandboxError, not as a
// bare connection error.
TEST_F(SupervisorTest, ASupervisorThatExitsWhileAClientWaitsIsASandboxError) {
  WaitForSettledPool();
  ASSERT_OK_AND_ASSIGN(Client a, Client::Connect(Options()));
  ASSERT_OK_AND_ASSIGN(Client b, Client::Connect(Options()));
  ASSERT_OK_AND_ASSIGN(Lease first, a.LeaseExecutor({}));
  ASSERT_OK_AND_ASSIGN(Lease second, b.LeaseExecutor({}));
  ASSERT_OK_AND_ASSIGN(Client waiter, Client::Connect(Options()));
  Result<Lease> got = InternalError("not run");
  std::thread wait([&] { got = waiter.LeaseExecutor({}); });
  std::string json = StatusWhen(a, [](const std::string& j) {
    return JsonInt(j, "queued_leases") == 1;
  });
  ASSERT_EQ(JsonInt(json, "queued_leases"), 1) << json;
  ASSERT_EQ(kill(supervisor_, SIGKILL), 0);
  wait.join();
  int status = 0;
  ASSERT_EQ(waitpid(supervisor_, &status, 0), supervisor_);
  supervisor_ = -1;  // TearDown has nothing left to stop
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().kind(), ErrorKind::kSandboxError) << got.error();
  EXPECT_THAT(got.error().message(), HasSubstr("the supervisor exited"));
}

TEST_F(SupervisorTest, StatusNamesTheSupervisorAndItsExecutors) {
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  std::string json = StatusWhen(client, [](const std::string& j) {
    return j.find("\"state\": \"idle\"") != std::string::npos;
  });
  EXPECT_EQ(JsonInt(json, "supervisor_pid"), supervisor_);
  EXPECT_EQ(JsonInt(json, "pool_size"), 2);
  EXPECT_THAT(json, HasSubstr("\"executors\": [{\"pid\": "));
  EXPECT_THAT(json, HasSubstr("\"state\": \"idle\""));
}

TEST_F(SupervisorTest, KnownCodeIsNotSentAgainAfterARestart) {
  {
    ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
    ASSERT_OK_AND_ASSIGN(WireValue v, client.Call(program_.program(), program_.blobs(), "add",
                                                  {WireValue::Int(1), WireValue::Int(2)}));
    EXPECT_EQ(v, WireValue::Int(3));
    std::string json = StatusWhen(client, [](const std::string& j) {
      return JsonInt(j, "code_bytes_received") > 0;
    });
    EXPECT_GT(JsonInt(json, "code_bytes_received"), 0) << json;
  }
  StopSupervisor();
  StartSupervisor();
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  ASSERT_OK_AND_ASSIGN(Lease lease, client.LeaseFor(program_.program(), program_.blobs(), "add"));
  ASSERT_OK_AND_ASSIGN(auto request, Request("add", {WireValue::Int(2), WireValue::Int(5)}));
  ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, client.CallOn(lease, std::move(request)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r.value(), WireValue::Int(7));
  EXPECT_EQ(lease.session.stats().code_bytes_sent, 0u) << "the restarted supervisor knew it";
  lease.session.Close();
  std::string json = StatusWhen(client, [](const std::string& j) {
    return JsonInt(j, "calls") >= 1;
  });
  EXPECT_EQ(JsonInt(json, "code_bytes_received"), 0) << json;
  EXPECT_GE(JsonInt(json, "blobs_preloaded"), 1) << json;
}

TEST_F(SupervisorTest, HundredCrashesInARowAreAllAnsweredAndNothingLeaks) {
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  std::string before = StatusWhen(client, PoolSettled);
  ASSERT_TRUE(PoolSettled(before)) << before;
  size_t fds_before = CountEntries("/proc/" + std::to_string(supervisor_) + "/fd");
  int crashed = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(Lease lease,
                         client.LeaseFor(program_.program(), program_.blobs(), "spin"));
    ASSERT_OK_AND_ASSIGN(auto request, Request("spin", {}));
    ASSERT_OK_AND_ASSIGN(uint64_t id, lease.session.Start(std::move(request)));
    (void)id;
    // The executor dies in the middle of the call, as a crash would end it.
    ASSERT_EQ(kill(lease.executor_pid, SIGKILL), 0);
    ASSERT_OK_AND_ASSIGN(auto spin_again, Request("spin", {}));
    Result<ipc::RemoteCallResponse> r = client.CallOn(lease, std::move(spin_again));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::kExecutorCrashed) << r.error();
    ++crashed;
  }
  EXPECT_EQ(crashed, 100);
  // Afterwards: a full pool again, a working call, and no descriptor or process left over.
  ASSERT_OK_AND_ASSIGN(WireValue v, client.Call(program_.program(), program_.blobs(), "add",
                                                {WireValue::Int(4), WireValue::Int(4)}));
  EXPECT_EQ(v, WireValue::Int(8));
  std::string after = StatusWhen(client, PoolSettled);
  ASSERT_TRUE(PoolSettled(after)) << after;
  EXPECT_EQ(JsonInt(after, "leases_lost"), 100) << after;
  size_t executors = 0;
  for (size_t pos = 0; (pos = after.find("\"pid\": ", pos)) != std::string::npos; ++pos) {
    ++executors;
  }
  EXPECT_EQ(executors, 2u) << after;
  // The blob-store thread opens files for a moment (writing what the last lease learned,
  // scanning for statistics): wait until it is quiet again, then nothing may be left over.
  std::string fd_dir = "/proc/" + std::to_string(supervisor_) + "/fd";
  // (fds_before may itself have caught one of those.)
  for (int i = 0; i < 500 && CountEntries(fd_dir) > fds_before; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_LE(CountEntries(fd_dir), fds_before);
}

TEST_F(SupervisorTest, CallOverItsTimeoutKillsTheExecutorAndTheNextCallWorks) {
  ClientOptions options = Options();
  options.session.call_timeout = milliseconds(300);
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(options));
  ASSERT_OK_AND_ASSIGN(Lease lease, client.LeaseFor(program_.program(), program_.blobs(), "spin"));
  ASSERT_OK_AND_ASSIGN(auto request, Request("spin", {}));
  Result<ipc::RemoteCallResponse> r = client.CallOn(lease, std::move(request));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::kTimeout) << r.error();
  // The executor is gone (killed by the supervisor), and the pool serves the next call.
  for (int i = 0; i < 500 && kill(lease.executor_pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_NE(kill(lease.executor_pid, 0), 0);
  ASSERT_OK_AND_ASSIGN(WireValue v, client.Call(program_.program(), program_.blobs(), "add",
                                                {WireValue::Int(1), WireValue::Int(1)}));
  EXPECT_EQ(v, WireValue::Int(2));
}

TEST_F(SupervisorTest, CancellingARunningCallAnswersCancelled) {
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  ASSERT_OK_AND_ASSIGN(Lease lease, client.LeaseFor(program_.program(), program_.blobs(), "spin"));
  ASSERT_OK_AND_ASSIGN(auto request, Request("spin", {}));
  ASSERT_OK_AND_ASSIGN(uint64_t id, lease.session.Start(std::move(request)));
  ASSERT_OK(client.Cancel(lease, id));
  ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, lease.session.Wait(id));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kCancelled);
  ASSERT_OK_AND_ASSIGN(WireValue v, client.Call(program_.program(), program_.blobs(), "add",
                                                {WireValue::Int(3), WireValue::Int(4)}));
  EXPECT_EQ(v, WireValue::Int(7));
}

TEST_F(SupervisorTest, PeersWithAnotherUidAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another uid";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Effective uid 65534 (what SO_PEERCRED reports), filesystem uid 0 (so the 0700 directory
    // does not stop us first): only the supervisor's uid check can refuse this client.
    if (setresgid(65534, 65534, 0) != 0 || setresuid(0, 65534, 0) != 0) _exit(10);
    setfsuid(0);
    ClientOptions options = Options();
    Result<Client> client = Client::Connect(options);
    if (client.has_value()) {
      Result<std::string> status = client->StatusJson();
      _exit(status.has_value() ? 1 : 0);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a client with another uid was served";
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  std::string json = StatusWhen(client, [](const std::string& j) {
    return JsonInt(j, "refused_peers") >= 1;
  });
  EXPECT_EQ(JsonInt(json, "refused_peers"), 1) << json;
}

// Executors with the test-only natives: each forbidden operation, attempted from Shape code in a
// jailed executor, is denied (an errno) or kills the executor (SIGSYS); nothing else notices.
class JailFromInsideTest : public SupervisorTest {
 protected:
  const char* ServeBinary() const override { return SHAPEX_TEST_NATIVES_BIN; }
};

TEST_F(JailFromInsideTest, ForbiddenOperationsAreDenied) {
  ASSERT_TRUE(kTestNativesRegistered);
  WireTestProgram program(R"(
function attempt(op) { test_attempt(op) }
function attempt_kill(pid) { test_attempt("kill", pid) }
)");
  ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(Options()));
  struct Case {
    const char* op;
    bool killed;  // the seccomp policy kills rather than returning an errno
  };
  const Case cases[] = {{"open", false},       {"create", false}, {"socket_unix", true},
                        {"socket_inet", true}, {"ptrace", true},  {"fork", true},
                        {"execve", true}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    Result<WireValue> r =
        client.Call(program.program(), program.blobs(), "attempt", {WireValue::String(c.op)});
    if (c.killed) {
      ASSERT_FALSE(r.has_value()) << "the call returned " << ipc::DescribeWire(*r);
      EXPECT_EQ(r.error().kind(), ErrorKind::kExecutorCrashed) << r.error();
    } else {
      ASSERT_TRUE(r.has_value()) << r.error();
      ASSERT_EQ(r->kind, ipc::WireKind::kString);
      EXPECT_THAT(r->text(), HasSubstr("denied")) << r->text();
    }
  }
  // Killing the supervisor from inside: the executor dies, the supervisor lives on.
  Result<WireValue> kill_result = client.Call(program.program(), program.blobs(), "attempt_kill",
                                              {WireValue::Int(supervisor_)});
  ASSERT_FALSE(kill_result.has_value());
  EXPECT_EQ(kill_result.error().kind(), ErrorKind::kExecutorCrashed);
  EXPECT_EQ(::kill(supervisor_, 0), 0);
  std::string json = StatusWhen(client, [](const std::string& j) {
    return JsonInt(j, "seccomp_kills") >= 6;
  });
  EXPECT_EQ(JsonInt(json, "seccomp_kills"), 6) << json;
  ASSERT_OK_AND_ASSIGN(WireValue ok, client.Call(program_.program(), program_.blobs(), "add",
                                                 {WireValue::Int(20), WireValue::Int(22)}));
  EXPECT_EQ(ok, WireValue::Int(42));
}

}  // namespace
}  // namespace shapex::sandbox
