#include "shapex/client/client.h"

#include <fmt/core.h>
#include <spawn.h>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

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

// Runs `argv` (the supervisor daemonizes itself: the process we start exits at once).
Status StartSupervisor(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (rc != 0) return IoError(fmt::format("cannot start {}: {}", argv[0], std::strerror(rc)));
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return IoError(fmt::format("`{} serve` failed to start (status {})", argv[0], status));
  }
  return Status::Ok();
}

}  // namespace

Result<Client> Client::Connect(const ClientOptions& options) {
  Client client;
  client.options_ = options;
  if (options.socket_path.empty()) {
    ASSIGN_OR_RETURN(client.socket_path_, ipc::DefaultSupervisorSocketPath());
  } else {
    client.socket_path_ = options.socket_path;
  }
  Result<ipc::UnixSocket> socket = ipc::UnixSocket::Connect(client.socket_path_);
  if (!socket.has_value() && options.start_supervisor) {
    std::vector<std::string> command = options.serve_command;
    if (command.empty()) {
      command = {"/proc/self/exe", "serve", "--daemon", "--socket", client.socket_path_};
    }
    Status started = StartSupervisor(command);
    // Another client may have started one at the same moment: connecting is what counts.
    auto deadline = Clock::now() + options.start_timeout;
    while (!socket.has_value() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      socket = ipc::UnixSocket::Connect(client.socket_path_);
    }
    if (!socket.has_value() && !started.ok()) return started;
  }
  if (!socket.has_value()) {
    return IoError(fmt::format("no supervisor at {}: {}", client.socket_path_,
                               socket.error().message()));
  }
  ASSIGN_OR_RETURN(client.control_, ipc::Connection::Connect(std::move(*socket), ipc::ControlConnectionOptions()));
  return client;
}

Result<ControlMessage> Client::Request(const ControlMessage& request, std::vector<ScopedFd>* fds) {
  // The supervisor answers requests in order, one reply each; a lease we stopped waiting for
  // may still be granted later, before the reply to this request.
  static constexpr std::pair<std::string_view, std::string_view> kReplies[] = {
      {"lease", "granted"}, {"status", "status"}, {"kill", "killed"}, {"stop", "stopping"}};
  std::string_view expected;
  for (const auto& [op, reply] : kReplies) {
    if (op == request.op) expected = reply;
  }
  RETURN_IF_ERROR(ipc::SendControl(control_, request));
  auto deadline = std::chrono::steady_clock::now() + options_.session.call_timeout;
  for (;;) {
    auto left = std::max<std::chrono::steady_clock::duration>(
        deadline - std::chrono::steady_clock::now(), std::chrono::milliseconds(1));
    fds->clear();  // closes the descriptors of a reply we drop
    ASSIGN_OR_RETURN(ControlMessage reply, ipc::ReceiveControl(control_, fds, left));
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

Status Client::LostCall(Lease& lease, const Status& error) {
  if (error.kind() == ErrorKind::kTimeout) {
    (void)KillExecutor(lease.executor_pid);
    return TimeoutError(fmt::format("call timed out after {} ms (executor {} killed)",
                                    options_.session.call_timeout.count(), lease.executor_pid));
  }
  if (error.kind() == ErrorKind::kIoError) {
    return ExecutorCrashedError(fmt::format("executor {} died during the call: {}",
                                            lease.executor_pid, error.message()));
  }
  return error;
}

Result<ipc::WireValue> Client::Call(const engine::Program& program,
                                    const engine::ProgramBlobs& blobs, std::string_view function,
                                    std::vector<ipc::WireValue> arguments) {
  ASSIGN_OR_RETURN(ipc::RemoteCallRequest request,
                   ipc::BuildCallRequest(program, blobs, function, std::move(arguments)));
  std::vector<engine::FunctionHash> code = ipc::OfferedHashes(request);
  ASSIGN_OR_RETURN(Lease lease, LeaseExecutor(code));
  Result<ipc::RemoteCallResponse> response = CallOn(lease, std::move(request));
  lease.session.Close();
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
  std::vector<ScopedFd> fds;
  return Request(ControlMessage("stop"), &fds).error();
}

Status Client::Cancel(Lease& lease, uint64_t call_id) {
  RETURN_IF_ERROR(lease.session.Cancel(call_id));
  return KillExecutor(lease.executor_pid);
}

Status Client::KillExecutor(int executor_pid) {
  ControlMessage kill("kill");
  kill.Set("executor_pid", executor_pid);
  std::vector<ScopedFd> fds;
  return Request(kill, &fds).error();
}

}  // namespace shapex
