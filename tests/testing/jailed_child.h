// Helpers for sandbox tests that run code in child processes and assert in the parent.
//
// Usage:
//   ChildRun run = RunForked([](int out) {            // plain fork(), e.g. to test one step
//     ReportLine(out, "uid=%d", getuid());
//     return 0;                                         // exit code
//   });
//   EXPECT_EQ(run.values["uid"], "0");
//
//   ChildRun run = RunJailed(options, program, [](int out, int hold) {
//     ReportLine(out, "pid=%d", getpid());
//     WaitForRelease(hold);                             // parent inspects /proc/<pid> meanwhile
//     return 0;
//   }, [](const JailedProcess& p) { ... });
//
// Children report "key=value" lines through a pipe with ReportLine (snprintf on the stack plus
// one write(2), so it also works under the seccomp policy); gtest assertions happen only in the
// parent. Children always leave with _exit, so no atexit handler or sanitizer runs in them.
#ifndef SHAPEX_TESTS_TESTING_JAILED_CHILD_H_
#define SHAPEX_TESTS_TESTING_JAILED_CHILD_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "shapex/sandbox/jail.h"

namespace shapex_testing {

// A fixture base that compiles the executor's seccomp policy once per test suite (the
// supervisor does it once at start-up too) and offers it as `program_`.
class WithExecutorPolicy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto built = shapex::sandbox::SeccompProgram::BuildExecutorPolicy();
    ASSERT_TRUE(built.has_value()) << built.error().ToString();
    program_ = new shapex::sandbox::SeccompProgram(std::move(*built));
  }
  static void TearDownTestSuite() {
    delete program_;
    program_ = nullptr;
  }
  static inline shapex::sandbox::SeccompProgram* program_ = nullptr;
};

struct ChildRun {
  shapex::Status spawn;                       // SpawnJailed's error, if any
  std::string output;                         // everything the child wrote
  std::map<std::string, std::string> values;  // output parsed as key=value lines
  bool exited = false;                        // else killed by `signal`
  int exit_code = -1;
  int signal = 0;
  pid_t pid = -1;
  std::vector<int> kept_fds;  // RunJailed: options.keep_fds plus the report and hold pipes
};

// Writes one "key=value" line (printf format) to `fd` with a single write(2).
[[gnu::format(printf, 2, 3)]] inline void ReportLine(int fd, const char* format, ...) {
  char line[1024];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(line, sizeof(line) - 1, format, args);
  va_end(args);
  if (n < 0) return;
  if (n > static_cast<int>(sizeof(line)) - 2) n = static_cast<int>(sizeof(line)) - 2;
  line[n++] = '\n';
  while (write(fd, line, static_cast<size_t>(n)) < 0 && errno == EINTR) {
  }
}

// Blocks until the parent releases the child (closes the other end of `hold`).
inline void WaitForRelease(int hold) {
  char byte;
  for (;;) {
    ssize_t n = read(hold, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

inline std::string ReadAll(int fd) {
  std::string out;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

inline void ParseValues(ChildRun& run) {
  size_t start = 0;
  while (start < run.output.size()) {
    size_t end = run.output.find('\n', start);
    if (end == std::string::npos) end = run.output.size();
    std::string line = run.output.substr(start, end - start);
    size_t eq = line.find('=');
    if (eq != std::string::npos) run.values[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
}

// Runs `body(out_fd)` in a fork()ed child and collects its report and exit status.
inline ChildRun RunForked(const std::function<int(int)>& body) {
  ChildRun run;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    run.spawn = shapex::IoError("pipe2");
    return run;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    _exit(body(out[1]));
  }
  close(out[1]);
  run.pid = pid;
  run.output = ReadAll(out[0]);
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.exited = WIFEXITED(status);
  run.exit_code = run.exited ? WEXITSTATUS(status) : -1;
  run.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  ParseValues(run);
  return run;
}

// Runs `body(out_fd, hold_fd)` in a jailed child. `while_alive` (optional) runs in the parent once
// the child is ready, before the hold pipe is closed; a body that calls WaitForRelease is still
// alive then. With options.stop_after before kCloseFds the child keeps the parent's end of the
// hold pipe, so such bodies must not wait for release.
inline ChildRun RunJailed(
    shapex::sandbox::JailOptions options, const shapex::sandbox::SeccompProgram& program,
    const std::function<int(int, int)>& body,
    const std::function<void(const shapex::sandbox::JailedProcess&)>& while_alive = nullptr) {
  ChildRun run;
  int out[2];
  int hold[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) {
    run.spawn = shapex::IoError("pipe2");
    return run;
  }
  options.keep_fds.push_back(out[1]);
  options.keep_fds.push_back(hold[0]);
  run.kept_fds = options.keep_fds;
  int out_fd = out[1];
  int hold_fd = hold[0];
  auto process = shapex::sandbox::SpawnJailed(
      options, program, [&body, out_fd, hold_fd] { return body(out_fd, hold_fd); });
  close(out[1]);
  close(hold[0]);
  if (!process) {
    close(out[0]);
    close(hold[1]);
    run.spawn = process.error();
    return run;
  }
  run.pid = process->pid();
  if (while_alive) while_alive(*process);
  close(hold[1]);
  run.output = ReadAll(out[0]);
  close(out[0]);
  auto exit = process->Wait();
  if (!exit) {
    run.spawn = exit.error();
    return run;
  }
  run.exited = exit->exited;
  run.exit_code = exit->exited ? exit->exit_code : -1;
  run.signal = exit->signal;
  ParseValues(run);
  return run;
}

// Limits for tests: the defaults, except that sanitizer runtimes reserve terabytes of address
// space, so RLIMIT_AS is left alone under ASan.
inline shapex::sandbox::RlimitOptions TestLimits() {
  shapex::sandbox::RlimitOptions limits;
#if defined(__SANITIZE_ADDRESS__)
  limits.address_space_bytes = std::nullopt;
#endif
  return limits;
}

inline bool UnderAddressSanitizer() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#else
  return false;
#endif
}

}  // namespace shapex_testing

#endif  // SHAPEX_TESTS_TESTING_JAILED_CHILD_H_
