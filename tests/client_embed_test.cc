// Embedding the client library is safe (issue 11, "Embedding is safe"): a program linked against
// shapex::client (testing/embed_main.cc, `shapex_embed_probe`), run with no supervisor and
// default ClientOptions,
//   (a) finds `shapex` on PATH, starts the supervisor with it and gets 42;
//   (b) with an empty PATH and no SHAPEX_BIN fails within 5 s, naming the places it searched,
//       and never runs itself (the old default, /proc/self/exe, fork-bombed an embedding program).
// Each probe runs with a private socket, state and cache directory, working directory and
// environment; SHAPEX_IDLE_EXIT=2 so a supervisor it starts does not outlive the test for long.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "testing/processes.h"

#if !defined(SHAPEX_BIN) || !defined(SHAPEX_EMBED_PROBE_BIN) || !defined(SHAPEX_ADD_SHAPE) || \
    !defined(SHAPEX_INSTALL_BINDIR)
#error \
    "SHAPEX_BIN, SHAPEX_EMBED_PROBE_BIN, SHAPEX_ADD_SHAPE and SHAPEX_INSTALL_BINDIR must be defined"
#endif

extern char** environ;

namespace shapex {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// `path` with symlinks resolved ("" if it does not exist); never throws.
std::string Canonical(const std::string& path) {
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::canonical(path, ec);
  return ec ? "" : resolved.string();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// What one run of the probe did.
struct ProbeRun {
  int status = -1;     // waitpid status; -1 if it had to be killed at the hang deadline
  std::string output;  // stdout and stderr
  milliseconds elapsed{0};
  size_t max_probes = 0;      // most processes of the probe binary with our environment at once
  size_t probes_at_exit = 0;  // such processes still running after it exited
};

class ClientEmbedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shapex-embed-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = Canonical(pattern);
    for (const char* sub : {"state", "cache", "home", "bin", "cwd"}) {
      ASSERT_EQ(mkdir((dir_ + "/" + sub).c_str(), 0700), 0) << sub;
    }
    socket_ = dir_ + "/run/sock";
    probe_log_ = dir_ + "/probe.log";
    probe_ = Canonical(SHAPEX_EMBED_PROBE_BIN);
    ASSERT_FALSE(probe_.empty()) << SHAPEX_EMBED_PROBE_BIN << " is missing";
    // The install prefix comes before PATH: a shapex installed there would be found instead of
    // the one these tests offer (and case b could not fail).
    std::string installed = std::string(SHAPEX_INSTALL_BINDIR) + "/shapex";
    if (access(installed.c_str(), X_OK) == 0) {
      GTEST_SKIP() << installed << " exists: the client would find it before PATH";
    }
  }

  void TearDown() override {
    // Whatever a probe started (a supervisor names our socket on its command line) goes.
    shapex_testing::KillProcessesWhoseCmdlineContains(socket_);
    for (pid_t pid : ProbeProcesses()) kill(pid, SIGKILL);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // The probe's environment: ours without anything that could point it at another supervisor
  // or binary, plus the private directories. `path` is PATH's value.
  std::vector<std::string> ProbeEnvironment(const std::string& path) const {
    static constexpr std::string_view kDropped[] = {
        "PATH=", "SHAPEX_BIN=", "SHAPEX_SOCKET=", "SHAPEX_IDLE_EXIT=",      "HOME=",
        "XDG_",  "LISTEN_",     "NOTIFY_SOCKET=", "SHAPEX_EMBED_PROBE_LOG="};
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view entry(*e);
      bool dropped = std::any_of(std::begin(kDropped), std::end(kDropped),
                                 [&](std::string_view p) { return entry.starts_with(p); });
      if (!dropped) env.emplace_back(entry);
    }
    env.push_back("PATH=" + path);
    env.push_back("SHAPEX_SOCKET=" + socket_);
    env.push_back("SHAPEX_IDLE_EXIT=2");
    env.push_back("HOME=" + dir_ + "/home");
    env.push_back("XDG_STATE_HOME=" + dir_ + "/state");
    env.push_back("XDG_CACHE_HOME=" + dir_ + "/cache");
    env.push_back("SHAPEX_EMBED_PROBE_LOG=" + probe_log_);
    return env;
  }

  // Running processes of the probe binary that carry this test's socket in their environment
  // (other tests may run the probe at the same time with their own). A child the probe forked
  // or spawned that has not reached execve yet still shows the probe's binary: not counted.
  std::vector<pid_t> ProbeProcesses() const {
    std::vector<pid_t> found;
    std::string marker = "SHAPEX_SOCKET=" + socket_;
    for (pid_t pid : shapex_testing::AllPids()) {
      if (shapex_testing::ProcessExe(pid) != probe_) continue;
      if (!shapex_testing::ProcListHas(pid, "environ", marker)) continue;
      if (shapex_testing::ProcessAlive(pid) && shapex_testing::ProcessExeced(pid)) {
        found.push_back(pid);
      }
    }
    return found;
  }

  // The log of a supervisor a probe started, for failure messages.
  std::string SupervisorLog() const {
    return "\nsupervisor log:\n" + ReadAll(dir_ + "/state/shapex/supervisor.log");
  }

  // Runs the probe on examples/add.shape in dir_/cwd with `env`, stdout and stderr to one file,
  // counting probe processes until it exits (killed after 10 s).
  ProbeRun RunProbe(const std::vector<std::string>& env) {
    std::vector<char*> envp;
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    std::string out_path = dir_ + "/probe.out";
    std::string cwd = dir_ + "/cwd";
    const char* argv[] = {probe_.c_str(), SHAPEX_ADD_SHAPE, nullptr};

    ProbeRun run;
    auto start = Clock::now();
    pid_t child = fork();
    if (child < 0) {
      ADD_FAILURE() << "fork failed";
      return run;
    }
    if (child == 0) {
      int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int null = open("/dev/null", O_RDONLY);
      if (out < 0 || null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
          chdir(cwd.c_str()) != 0) {
        _exit(126);
      }
      execve(argv[0], const_cast<char* const*>(argv), envp.data());
      _exit(127);
    }
    for (;;) {
      run.max_probes = std::max(run.max_probes, ProbeProcesses().size());
      int status = 0;
      pid_t done = waitpid(child, &status, WNOHANG);
      if (done == child) {
        run.status = status;
        break;
      }
      if (Clock::now() - start > std::chrono::seconds(10)) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        ADD_FAILURE() << "the probe did not finish within 10 s";
        break;
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
    run.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    run.probes_at_exit = ProbeProcesses().size();
    run.output = ReadAll(out_path);
    return run;
  }

  // Starts of the probe binary it logged (one line each).
  size_t ProbeStarts() const {
    std::string log = ReadAll(probe_log_);
    return static_cast<size_t>(std::count(log.begin(), log.end(), '\n'));
  }

  std::string dir_, socket_, probe_log_, probe_;
};

TEST_F(ClientEmbedTest, DefaultOptionsFindShapexOnPathAndGet42) {
  std::string bin = dir_ + "/bin";
  ASSERT_EQ(symlink(SHAPEX_BIN, (bin + "/shapex").c_str()), 0);
  ProbeRun run = RunProbe(ProbeEnvironment(bin));
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0)
      << "status " << run.status << ", output: " << run.output << SupervisorLog();
  EXPECT_EQ(run.output, "42\n");
  EXPECT_EQ(ProbeStarts(), 1u) << "the probe binary was run again:\n" << ReadAll(probe_log_);
  EXPECT_LE(run.max_probes, 1u);
  EXPECT_EQ(run.probes_at_exit, 0u);

  // The supervisor it started runs the shapex binary, not the embedding program; stop it.
  ClientOptions options;
  options.socket_path = socket_;
  options.start_supervisor = false;
  Result<Client> client = Client::Connect(options);
  ASSERT_TRUE(client.has_value()) << "no supervisor at " << socket_ << ": " << client.error();
  Result<std::string> json = client->StatusJson();
  ASSERT_TRUE(json.has_value()) << json.error();
  long pid = shapex_testing::SupervisorPidFromStatus(*json);
  ASSERT_GT(pid, 0) << *json;
  EXPECT_EQ(shapex_testing::ProcessExe(static_cast<pid_t>(pid)), Canonical(SHAPEX_BIN));
  EXPECT_TRUE(client->StopSupervisor().ok());
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (shapex_testing::ProcessAlive(static_cast<pid_t>(pid)) && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_FALSE(shapex_testing::ProcessAlive(static_cast<pid_t>(pid)))
      << "the supervisor did not stop";
}

TEST_F(ClientEmbedTest, NothingToRunFailsNamingThePlacesSearchedAndNeverRunsItself) {
  // PATH set but empty, no SHAPEX_BIN, an empty working directory.
  ProbeRun run = RunProbe(ProbeEnvironment(""));
  ASSERT_TRUE(WIFEXITED(run.status)) << "status " << run.status << ", output: " << run.output;
  EXPECT_NE(WEXITSTATUS(run.status), 0) << run.output;
  EXPECT_LT(run.elapsed, std::chrono::seconds(5));
  EXPECT_THAT(run.output, HasSubstr("SandboxError"));
  EXPECT_THAT(run.output, HasSubstr("SHAPEX_BIN"));
  EXPECT_THAT(run.output, HasSubstr("PATH"));
  EXPECT_THAT(run.output, HasSubstr(SHAPEX_INSTALL_BINDIR "/shapex"));
  EXPECT_EQ(ProbeStarts(), 1u) << "the probe binary was run again:\n" << ReadAll(probe_log_);
  EXPECT_LE(run.max_probes, 1u) << "a second process of the embedding program appeared";
  EXPECT_EQ(run.probes_at_exit, 0u);
  std::error_code ec;
  EXPECT_FALSE(std::filesystem::exists(socket_, ec)) << "something serves " << socket_;
  EXPECT_TRUE(shapex_testing::ProcessesWhoseCmdlineContains(socket_).empty());
}

}  // namespace
}  // namespace shapex
