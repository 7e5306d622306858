// Builds the executor seccomp policy with libseccomp and exports it as plain BPF, once, in the
// supervisor; the jailed child installs the exported instructions with one system call
// (jail_steps.cc), so no libseccomp code and no allocation ever run there.
#include "shapex/sandbox/seccomp_filter.h"

#include "shapex/sandbox/jail_steps.h"  // SHAPEX_UNDER_ASAN

#include <fcntl.h>
#include <fmt/core.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "jail_steps_internal.h"
#include "shapex/core/errno_status.h"
#include "shapex/core/scoped_fd.h"

namespace shapex::sandbox {
namespace {

// The policy is a list of (action, system call, argument conditions) rules on top of a default
// of SECCOMP_RET_KILL_PROCESS. docs/sandbox.md explains every entry; keep the two in step.
constexpr uint32_t kAllow = SCMP_ACT_ALLOW;
constexpr uint32_t kKill = SCMP_ACT_KILL_PROCESS;
constexpr uint32_t kEperm = SCMP_ACT_ERRNO(EPERM);
constexpr uint32_t kEnotty = SCMP_ACT_ERRNO(ENOTTY);

// Allowed whatever their arguments: they act only on the caller, on descriptors it already
// holds, or on its own memory.
// clang-format off
constexpr int kAllowedSyscalls[] = {
    // Descriptor I/O. The executor holds only what the supervisor passed it.
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
    SCMP_SYS(lseek), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(close),
    SCMP_SYS(fstat), SCMP_SYS(shutdown),
    // Sealed result segments (ipc/shared_memory.h): memfd_create (flags checked below),
    // ftruncate, pwrite64 (SealedSegment::CreateByWriting fills them without mapping them, and
    // ipc::SegmentReserve writes its spares), mmap, fcntl(F_ADD_SEALS). RLIMIT_FSIZE bounds
    // their size.
    SCMP_SYS(ftruncate), SCMP_SYS(pwrite64),
    // Waiting for descriptors. `body` only runs once the filter is in place, so it must be able
    // to create its own epoll instance (one descriptor, bounded by RLIMIT_NOFILE).
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_pwait2), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_create1),
    // Memory management (mmap and mprotect are below, without PROT_EXEC).
    SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(membarrier),
    // Clocks and sleeping (clock_gettime normally goes through the vDSO and never gets here).
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time),
    // About itself.
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getcpu), SCMP_SYS(sched_yield),
    SCMP_SYS(getrandom),
    // Signal plumbing and leaving.
    SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
    SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
};

// Denied with EPERM instead of a kill: library code probes these and copes with failure (glibc
// and sanitizer runtimes open /proc, /sys and /etc files, stdio asks for the terminal, thread
// pools ask for the CPU set). The jail already makes them useless (the root is empty and
// read-only), so killing would only turn harmless behaviour into crashes.
constexpr int kEpermSyscalls[] = {
    SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(creat), SCMP_SYS(stat),
    SCMP_SYS(lstat), SCMP_SYS(statx), SCMP_SYS(access), SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getdents64),
    SCMP_SYS(prctl), SCMP_SYS(uname), SCMP_SYS(sched_getaffinity),
};
// clang-format on

// The fcntl commands an executor uses: flags, F_GET_SEALS before mapping a received memfd,
// F_ADD_SEALS on a result segment. Others (locks, leases, F_SETOWN/F_SETSIG signal routing, pipe
// sizes) are killed.
constexpr int kAllowedFcntlCommands[] = {F_GETFD,     F_SETFD,     F_GETFL,        F_SETFL,
                                         F_GET_SEALS, F_ADD_SEALS, F_DUPFD_CLOEXEC};

// futex operations for plain mutexes, condition variables and the ipc call ring. The PI and
// requeue operations (the historical source of futex exploits) are killed.
constexpr int kAllowedFutexOps[] = {FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET};
// futex_op & 0x7f is the command without FUTEX_PRIVATE_FLAG (128) and FUTEX_CLOCK_REALTIME (256).
// Any other bit makes the kernel reject the operation, so ignoring them is safe.
constexpr uint64_t kFutexCommandMask = 0x7f;

// The jailed process is pid 1 of its own pid namespace (see jail.h), so pid 1 is itself. Signals
// to itself are how abort() and raise() work; any other target is another process.
constexpr uint32_t kSelfPid = 1;

// Comparisons on `int` arguments look at the low 32 bits only: the upper half of the register
// is not guaranteed to be clean.
scmp_arg_cmp Arg32Equals(unsigned arg, uint32_t value) {
  return scmp_arg_cmp{
      .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu, .datum_b = value};
}
scmp_arg_cmp ArgBitsClear(unsigned arg, uint64_t bits) {
  return scmp_arg_cmp{.arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = bits, .datum_b = 0};
}
scmp_arg_cmp ArgBitsSet(unsigned arg, uint64_t bits) {
  return scmp_arg_cmp{.arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = bits, .datum_b = bits};
}
scmp_arg_cmp ArgEquals(unsigned arg, uint64_t value) {
  return scmp_arg_cmp{.arg = arg, .op = SCMP_CMP_EQ, .datum_a = value, .datum_b = 0};
}
scmp_arg_cmp ArgNotEquals(unsigned arg, uint64_t value) {
  return scmp_arg_cmp{.arg = arg, .op = SCMP_CMP_NE, .datum_a = value, .datum_b = 0};
}

struct ContextDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using FilterContext = std::unique_ptr<void, ContextDeleter>;

// libseccomp functions return -errno.
Status LibseccompError(std::string_view operation, int rc) {
  return SandboxError(ErrnoStatus(operation, {}, -rc).message());
}

std::string SyscallName(int nr) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  std::string result = name ? name : fmt::format("#{}", nr);
  free(name);
  return result;
}

// Adds rules, remembering the first failure so the policy reads as a flat list.
class RuleAdder {
 public:
  explicit RuleAdder(scmp_filter_ctx ctx) : ctx_(ctx) {}

  void Add(uint32_t action, int nr, std::initializer_list<scmp_arg_cmp> args = {}) {
    if (!status_.ok()) return;
    int rc = seccomp_rule_add_exact_array(ctx_, action, nr, static_cast<unsigned>(args.size()),
                                          args.size() ? args.begin() : nullptr);
    if (rc < 0) status_ = LibseccompError("seccomp_rule_add " + SyscallName(nr), rc);
  }

  Status status() const { return status_; }

 private:
  scmp_filter_ctx ctx_;
  Status status_;
};

Status AddExecutorRules(scmp_filter_ctx ctx) {
  RuleAdder rules(ctx);
  for (int nr : kAllowedSyscalls) rules.Add(kAllow, nr);
  for (int nr : kEpermSyscalls) rules.Add(kEperm, nr);
  rules.Add(kEnotty, SCMP_SYS(ioctl));
#ifdef SHAPEX_UNDER_ASAN
  // AddressSanitizer probes whether memory is readable by writing it into a pipe (for example
  // while unwinding a C++ exception). Sanitizer builds only; release policies never allow it.
  rules.Add(kAllow, SCMP_SYS(pipe2));
#endif

  // No new executable memory: the interpreter never generates code, so PROT_EXEC can only mean
  // an exploit staging shellcode. Existing code pages stay executable.
  rules.Add(kAllow, SCMP_SYS(mmap), {ArgBitsClear(2, PROT_EXEC)});
  rules.Add(kAllow, SCMP_SYS(mprotect), {ArgBitsClear(2, PROT_EXEC)});

  for (int op : kAllowedFutexOps) {
    rules.Add(kAllow, SCMP_SYS(futex),
              {scmp_arg_cmp{.arg = 1,
                            .op = SCMP_CMP_MASKED_EQ,
                            .datum_a = kFutexCommandMask,
                            .datum_b = static_cast<uint64_t>(op)}});
  }
  for (int command : kAllowedFcntlCommands) {
    rules.Add(kAllow, SCMP_SYS(fcntl), {Arg32Equals(1, static_cast<uint32_t>(command))});
  }

  // glibc implements fstat(fd) as newfstatat(fd, "", buf, AT_EMPTY_PATH). Path lookups (stat of
  // a name) are probes: EPERM like open.
  rules.Add(kAllow, SCMP_SYS(newfstatat), {ArgBitsSet(3, AT_EMPTY_PATH)});
  rules.Add(kEperm, SCMP_SYS(newfstatat), {ArgBitsClear(3, AT_EMPTY_PATH)});

  // getrlimit is prlimit64(0, resource, NULL, &old): reading is fine, changing is refused.
  rules.Add(kAllow, SCMP_SYS(prlimit64), {ArgEquals(2, 0)});
  rules.Add(kEperm, SCMP_SYS(prlimit64), {ArgNotEquals(2, 0)});

  // memfd_create for result segments: close-on-exec and sealable only (no MFD_HUGETLB, no
  // MFD_EXEC).
  rules.Add(kAllow, SCMP_SYS(memfd_create),
            {ArgBitsClear(1, ~static_cast<uint64_t>(MFD_CLOEXEC | MFD_ALLOW_SEALING))});
  // Socket options of the connection it was given (UnixSocket::Adopt reads SO_TYPE, SO_DOMAIN
  // and SO_PEERCRED); protocol-level options have no use on a Unix socket.
  rules.Add(kAllow, SCMP_SYS(getsockopt), {Arg32Equals(1, SOL_SOCKET)});

  // send() is sendto(fd, buf, len, flags, NULL, 0); an explicit destination is never needed.
  rules.Add(kAllow, SCMP_SYS(sendto), {ArgEquals(4, 0)});

  rules.Add(kAllow, SCMP_SYS(kill), {Arg32Equals(0, kSelfPid)});
  rules.Add(kAllow, SCMP_SYS(tkill), {Arg32Equals(0, kSelfPid)});
  rules.Add(kAllow, SCMP_SYS(tgkill), {Arg32Equals(0, kSelfPid)});
  return rules.status();
}

// seccomp_export_bpf writes the program to a descriptor (2.5 has no in-memory export), so
// export into a memfd and read it back.
Result<std::vector<sock_filter>> ExportBpf(scmp_filter_ctx ctx) {
  ScopedFd memfd(memfd_create("shapex-seccomp-bpf", MFD_CLOEXEC));
  if (!memfd) return SandboxError(ErrnoStatus("memfd_create").message());
  int rc = seccomp_export_bpf(ctx, memfd.get());
  if (rc < 0) return LibseccompError("seccomp_export_bpf", rc);
  struct stat st {};
  if (fstat(memfd.get(), &st) != 0) return SandboxError(ErrnoStatus("fstat").message());
  size_t bytes = static_cast<size_t>(st.st_size);
  if (bytes == 0 || bytes % sizeof(sock_filter) != 0) {
    return SandboxError(fmt::format("seccomp_export_bpf produced {} bytes", bytes));
  }
  std::vector<sock_filter> program(bytes / sizeof(sock_filter));
  auto* out = reinterpret_cast<char*>(program.data());
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = pread(memfd.get(), out + done, bytes - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n == 0 ? EIO : errno;
      return SandboxError(ErrnoStatus("pread", "seccomp program", err).message());
    }
    done += static_cast<size_t>(n);
  }
  return program;
}

}  // namespace

Result<SeccompProgram> SeccompProgram::BuildExecutorPolicy() {
#if !defined(__x86_64__) || defined(__ILP32__)
  return SandboxError("the executor seccomp policy supports only x86_64 (64-bit ABI)");
#else
  if (seccomp_arch_native() != SCMP_ARCH_X86_64) {
    return SandboxError("libseccomp does not report x86_64 as the native architecture");
  }
  FilterContext ctx(seccomp_init(kKill));
  if (!ctx) return SandboxError("seccomp_init failed");
  // A foreign ABI (i386 through int 0x80) is an escape attempt: kill, like unknown syscalls.
  // libseccomp's x86_64 filter also sends x32 system call numbers to this action.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, kKill);
  if (rc < 0) return LibseccompError("seccomp_attr_set(ACT_BADARCH)", rc);
  // A binary search over system call numbers instead of a linear scan.
  rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (rc < 0) return LibseccompError("seccomp_attr_set(CTL_OPTIMIZE)", rc);
  RETURN_IF_ERROR(AddExecutorRules(ctx.get()));
  ASSIGN_OR_RETURN(std::vector<sock_filter> program, ExportBpf(ctx.get()));
  return FromInstructions(std::move(program));
#endif
}

Result<SeccompProgram> SeccompProgram::FromInstructions(std::vector<sock_filter> instructions) {
  if (instructions.empty()) return InvalidArgument("empty seccomp program");
  if (instructions.size() > BPF_MAXINSNS) {
    return InvalidArgument(fmt::format("seccomp program has {} instructions, the kernel allows {}",
                                       instructions.size(), BPF_MAXINSNS));
  }
  return SeccompProgram(std::move(instructions));
}

Status InstallSeccomp(const SeccompProgram& program) {
  internal::StepFailure failure =
      internal::InstallSeccompRaw(program.instructions().data(), program.size());
  return internal::StepStatus(JailStep::kSeccomp, failure);
}

}  // namespace shapex::sandbox
