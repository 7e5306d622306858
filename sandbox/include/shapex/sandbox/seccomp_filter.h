// SeccompProgram: the executor's seccomp-BPF allowlist, compiled once with libseccomp into plain
// classic-BPF instructions, so that installing it in a freshly cloned child needs no library
// call, no allocation and no lock: one seccomp(2) system call.
//
// Usage (supervisor start-up, once):
//   ASSIGN_OR_RETURN(SeccompProgram program, SeccompProgram::BuildExecutorPolicy());
//   ... SpawnJailed(options, program, body) for every executor (see jail.h) ...
// Or, in a process that confines itself (tests):
//   RETURN_IF_ERROR(SetNoNewPrivs());            // jail_steps.h; seccomp requires it
//   RETURN_IF_ERROR(InstallSeccomp(program));    // irreversible for this process
//
// The policy (docs/sandbox.md has the full table and the reasons):
//   - allowed: what an executor loop needs (read/write on descriptors it was given, sendmsg/
//     recvmsg, poll/epoll, memory management without PROT_EXEC, futex wait/wake, clocks and
//     sleeps, getrandom, fstat/fcntl on descriptors, sealed memfd result segments, signals to
//     itself, exit);
//   - EPERM (ENOTTY for ioctl): harmless probes that library code makes and copes with failing
//     (open/stat/access of paths, prctl, sched_getaffinity, the fcntl commands not listed);
//   - killed (SECCOMP_RET_KILL_PROCESS, the process dies with SIGSYS): everything else, which
//     includes every way to create processes or threads, exec, ptrace, sockets, namespaces,
//     mounts, bpf, keyrings, io_uring, signals to other processes, executable mappings, and
//     any system call made through a foreign ABI (i386 int 0x80, x32).
//
// Guarantees: a SeccompProgram is immutable after construction and may be shared by threads and
// inherited by any number of children. Only x86_64 is supported; elsewhere BuildExecutorPolicy
// returns a SandboxError.
#ifndef SHAPEX_SANDBOX_SECCOMP_FILTER_H_
#define SHAPEX_SANDBOX_SECCOMP_FILTER_H_

#include <linux/filter.h>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/status.h"

namespace shapex::sandbox {

class SeccompProgram {
 public:
  // Compiles the executor policy described above. Costs a few milliseconds: call it once.
  static Result<SeccompProgram> BuildExecutorPolicy();

  // Wraps instructions compiled elsewhere. InvalidArgument when empty or longer than the
  // kernel's limit (BPF_MAXINSNS). The instructions are not otherwise checked: the kernel
  // verifies them when the program is installed.
  static Result<SeccompProgram> FromInstructions(std::vector<sock_filter> instructions);

  std::span<const sock_filter> instructions() const { return instructions_; }
  size_t size() const { return instructions_.size(); }

 private:
  explicit SeccompProgram(std::vector<sock_filter> instructions)
      : instructions_(std::move(instructions)) {}

  std::vector<sock_filter> instructions_;
};

// Installs `program` on the calling thread (the process must be single-threaded or the other
// threads stay unfiltered). Requires no_new_privs or CAP_SYS_ADMIN; the kernel rejects it
// otherwise. Irreversible. SandboxError naming the failed system call on failure.
Status InstallSeccomp(const SeccompProgram& program);

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SECCOMP_FILTER_H_
