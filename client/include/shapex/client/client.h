// shapex::Client: the public way into the service. It talks to the per-user supervisor
// (starting it on demand) and leases executors; calls then go straight to the leased executor
// (ExecutorSession) over its own socket and call ring.
//
//   ASSIGN_OR_RETURN(Client client, Client::Connect());         // starts `shapex serve` if needed
//   ASSIGN_OR_RETURN(engine::ProgramBlobs blobs, engine::BuildProgramBlobs(program));
//   ASSIGN_OR_RETURN(ipc::WireValue v, client.Call(program, blobs, "add", {Int(10), Int(32)}));
//
//   // Many calls on one executor: keep the lease.
//   ASSIGN_OR_RETURN(Lease lease, client.LeaseFor(program, blobs, "add"));
//   for (...) lease.session.Call(program, blobs, "add", args);
//
// Errors keep their kinds. A leased executor that dies mid-call gives ExecutorCrashed; a call
// that exceeds `call_timeout` gets its executor killed (through the supervisor) and Timeout; a
// supervisor that exits while we wait gives SandboxError "the supervisor exited".
//
// Lease ownership: a lease lives as long as this Client's control connection. Release(lease)
// ends it cleanly (the executor reports what it learned and is recycled); destroying the Client
// (or the process ending, crashing or being killed) ends every lease it still holds: the
// supervisor kills those executors, also in the middle of a call, and replaces them. A lease
// request waits at most `lease_wait` in the queue, then fails with ResourceExhausted naming the
// cause. A Client holds at most the supervisor's per-client limit of leases at once (pool size
// - 1, at least 1, by default); more requests wait for one of its own to end.
// Not thread-safe: one Client per thread (leases may be used from other threads, one each).
#ifndef SHAPEX_CLIENT_CLIENT_H_
#define SHAPEX_CLIENT_CLIENT_H_

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shapex/client/executor_session.h"
#include "shapex/core/result.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/program.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/wire_value.h"

namespace shapex {

struct ClientOptions {
  std::string socket_path;  // empty: ipc::DefaultSupervisorSocketPath()
  // Start a supervisor when none serves the socket: runs `SHAPEX serve --daemon --socket PATH`
  // where SHAPEX is, in this order: `shapex_binary`; $SHAPEX_BIN; the `shapex` of the install
  // prefix this library was built for; `shapex` on $PATH. Never the calling program itself
  // (unless named here). If none exists, Connect fails (SandboxError) naming every place tried.
  bool start_supervisor = true;
  std::string shapex_binary;
  std::vector<std::string> serve_args;  // more arguments for `serve` (e.g. "--pool", "2")
  // How long Connect keeps trying (starting a supervisor, or retrying a busy one).
  std::chrono::milliseconds start_timeout{5000};
  // How long a lease may wait in the supervisor's queue before ResourceExhausted (the
  // supervisor's own bound, 30 s by default, applies too).
  std::chrono::milliseconds lease_wait{30000};
  ExecutorSessionOptions session;  // transport of executor connections, call timeout
};

// The `shapex` binary ClientOptions::shapex_binary names or the search finds (see above), or
// SandboxError naming the places searched.
Result<std::string> FindShapexBinary(const std::string& explicit_path = {});

// A leased executor: a session with it, and its pid (in our pid namespace).
struct Lease {
  int executor_pid = 0;
  ExecutorSession session;
};

class Client {
 public:
  static Result<Client> Connect(const ClientOptions& options = {});
  // Connects only if a supervisor serves the socket: nullopt when none does (never starts one;
  // `options.start_supervisor` is ignored). Errors are those of Connect.
  static Result<std::optional<Client>> ConnectIfRunning(ClientOptions options = {});

  // Leases an executor and tells the supervisor which code we will call (it preloads what its
  // store has). `code` may be empty.
  // With `wait` false the supervisor answers ResourceExhausted at once instead of queueing the
  // lease when no executor is idle or starting for it (it would have to wait for a release).
  Result<Lease> LeaseExecutor(std::span<const engine::FunctionHash> code, bool wait = true);
  // Leases an executor for calls of `function` (offering its minimal blob set).
  Result<Lease> LeaseFor(const engine::Program& program, const engine::ProgramBlobs& blobs,
                         std::string_view function);

  // One call on a fresh lease (the lease ends with the call).
  Result<ipc::WireValue> Call(const engine::Program& program, const engine::ProgramBlobs& blobs,
                              std::string_view function, std::vector<ipc::WireValue> arguments);
  // Runs `request` on `lease`, turning a lost executor into ExecutorCrashed and a call over
  // `call_timeout` into Timeout (the executor is killed).
  Result<ipc::RemoteCallResponse> CallOn(Lease& lease, ipc::RemoteCallRequest request);
  // Pipelined: waits for a call started with lease.session.Start, with CallOn's error rules.
  Result<ipc::RemoteCallResponse> WaitOn(Lease& lease, uint64_t call_id);
  // The same for a batch started with lease.session.StartBatch.
  Result<ipc::RemoteCallBatchResponse> WaitBatchOn(Lease& lease, uint64_t call_id);

  // The supervisor's status as JSON (see `shapex status --json`).
  Result<std::string> StatusJson();
  // The same as a human-readable table (`shapex status`).
  Result<std::string> StatusText();
  // Asks the supervisor to shut down.
  Status StopSupervisor();
  // Ends `lease`: closes the session and tells the supervisor (the executor is recycled, not
  // killed, when this Client goes away afterwards).
  void Release(Lease& lease);
  // The supervisor's pid (as this process sees it).
  pid_t supervisor_pid() const { return control_.peer_credentials().pid; }
  // Asks the supervisor to kill an executor leased to us.
  Status KillExecutor(int executor_pid);
  // Why an executor that went away was killed, when the supervisor knows: ResourceExhausted
  // for an executor the kernel killed over its cgroup's memory.max; OK when nothing is known.
  Status ExitReason(int executor_pid);
  // Cancels a call in flight on `lease`: calls run to completion in an executor, so this sends
  // Cancel and has the supervisor kill the executor; Wait then answers Cancelled. The lease is
  // finished afterwards (lease another executor for more calls).
  Status Cancel(Lease& lease, uint64_t call_id);

  const std::string& socket_path() const { return socket_path_; }

 private:
  Client() = default;
  // Connect's loop; nullopt when nothing serves the socket and start_supervisor is false.
  static Result<std::optional<Client>> ConnectOrStart(const ClientOptions& options);
  Result<ipc::ControlMessage> Request(const ipc::ControlMessage& request,
                                      std::vector<ScopedFd>* fds);
  // A call on `lease` failed without a response: Timeout (after killing the executor) or
  // ExecutorCrashed for a lost connection; other errors unchanged.
  Status LostCall(Lease& lease, const Status& error);

  ClientOptions options_;
  std::string socket_path_;
  ipc::Connection control_;
};

}  // namespace shapex

#endif  // SHAPEX_CLIENT_CLIENT_H_
