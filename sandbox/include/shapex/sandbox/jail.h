// Jail: starting an executor process that is confined before it runs a single instruction of
// executor code: its own user, pid, mount, ipc, uts and network namespaces, an empty read-only
// root, no capabilities, resource limits, no inherited descriptors, no_new_privs, not dumpable,
// and the seccomp allowlist. jail_steps.h lists the steps; docs/sandbox.md explains them.
//
// Usage (supervisor):
//   RETURN_IF_ERROR(ProbeJailSupport());   // at start-up: names a feature the machine refuses
//   ASSIGN_OR_RETURN(SeccompProgram program, SeccompProgram::BuildExecutorPolicy());  // once
//   JailOptions options;
//   options.keep_fds = {socket.get()};
//   ASSIGN_OR_RETURN(JailedProcess executor,
//                    SpawnJailed(options, program, [&] { return ExecutorMain(socket.get()); }));
//   ... poll executor.pidfd() with the connection; executor.Kill(); executor.Wait() ...
//
// The jailed process:
//   - Runs `body` only after every step succeeded and the parent was told it is ready; `body`'s
//     return value becomes its exit code (_exit: no atexit handlers, no stdio flush).
//   - Keeps the caller's uid and gid, mapped to the same numbers in its user namespace; all
//     other ids are unmapped and setgroups(2) is disabled. Its supplementary groups stay
//     attached (unprivileged maps cannot drop them); with no filesystem they reach nothing.
//   - Is pid 1 of its pid namespace, so getpid() == 1 and getppid() == 0. Like any init, it
//     ignores signals it has no handler for, even from the supervisor, except SIGKILL and
//     SIGSTOP: stop it with Kill() (SIGKILL). It is the only process in its namespace, and the
//     seccomp policy relies on that: signals to pid 1 are signals to itself.
//   - Starts with default signal handlers (CLONE_CLEAR_SIGHAND; ignored signals stay ignored),
//     an empty signal mask, its own process group, and SIGKILL as parent-death signal (note: the
//     kernel sends it when the *thread* that called SpawnJailed exits).
//   - Is a copy of the calling thread only (clone3, without glibc's fork handlers). SpawnJailed
//     itself never allocates, locks or uses stdio in the child. `body` runs in that same copy:
//     if the caller had other threads, locks they held (malloc arenas, stdio, the logger) stay
//     locked forever, so `body` must then use only async-signal-safe calls; or call SpawnJailed
//     from a single-threaded process (a spawner forked at start-up).
//
// Failures: a machine that refuses a namespace gives SandboxError "jail step 'namespaces'
// failed: cannot create a <kind> namespace: ..." with the likely cause; a step that fails in
// the child is reported back over a pipe as SandboxError "jail step '<name>' failed: <syscall>:
// <strerror>"; either way no child is left behind.
//
// Thread-safety: SpawnJailed may be called from several threads at once; a JailedProcess is not
// thread-safe. SandboxMode::kNone runs the child with only the steps that need no privileges
// (process-group, drop-capabilities, rlimits, close-fds, no-new-privs, not-dumpable): the caller
// must ask for it explicitly, and it logs kSandboxNoneWarning once per process.
#ifndef SHAPEX_SANDBOX_JAIL_H_
#define SHAPEX_SANDBOX_JAIL_H_

#include <sys/types.h>

#include <array>
#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/core/status.h"
#include "shapex/sandbox/jail_steps.h"
#include "shapex/sandbox/seccomp_filter.h"

namespace shapex::sandbox {

enum class SandboxMode {
  kFull,  // every step; the only mode that confines untrusted code
  kNone,  // no namespaces, no mount jail, no seccomp: only for trusted code or broken machines
};

// Logged with SHAPEX_LOG(WARN, ...), once per process, the first time kNone is used.
inline constexpr std::string_view kSandboxNoneWarning =
    "sandbox disabled (--sandbox=none): executors run untrusted code with the supervisor's "
    "user, files, network and system calls; use this only for trusted code";

struct JailOptions {
  SandboxMode mode = SandboxMode::kFull;
  // Descriptors the child keeps, under the same numbers (at most kMaxKeptFds). Every other
  // descriptor is closed before `body` runs, whether or not it is close-on-exec.
  std::vector<int> keep_fds;
  RlimitOptions limits;
  // SIGKILL the child when the thread that spawned it exits.
  bool kill_with_parent = true;
  // Run the steps up to and including this one only. Anything but kSeccomp leaves the child
  // partly confined: for tests and diagnostics, never for untrusted code.
  JailStep stop_after = JailStep::kSeccomp;
  // How long the child may take to report "ready" before it is killed.
  std::chrono::milliseconds ready_timeout{10'000};
  // A cgroup v2 directory descriptor (not kept by the child): the child is created in that
  // cgroup, so its limits hold from its first instruction (clone3 CLONE_INTO_CGROUP, Linux 5.7).
  // -1: the caller's cgroup. If the kernel refuses, SpawnJailed fails with SandboxError "jail
  // step 'namespaces' failed: clone3 into cgroup: ..." and spawns nothing.
  int cgroup_fd = -1;
};

// Where the time of one SpawnJailed went. steps[kNamespaces] is the clone3 call as the parent saw
// it; the others are measured in the child; steps that did not run are zero. The two delays are
// waits for a CPU: from clone3 returning until the child first ran, and from the child writing
// "ready" until the parent read it. `total` runs from just before clone3 until the parent has
// read "ready" (steps plus delays plus a few microseconds of bookkeeping).
struct JailTimings {
  std::array<std::chrono::nanoseconds, kJailStepCount> steps{};
  std::chrono::nanoseconds child_start_delay{0};
  std::chrono::nanoseconds ready_delay{0};
  std::chrono::nanoseconds total{0};
};

// How a process ended.
struct ExitInfo {
  bool exited = false;  // true: exit_code is valid; false: killed by `signal`
  int exit_code = 0;
  int signal = 0;

  // "exit code 3" or "killed by SIGSYS".
  std::string ToString() const;
};

// A spawned jailed process. Move-only. Destroying one that was not waited for kills it
// (SIGKILL) and reaps it, so no process or zombie outlives its handle.
class JailedProcess {
 public:
  JailedProcess(JailedProcess&& other) noexcept;
  JailedProcess& operator=(JailedProcess&& other) noexcept;
  JailedProcess(const JailedProcess&) = delete;
  JailedProcess& operator=(const JailedProcess&) = delete;
  ~JailedProcess();

  // The process id in the caller's pid namespace.
  pid_t pid() const { return pid_; }
  // A pidfd: readable (poll/epoll) once the process has exited.
  int pidfd() const { return pidfd_.get(); }
  const JailTimings& timings() const { return timings_; }

  // Sends `signal` through the pidfd. A process that already exited is not an error. Remember
  // that the child is an init process: only SIGKILL and SIGSTOP reach it without a handler.
  Status Kill(int signal = SIGKILL);

  // Blocks until the process exits and reaps it. Later calls return the same ExitInfo.
  Result<ExitInfo> Wait();

 private:
  friend Result<JailedProcess> SpawnJailed(const JailOptions&, const SeccompProgram&,
                                           const std::function<int()>&);
  JailedProcess(pid_t pid, ScopedFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  void KillAndReap();

  pid_t pid_ = -1;
  ScopedFd pidfd_;
  bool reaped_ = false;
  ExitInfo exit_;
  JailTimings timings_;
};

// Clones a child into new namespaces, runs every jail step in it (stopping after
// options.stop_after), waits until it reports ready, and returns it; the child then runs `body`.
// `seccomp` is installed by the last step (ignored with SandboxMode::kNone). InvalidArgument for
// bad options (an empty body, too many or closed keep_fds); SandboxError when the machine or a
// step refuses (see above).
Result<JailedProcess> SpawnJailed(const JailOptions& options, const SeccompProgram& seccomp,
                                  const std::function<int()>& body);

// Spawns one fully jailed process with the executor policy and checks that it ran, that
// seccomp denies it a file, and that it exited cleanly. OK, or the SandboxError SpawnJailed
// produced, which names the missing feature. Takes a few milliseconds: call it at start-up.
Status ProbeJailSupport();

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_JAIL_H_
