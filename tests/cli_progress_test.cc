// The pmap progress line (RemoteCallsOptions::progress_fd; docs/language.md, pmap): `shapex run`
// with stderr on a pseudo-terminal shows `pmap DONE/TOTAL` once a pmap has run for one second,
// takes it away before the program prints and erases it (carriage return, clear line) when the
// pmap ends, with --local and through executors; with stderr on a pipe it writes nothing, and a
// pmap shorter than a second draws nothing.
//
// Each run is the real binary on a pty made with openpty(3); what reaches the terminal is read
// from the master side. A program's items are busy loops sized from a calibration run, and a run
// that ended too soon to show a line is repeated with longer items, so a fast or idle machine
// cannot make the test pass or fail by accident.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "testing/host_probes.h"

#ifndef SHAPEX_BIN
#error "SHAPEX_BIN must be defined"
#endif

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr const char* kErase = "\r\033[K";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// What one run of the binary wrote and how it ended.
struct RunResult {
  int status = -1;     // waitpid status; -1: killed at the hang deadline
  std::string tty;     // what reached the pseudo-terminal
  std::string out;     // stdout, when it was not the terminal
  std::string err;     // stderr, when it was not the terminal
  double seconds = 0;  // wall time of the run
};

enum class Terminal { kNone, kStderr, kStdoutAndStderr };

class ProgressLineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           ("shapex_progress_" + std::to_string(::getpid())));
    std::filesystem::create_directories(*dir_);
    // A private supervisor (started by the remote tests), store and log.
    ::setenv("SHAPEX_SOCKET", (*dir_ + "/run/sock").c_str(), 1);
    ::setenv("XDG_CACHE_HOME", (*dir_ + "/cache").c_str(), 1);
    ::setenv("XDG_STATE_HOME", (*dir_ + "/state").c_str(), 1);
    ::setenv("SHAPEX_IDLE_EXIT", "60", 1);
    ::unsetenv("NO_COLOR");
  }
  static void TearDownTestSuite() {
    (void)!std::system((std::string(SHAPEX_BIN) + " stop >/dev/null 2>&1").c_str());
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  // A program whose main runs pmap(range(0, count), work) over a @remote `work` that loops
  // `iterations` times and prints "item I"; main then prints the result's length.
  static std::string WriteProgram(int count, long iterations) {
    std::string path =
        *dir_ + "/prog_" + std::to_string(count) + "_" + std::to_string(iterations) + ".shape";
    std::ofstream(path) << "@remote\n"
                           "function work(i) {\n"
                           "    var n = 0\n"
                           "    var k = 0\n"
                           "    while k < "
                        << iterations
                        << " {\n"
                           "        n = n + k % 7\n"
                           "        k = k + 1\n"
                           "    }\n"
                           "    print(f\"item {i}\")\n"
                           "    i * 2\n"
                           "}\n"
                           "\n"
                           "function main(args) {\n"
                           "    let r = pmap(range(0, "
                        << count
                        << "), work)\n"
                           "    print(r.len())\n"
                           "}\n";
    return path;
  }
  static std::string ExpectedOutput(int count) {
    std::string out;
    for (int i = 0; i < count; ++i) out += "item " + std::to_string(i) + "\n";
    return out + std::to_string(count) + "\n";
  }

  // Runs `shapex ARGS...` with the chosen streams on a new pseudo-terminal (the others go to
  // files); reads the terminal until the run and everything holding the terminal have ended.
  static RunResult RunShapex(const std::vector<std::string>& args, Terminal terminal) {
    RunResult run;
    int master = -1, slave = -1;
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) {
      ADD_FAILURE() << "openpty failed";
      return run;
    }
    std::string out_path = *dir_ + "/stdout", err_path = *dir_ + "/stderr";
    Clock::time_point start = Clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(master);
      ::setsid();
      int null_fd = ::open("/dev/null", O_RDONLY);
      int out = terminal == Terminal::kStdoutAndStderr
                    ? slave
                    : ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = terminal == Terminal::kNone
                    ? ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600)
                    : slave;
      ::dup2(null_fd, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv{const_cast<char*>(SHAPEX_BIN)};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(SHAPEX_BIN, argv.data());
      ::_exit(127);
    }
    ::close(slave);
    // Read until EIO (no slave descriptor left open) or the hang deadline.
    Clock::time_point deadline = start + std::chrono::seconds(60);
    char buffer[4096];
    for (;;) {
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      pollfd p{master, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, left) == 0) {
        ADD_FAILURE() << "hang: the run did not end within 60 s";
        ::kill(pid, SIGKILL);
        break;
      }
      ssize_t n = ::read(master, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      run.tty.append(buffer, static_cast<size_t>(n));
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    run.status = status;
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ::close(master);
    if (terminal != Terminal::kStdoutAndStderr) run.out = ReadAll(out_path);
    if (terminal == Terminal::kNone) run.err = ReadAll(err_path);
    return run;
  }

  // Loop iterations that take about `seconds` in one item, measured with a --local run.
  static long IterationsFor(double seconds) {
    if (iterations_per_second_ == 0) {
      const long probe = 3'000'000;
      RunResult empty = RunShapex({"run", "--local", WriteProgram(1, 1)}, Terminal::kNone);
      RunResult timed = RunShapex({"run", "--local", WriteProgram(1, probe)}, Terminal::kNone);
      double loop = std::max(0.01, timed.seconds - empty.seconds);
      iterations_per_second_ = static_cast<double>(probe) / loop;
    }
    return std::max(1000L, static_cast<long>(iterations_per_second_ * seconds));
  }

  // Runs a pmap of kItems items meant to take ~2 s in all, again with items twice as long (up
  // to three times) while a run ends within 1.5 s: a line must have had time to appear.
  static RunResult LongRun(const std::vector<std::string>& flags, Terminal terminal) {
    double item_seconds = 2.0 / kItems;
    RunResult run;
    for (int attempt = 0; attempt < 3; ++attempt, item_seconds *= 2) {
      std::vector<std::string> args{"run"};
      args.insert(args.end(), flags.begin(), flags.end());
      args.push_back(WriteProgram(kItems, IterationsFor(item_seconds)));
      run = RunShapex(args, terminal);
      if (run.seconds >= 1.5) break;
    }
    EXPECT_GE(run.seconds, 1.5) << "the pmap never ran long enough to show a line";
    return run;
  }

  // The terminal's bytes split at every erase ("\r\e[K"): each piece is either one drawn line
  // `pmap D/N` or program output.
  static std::vector<std::string> Pieces(const std::string& tty) {
    std::vector<std::string> pieces;
    size_t from = 0;
    for (;;) {
      size_t at = tty.find(kErase, from);
      pieces.push_back(tty.substr(from, at == std::string::npos ? at : at - from));
      if (at == std::string::npos) return pieces;
      from = at + std::strlen(kErase);
    }
  }

  // Checks the terminal's bytes: at least one line `pmap D/kItems` with D rising, each drawn
  // line alone (erased before anything else is written), none left at the end; gives what
  // remains (the program's output, "\r\n" as "\n").
  static std::string CheckLines(const std::string& tty) {
    static const std::regex kLine("pmap ([0-9]+)/([0-9]+)");
    int lines = 0;
    long last_done = -1;
    std::string rest;
    std::vector<std::string> pieces = Pieces(tty);
    for (size_t i = 0; i < pieces.size(); ++i) {
      const std::string& piece = pieces[i];
      std::smatch m;
      if (std::regex_match(piece, m, kLine)) {
        ++lines;
        EXPECT_EQ(std::stoi(m[2]), kItems) << piece;
        EXPECT_GE(std::stol(m[1]), last_done) << "the count went down";
        last_done = std::stol(m[1]);
        EXPECT_LT(i + 1, pieces.size()) << "the last line drawn was never erased";
        continue;
      }
      EXPECT_THAT(piece, Not(HasSubstr("pmap"))) << "a line shares the terminal line with output";
      rest += piece;
    }
    EXPECT_GE(lines, 1) << "no progress line was drawn; terminal: "
                        << ::testing::PrintToString(tty);
    EXPECT_LE(last_done, kItems);
    return std::regex_replace(rest, std::regex("\r\n"), "\n");
  }

  static void SkipWithoutSandbox() {
    if (auto why = shapex_testing::UserNamespacesUnavailable()) GTEST_SKIP() << *why;
  }
  static void StartSupervisor() {
    std::string status = std::string(SHAPEX_BIN) + " status >/dev/null 2>&1";
    if (std::system(status.c_str()) == 0) return;
    // One executor: the items run one after another there too, so the run lasts as --local.
    std::string command = std::string(SHAPEX_BIN) + " serve --daemon --pool 1 >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }

  static constexpr int kItems = 10;
  static std::string* dir_;
  static double iterations_per_second_;
};

std::string* ProgressLineTest::dir_ = nullptr;
double ProgressLineTest::iterations_per_second_ = 0;

TEST_F(ProgressLineTest, LocalLineOnStderrIsDrawnAndErasedAroundOutput) {
  RunResult run = LongRun({"--local"}, Terminal::kStdoutAndStderr);
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.tty;
  EXPECT_EQ(CheckLines(run.tty), ExpectedOutput(kItems));
}

TEST_F(ProgressLineTest, LocalLineWithStdoutRedirectedLeavesStdoutClean) {
  RunResult run = LongRun({"--local"}, Terminal::kStderr);
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.tty;
  EXPECT_EQ(CheckLines(run.tty), "");  // only lines and erases reached stderr
  EXPECT_EQ(run.out, ExpectedOutput(kItems));
}

TEST_F(ProgressLineTest, LocalNothingWhenStderrIsNotATerminal) {
  RunResult run = LongRun({"--local"}, Terminal::kNone);
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.out, ExpectedOutput(kItems));
  EXPECT_EQ(run.tty, "");
}

TEST_F(ProgressLineTest, ShortPmapDrawsNothing) {
  // Five items of ~50 ms: over well before a second. The check means something only if the
  // whole run took less than a second; a loaded machine gets shorter items, then a skip.
  RunResult run;
  for (double item_seconds : {0.05, 0.02, 0.005}) {
    run = RunShapex({"run", "--local", WriteProgram(5, IterationsFor(item_seconds))},
                    Terminal::kStdoutAndStderr);
    if (run.seconds < 0.95) break;
  }
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.tty;
  if (run.seconds >= 0.95) GTEST_SKIP() << "even the shortest run took " << run.seconds << " s";
  EXPECT_THAT(run.tty, Not(HasSubstr("pmap")));
  EXPECT_THAT(run.tty, Not(HasSubstr("\033[K")));
  EXPECT_EQ(std::regex_replace(run.tty, std::regex("\r\n"), "\n"), ExpectedOutput(5));
}

TEST_F(ProgressLineTest, RemoteLineOnStderrIsDrawnAndErasedAroundOutput) {
  SkipWithoutSandbox();
  StartSupervisor();
  RunResult run = LongRun({}, Terminal::kStdoutAndStderr);
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.tty;
  EXPECT_EQ(CheckLines(run.tty), ExpectedOutput(kItems));
}

TEST_F(ProgressLineTest, RemoteNothingWhenStderrIsNotATerminal) {
  SkipWithoutSandbox();
  StartSupervisor();
  RunResult run = LongRun({}, Terminal::kNone);
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.out, ExpectedOutput(kItems));
}

}  // namespace
