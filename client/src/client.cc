#include "shapex/client/client.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <string_view>
#include <thread>
#include <utility>

#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/supervisor_socket.h"

extern char** environ;

namespace shapex {

using ipc::ControlMessage;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::milliseconds kMaxBackoff{50};

bool Executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Whether someone holds the lock that decides who serves `socket_path` (a supervisor starting,
// serving or stopping). The test takes a shared lock for an instant; a supervisor that is
// starting waits that long for its exclusive one.
bool ServeLockHeld(const std::string& socket_path) {
  std::string path = ipc::ServeLockPath(socket_path);
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return false;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;  // released with fd
  return errno == EWOULDBLOCK;
}

// Runs `shapex serve --daemon --socket PATH` (it returns once its supervisor listens, or with
// the reason it could not start). Its stdout goes to /dev/null and its stderr is kept for the
// error message: a client that loses a start-up race to another prints nothing.
Status StartSupervisor(const std::string& binary, const std::string& socket_path,
                       const std::vector<std::string>& extra, Clock::time_point deadline) {
  std::vector<std::string> argv = {"shapex", "serve", "--daemon", "--socket", socket_path};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return SandboxError(fmt::format("pipe: {}", std::strerror(errno)));
  ScopedFd read_end(err[0]), write_end(err[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (rc != 0) {
    return SandboxError(fmt::format("cannot start {}: {}", binary, std::strerror(rc)));
  }
  // The starter exits once the daemon reports; its stderr closes then (the daemon's own goes
  // to its log). Collect what it said, bounded in size and time.
  std::string said;
  char buf[512];
  for (;;) {
    int ms = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    pollfd p{read_end.get(), POLLIN, 0};
    int n = ::poll(&p, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (said.size() < 4096) said.append(buf, static_cast<size_t>(got));
  }
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return SandboxError(fmt::format("`{} serve` did not report within the start timeout", binary));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
  // "error[Kind]: message" from the starter: keep the message.
  if (said.rfind("error[", 0) == 0 && said.find("]: ") != std::string::npos) {
    said = said.substr(said.find("]: ") + 3);
  }
  return SandboxError(fmt::format("could not start the supervisor: {}",
                                  said.empty() ? fmt::format("status {}", status) : said));
}

}  // namespace

Result<std::string> FindShapexBinary(const std::string& explicit_path) {
  std::vector<std::string> searched;
  if (!explicit_path.empty()) {
    if (Executable(explicit_path)) return explicit_path;
    searched.push_back(fmt::format("the explicit option ({})", explicit_path));
  }
  if (const char* env = std::getenv("SHAPEX_BIN"); env != nullptr && env[0] != '\0') {
    if (Executable(env)) return std::string(env);
    searched.push_back(fmt::format("$SHAPEX_BIN ({})", env));
  } else {
    searched.push_back("$SHAPEX_BIN (not set)");
  }
  std::string installed = std::string(SHAPEX_INSTALL_BINDIR) + "/shapex";
  if (Executable(installed)) return installed;
  searched.push_back(fmt::format("the install prefix ({})", installed));
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  size_t begin = 0;
  while (begin <= dirs.size() && !dirs.empty()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(begin, end - begin);
    if (!dir.empty() && Executable(dir + "/shapex")) return dir + "/shapex";
    begin = end + 1;
  }
  searched.push_back(dirs.empty() ? std::string("$PATH (empty)") : fmt::format("$PATH ({})", dirs));
  std::string list;
  for (const std::string& s : searched) list += (list.empty() ? "" : "; ") + s;
  return SandboxError(fmt::format(
      "no supervisor runs and no shapex binary was found to start one (searched: {})", list));
}

Result<Client> Client::Connect(const ClientOptions& options) {
  ASSIGN_OR_RETURN(std::optional<Client> client, ConnectOrStart(options));
  if (client) return std::move(*client);
  std::string path = options.socket_path;
  if (path.empty()) {
    ASSIGN_OR_RETURN(path, ipc::DefaultSupervisorSocketPath());
  }
  return SandboxError(fmt::format("no supervisor serves {}", path));
}

Result<std::optional<Client>> Client::ConnectIfRunning(ClientOptions options) {
  options.start_supervisor = false;
  return ConnectOrStart(options);
}

Result<std::optional<Client>> Client::ConnectOrStart(const ClientOptions& options) {
  Client client;
  client.options_ = options;
  if (options.socket_path.empty()) {
    ASSIGN_OR_RETURN(client.socket_path_, ipc::DefaultSupervisorSocketPath());
  } else {
    client.socket_path_ = options.socket_path;
  }
  const std::string& path = client.socket_path_;
  auto deadline = Clock::now() + options.start_timeout;
  bool started = false;
  Status start_error;
  Status last;
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    int error_number = 0;
    Result<ipc::UnixSocket> socket = ipc::UnixSocket::Connect(path, &error_number);
    if (socket.has_value()) {
      Result<ipc::Connection> control =
          ipc::Connection::Connect(std::move(*socket), ipc::ControlConnectionOptions());
      if (control.has_value()) {
        client.control_ = std::move(*control);
        return std::optional<Client>(std::move(client));
      }
      // It accepted and then refused or went away: not a busy supervisor, an answer.
      return SandboxError(fmt::format("the supervisor at {} refused the connection: {}", path,
                                      control.error().message()));
    } else {
      last = socket.error();
      // Only "nothing there" means no supervisor: any other failure (a full backlog, say)
      // means one is there and busy.
      bool nothing = error_number == ENOENT ||
                     (error_number == ECONNREFUSED && !ServeLockHeld(path));
      if (nothing && !options.start_supervisor) return std::optional<Client>();
      if (nothing && !started) {
        started = true;
        Result<std::string> binary = FindShapexBinary(options.shapex_binary);
        if (!binary.has_value()) return binary.error();
        start_error = StartSupervisor(*binary, path, options.serve_args, deadline);
        // Lost a race to another starter (it holds the lock): connect to that one.
        if (!start_error.ok() && !ServeLockHeld(path)) return start_error;
        continue;
      }
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  if (!start_error.ok()) return start_error;
  return SandboxError(fmt::format("no supervisor answered on {} within {} ms ({})", path,
                                  options.start_timeout.count(), last.message()));
}

Result<ControlMessage> Client::Request(const ControlMessage& request, std::vector<ScopedFd>* fds) {
  // The supervisor answers requests in order, one reply each; a lease we stopped waiting for
  // may still be granted later, before the reply to this request.
  static constexpr std::pair<std::string_view, std::string_view> kReplies[] = {
      {"lease", "granted"},   {"status", "status"}, {"kill", "killed"},
      {"stop", "stopping"},   {"exit_reason", "exit_reason"}};
  std::string_view expected;
  for (const auto& [op, reply] : kReplies) {
    if (op == request.op) expected = reply;
  }
  auto lost = [](const Status& s) {
    return s.kind() == ErrorKind::kIoError ? SandboxError("the supervisor exited") : s;
  };
  if (Status sent = ipc::SendControl(control_, request); !sent.ok()) return lost(sent);
  // A lease waits in the supervisor's queue up to lease_wait (then it answers); other replies
  // come at once.
  auto wait = request.op == "lease" ? options_.lease_wait + std::chrono::seconds(5)
                                    : options_.session.call_timeout;
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::max<std::chrono::steady_clock::duration>(
        deadline - std::chrono::steady_clock::now(), std::chrono::milliseconds(1));
    fds->clear();  // closes the descriptors of a reply we drop
    Result<ControlMessage> received = ipc::ReceiveControl(control_, fds, left);
    if (!received.has_value()) return lost(received.error());
    ControlMessage& reply = *received;
    if (reply.op == "error") return ipc::ControlErrorStatus(reply);
    if (reply.op == expected) return reply;
    // A late "granted": closing its socket ends that lease (the executor is replaced).
    if (reply.op == "granted" && request.op != "lease") continue;
    return ProtocolError(fmt::format("supervisor answered '{}' to '{}'", reply.op, request.op));
  }
}

Result<Lease> Client::LeaseExecutor(std::span<const engine::FunctionHash> code, bool wait) {
  ControlMessage lease("lease");
  lease.hashes.assign(code.begin(), code.end());
  if (!wait) lease.Set("wait", int64_t{0});
  lease.Set("wait_ms", static_cast<int64_t>(options_.lease_wait.count()));
  std::vector<ScopedFd> fds;
  ASSIGN_OR_RETURN(ControlMessage granted, Request(lease, &fds));
  if (granted.op != "granted" || fds.size() != 1) {
    return ProtocolError(fmt::format("supervisor answered '{}' to a lease", granted.op));
  }
  ASSIGN_OR_RETURN(ipc::UnixSocket socket, ipc::UnixSocket::Adopt(std::move(fds[0])));
  int pid = static_cast<int>(granted.Int("executor_pid"));
  Result<ExecutorSession> session = ExecutorSession::Connect(std::move(socket), options_.session);
  if (!session.has_value()) {
    return ExecutorCrashedError(fmt::format("executor {} did not answer: {}", pid,
                                            session.error().message()));
  }
  return Lease{pid, std::move(*session)};
}

Result<Lease> Client::LeaseFor(const engine::Program& program, const engine::ProgramBlobs& blobs,
                               std::string_view function) {
  ASSIGN_OR_RETURN(ipc::RemoteCallRequest probe,
                   ipc::BuildCallRequest(program, blobs, function, {}));
  std::vector<engine::FunctionHash> code = ipc::OfferedHashes(probe);
  return LeaseExecutor(code);
}

Result<ipc::RemoteCallResponse> Client::CallOn(Lease& lease, ipc::RemoteCallRequest request) {
  Result<ipc::RemoteCallResponse> response = lease.session.CallRaw(std::move(request));
  if (response.has_value()) return response;
  return LostCall(lease, response.error());
}

Result<ipc::RemoteCallResponse> Client::WaitOn(Lease& lease, uint64_t call_id) {
  Result<ipc::RemoteCallResponse> response = lease.session.Wait(call_id);
  if (response.has_value()) return response;
  return LostCall(lease, response.error());
}

Result<ipc::RemoteCallBatchResponse> Client::WaitBatchOn(Lease& lease, uint64_t call_id) {
  Result<ipc::RemoteCallBatchResponse> response = lease.session.WaitBatch(call_id);
  if (response.has_value()) return response;
  return LostCall(lease, response.error());
}

Status Client::LostCall(Lease& lease, const Status& error) {
  if (error.kind() == ErrorKind::kTimeout) {
    (void)KillExecutor(lease.executor_pid);
    return TimeoutError(fmt::format("call timed out after {} ms (executor {} killed)",
                                    options_.session.call_timeout.count(), lease.executor_pid));
  }
  if (error.kind() == ErrorKind::kIoError) {
    // The kernel may have killed it for going over its cgroup's memory.max.
    if (Status why = ExitReason(lease.executor_pid); !why.ok()) return why;
    return ExecutorCrashedError(fmt::format("executor {} died during the call: {}",
                                            lease.executor_pid, error.message()));
  }
  return error;
}

Status Client::ExitReason(int executor_pid) {
  ControlMessage ask("exit_reason");
  ask.Set("executor_pid", executor_pid);
  std::vector<ScopedFd> fds;
  Result<ControlMessage> why = Request(ask, &fds);
  // An older supervisor does not know the request: nothing known.
  if (!why.has_value() || why->Text("kind") != ErrorKindName(ErrorKind::kResourceExhausted))
    return Status::Ok();
  return ResourceExhausted(why->Text("message"));
}

Result<ipc::WireValue> Client::Call(const engine::Program& program,
                                    const engine::ProgramBlobs& blobs, std::string_view function,
                                    std::vector<ipc::WireValue> arguments) {
  ASSIGN_OR_RETURN(ipc::RemoteCallRequest request,
                   ipc::BuildCallRequest(program, blobs, function, std::move(arguments)));
  std::vector<engine::FunctionHash> code = ipc::OfferedHashes(request);
  ASSIGN_OR_RETURN(Lease lease, LeaseExecutor(code));
  Result<ipc::RemoteCallResponse> response = CallOn(lease, std::move(request));
  Release(lease);
  if (!response.has_value()) return response.error();
  if (!response->ok()) return response->status();
  return std::move(std::get<ipc::WireValue>(response->result));
}

Result<std::string> Client::StatusJson() {
  std::vector<ScopedFd> fds;
  ASSIGN_OR_RETURN(ControlMessage reply, Request(ControlMessage("status"), &fds));
  return reply.Text("json");
}

Result<std::string> Client::StatusText() {
  std::vector<ScopedFd> fds;
  ASSIGN_OR_RETURN(ControlMessage reply, Request(ControlMessage("status"), &fds));
  return reply.Text("text");
}

Status Client::StopSupervisor() {
  // Watch the supervisor's exit through a pidfd taken before asking (its pid cannot be reused
  // while we hold it).
  ScopedFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, supervisor_pid(), 0)));
  std::vector<ScopedFd> fds;
  Result<ControlMessage> reply = Request(ControlMessage("stop"), &fds);
  if (!reply.has_value()) return reply.error();
  control_.Close();
  if (!pidfd) return Status::Ok();  // e.g. another pid namespace: nothing to wait on
  // It lets leased executors finish for its grace time (5 s by default), then kills them.
  pollfd p{pidfd.get(), POLLIN, 0};
  for (;;) {
    int n = ::poll(&p, 1, 60000);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return TimeoutError("the supervisor did not exit within 60 s of `stop`");
    return Status::Ok();
  }
}

Status Client::Cancel(Lease& lease, uint64_t call_id) {
  RETURN_IF_ERROR(lease.session.Cancel(call_id));
  return KillExecutor(lease.executor_pid);
}

void Client::Release(Lease& lease) {
  lease.session.Close();
  if (lease.executor_pid <= 0 || !control_.valid()) return;
  ControlMessage release("release");
  release.Set("executor_pid", lease.executor_pid);
  (void)ipc::SendControl(control_, release);  // no reply
  lease.executor_pid = 0;
}

Status Client::KillExecutor(int executor_pid) {
  ControlMessage kill("kill");
  kill.Set("executor_pid", executor_pid);
  std::vector<ScopedFd> fds;
  return Request(kill, &fds).error();
}

}  // namespace shapex
