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
//   "exit_reason" {executor_pid}   -> "exit_reason" {kind, message}: kind "ResourceExhausted"
//                                     when the kernel's OOM killer ended that executor in its
//                                     cgroup (memory.events oom_kill), else "" (not known)
// Before granting, the supervisor preloads the executor with every offered blob its store has,
// and with the functions those need to be linked (their recursion groups and the functions they
// reference, transitively), so the client's negotiation finds them known and sends no code, and
// a lease that offers only an entry hash (`shapex call --hash`) can call it.
//
// Guarantees: only peers with our uid (SO_PEERCRED) are served; the socket's directory is 0700
// (ipc/supervisor_socket.h). One supervisor per socket path: an exclusive flock on PATH.lock
// decides who serves; the socket is unlinked (before the lock is released) only if the path is
// still our own socket, and never when systemd passed it. A crashed or killed executor is
// replaced and nothing else notices; its client sees its connection close (ExecutorCrashed).
// A lease belongs to the control connection that asked for it: when that connection ends, the
// executor is killed and replaced unless the client released it first ("release"). A released
// executor that has not reported `done` within `release_timeout` (it is stuck in a call nobody
// waits for) is killed too.
// SIGTERM/SIGINT: stop accepting, let leased executors finish for up to `grace`, then kill them,
// remove the socket and return OK. SIGHUP reopens the log.
// Nothing in the event loop waits on a peer: clients, executors and the zygote are non-blocking
// ipc::AsyncChannels on one epoll loop with deadlines; blob store work runs on one worker
// thread. Start forks the zygote before that thread exists.
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
  size_t max_queued_leases = 256;  // over all clients; more: ResourceExhausted at once
  // Blob store directory; empty: BlobStore::DefaultDir(); "none": no persistent store.
  std::string store_dir;
  uint64_t store_max_bytes = uint64_t{512} << 20;
  std::chrono::milliseconds grace{5000};

  // Per-connection bounds and deadlines of the control plane (docs/wire-protocol.md, "Bounds
  // and deadlines"). A client over a bound is dropped; each drop is counted in `status`.
  std::chrono::milliseconds handshake_timeout{2000};  // accept to complete Hello
  std::chrono::milliseconds write_timeout{5000};      // replies left unread this long
  size_t max_output_bytes = size_t{1} << 20;          // replies queued for one client
  uint32_t max_request_bytes = uint32_t{4} << 20;     // one request frame from a client
  size_t max_queued_leases_per_client = 64;
  size_t max_leases_per_client = 0;  // leases held at once; 0: pool_size - 1, at least 1
  size_t max_clients = 4096;
  size_t max_pending_handshakes = 1024;  // more: the oldest pending one is dropped
  size_t max_preload_hashes = 4096;      // hashes of one lease looked up in the store
  // Longest wait of a lease in the queue; then ResourceExhausted naming the cause. A request's
  // `wait_ms` may shorten it.
  std::chrono::milliseconds lease_wait{30000};
  // A lease released by its client whose executor has not reported `done` this long after the
  // release (or, unreleased, after the client left) is ended by killing the executor.
  std::chrono::milliseconds release_timeout{1000};
  std::chrono::milliseconds executor_start_timeout{10000};  // spawn to "ready"
  // Exit after this long with no client connection and no lease (0: never).
  std::chrono::milliseconds idle_exit{0};
  // The log (stderr is redirected there; SIGHUP reopens it; over log_max_bytes it is renamed to
  // PATH.1 and started anew). Empty: stderr as inherited.
  std::string log_path;
  uint64_t log_max_bytes = uint64_t{4} << 20;
  // cgroup v2 limits per executor (docs/sandbox.md, "cgroups"), where the supervisor has a
  // delegated cgroup v2 with the memory controller; elsewhere (or with `cgroups` false) off,
  // with the reason in `status`. An executor the kernel kills for exceeding memory.max makes
  // its call fail with ResourceExhausted (request `exit_reason`). 0: no limit of that kind.
  bool cgroups = true;
  uint64_t executor_memory_bytes = uint64_t{2} << 30;  // memory.max (swap: memory.swap.max 0)
  uint64_t executor_pids = 32;                        // pids.max (threads count too)
  double executor_cpus = 0;                           // cpu.max, in CPUs
  // Take a listening socket from systemd (LISTEN_PID/LISTEN_FDS) and report readiness to
  // NOTIFY_SOCKET when those variables are set.
  bool systemd = true;
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
