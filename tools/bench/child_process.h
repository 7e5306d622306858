// ChildProcess: one program run as a child with a hang deadline, for tests and benchmarks that
// drive the `shapex` CLI as users do (control_bench, sandbox_control_plane_test).
//
//   ChildOutcome r = RunChild({shapex, "call", file, "add", "10", "32"}, std::chrono::seconds(5));
//   if (r.timed_out || r.exit_code != 0 || r.out != "42\n") ...  r.wall_ms ...
//
//   ChildProcess run;                                    // a long-running one
//   if (!run.Start({shapex, "run", file}, &error)) ...
//   run.Signal(SIGKILL);
//   ChildOutcome end = run.Wait(std::chrono::seconds(5));
//
// Guarantees:
// - stdin is /dev/null; stdout and stderr are captured through pipes (or go to `log_path`).
//   SIGPIPE is reset to its default in the child.
// - Wait() returns when the child exits (seen through a pidfd), not when the pipes reach EOF: a
//   descendant that keeps them open (a daemon the child started) cannot delay it. What the child
//   wrote before exiting is collected. At the deadline the child is SIGKILLed and reaped, and the
//   outcome says timed_out.
// - The destructor SIGKILLs and reaps a child still running. Every descriptor is CLOEXEC, so
//   other children never inherit these pipes. Safe to use while other threads run (the child
//   only calls async-signal-safe functions before exec). Not thread-safe itself.
#ifndef SHAPEX_TOOLS_BENCH_CHILD_PROCESS_H_
#define SHAPEX_TOOLS_BENCH_CHILD_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace shapex::bench {

struct ChildOutcome {
  bool started = false;
  bool timed_out = false;  // killed at the deadline
  int exit_code = -1;      // -1 unless it exited normally
  int term_signal = 0;     // the signal that ended it, if any
  std::string out, err;    // captured stdout / stderr (empty with a log file)
  double wall_ms = 0;      // Start() to exit

  bool Succeeded() const { return started && !timed_out && exit_code == 0; }
  // "exit 1", "signal 9", "timed out", for failure messages.
  std::string Describe() const {
    if (!started) return "not started: " + err;
    if (timed_out) return "timed out after " + std::to_string(wall_ms) + " ms";
    if (term_signal != 0) return "killed by signal " + std::to_string(term_signal);
    return "exit " + std::to_string(exit_code);
  }
};

class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;

  ChildProcess() = default;
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    CloseAll();
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (a path) with `argv`. With `log_path`, stdout and stderr are appended to that
  // file instead of captured. False (and `*error`) if it could not be started.
  bool Start(const std::vector<std::string>& argv, std::string* error,
             const std::string& log_path = {}) {
    if (argv.empty() || pid_ > 0) {
      *error = "no program, or already started";
      return false;
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    int log = -1;
    if (log_path.empty()) {
      if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
        *error = std::string("pipe2: ") + std::strerror(errno);
        for (int fd : {out[0], out[1], err[0], err[1]}) {
          if (fd >= 0) ::close(fd);
        }
        return false;
      }
    } else {
      log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (log < 0) {
        *error = "open " + log_path + ": " + std::strerror(errno);
        return false;
      }
    }
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    started_ = Clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::signal(SIGPIPE, SIG_DFL);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(log >= 0 ? log : out[1], 1);
      ::dup2(log >= 0 ? log : err[1], 2);
      ::execv(args[0], args.data());
      _exit(127);
    }
    int fork_errno = errno;
    for (int fd : {devnull, log, out[1], err[1]}) {
      if (fd >= 0) ::close(fd);
    }
    if (pid < 0) {
      for (int fd : {out[0], err[0]}) {
        if (fd >= 0) ::close(fd);
      }
      *error = std::string("fork: ") + std::strerror(fork_errno);
      return false;
    }
    pid_ = pid;
    out_ = out[0];
    err_ = err[0];
    for (int fd : {out_, err_}) {
      if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));  // -1: Wait polls waitpid
    return true;
  }

  pid_t pid() const { return pid_; }

  // Sends `sig` to the child (if it has not been reaped yet).
  bool Signal(int sig) const { return pid_ > 0 && ::kill(pid_, sig) == 0; }

  // Waits up to `deadline` for the child to exit (then SIGKILLs it), collecting its output.
  ChildOutcome Wait(std::chrono::milliseconds deadline) {
    ChildOutcome outcome;
    if (pid_ <= 0) return outcome;
    outcome.started = true;
    Clock::time_point end = Clock::now() + deadline;
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (r < 0 && errno != EINTR) break;  // ECHILD: somebody else reaped it
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0) {
        outcome.timed_out = true;
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      pollfd fds[3] = {{pidfd_, POLLIN, 0}, {out_, POLLIN, 0}, {err_, POLLIN, 0}};
      // Without a pidfd, wake every millisecond to ask waitpid.
      int timeout = pidfd_ >= 0 ? static_cast<int>(left.count()) + 1 : 1;
      if (::poll(fds, 3, timeout) < 0 && errno != EINTR) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (fds[1].revents) Drain(&out_, &out_text_);
      if (fds[2].revents) Drain(&err_, &err_text_);
    }
    outcome.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
    if (outcome.timed_out) {
      outcome.wall_ms = std::max<double>(outcome.wall_ms, static_cast<double>(deadline.count()));
    }
    Drain(&out_, &out_text_);
    Drain(&err_, &err_text_);
    if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) outcome.term_signal = WTERMSIG(status);
    outcome.out = std::move(out_text_);
    outcome.err = std::move(err_text_);
    pid_ = -1;
    CloseAll();
    return outcome;
  }

 private:
  // Reads what is available now; closes the pipe at EOF.
  static void Drain(int* fd, std::string* text) {
    char buf[4096];
    while (*fd >= 0) {
      ssize_t n = ::read(*fd, buf, sizeof(buf));
      if (n > 0) {
        text->append(buf, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (n == 0) {
          ::close(*fd);
          *fd = -1;
        }
        return;  // EAGAIN: nothing more for now
      }
    }
  }

  void CloseAll() {
    for (int* fd : {&pidfd_, &out_, &err_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  pid_t pid_ = -1;
  int pidfd_ = -1, out_ = -1, err_ = -1;
  std::string out_text_, err_text_;
  Clock::time_point started_;
};

// Runs `argv` to completion or the deadline.
inline ChildOutcome RunChild(const std::vector<std::string>& argv,
                             std::chrono::milliseconds deadline) {
  ChildProcess child;
  std::string error;
  if (!child.Start(argv, &error)) {
    ChildOutcome outcome;
    outcome.err = error;
    return outcome;
  }
  return child.Wait(deadline);
}

}  // namespace shapex::bench

#endif  // SHAPEX_TOOLS_BENCH_CHILD_PROCESS_H_
