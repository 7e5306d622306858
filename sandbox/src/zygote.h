// The zygote: a single-threaded process the supervisor forks at start-up, before it has any
// threads or much state, whose only job is to spawn jailed executors quickly (SpawnJailed clones
// the calling thread, which is only safe in a single-threaded process) and to reap them.
//
// Channel protocol (control messages on a socket-transport Connection, zygote = server):
//   supervisor -> zygote   "spawn"   {token} + fd [optional: the executor's cgroup directory]
//   zygote -> supervisor   "spawned" {token, pid, spawn_ns, cgroup_error?} + fds [executor
//                          control socket, pidfd]; cgroup_error: the kernel refused the cgroup,
//                          the executor runs in the zygote's own
//                          "error"   {token, kind, message}   (the spawn failed)
//                          "exited"  {pid, exit_code, signal} (an executor ended; reaped)
// The zygote exits when the channel closes; its executors die with it (parent-death SIGKILL).
//
// Executor control protocol (executor = server of the control Connection):
//   executor -> supervisor "ready"
//   supervisor -> executor "preload" {blobs}             (verified blobs from the store)
//                          "serve" + fd [client socket]  (serve one client until it leaves)
//                          "exit"
//   executor -> supervisor "done" {calls, errors, code_bytes} + blobs it newly cached
#ifndef SHAPEX_SANDBOX_SRC_ZYGOTE_H_
#define SHAPEX_SANDBOX_SRC_ZYGOTE_H_

#include <sys/types.h>

#include "shapex/core/result.h"
#include "shapex/ipc/connection.h"
#include "shapex/sandbox/executor.h"
#include "shapex/sandbox/jail.h"

namespace shapex::sandbox {

struct ZygoteOptions {
  SandboxMode mode = SandboxMode::kFull;
  ExecutorOptions executor;
  RlimitOptions limits;
};

struct ZygoteHandle {
  pid_t pid = -1;
  ipc::UnixSocket socket;  // the supervisor's end of the channel (client of the handshake)
};

// Forks the zygote. Call before creating threads.
Result<ZygoteHandle> StartZygote(const ZygoteOptions& options);

// The body of a jailed executor: serves its control connection (already adopted) until "exit"
// or the supervisor goes away. Returns the process exit code.
int ExecutorProcessMain(ipc::UnixSocket control, const ExecutorOptions& options);

// Test seam (docs/testing.md, "Fault injection"): how an executor process serves one leased
// client socket. nullptr, the default, is Executor::ServeConnection. Only a test sets another,
// in a process that then starts a Supervisor (the zygote and executors are forks of it and keep
// the pointer). It is in this private header, not in SupervisorOptions, so neither the CLI nor
// an embedder can reach it, and the fault code itself lives in the test binary alone.
using ServeClientFn = Status (*)(Executor& executor, ipc::UnixSocket client,
                                 const ExecutorOptions& options);
void SetServeClientForTesting(ServeClientFn serve);

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SRC_ZYGOTE_H_
