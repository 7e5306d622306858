// The executor seccomp policy in real jailed processes: each forbidden call either kills the
// child with SIGSYS or fails with the documented errno, and the calls an executor needs work.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "shapex/sandbox/jail.h"
#include "shapex/sandbox/seccomp_filter.h"
#include "testing/jailed_child.h"
#include "testing/status_matchers.h"

namespace shapex::sandbox {
namespace {

using ::shapex_testing::ChildRun;
using ::shapex_testing::ReportLine;
using ::shapex_testing::RunJailed;

constexpr int kX32Bit = 0x40000000;

// What a jailed child may touch in the denial cases: the test process's host pid (invisible in
// the child's pid namespace) and an unconnected socket the parent made.
struct DenialContext {
  pid_t host_parent = 0;
  int socket_fd = -1;
};

struct DenialCase {
  const char* name;
  std::function<long(const DenialContext&)> attempt;
  std::optional<int> expected_errno;  // nullopt: killed with SIGSYS
  // Why this host cannot run the case at all (then it is skipped with that reason).
  std::function<std::optional<std::string>()> host_refuses = nullptr;
};

long Int80Getpid() {
  long result;
  asm volatile("int $0x80" : "=a"(result) : "a"(20) : "memory");  // i386 getpid
  return result;
}

// Some kernels refuse i386 system calls everywhere (no IA32 emulation, or ia32_emulation=0):
// `int $0x80` then kills the caller with SIGSEGV before any seccomp filter sees it, so there is
// no policy to test. Probed in a plain child, outside any sandbox.
std::optional<std::string> HostRefusesI386() {
  pid_t pid = fork();
  if (pid == 0) _exit(Int80Getpid() > 0 ? 0 : 1);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return std::nullopt;
  if (WIFSIGNALED(status)) {
    return "this kernel refuses i386 system calls (int $0x80) outside any sandbox too: killed by "
           "signal " + std::to_string(WTERMSIG(status));
  }
  return std::nullopt;
}

const DenialCase kDenialCases[] = {
    // Killed: there is no benign reason for an executor to try these.
    {"SocketInet", [](auto&) { return syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); }, {}},
    {"SocketUnix", [](auto&) { return syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0); }, {}},
    {"Connect",
     [](const DenialContext& c) {
       sockaddr_un address{};
       address.sun_family = AF_UNIX;
       std::strcpy(address.sun_path + 1, "shapex-test");  // abstract: no filesystem needed
       return syscall(SYS_connect, c.socket_fd, &address, sizeof(address));
     },
     {}},
    {"PtraceTraceme", [](auto&) { return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0); }, {}},
    {"PtraceAttachParent",
     [](const DenialContext& c) { return syscall(SYS_ptrace, PTRACE_ATTACH, c.host_parent, 0, 0); },
     {}},
    {"GlibcFork", [](auto&) { return static_cast<long>(fork()); }, {}},
    {"Vfork", [](auto&) { return syscall(SYS_vfork); }, {}},
    {"Clone3",
     [](auto&) {
       uint64_t args[11] = {};
       args[4] = SIGCHLD;
       return syscall(SYS_clone3, args, sizeof(args));
     },
     {}},
    {"Execve",
     [](auto&) {
       const char* argv[] = {"/bin/true", nullptr};
       return syscall(SYS_execve, "/bin/true", argv, nullptr);
     },
     {}},
    {"KillParent",
     [](const DenialContext& c) { return syscall(SYS_kill, c.host_parent, SIGKILL); },
     {}},
    {"KillProcessGroup", [](auto&) { return syscall(SYS_kill, 0, SIGKILL); }, {}},
    {"KillEveryone", [](auto&) { return syscall(SYS_kill, -1, SIGKILL); }, {}},
    {"TgkillParent",
     [](const DenialContext& c) {
       return syscall(SYS_tgkill, c.host_parent, c.host_parent, SIGKILL);
     },
     {}},
    {"Mount", [](auto&) { return syscall(SYS_mount, "none", "/", "tmpfs", 0, nullptr); }, {}},
    {"UnshareUser", [](auto&) { return syscall(SYS_unshare, CLONE_NEWUSER); }, {}},
    {"Setns", [](auto&) { return syscall(SYS_setns, 0, 0); }, {}},
    {"Bpf", [](auto&) { return syscall(SYS_bpf, 0, nullptr, 0); }, {}},
    {"Keyctl", [](auto&) { return syscall(SYS_keyctl, 0, 0, 0, 0, 0); }, {}},
    {"MemfdHugetlb",
     [](auto&) { return syscall(SYS_memfd_create, "x", MFD_CLOEXEC | MFD_HUGETLB); },
     {}},
    {"Mkdir", [](auto&) { return syscall(SYS_mkdir, "/x", 0700); }, {}},
    {"MmapExec",
     [](auto&) {
       return reinterpret_cast<long>(
           mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
     },
     {}},
    {"MprotectExec",
     [](auto&) {
       void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
       return static_cast<long>(mprotect(page, 4096, PROT_READ | PROT_EXEC));
     },
     {}},
    {"X32Abi", [](auto&) { return syscall(kX32Bit | SYS_getpid); }, {}},
    {"I386Abi", [](auto&) { return Int80Getpid(); }, {}, HostRefusesI386},
    {"IoUring", [](auto&) { return syscall(SYS_io_uring_setup, 1, nullptr); }, {}},
    // EPERM (ENOTTY): harmless probes that libraries make and handle.
    {"Open", [](auto&) { return syscall(SYS_open, "/etc/passwd", O_RDONLY); }, EPERM},
    {"Openat", [](auto&) { return syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY); }, EPERM},
    {"StatPath",
     [](auto&) {
       struct stat st;
       return syscall(SYS_newfstatat, AT_FDCWD, "/", &st, 0);
     },
     EPERM},
    {"Access", [](auto&) { return syscall(SYS_access, "/", F_OK); }, EPERM},
    {"Prctl", [](auto&) { return syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0); }, EPERM},
    {"SetRlimit",
     [](auto&) {
       rlimit limit{1, 1};
       return syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &limit, nullptr);
     },
     EPERM},
    {"Ioctl", [](auto&) { return syscall(SYS_ioctl, 0, 0x5401 /* TCGETS */, nullptr); }, ENOTTY},
};

class SeccompInJailTest : public shapex_testing::WithExecutorPolicy {
 protected:
};

class SeccompDenialTest : public SeccompInJailTest,
                          public testing::WithParamInterface<DenialCase> {};

TEST_P(SeccompDenialTest, JailedChildIsDenied) {
  const DenialCase& denial = GetParam();
  if (denial.host_refuses) {
    if (std::optional<std::string> why = denial.host_refuses()) GTEST_SKIP() << *why;
  }
  DenialContext context;
  context.host_parent = getpid();
  context.socket_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(context.socket_fd, 0);
  JailOptions options;
  options.limits = shapex_testing::TestLimits();
  options.keep_fds = {context.socket_fd};
  ChildRun run = RunJailed(options, *program_, [&](int out, int) {
    ReportLine(out, "started=1");
    errno = 0;
    long result = denial.attempt(context);
    ReportLine(out, "result=%ld", result);
    ReportLine(out, "errno=%d", errno);
    return 0;
  });
  close(context.socket_fd);
  ASSERT_OK(run.spawn);
  EXPECT_EQ(run.values["started"], "1");
  if (denial.expected_errno) {
    EXPECT_TRUE(run.exited) << "killed by signal " << run.signal;
    EXPECT_EQ(run.values["result"], "-1") << run.output;
    EXPECT_EQ(run.values["errno"], std::to_string(*denial.expected_errno)) << run.output;
  } else {
    EXPECT_FALSE(run.exited) << run.output;
    EXPECT_EQ(run.signal, SIGSYS) << run.output;
    EXPECT_EQ(run.values.count("result"), 0u) << run.output;
  }
}

INSTANTIATE_TEST_SUITE_P(Policy, SeccompDenialTest, testing::ValuesIn(kDenialCases),
                         [](const testing::TestParamInfo<DenialCase>& info) {
                           return std::string(info.param.name);
                         });

TEST_F(SeccompInJailTest, AllowedCallsStillWorkInTheJail) {
  // A sealed memfd with content and a connected socket pair, as the supervisor would pass them.
  int memfd =
      static_cast<int>(syscall(SYS_memfd_create, "shapex-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_GE(memfd, 0);
  ASSERT_EQ(write(memfd, "sealed", 6), 6);
  ASSERT_EQ(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), 0);
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  JailOptions options;
  options.limits = shapex_testing::TestLimits();
  options.limits.open_files = 32;
  options.keep_fds = {memfd, pair[0], pair[1]};
  std::string status_file;
  ChildRun run = RunJailed(
      options, *program_,
      [&](int out, int hold) {
        static volatile sig_atomic_t got_signal = 0;
        void* block =
            mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (block != MAP_FAILED) std::memset(block, 0x5a, 1 << 20);
        ReportLine(out, "mmap=%d", block != MAP_FAILED && munmap(block, 1 << 20) == 0);
        uint32_t word = 0;
        ReportLine(out, "futex_wake=%ld",
                   syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0));
        long waited = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 1, nullptr, nullptr, 0);
        ReportLine(out, "futex_wait=%ld/%d", waited, errno);
        char random[16];
        ReportLine(out, "getrandom=%ld", syscall(SYS_getrandom, random, sizeof(random), 0));
        timespec now{};
        timespec nap{0, 1000};
        ReportLine(out, "clock=%d",
                   clock_gettime(CLOCK_MONOTONIC, &now) == 0 && nanosleep(&nap, nullptr) == 0);
        struct stat st {};
        ReportLine(out, "fstat_size=%ld",
                   fstat(memfd, &st) == 0 ? static_cast<long>(st.st_size) : -1L);
        ReportLine(out, "seals=%d", fcntl(memfd, F_GET_SEALS));
        void* view = mmap(nullptr, 6, PROT_READ, MAP_SHARED, memfd, 0);
        ReportLine(out, "memfd=%.6s",
                   view != MAP_FAILED ? static_cast<const char*>(view) : "failed");
        char byte = 'x';
        iovec iov{&byte, 1};
        msghdr message{};
        message.msg_iov = &iov;
        message.msg_iovlen = 1;
        bool sent = sendmsg(pair[0], &message, MSG_NOSIGNAL) == 1;
        byte = 0;
        bool received = recvmsg(pair[1], &message, 0) == 1 && byte == 'x';
        bool sent_plain = send(pair[1], "y", 1, MSG_NOSIGNAL) == 1;
        char got = 0;
        bool received_plain = recv(pair[0], &got, 1, 0) == 1 && got == 'y';
        ReportLine(out, "socketpair=%d%d%d%d", sent, received, sent_plain, received_plain);
        pollfd idle{pair[0], POLLIN, 0};
        ReportLine(out, "poll=%d", poll(&idle, 1, 0));
        int epoll = epoll_create1(EPOLL_CLOEXEC);
        epoll_event interest{};
        interest.events = EPOLLIN;
        epoll_event ready{};
        ReportLine(out, "epoll=%d/%d/%d", epoll >= 0,
                   epoll_ctl(epoll, EPOLL_CTL_ADD, pair[0], &interest),
                   epoll_wait(epoll, &ready, 1, 0));
        ReportLine(out, "ids=%d/%ld", getpid(), syscall(SYS_gettid));
        ReportLine(out, "kill_self=%d", kill(1, 0));
        signal(SIGUSR1, [](int) { got_signal = 1; });
        raise(SIGUSR1);
        ReportLine(out, "raise=%d", static_cast<int>(got_signal));
        rlimit files{};
        int got_limit = getrlimit(RLIMIT_NOFILE, &files);
        ReportLine(out, "nofile=%d/%llu", got_limit,
                   static_cast<unsigned long long>(files.rlim_cur));
        ReportLine(out, "yield=%d", sched_yield());
        // A sealed result segment, as ipc::SegmentBuilder makes one, and the RLIMIT_FSIZE bound.
        int segment = static_cast<int>(memfd_create("result", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        bool sized = ftruncate(segment, 4096) == 0;
        void* bytes = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, segment, 0);
        bool filled =
            bytes != MAP_FAILED && std::memcpy(bytes, "result", 6) && munmap(bytes, 4096) == 0;
        bool sealed = fcntl(segment, F_ADD_SEALS,
                            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0;
        int grow_sealed = ftruncate(segment, 8192) == 0 ? 0 : errno;
        ReportLine(out, "segment=%d%d%d%d/%d/%d", segment >= 0, sized, filled, sealed,
                   fcntl(segment, F_GET_SEALS), grow_sealed);
        int huge = static_cast<int>(memfd_create("huge", MFD_CLOEXEC));
        ReportLine(out, "fsize=%d", ftruncate(huge, off_t{2} << 30) == 0 ? 0 : errno);
        ucred peer{};
        socklen_t peer_size = sizeof(peer);
        ReportLine(out, "peercred=%d",
                   getsockopt(pair[0], SOL_SOCKET, SO_PEERCRED, &peer, &peer_size));
        ReportLine(out, "shutdown=%d", shutdown(pair[0], SHUT_WR));
        shapex_testing::WaitForRelease(hold);
        return 0;
      },
      [&](const JailedProcess& process) {
        std::ifstream in("/proc/" + std::to_string(process.pid()) + "/status");
        status_file.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      });
  close(memfd);
  close(pair[0]);
  close(pair[1]);
  ASSERT_OK(run.spawn);
  EXPECT_TRUE(run.exited) << "killed by signal " << run.signal << "\n" << run.output;
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.values["mmap"], "1");
  EXPECT_EQ(run.values["futex_wake"], "0");
  EXPECT_EQ(run.values["futex_wait"], "-1/" + std::to_string(EAGAIN));
  EXPECT_EQ(run.values["getrandom"], "16");
  EXPECT_EQ(run.values["clock"], "1");
  EXPECT_EQ(run.values["fstat_size"], "6");
  EXPECT_EQ(run.values["seals"], std::to_string(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
  EXPECT_EQ(run.values["memfd"], "sealed");
  EXPECT_EQ(run.values["socketpair"], "1111");
  EXPECT_EQ(run.values["poll"], "0");
  EXPECT_EQ(run.values["epoll"], "1/0/0");
  EXPECT_EQ(run.values["ids"], "1/1");
  EXPECT_EQ(run.values["kill_self"], "0");
  EXPECT_EQ(run.values["raise"], "1");
  EXPECT_EQ(run.values["nofile"], "0/32");
  EXPECT_EQ(run.values["yield"], "0");
  EXPECT_EQ(run.values["segment"],
            "1111/" + std::to_string(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) +
                "/" + std::to_string(EPERM));
  EXPECT_EQ(run.values["fsize"], std::to_string(EFBIG));
  EXPECT_EQ(run.values["peercred"], "0");
  EXPECT_EQ(run.values["shutdown"], "0");
  // Seen from outside: filter mode, one filter, no_new_privs.
  EXPECT_THAT(status_file, testing::ContainsRegex("Seccomp:\\s+2"));
  EXPECT_THAT(status_file, testing::ContainsRegex("Seccomp_filters:\\s+1"));
  EXPECT_THAT(status_file, testing::ContainsRegex("NoNewPrivs:\\s+1"));
}

}  // namespace
}  // namespace shapex::sandbox
