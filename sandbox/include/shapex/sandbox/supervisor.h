// The supervisor (`shapex serve`): one per user. It keeps a warm pool of jailed executors,
// leases one to each client that asks (the client then talks to the executor directly, over its
// own socket and call ring, so a call costs one hop), replaces executors after their lease or
// when they die, and keeps every function blob it learns in the persistent BlobStore, so code
// once seen is never sent again, even after a restart.
//
//   SupervisorOptions options;                        // socket path, pool size, sandbox mode...
//   ASSIGN_OR_RETURN(auto supervisor, Supervisor::Start(options));   // before any thread exists
//   return supervisor->Run();                         // until SIGTERM/SIGINT or a "stop" request
//
// Client protocol (control messages, ipc/control.h, on a socket-transport Connection;
// docs/wire-protocol.md "Control messages" is normative):
//   "lease" {hashes: code the client will call, wait?}
//                                  -> "granted" {executor_pid} + fd [socket]
//                                     (queued while every executor is busy; "error"
//                                     ResourceExhausted when the queue is full, when stopping,
//                                     or with wait = 0 when it would have to wait for a release)
//   "status"                       -> "status" {json, text}
//   "kill" {executor_pid}  (a call of ours timed out / was cancelled)
//                                  -> "killed", or "error" InvalidArgument if not leased to us
//   "stop"                         -> "stopping"; the supervisor shuts down
// Before granting, the supervisor preloads the executor with every offered blob its store has,
// so the client's negotiation finds them known and sends no code.
//
// Guarantees: only peers with our uid (SO_PEERCRED) are served; the socket's directory is 0700
// (ipc/supervisor_socket.h). A crashed or killed executor is replaced and nothing else notices;
// its client sees its connection close (ExecutorCrashed). SIGTERM: stop accepting, let leased
// executors finish for up to `grace`, then kill them, remove the socket and return OK.
// Single-threaded (one poll loop); Start forks the zygote, so call it before creating threads.
#ifndef SHAPEX_SANDBOX_SUPERVISOR_H_
#define SHAPEX_SANDBOX_SUPERVISOR_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "shapex/core/result.h"
#include "shapex/sandbox/executor.h"
#include "shapex/sandbox/jail.h"

namespace shapex::sandbox {

struct SupervisorOptions {
  std::string socket_path;  // empty: ipc::DefaultSupervisorSocketPath()
  size_t pool_size = 0;     // warm executors; 0: the number of CPUs
  SandboxMode sandbox = SandboxMode::kFull;
  ExecutorOptions executor;  // per-call limits of every executor
  RlimitOptions limits;      // process limits of every executor
  // Leases an executor serves before it is replaced (1 = a fresh process for every lease).
  size_t leases_per_executor = 1;
  size_t max_queued_leases = 256;
  // Blob store directory; empty: BlobStore::DefaultDir(); "none": no persistent store.
  std::string store_dir;
  uint64_t store_max_bytes = uint64_t{512} << 20;
  std::chrono::milliseconds grace{5000};
};

class Supervisor {
 public:
  // Probes the jail (unless sandbox is kNone), forks the zygote, binds the socket (replacing a
  // stale one; IoError if another supervisor answers there) and starts the pool.
  static Result<std::unique_ptr<Supervisor>> Start(const SupervisorOptions& options);
  ~Supervisor();

  // Serves until SIGTERM/SIGINT or a "stop" request; then shuts down gracefully.
  Status Run();

  const std::string& socket_path() const;

  struct State;  // defined in supervisor.cc

 private:
  explicit Supervisor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SUPERVISOR_H_
