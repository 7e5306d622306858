#include "serve_command.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "exit_codes.h"
#include "run_command.h"
#include "shapex/client/client.h"
#include "shapex/ipc/supervisor_socket.h"
#include "shapex/sandbox/supervisor.h"

namespace shapex {
namespace {

constexpr double kDaemonIdleExitSeconds = 600;

void PrintError(const cli::Streams& s, const Status& status) {
  cli::PrintError(s, UserKindName(status.kind()), status.message());
}

// A report line `error[Kind]: message` that came through the daemon's pipe, with its header
// coloured as s wants.
std::string ColorReport(const cli::Streams& s, const std::string& line) {
  size_t end = line.find("]: ");
  if (!s.color || !line.starts_with("error[") || end == std::string::npos) return line;
  return cli::ErrorHeader(s, line.substr(6, end - 6)) + line.substr(end + 1);
}

// $XDG_STATE_HOME/shapex/supervisor.log, default ~/.local/state/shapex/ (directories 0700).
Result<std::string> DaemonLogPath(const std::string& socket_path) {
  std::string base;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && state[0] == '/') {
    base = state;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    base = std::string(home) + "/.local/state";
  } else {
    // No home: beside the socket, in its private directory.
    return socket_path.substr(0, socket_path.rfind('/')) + "/supervisor.log";
  }
  std::string dir = base + "/shapex";
  RETURN_IF_ERROR(ipc::CreatePrivateDirectories(dir));
  return dir + "/supervisor.log";
}

// Detaches: the parent returns its exit code after the child reports (through a pipe) that the
// supervisor listens, or why it failed. The child gets nullopt and the pipe's write end.
std::optional<int> Daemonize(const cli::Streams& s, const std::string& log_path, int* ready_fd) {
  // Nothing the starter left open may stay open here (e.g. the pipe of `x=$(shapex call ...)`,
  // whose reader would wait for us forever).
  ::syscall(SYS_close_range, 3u, ~0u, 0u);
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return kExitRuntime;
  pid_t pid = ::fork();
  if (pid < 0) return kExitRuntime;
  if (pid > 0) {
    ::close(ready[1]);
    std::string message;
    char buf[512];
    ssize_t n;
    // "ok", or an error line; processes the supervisor forks may keep the pipe open, so stop at
    // a complete answer rather than waiting for end of file.
    while (message != "ok" && message.find('\n') == std::string::npos &&
           (n = ::read(ready[0], buf, sizeof buf)) > 0) {
      message.append(buf, static_cast<size_t>(n));
    }
    ::close(ready[0]);
    if (message == "ok") return kExitOk;
    s.err(ColorReport(s, message.empty() ? "error[SandboxError]: the supervisor died while starting\n"
                                         : message));
    return kExitRuntime;
  }
  ::close(ready[0]);
  ::setsid();
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::close(null);
  }
  if (log >= 0) {
    ::dup2(log, STDERR_FILENO);
    ::close(log);
  }
  *ready_fd = ready[1];
  return std::nullopt;
}

}  // namespace

ServeCommand::ServeCommand(CLI::App& app) {
  serve_ = app.add_subcommand("serve", "Run the per-user supervisor (warm pool of executors)");
  serve_->add_option("--socket", socket_, "Socket path (default: see docs/architecture.md)");
  serve_->add_option("--pool", pool_, "Warm executors (default: number of CPUs)");
  serve_->add_option("--sandbox", sandbox_, "full (default) or none (no jail: trusted code only)")
      ->check(CLI::IsMember({"full", "none"}));
  serve_->add_option("--store", store_, "Blob store directory, or none");
  serve_->add_option("--leases-per-executor", leases_per_executor_,
                     "Leases an executor serves before it is replaced (default 1)");
  serve_->add_option("--max-leases-per-client", max_leases_per_client_,
                     "Leases one client may hold at once (default: pool size - 1, at least 1)");
  serve_->add_option("--lease-wait", lease_wait_,
                     "Seconds a lease may wait in the queue (default 30)")
      ->check(CLI::PositiveNumber);
  serve_->add_option("--idle-exit", idle_exit_,
                     "Exit after this many idle seconds, 0 = never (default: $SHAPEX_IDLE_EXIT, "
                     "else 600 with --daemon, 0 in the foreground)")
      ->check(CLI::NonNegativeNumber);
  // cgroup v2 limits per executor, where a delegated cgroup is available (docs/sandbox.md).
  serve_->add_option("--cgroups", cgroups_,
                     "auto (default: per-executor cgroup limits where a delegated cgroup v2 "
                     "exists) or off")
      ->check(CLI::IsMember({"auto", "off"}));
  serve_->add_option("--executor-memory", executor_memory_,
                     "cgroup memory.max of each executor in bytes (suffix K, M or G allowed; "
                     "default 2G, 0 = no limit)")
      ->transform(CLI::AsSizeValue(false));
  serve_->add_option("--executor-pids", executor_pids_,
                     "cgroup pids.max of each executor (default 32, 0 = no limit)");
  serve_->add_option("--executor-cpus", executor_cpus_,
                     "cgroup cpu.max of each executor, in CPUs (e.g. 0.5; default 0 = no limit)")
      ->check(CLI::NonNegativeNumber);
  serve_->add_flag("--daemon", daemon_, "Detach and return once the supervisor listens");
  status_ = app.add_subcommand("status", "Show the supervisor's pool, calls and blob store");
  status_->add_flag("--json", json_, "One JSON object");
  status_->add_option("--socket", socket_, "Socket path");
  stop_ = app.add_subcommand("stop", "Stop the supervisor and wait for it to exit");
  stop_->add_option("--socket", socket_, "Socket path");
}

bool ServeCommand::parsed() const {
  return serve_->parsed() || status_->parsed() || stop_->parsed();
}

int ServeCommand::RunStatus(const cli::Streams& s) {
  ClientOptions options;
  options.socket_path = socket_;
  options.start_supervisor = false;
  Result<Client> client = Client::Connect(options);
  if (!client.has_value()) {
    PrintError(s, client.error());
    return kExitRuntime;
  }
  Result<std::string> report = json_ ? client->StatusJson() : client->StatusText();
  if (!report.has_value()) {
    PrintError(s, report.error());
    return kExitRuntime;
  }
  // --json prints exactly one JSON object (and a newline).
  std::fputs(json_ ? (*report + "\n").c_str() : report->c_str(), stdout);
  return kExitOk;
}

int ServeCommand::RunStop(const cli::Streams& s) {
  ClientOptions options;
  options.socket_path = socket_;
  options.start_timeout = std::chrono::milliseconds(2000);
  Result<std::optional<Client>> client = Client::ConnectIfRunning(options);
  if (!client.has_value()) {
    PrintError(s, client.error());
    return kExitRuntime;
  }
  if (!client->has_value()) return kExitOk;  // nothing serves the socket: nothing to stop
  Status stopped = (*client)->StopSupervisor();
  if (!stopped.ok()) {
    PrintError(s, stopped);
    return kExitRuntime;
  }
  return kExitOk;
}

int ServeCommand::Run(const cli::Streams& streams) {
  if (status_->parsed()) return RunStatus(streams);
  if (stop_->parsed()) return RunStop(streams);
  // After detaching, stderr is the log: never coloured.
  cli::Streams s = streams;
  sandbox::SupervisorOptions options;
  options.socket_path = socket_;
  if (options.socket_path.empty()) {
    Result<std::string> path = ipc::DefaultSupervisorSocketPath();
    if (!path.has_value()) {
      PrintError(s, path.error());
      return kExitUsage;
    }
    options.socket_path = *path;
  }
  options.pool_size = pool_;
  options.sandbox = sandbox_ == "none" ? sandbox::SandboxMode::kNone : sandbox::SandboxMode::kFull;
  options.store_dir = store_;
  options.leases_per_executor = std::max<size_t>(1, leases_per_executor_);
  options.max_leases_per_client = max_leases_per_client_;
  options.lease_wait = std::chrono::milliseconds(static_cast<int64_t>(lease_wait_ * 1000));
  options.cgroups = cgroups_ != "off";
  options.executor_memory_bytes = executor_memory_;
  options.executor_pids = executor_pids_;
  options.executor_cpus = executor_cpus_;
  double idle = daemon_ ? kDaemonIdleExitSeconds : 0;
  if (const char* env = std::getenv("SHAPEX_IDLE_EXIT"); env != nullptr && env[0] != '\0') {
    char* end = nullptr;
    double v = std::strtod(env, &end);
    if (end != env && *end == '\0' && v >= 0) idle = v;
  }
  if (idle_exit_) idle = *idle_exit_;
  options.idle_exit = std::chrono::milliseconds(static_cast<int64_t>(idle * 1000));
  // The process name: `shapex` in /proc/PID/comm whatever the binary is called.
  ::prctl(PR_SET_NAME, "shapex", 0, 0, 0);
  int ready_fd = -1;
  if (daemon_) {
    Status dir = ipc::PrepareSocketDirectory(options.socket_path);
    if (!dir.ok()) {
      PrintError(s, dir);
      return kExitRuntime;
    }
    Result<std::string> log = DaemonLogPath(options.socket_path);
    if (!log.has_value()) {
      PrintError(s, log.error());
      return kExitRuntime;
    }
    options.log_path = *log;
    if (std::optional<int> parent_exit = Daemonize(s, *log, &ready_fd)) return *parent_exit;
    s.color = false;
  }
  Result<std::unique_ptr<sandbox::Supervisor>> supervisor = sandbox::Supervisor::Start(options);
  if (!supervisor.has_value()) {
    std::string text = fmt::format("error[{}]: {}\n", UserKindName(supervisor.error().kind()),
                                   supervisor.error().message());
    if (ready_fd >= 0) {
      (void)!::write(ready_fd, text.data(), text.size());
      ::close(ready_fd);
    }
    PrintError(s, supervisor.error());  // the log, or the terminal in the foreground
    return kExitRuntime;
  }
  std::string listening =
      fmt::format("shapex supervisor {} listening on {}\n", ::getpid(), (*supervisor)->socket_path());
  if (ready_fd >= 0) {
    (void)!::write(ready_fd, "ok", 2);
    ::close(ready_fd);
  }
  std::fputs(listening.c_str(), stderr);
  Status ran = (*supervisor)->Run();
  if (!ran.ok()) {
    PrintError(s, ran);
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace shapex
