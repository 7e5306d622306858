#include "serve_command.h"

#include "exit_codes.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "shapex/client/client.h"
#include "shapex/ipc/supervisor_socket.h"
#include "shapex/sandbox/supervisor.h"

namespace shapex {
namespace {


void PrintError(const Status& status) {
  std::fflush(stdout);
  std::fputs(fmt::format("error[{}]: {}\n", ErrorKindName(status.kind()), status.message()).c_str(),
             stderr);
}

// Detaches: the parent returns its exit code after the child reports (through a pipe) that the
// supervisor listens, or why it failed. The child gets nullopt and the pipe's write end.
std::optional<int> Daemonize(const std::string& log_path, int* ready_fd) {
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
    std::fputs(message.empty() ? "error[Internal]: the supervisor died while starting\n"
                               : message.c_str(),
               stderr);
    return kExitRuntime;
  }
  ::close(ready[0]);
  ::setsid();
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null >= 0) ::dup2(null, STDIN_FILENO);
  if (log >= 0) {
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
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
  serve_->add_flag("--daemon", daemon_, "Detach and return once the supervisor listens");
  status_ = app.add_subcommand("status", "Show the supervisor's pool, calls and blob store");
  status_->add_flag("--json", json_, "One JSON object");
  status_->add_option("--socket", socket_, "Socket path");
}

bool ServeCommand::parsed() const { return serve_->parsed() || status_->parsed(); }

int ServeCommand::Run() {
  if (status_->parsed()) {
    ClientOptions options;
    options.socket_path = socket_;
    options.start_supervisor = false;
    Result<Client> client = Client::Connect(options);
    if (!client.has_value()) {
      PrintError(client.error());
      return kExitRuntime;
    }
    Result<std::string> report = json_ ? client->StatusJson() : client->StatusText();
    if (!report.has_value()) {
      PrintError(report.error());
      return kExitRuntime;
    }
    // --json prints exactly one JSON object (and a newline).
    std::fputs(json_ ? (*report + "\n").c_str() : report->c_str(), stdout);
    return kExitOk;
  }
  sandbox::SupervisorOptions options;
  options.socket_path = socket_;
  if (options.socket_path.empty()) {
    Result<std::string> path = ipc::DefaultSupervisorSocketPath();
    if (!path.has_value()) {
      PrintError(path.error());
      return kExitUsage;
    }
    options.socket_path = *path;
  }
  options.pool_size = pool_;
  options.sandbox = sandbox_ == "none" ? sandbox::SandboxMode::kNone : sandbox::SandboxMode::kFull;
  options.store_dir = store_;
  options.leases_per_executor = std::max<size_t>(1, leases_per_executor_);
  int ready_fd = -1;
  if (daemon_) {
    Status dir = ipc::PrepareSocketDirectory(options.socket_path);
    if (!dir.ok()) {
      PrintError(dir);
      return kExitRuntime;
    }
    std::string log = options.socket_path.substr(0, options.socket_path.rfind('/')) +
                      "/supervisor.log";
    if (std::optional<int> parent_exit = Daemonize(log, &ready_fd)) return *parent_exit;
  }
  Result<std::unique_ptr<sandbox::Supervisor>> supervisor = sandbox::Supervisor::Start(options);
  if (!supervisor.has_value()) {
    if (ready_fd >= 0) {
      std::string text = fmt::format("error[{}]: {}\n", ErrorKindName(supervisor.error().kind()),
                                     supervisor.error().message());
      (void)!::write(ready_fd, text.data(), text.size());
      ::close(ready_fd);
      return kExitRuntime;
    }
    PrintError(supervisor.error());
    return kExitRuntime;
  }
  if (ready_fd >= 0) {
    (void)!::write(ready_fd, "ok", 2);
    ::close(ready_fd);
  } else {
    std::fputs(fmt::format("shapex supervisor listening on {}\n", (*supervisor)->socket_path()).c_str(),
               stderr);
  }
  Status s = (*supervisor)->Run();
  if (!s.ok()) {
    PrintError(s);
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace shapex
