// Jail steps: the small confinement steps that SpawnJailed (jail.h) runs, in this order, in a
// freshly cloned child before it runs any executor code. They are public one by one so each can
// be tested, or reused, alone. docs/sandbox.md explains why each step is where it is.
//
//   kNamespaces        (SpawnJailed)        clone3: new user, pid, mount, ipc, uts, net ns
//   kIdMaps            WriteIdentityIdMaps  "deny" setgroups; caller's uid/gid -> themselves
//   kProcessGroup      StartProcessGroup    own process group, no blocked signals, parent death
//   kHostname          SetJailHostname      hostname "shapex" (hides the host's name)
//   kMountJail         EnterMountJail       private /, empty tmpfs, pivot_root, read-only
//   kDropCapabilities  DropCapabilities     bounding, ambient and all capability sets emptied
//   kRlimits           ApplyRlimits         address space, CPU, files, file size, core, nproc
//   kCloseFds          CloseFdsExcept       close every descriptor not explicitly kept
//   kNoNewPrivs        SetNoNewPrivs        PR_SET_NO_NEW_PRIVS
//   kNotDumpable       SetNotDumpable       PR_SET_DUMPABLE 0 (no ptrace by peers, no core)
//   kSeccomp           InstallSeccomp       the seccomp allowlist (seccomp_filter.h), last
//
// Usage (a test confining a forked child by hand):
//   if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ...;
//   RETURN_IF_ERROR(WriteIdentityIdMaps(outer_uid, outer_gid));
//   RETURN_IF_ERROR(EnterMountJail());
//
// Guarantees: every step acts on the calling process only and cannot be undone. On failure a
// step returns SandboxError "jail step '<name>' failed: <operation>: <strerror>", and the process
// may be partly changed. The steps themselves never allocate or lock; only building the error
// Status does. SpawnJailed uses allocation-free forms of the same code in its child.
#ifndef SHAPEX_SANDBOX_JAIL_STEPS_H_
#define SHAPEX_SANDBOX_JAIL_STEPS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "shapex/core/status.h"

namespace shapex::sandbox {

enum class JailStep : uint8_t {
  kNamespaces,
  kIdMaps,
  kProcessGroup,
  kHostname,
  kMountJail,
  kDropCapabilities,
  kRlimits,
  kCloseFds,
  kNoNewPrivs,
  kNotDumpable,
  kSeccomp,
};
inline constexpr size_t kJailStepCount = 11;

// "namespaces", "id-maps", "process-group", "hostname", "mount-jail", "drop-capabilities",
// "rlimits", "close-fds", "no-new-privs", "not-dumpable", "seccomp".
std::string_view JailStepName(JailStep step);

// The most descriptors CloseFdsExcept (and JailOptions::keep_fds) can keep.
inline constexpr size_t kMaxKeptFds = 64;

// Resource limits for a jailed process. Each present value sets both the soft and the hard
// limit (a process can lower them, never raise them back); std::nullopt keeps what the process
// inherited. Raising a limit above the inherited hard limit fails with a SandboxError.
// Sanitizer runtimes (ASan) reserve terabytes of address space for their shadow memory before
// main, so under them no RLIMIT_AS can be set without breaking every later allocation.
#if defined(__SANITIZE_ADDRESS__)
#define SHAPEX_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHAPEX_UNDER_ASAN 1
#endif
#endif
#ifdef SHAPEX_UNDER_ASAN
inline constexpr std::optional<uint64_t> kDefaultAddressSpaceLimit = std::nullopt;
#else
inline constexpr std::optional<uint64_t> kDefaultAddressSpaceLimit = uint64_t{4} << 30;
#endif

struct RlimitOptions {
  // RLIMIT_AS. 4 GiB: the VM heap, the shared-memory segments it maps, and the stacks (not set
  // in sanitizer builds, see kDefaultAddressSpaceLimit).
  std::optional<uint64_t> address_space_bytes = kDefaultAddressSpaceLimit;
  // RLIMIT_CPU, over the process's whole life (a warm executor serves many calls). A backstop
  // only: per-call timeouts belong to the supervisor. The kernel sends SIGKILL at the limit.
  std::optional<uint64_t> cpu_seconds = 3600;
  // RLIMIT_NOFILE: the connection, a few segments, received descriptors.
  std::optional<uint64_t> open_files = 64;
  // RLIMIT_FSIZE: the largest memfd the executor may create or grow (result segments). Its
  // pages are not address space until mapped, so RLIMIT_AS alone would not bound them.
  std::optional<uint64_t> file_size_bytes = uint64_t{1} << 30;
  // RLIMIT_CORE: never write core files (there is no filesystem anyway).
  std::optional<uint64_t> core_file_bytes = 0;
  // RLIMIT_NPROC: no new processes. Only a backstop behind seccomp; the kernel ignores this
  // limit for processes whose real uid is root in the initial user namespace.
  std::optional<uint64_t> processes = 0;
};

// kIdMaps. For a process that has just entered a new user namespace: writes "deny" to
// /proc/self/setgroups and maps `outer_uid`/`outer_gid` (ids in the parent namespace, normally
// the caller's effective ids) to the same numbers inside, one id each. Temporarily sets the
// process dumpable if it is not, because /proc/self files of a non-dumpable process belong to
// root.
Status WriteIdentityIdMaps(uid_t outer_uid, gid_t outer_gid);

// kProcessGroup. Moves the process into a process group of its own (so kill(0, ...) and the
// terminal's job-control signals reach nobody else), unblocks every signal, and, when
// `parent_pipe_fd >= 0`, arranges SIGKILL on parent death. `parent_pipe_fd` is the write end of
// a pipe whose read end only the parent holds: if it has no reader the parent already died and
// the step fails. (Not setsid(2): a new session also creates a scheduler autogroup, which cost
// up to 1.8 ms median per spawn on a busy machine, against 10-20 us for setpgid.)
Status StartProcessGroup(int parent_pipe_fd = -1);

// kHostname. Sets the hostname to "shapex"; needs a private UTS namespace.
Status SetJailHostname();

// kMountJail. Needs a private mount namespace owned by the process's user namespace. Makes every
// mount private (nothing propagates back to the host), mounts an empty tmpfs on /tmp, makes it
// the root with pivot_root, detaches the old root with everything under it, and remounts the
// new root read-only, nosuid, nodev, noexec. Afterwards the process sees an empty read-only
// directory as "/": no /proc, no /dev, no host files. The working directory is "/".
Status EnterMountJail();

// kDropCapabilities. Empties the bounding and ambient sets, then the effective, permitted and
// inheritable sets. A process that holds no capability at all has nothing to drop and succeeds
// (its bounding set stays, harmlessly: no_new_privs keeps exec from granting anything).
Status DropCapabilities();

// kRlimits.
Status ApplyRlimits(const RlimitOptions& limits);

// kCloseFds. Closes every descriptor except those in `keep` (at most kMaxKeptFds, in any order,
// duplicates allowed; negative numbers are InvalidArgument). Uses close_range(2); falls back to
// scanning /proc/self/fd, then to closing every number below the descriptor hard limit.
Status CloseFdsExcept(std::span<const int> keep);

// kNoNewPrivs. PR_SET_NO_NEW_PRIVS: exec can never grant privileges again; required before an
// unprivileged process may install a seccomp filter.
Status SetNoNewPrivs();

// kNotDumpable. PR_SET_DUMPABLE 0: no core dumps, no ptrace attach by same-uid processes, and
// the process's /proc files belong to root.
Status SetNotDumpable();

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_JAIL_STEPS_H_
