// The supervisor's control plane under careless and hostile clients (issue 11), with real
// processes: the `shapex serve` of SupervisorFixture, fresh `shapex call` / `shapex run` processes
// as users start them, and HostileLoad (tools/bench/hostile_clients.h) holding hundreds of bad
// connections open. Correctness only: the only times here are hang deadlines (control_bench
// reports the latencies).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "testing/supervisor_fixture.h"
#include "tools/bench/child_process.h"
#include "tools/bench/hostile_clients.h"
#include "tools/bench/supervisor_probe.h"

#ifndef SHAPEX_SOURCE_DIR
#error "SHAPEX_SOURCE_DIR must name the source tree (for examples/add.shape)"
#endif

namespace shapex::sandbox {
namespace {

using bench::ChildOutcome;
using bench::ChildProcess;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr char kAddShape[] = SHAPEX_SOURCE_DIR "/examples/add.shape";
constexpr milliseconds kHangDeadline{5000};


class ControlPlaneTest : public shapex_testing::SupervisorFixture {
 protected:
  void TearDown() override {
    // A supervisor a failing test left behind (a client that started its own): stop it before
    // the fixture removes the directory it serves.
    for (pid_t pid : bench::FindSupervisors(socket_)) {
      if (pid != supervisor_) bench::TerminateProcess(pid, milliseconds(5000));
    }
    SupervisorFixture::TearDown();
  }

  ChildOutcome CallAdd() {
    return bench::RunChild({SHAPEX_BIN, "call", kAddShape, "add", "10", "32", "--socket", socket_},
                           kHangDeadline);
  }

  // Exactly one supervisor serves the socket, it is ours, and the socket path is its own.
  void ExpectOneSupervisorOwningTheSocket(const char* when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(bench::FindSupervisors(socket_), std::vector<pid_t>{supervisor_});
    struct stat st {};
    ASSERT_EQ(::stat(socket_.c_str(), &st), 0) << "the socket path is gone";
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    auto client = Client::Connect(Options());
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    auto json = client->StatusJson();
    ASSERT_TRUE(json.has_value()) << json.error().ToString();
    EXPECT_EQ(bench::JsonInteger(*json, "supervisor_pid"), supervisor_)
        << "the socket path answers for another process";
  }

  // Starts `shapex run` on the endless program, waits until its executor is leased, sends the
  // client `sig`, and expects that executor gone and the pool idle again within 1 s.
  void ExpectSignalledClientFreesItsExecutor(int sig) {
    WaitForSettledPool();
    std::string program = dir_ + "/spin.shape";
    std::ofstream(program) << bench::kEndlessRemoteProgram;
    ChildProcess run;
    std::string error;
    ASSERT_TRUE(run.Start({SHAPEX_BIN, "run", program, "--socket", socket_}, &error)) << error;

    auto client = Client::Connect(Options());
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    std::string json = StatusWhen(*client, [](const std::string& j) {
      return !bench::ExecutorPidsIn(j, "leased").empty();
    });
    std::vector<int64_t> leased = bench::ExecutorPidsIn(json, "leased");
    ASSERT_EQ(leased.size(), 1u) << "no executor was leased to `shapex run`: " << json;
    int64_t executor = leased[0];
    ASSERT_FALSE(bench::ProcessGone(static_cast<pid_t>(executor)));

    ASSERT_TRUE(run.Signal(sig));
    Clock::time_point deadline = Clock::now() + milliseconds(1000);
    bool replaced = false;
    while (!replaced && Clock::now() < deadline) {
      auto status = client->StatusJson();
      ASSERT_TRUE(status.has_value()) << status.error().ToString();
      json = *status;
      replaced = bench::ReplacedAndIdle(json, executor, 2) &&
                 bench::ProcessGone(static_cast<pid_t>(executor));
      if (!replaced) std::this_thread::sleep_for(milliseconds(5));
    }
    EXPECT_TRUE(replaced) << "1 s after signal " << sig << " to the client, executor " << executor
                          << (bench::ProcessGone(static_cast<pid_t>(executor)) ? " is gone"
                                                                               : " still runs")
                          << "; status: " << json;
    ChildOutcome end = run.Wait(kHangDeadline);
    EXPECT_FALSE(end.timed_out) << "`shapex run` did not end after signal " << sig;
  }
};

TEST_F(ControlPlaneTest, UnderHostileLoadEveryCallAnswers) {
  ExpectOneSupervisorOwningTheSocket("before the load");
  {
    bench::HostileLoad load(bench::HostileLoadOptions{.socket_path = socket_});
    EXPECT_TRUE(load.WaitUntilConnected(milliseconds(10000)))
        << "the hostile connections could not all connect:\n"
        << load.Describe();
    int failures = 0;
    for (int i = 0; i < 100; ++i) {
      ChildOutcome r = CallAdd();
      bool ok = r.Succeeded() && r.out == "42\n";
      EXPECT_TRUE(ok) << "call " << i << ": " << r.Describe() << ", stdout '" << r.out
                      << "', stderr '" << r.err << "'";
      // A stalled supervisor would take 5 s per call: stop after a few.
      if (!ok && ++failures == 5) {
        ADD_FAILURE() << "giving up after 5 failed calls";
        break;
      }
    }
    std::vector<pid_t> during = bench::FindSupervisors(socket_);
    EXPECT_EQ(during, std::vector<pid_t>{supervisor_}) << "supervisors while the load is open";
    load.Stop();
    RecordProperty("hostile_load", load.Describe());
    std::printf("%s", load.Describe().c_str());
  }
  ExpectOneSupervisorOwningTheSocket("after the load");
}

TEST_F(ControlPlaneTest, KilledClientFreesItsExecutor) {
  ExpectSignalledClientFreesItsExecutor(SIGKILL);
}

TEST_F(ControlPlaneTest, InterruptedClientFreesItsExecutor) {
  ExpectSignalledClientFreesItsExecutor(SIGINT);
}

}  // namespace
}  // namespace shapex::sandbox
