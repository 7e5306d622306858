// The executor seccomp policy, evaluated by a small BPF interpreter on the compiled program (every
// system call number, every argument rule, foreign ABIs), plus InstallSeccomp alone in a forked
// child. sandbox_seccomp_denial_test.cc runs the policy in real jailed processes.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "shapex/sandbox/seccomp_filter.h"
#include "testing/jailed_child.h"
#include "testing/status_matchers.h"

namespace shapex::sandbox {
namespace {

using ::shapex_testing::ChildRun;
using ::shapex_testing::IsError;
using ::shapex_testing::ReportLine;
using ::shapex_testing::RunForked;

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kKill = SECCOMP_RET_KILL_PROCESS;
constexpr uint32_t Errno(int err) { return SECCOMP_RET_ERRNO | static_cast<uint32_t>(err); }
constexpr int kX32Bit = 0x40000000;

// A classic-BPF interpreter for the instructions libseccomp emits, to evaluate the program on a
// given seccomp_data without installing it.
uint32_t RunBpf(std::span<const sock_filter> program, const seccomp_data& data) {
  uint32_t a = 0;
  uint32_t x = 0;
  uint32_t mem[BPF_MEMWORDS] = {};
  const auto* bytes = reinterpret_cast<const uint8_t*>(&data);
  for (size_t pc = 0; pc < program.size(); ++pc) {
    const sock_filter& in = program[pc];
    auto jump = [&](bool taken) { pc += taken ? in.jt : in.jf; };
    switch (in.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        if (in.k + 4 > sizeof(data)) return 0xbad;
        std::memcpy(&a, bytes + in.k, 4);
        break;
      case BPF_LD | BPF_IMM:
        a = in.k;
        break;
      case BPF_LD | BPF_MEM:
        a = mem[in.k];
        break;
      case BPF_LDX | BPF_IMM:
        x = in.k;
        break;
      case BPF_LDX | BPF_MEM:
        x = mem[in.k];
        break;
      case BPF_ST:
        mem[in.k] = a;
        break;
      case BPF_STX:
        mem[in.k] = x;
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        a &= in.k;
        break;
      case BPF_ALU | BPF_AND | BPF_X:
        a &= x;
        break;
      case BPF_ALU | BPF_OR | BPF_K:
        a |= in.k;
        break;
      case BPF_MISC | BPF_TAX:
        x = a;
        break;
      case BPF_MISC | BPF_TXA:
        a = x;
        break;
      case BPF_JMP | BPF_JA:
        pc += in.k;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        jump(a == in.k);
        break;
      case BPF_JMP | BPF_JGT | BPF_K:
        jump(a > in.k);
        break;
      case BPF_JMP | BPF_JGE | BPF_K:
        jump(a >= in.k);
        break;
      case BPF_JMP | BPF_JSET | BPF_K:
        jump((a & in.k) != 0);
        break;
      case BPF_JMP | BPF_JEQ | BPF_X:
        jump(a == x);
        break;
      case BPF_JMP | BPF_JGT | BPF_X:
        jump(a > x);
        break;
      case BPF_JMP | BPF_JGE | BPF_X:
        jump(a >= x);
        break;
      case BPF_RET | BPF_K:
        return in.k;
      case BPF_RET | BPF_A:
        return a;
      default:
        ADD_FAILURE() << "unsupported BPF opcode 0x" << std::hex << in.code;
        return 0xbad;
    }
  }
  ADD_FAILURE() << "the program fell off its end";
  return 0xbad;
}

class SeccompPolicyTest : public shapex_testing::WithExecutorPolicy {
 protected:

  static uint32_t Eval(int nr, std::array<uint64_t, 6> args = {},
                       uint32_t arch = AUDIT_ARCH_X86_64) {
    seccomp_data data{};
    data.nr = nr;
    data.arch = arch;
    for (size_t i = 0; i < 6; ++i) data.args[i] = args[i];
    return RunBpf(program_->instructions(), data);
  }

};

// The expected policy, written independently of seccomp_filter.cc.
const std::set<int> kExpectAllowed = {
#ifdef SHAPEX_UNDER_ASAN
    SYS_pipe2,  // sanitizer builds only (seccomp_filter.cc)
#endif
    SYS_read,
    SYS_write,
    SYS_readv,
    SYS_writev,
    SYS_pread64,
    SYS_recvmsg,
    SYS_sendmsg,
    SYS_recvfrom,
    SYS_close,
    SYS_fstat,
    SYS_lseek,
    SYS_shutdown,
    SYS_ftruncate,
    SYS_pwrite64,
    SYS_poll,
    SYS_ppoll,
    SYS_epoll_wait,
    SYS_epoll_pwait,
    SYS_epoll_pwait2,
    SYS_epoll_ctl,
    SYS_epoll_create1,
    SYS_munmap,
    SYS_mremap,
    SYS_madvise,
    SYS_brk,
    SYS_membarrier,
    SYS_clock_gettime,
    SYS_clock_getres,
    SYS_clock_nanosleep,
    SYS_nanosleep,
    SYS_gettimeofday,
    SYS_time,
    SYS_getpid,
    SYS_gettid,
    SYS_getcpu,
    SYS_sched_yield,
    SYS_getrandom,
    SYS_rt_sigreturn,
    SYS_rt_sigprocmask,
    SYS_rt_sigaction,
    SYS_sigaltstack,
    SYS_restart_syscall,
    SYS_exit,
    SYS_exit_group,
};
const std::set<int> kExpectEperm = {
    SYS_open,       SYS_openat,     SYS_openat2,  SYS_creat,
    SYS_stat,       SYS_lstat,      SYS_statx,    SYS_access,
    SYS_faccessat,  SYS_faccessat2, SYS_readlink, SYS_readlinkat,
    SYS_getdents64, SYS_prctl,      SYS_uname,    SYS_sched_getaffinity,
};
// Decided by their arguments; checked one by one below.
const std::set<int> kConditional = {
    SYS_memfd_create, SYS_getsockopt, SYS_mmap, SYS_mprotect, SYS_futex,  SYS_fcntl, SYS_newfstatat,
    SYS_prlimit64,    SYS_sendto,     SYS_kill, SYS_tkill,    SYS_tgkill, SYS_ioctl};

TEST_F(SeccompPolicyTest, ProgramFitsTheKernelLimit) {
  EXPECT_GT(program_->size(), 10u);
  EXPECT_LE(program_->size(), static_cast<size_t>(BPF_MAXINSNS));
  RecordProperty("instructions", static_cast<int>(program_->size()));
  std::printf("executor policy: %zu BPF instructions\n", program_->size());
}

TEST_F(SeccompPolicyTest, EverySystemCallNumberGetsTheExpectedAction) {
  for (int nr = 0; nr < 600; ++nr) {
    if (kConditional.count(nr)) continue;
    uint32_t expected = kExpectAllowed.count(nr) ? kAllow
                        : kExpectEperm.count(nr) ? Errno(EPERM)
                                                 : kKill;
    EXPECT_EQ(Eval(nr), expected) << "system call " << nr;
  }
}

TEST_F(SeccompPolicyTest, AttackSyscallsAreKilled) {
  for (int nr : {SYS_ptrace,
                 SYS_fork,
                 SYS_vfork,
                 SYS_clone,
                 SYS_clone3,
                 SYS_execve,
                 SYS_execveat,
                 SYS_socket,
                 SYS_socketpair,
                 SYS_connect,
                 SYS_bind,
                 SYS_mount,
                 SYS_umount2,
                 SYS_pivot_root,
                 SYS_chroot,
                 SYS_unshare,
                 SYS_setns,
                 SYS_bpf,
                 SYS_keyctl,
                 SYS_add_key,
                 SYS_request_key,
                 SYS_perf_event_open,
                 SYS_userfaultfd,
                 SYS_io_uring_setup,
                 SYS_process_vm_readv,
                 SYS_process_vm_writev,
                 SYS_pidfd_open,
                 SYS_pidfd_getfd,
                 SYS_pidfd_send_signal,
                 SYS_seccomp,
                 SYS_init_module,
                 SYS_kexec_load,
                 SYS_setuid,
                 SYS_mkdir,
                 SYS_unlink}) {
    EXPECT_EQ(Eval(nr), kKill) << "system call " << nr;
  }
}

TEST_F(SeccompPolicyTest, NoExecutableMappings) {
  EXPECT_EQ(Eval(SYS_mmap, {0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS}), kAllow);
  EXPECT_EQ(Eval(SYS_mmap, {0, 4096, PROT_READ, MAP_SHARED, 5}), kAllow);
  EXPECT_EQ(Eval(SYS_mmap, {0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE}), kKill);
  EXPECT_EQ(Eval(SYS_mprotect, {0x1000, 4096, PROT_READ}), kAllow);
  EXPECT_EQ(Eval(SYS_mprotect, {0x1000, 4096, PROT_READ | PROT_WRITE | PROT_EXEC}), kKill);
}

TEST_F(SeccompPolicyTest, OnlyPlainFutexOperations) {
  for (uint64_t op : {FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE,
                      FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, FUTEX_WAKE_BITSET_PRIVATE}) {
    EXPECT_EQ(Eval(SYS_futex, {0x1000, op}), kAllow) << "op " << op;
  }
  for (uint64_t op : {FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE,
                      FUTEX_CMP_REQUEUE_PI, FUTEX_WAIT_REQUEUE_PI, FUTEX_WAKE_OP}) {
    EXPECT_EQ(Eval(SYS_futex, {0x1000, op}), kKill) << "op " << op;
  }
}

TEST_F(SeccompPolicyTest, FcntlCommandsOnReceivedDescriptors) {
  for (uint64_t cmd :
       {F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GET_SEALS, F_ADD_SEALS, F_DUPFD_CLOEXEC}) {
    EXPECT_EQ(Eval(SYS_fcntl, {3, cmd}), kAllow) << "cmd " << cmd;
  }
  for (uint64_t cmd : {F_SETOWN, F_SETSIG, F_SETLK, F_SETLEASE, F_NOTIFY, F_SETPIPE_SZ}) {
    EXPECT_EQ(Eval(SYS_fcntl, {3, cmd}), kKill) << "cmd " << cmd;
  }
}

TEST_F(SeccompPolicyTest, SealableMemfdsForResultSegments) {
  EXPECT_EQ(Eval(SYS_memfd_create, {0x1000, MFD_CLOEXEC | MFD_ALLOW_SEALING}), kAllow);
  EXPECT_EQ(Eval(SYS_memfd_create, {0x1000, MFD_CLOEXEC}), kAllow);
  EXPECT_EQ(Eval(SYS_memfd_create, {0x1000, MFD_CLOEXEC | MFD_HUGETLB}), kKill);
  EXPECT_EQ(Eval(SYS_memfd_create, {0x1000, MFD_CLOEXEC | 0x10 /* MFD_EXEC */}), kKill);
}

TEST_F(SeccompPolicyTest, SocketLevelOptionsOnly) {
  EXPECT_EQ(Eval(SYS_getsockopt, {3, SOL_SOCKET, SO_PEERCRED, 0x1000, 0x2000}), kAllow);
  EXPECT_EQ(Eval(SYS_getsockopt, {3, 6 /* IPPROTO_TCP */, 1, 0x1000, 0x2000}), kKill);
}

TEST_F(SeccompPolicyTest, StatOfADescriptorButNotOfAPath) {
  EXPECT_EQ(Eval(SYS_newfstatat, {3, 0x1000, 0x2000, AT_EMPTY_PATH}), kAllow);
  EXPECT_EQ(Eval(SYS_newfstatat, {static_cast<uint64_t>(AT_FDCWD), 0x1000, 0x2000, 0}),
            Errno(EPERM));
}

TEST_F(SeccompPolicyTest, ReadingRlimitsButNotChangingThem) {
  EXPECT_EQ(Eval(SYS_prlimit64, {0, RLIMIT_NOFILE, 0, 0x1000}), kAllow);
  EXPECT_EQ(Eval(SYS_prlimit64, {0, RLIMIT_NOFILE, 0x1000, 0}), Errno(EPERM));
}

TEST_F(SeccompPolicyTest, SendWithoutADestinationOnly) {
  EXPECT_EQ(Eval(SYS_sendto, {3, 0x1000, 10, 0, 0, 0}), kAllow);
  EXPECT_EQ(Eval(SYS_sendto, {3, 0x1000, 10, 0, 0x2000, 16}), kKill);
}

TEST_F(SeccompPolicyTest, SignalsOnlyToItself) {
  EXPECT_EQ(Eval(SYS_kill, {1, SIGABRT}), kAllow);
  // Only the low 32 bits of an int argument count.
  EXPECT_EQ(Eval(SYS_kill, {0xffffffff00000001ull, SIGABRT}), kAllow);
  EXPECT_EQ(Eval(SYS_tgkill, {1, 1, SIGABRT}), kAllow);
  EXPECT_EQ(Eval(SYS_tkill, {1, SIGABRT}), kAllow);
  for (uint64_t pid : {0ull, 2ull, 4242ull, 0xffffffffull /* -1: everyone */,
                       0xfffffffeull /* -2: a process group */}) {
    EXPECT_EQ(Eval(SYS_kill, {pid, SIGKILL}), kKill) << "pid " << pid;
    EXPECT_EQ(Eval(SYS_tgkill, {pid, pid, SIGKILL}), kKill) << "pid " << pid;
    EXPECT_EQ(Eval(SYS_tkill, {pid, SIGKILL}), kKill) << "pid " << pid;
  }
}

TEST_F(SeccompPolicyTest, IoctlSaysNotATerminal) {
  EXPECT_EQ(Eval(SYS_ioctl, {1, 0x5401 /* TCGETS */}), Errno(ENOTTY));
  EXPECT_EQ(Eval(SYS_ioctl, {1, 0x5412 /* TIOCSTI */}), Errno(ENOTTY));
}

TEST_F(SeccompPolicyTest, ForeignAbisAreKilled) {
  // i386 getpid is 20; x32 system calls carry bit 30 with the x86_64 arch value.
  EXPECT_EQ(Eval(20, {}, AUDIT_ARCH_I386), kKill);
  EXPECT_EQ(Eval(SYS_read, {}, AUDIT_ARCH_I386), kKill);
  EXPECT_EQ(Eval(SYS_read, {}, AUDIT_ARCH_AARCH64), kKill);
  EXPECT_EQ(Eval(kX32Bit | SYS_getpid), kKill);
  EXPECT_EQ(Eval(kX32Bit | SYS_read), kKill);
}

TEST(SeccompProgramTest, FromInstructionsChecksTheSize) {
  EXPECT_THAT(SeccompProgram::FromInstructions({}), IsError(ErrorKind::kInvalidArgument));
  std::vector<sock_filter> huge(BPF_MAXINSNS + 1, BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  EXPECT_THAT(SeccompProgram::FromInstructions(huge), IsError(ErrorKind::kInvalidArgument));
  EXPECT_OK(SeccompProgram::FromInstructions({BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)}));
}

// InstallSeccomp alone, in a plain forked child (no namespaces).
TEST_F(SeccompPolicyTest, InstallAloneInAForkedChild) {
  const SeccompProgram& program = *program_;
  ChildRun run = RunForked([&program](int out) {
    if (!SetNoNewPrivs().ok()) return 2;
    Status installed = InstallSeccomp(program);
    ReportLine(out, "step=%s", installed.ToString().c_str());
    long fd = syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
    ReportLine(out, "openat=%ld errno=%d", fd, errno);
    syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    ReportLine(out, "survived=1");
    return 0;
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  EXPECT_EQ(run.values["openat"], "-1 errno=" + std::to_string(EPERM));
  EXPECT_FALSE(run.exited);
  EXPECT_EQ(run.signal, SIGSYS);
  EXPECT_EQ(run.values.count("survived"), 0u);
}

TEST_F(SeccompPolicyTest, InstallingWithoutNoNewPrivsFailsForAnUnprivilegedProcess) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged uid";
  const SeccompProgram& program = *program_;
  ChildRun run = RunForked([&program](int out) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) return 2;
    ReportLine(out, "step=%s", InstallSeccomp(program).ToString().c_str());
    return 0;
  });
  EXPECT_THAT(run.values["step"],
              testing::HasSubstr("jail step 'seccomp' failed: seccomp(SECCOMP_SET_MODE_FILTER)"));
}

}  // namespace
}  // namespace shapex::sandbox
