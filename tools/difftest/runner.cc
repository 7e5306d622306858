#include "runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "run_command.h"

namespace shapex::difftest {

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kLocal: return "local";
    case Mode::kRing: return "ring";
    case Mode::kSocket: return "socket";
  }
  return "?";
}

RunOutcome ProcessRunner::Run(const RunRequest& request) {
  std::vector<std::string> argv = {bin_, "run", request.file};
  if (request.mode == Mode::kLocal) argv.push_back("--local");
  if (request.mode == Mode::kSocket) argv.push_back("--transport=socket");
  argv.insert(argv.end(), request.flags.begin(), request.flags.end());
  return RunProcess(argv, request.dir, timeout_);
}

RunOutcome InProcessRunner::Run(const RunRequest& request) {
  RunOutcome result;
  cli::RunOptions o;
  if (Status parsed = cli::ParseLimitFlags(request.flags, &o); !parsed.ok()) {
    result.spawn_error = "flags: " + parsed.message();
    return result;
  }
  const bool own_timeout =
      std::find(request.flags.begin(), request.flags.end(), "--timeout") == request.flags.end();
  if (own_timeout) o.timeout = static_cast<double>(timeout_.count()) / 1000;
  o.file = request.file;
  o.local = request.mode == Mode::kLocal;
  o.transport = request.mode == Mode::kSocket ? "socket" : "ring";
  o.shapex_binary = bin_;
  o.progress = false;  // the driver's terminal is not the program's
  result.exit_code = cli::RunSource(o, request.source, cli::StringStreams(&result.out, &result.err));
  result.timed_out = own_timeout && result.err.rfind("error[Timeout]", 0) == 0;
  return result;
}

RunOutcome RunProcess(const std::vector<std::string>& argv, const std::string& dir,
                      std::chrono::milliseconds timeout) {
  RunOutcome result;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    result.spawn_error = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.spawn_error = std::string("pipe: ") + std::strerror(errno);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return result;
  }
  // Everything the child needs is prepared before fork() (the driver has threads).
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  int dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const char* cwd = dir.empty() ? nullptr : dir.c_str();

  pid_t pid = fork();
  if (pid == 0) {
    if (cwd != nullptr && chdir(cwd) != 0) _exit(126);
    if (dev_null >= 0) dup2(dev_null, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  if (dev_null >= 0) close(dev_null);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    result.spawn_error = std::string("fork: ") + std::strerror(errno);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return result;
  }

  // Drain both pipes until EOF so a chatty child never blocks on a full pipe.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace shapex::difftest
