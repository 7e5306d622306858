// SpawnJailed end to end: what a jailed child sees from inside (reported through a pipe) and
// what the parent sees from outside (/proc/<pid>), failures that name the step or the missing
// namespace, SandboxMode::kNone, an unprivileged caller, and the spawn timings.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "shapex/sandbox/jail.h"
#include "testing/host_probes.h"
#include "testing/jailed_child.h"
#include "testing/open_fds.h"
#include "testing/status_matchers.h"

namespace shapex::sandbox {
namespace {

using ::shapex_testing::ChildRun;
using ::shapex_testing::IsError;
using ::shapex_testing::ReportLine;
using ::shapex_testing::RunForked;
using ::shapex_testing::RunJailed;
using ::shapex_testing::WaitForRelease;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// "a b c" -> "a b c" with runs of whitespace collapsed and ends trimmed.
std::string Squeeze(const std::string& text) {
  std::string out;
  for (char c : text) {
    bool space = c == ' ' || c == '\t' || c == '\n';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// "3,5,9," for {9, 3, 5}.
std::string JoinSorted(std::vector<int> fds) {
  std::sort(fds.begin(), fds.end());
  std::string out;
  for (int fd : fds) out += std::to_string(fd) + ",";
  return out;
}

ino_t NamespaceInode(const std::string& pid, const char* kind) {
  struct stat st {};
  return stat(("/proc/" + pid + "/ns/" + kind).c_str(), &st) == 0 ? st.st_ino : 0;
}

// Everything a child can observe about its confinement before seccomp, as key=value lines.
void ReportConfinement(int out) {
  ReportLine(out, "ids=%d/%d/%d/%d", getuid(), geteuid(), getgid(), getegid());
  ReportLine(out, "pid=%d", getpid());
  ReportLine(out, "ppid=%d", getppid());
  ReportLine(out, "group_leader=%d", getpgrp() == getpid());
  char host[128] = {};
  gethostname(host, sizeof(host) - 1);
  ReportLine(out, "hostname=%s", host);
  std::string interfaces;
  if (struct if_nameindex* list = ::if_nameindex()) {
    for (struct if_nameindex* i = list; i->if_index != 0; ++i)
      interfaces += std::string(i->if_name) + ",";
    if_freenameindex(list);
  }
  ReportLine(out, "interfaces=%s", interfaces.c_str());
  std::string entries;
  if (DIR* dir = opendir("/")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') entries += std::string(entry->d_name) + ",";
    }
    closedir(dir);
  }
  ReportLine(out, "root_entries=%s", entries.c_str());
  ReportLine(out, "proc_errno=%d", access("/proc", F_OK) == 0 ? 0 : errno);
  ReportLine(out, "mkdir_errno=%d", mkdir("/x", 0700) == 0 ? 0 : errno);
  const std::pair<const char*, int> resources[] = {
      {"as", RLIMIT_AS},       {"cpu", RLIMIT_CPU},   {"nofile", RLIMIT_NOFILE},
      {"fsize", RLIMIT_FSIZE}, {"core", RLIMIT_CORE}, {"nproc", RLIMIT_NPROC}};
  for (auto [name, resource] : resources) {
    rlimit limit{};
    getrlimit(static_cast<__rlimit_resource_t>(resource), &limit);
    ReportLine(out, "rlimit_%s=%llu/%llu", name, static_cast<unsigned long long>(limit.rlim_cur),
               static_cast<unsigned long long>(limit.rlim_max));
  }
  ReportLine(out, "no_new_privs=%d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  ReportLine(out, "dumpable=%d", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
  int death_signal = 0;
  prctl(PR_GET_PDEATHSIG, &death_signal, 0, 0, 0);
  ReportLine(out, "pdeathsig=%d", death_signal);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2] = {};
  syscall(SYS_capget, &header, caps);
  ReportLine(out, "caps=%x%x%x%x", caps[0].effective, caps[1].effective, caps[0].permitted,
             caps[1].permitted);
  std::string fds;
  for (int fd = 0; fd < 4096; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0) fds += std::to_string(fd) + ",";
  }
  ReportLine(out, "open_fds=%s", fds.c_str());
}

// Waits with a system call the seccomp policy allows (pause(2) is not on the list).
int BlockForever() {
  for (;;) poll(nullptr, 0, -1);
}

class JailTest : public shapex_testing::WithExecutorPolicy {
 protected:
  // The jail's first step is a user namespace: a host that refuses them skips, saying why.
  void SetUp() override {
    if (auto why = shapex_testing::UserNamespacesUnavailable()) GTEST_SKIP() << *why;
  }
  static JailOptions Options() {
    JailOptions options;
    options.limits = shapex_testing::TestLimits();
    return options;
  }
};

TEST_F(JailTest, ProbeSucceedsOnThisMachine) { EXPECT_OK(ProbeJailSupport()); }

// Every step up to (not including) seccomp, observed from inside and outside the child.
TEST_F(JailTest, EveryStepIsVisibleFromInside) {
  int extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(extra, 0);
  JailOptions options = Options();
  options.stop_after = JailStep::kNotDumpable;
  options.keep_fds = {extra};
  options.limits.cpu_seconds = 77;
  options.limits.open_files = 48;
  if (!shapex_testing::UnderAddressSanitizer()) options.limits.address_space_bytes = 3ull << 30;
  std::string uid_map, gid_map, setgroups, mountinfo, status, outside_root;
  std::vector<std::string> shared_namespaces;
  ChildRun run = RunJailed(
      options, *program_,
      [](int out, int hold) {
        ReportConfinement(out);
        WaitForRelease(hold);
        return 0;
      },
      [&](const JailedProcess& process) {
        std::string pid = std::to_string(process.pid());
        uid_map = Squeeze(ReadFile("/proc/" + pid + "/uid_map"));
        gid_map = Squeeze(ReadFile("/proc/" + pid + "/gid_map"));
        setgroups = Squeeze(ReadFile("/proc/" + pid + "/setgroups"));
        mountinfo = ReadFile("/proc/" + pid + "/mountinfo");
        status = ReadFile("/proc/" + pid + "/status");
        for (const char* kind : {"user", "pid", "mnt", "ipc", "uts", "net"}) {
          if (NamespaceInode(pid, kind) == NamespaceInode("self", kind)) {
            shared_namespaces.push_back(kind);
          }
        }
        if (DIR* dir = opendir(("/proc/" + pid + "/root").c_str())) {
          while (dirent* entry = readdir(dir)) {
            if (entry->d_name[0] != '.') outside_root += entry->d_name;
          }
          closedir(dir);
        }
      });
  close(extra);
  ASSERT_OK(run.spawn);
  ASSERT_TRUE(run.exited) << "killed by signal " << run.signal << "\n" << run.output;
  EXPECT_EQ(run.exit_code, 0);

  std::string uid = std::to_string(geteuid());
  std::string gid = std::to_string(getegid());
  // User namespace: the caller's ids mapped to themselves, setgroups denied.
  EXPECT_EQ(run.values["ids"], uid + "/" + uid + "/" + gid + "/" + gid);
  EXPECT_EQ(uid_map, uid + " " + uid + " 1");
  EXPECT_EQ(gid_map, gid + " " + gid + " 1");
  EXPECT_EQ(setgroups, "deny");
  EXPECT_THAT(shared_namespaces, testing::IsEmpty());
  // Pid namespace: the child is its init; its parent is outside.
  EXPECT_EQ(run.values["pid"], "1");
  EXPECT_EQ(run.values["ppid"], "0");
  EXPECT_EQ(run.values["group_leader"], "1");
  EXPECT_EQ(run.values["hostname"], "shapex");
  EXPECT_EQ(run.values["interfaces"], "lo,");
  // Mount jail: one read-only tmpfs, empty; no /proc.
  EXPECT_EQ(run.values["root_entries"], "");
  EXPECT_EQ(outside_root, "");
  EXPECT_EQ(run.values["proc_errno"], std::to_string(ENOENT));
  EXPECT_EQ(run.values["mkdir_errno"], std::to_string(EROFS));
  EXPECT_EQ(std::count(mountinfo.begin(), mountinfo.end(), '\n'), 1) << mountinfo;
  EXPECT_THAT(mountinfo, testing::ContainsRegex(" / / ro,nosuid,nodev,noexec.* - tmpfs "));
  EXPECT_EQ(run.values["caps"], "0000");
  // Rlimits.
  if (!shapex_testing::UnderAddressSanitizer()) {
    EXPECT_EQ(run.values["rlimit_as"], "3221225472/3221225472");
  }
  EXPECT_EQ(run.values["rlimit_cpu"], "77/77");
  EXPECT_EQ(run.values["rlimit_nofile"], "48/48");
  EXPECT_EQ(run.values["rlimit_fsize"], "1073741824/1073741824");
  EXPECT_EQ(run.values["rlimit_core"], "0/0");
  EXPECT_EQ(run.values["rlimit_nproc"], "0/0");
  // The prctl steps.
  EXPECT_EQ(run.values["no_new_privs"], "1");
  EXPECT_EQ(run.values["dumpable"], "0");
  EXPECT_EQ(run.values["pdeathsig"], std::to_string(SIGKILL));
  EXPECT_THAT(status, testing::ContainsRegex("Seccomp:\\s+0"));  // stopped before seccomp
  // Descriptors: exactly the kept ones (the extra one, the report pipe, the hold pipe).
  EXPECT_EQ(run.values["open_fds"], JoinSorted(run.kept_fds));
}

TEST_F(JailTest, BodyExitCodeAndKill) {
  ChildRun run = RunJailed(Options(), *program_, [](int, int) { return 42; });
  ASSERT_OK(run.spawn);
  EXPECT_TRUE(run.exited);
  EXPECT_EQ(run.exit_code, 42);

  auto process = SpawnJailed(Options(), *program_, [] { return BlockForever(); });
  ASSERT_OK(process);
  EXPECT_OK(process->Kill());
  auto exit = process->Wait();
  ASSERT_OK(exit);
  EXPECT_FALSE(exit->exited);
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_EQ(exit->ToString(), "killed by SIGKILL");
  EXPECT_OK(process->Kill());  // already reaped: nothing to do
}

// The child is an init process, which ignores the soft-limit SIGXCPU; soft = hard makes the kernel
// send SIGKILL, which reaches it. Burns one second of CPU.
TEST_F(JailTest, CpuLimitKillsTheInitProcess) {
  JailOptions options = Options();
  options.limits.cpu_seconds = 1;
  ChildRun run = RunJailed(options, *program_, [](int, int) {
    for (;;) asm volatile("" ::: "memory");  // spin; the barrier keeps the loop alive
    return 0;
  });
  ASSERT_OK(run.spawn);
  EXPECT_FALSE(run.exited);
  EXPECT_EQ(run.signal, SIGKILL);
}

TEST_F(JailTest, NoDescriptorOrChildLeaksInTheParent) {
  size_t before = shapex_testing::CountOpenFds();
  {
    auto process = SpawnJailed(Options(), *program_, [] { return BlockForever(); });
    ASSERT_OK(process);
  }  // destroyed unwaited: killed and reaped
  EXPECT_EQ(shapex_testing::CountOpenFds(), before);
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(JailTest, AFailingStepIsReportedByName) {
  JailOptions options = Options();
  options.limits.open_files = std::stoull(ReadFile("/proc/sys/fs/nr_open")) + 1;
  auto process = SpawnJailed(options, *program_, [] { return 0; });
  EXPECT_THAT(process, IsError(ErrorKind::kSandboxError));
  EXPECT_THAT(process.error().message(),
              HasSubstr("jail step 'rlimits' failed: setrlimit(RLIMIT_NOFILE): Operation not "
                        "permitted"));
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1) << "the failed child must be reaped";
}

TEST_F(JailTest, BadOptionsAreRejectedBeforeCloning) {
  JailOptions closed_fd = Options();
  closed_fd.keep_fds = {999};
  EXPECT_THAT(SpawnJailed(closed_fd, *program_, [] { return 0; }),
              IsError(ErrorKind::kInvalidArgument));
  EXPECT_THAT(SpawnJailed(Options(), *program_, nullptr), IsError(ErrorKind::kInvalidArgument));
}

TEST_F(JailTest, KeepsUpToTheMaximumNumberOfDescriptors) {
  std::vector<int> fds;
  for (size_t i = 0; i < kMaxKeptFds; ++i) fds.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
  JailOptions options = Options();
  options.keep_fds = fds;
  auto process = SpawnJailed(options, *program_, [] { return 0; });
  ASSERT_OK(process);
  EXPECT_OK(process->Wait());
  options.keep_fds.push_back(fds.front());  // a duplicate still counts once,
  options.keep_fds.push_back(0);            // but one more distinct descriptor is too many
  EXPECT_THAT(SpawnJailed(options, *program_, [] { return 0; }),
              IsError(ErrorKind::kInvalidArgument));
  for (int fd : fds) close(fd);
}

// Several threads spawning at once: each child briefly holds copies of the other threads' report
// pipes (clone copies every descriptor), which must not confuse anyone's handshake.
TEST_F(JailTest, ConcurrentSpawnsFromSeveralThreads) {
  constexpr int kThreads = 4;
  constexpr int kSpawnsPerThread = 5;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < kSpawnsPerThread; ++i) {
        auto process = SpawnJailed(Options(), *program_, [t] { return 10 + t; });
        if (!process) {
          failures[t] += process.error().ToString() + "; ";
          continue;
        }
        auto exit = process->Wait();
        if (!exit || !exit->exited || exit->exit_code != 10 + t) {
          failures[t] += (exit ? exit->ToString() : exit.error().ToString()) + "; ";
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
}

TEST_F(JailTest, DiesWithTheThreadThatSpawnedIt) {
  struct Spawned {
    pid_t jailed = -1;
    int alive = 0;  // the jailed child had not exited when its parent left
  };
  int pid_pipe[2];
  ASSERT_EQ(pipe2(pid_pipe, O_CLOEXEC), 0);
  const SeccompProgram& program = *program_;
  pid_t middle = fork();
  if (middle == 0) {
    close(pid_pipe[0]);
    auto process = SpawnJailed(Options(), program, [] { return BlockForever(); });
    Spawned spawned;
    if (process) {
      spawned.jailed = process->pid();
      pollfd check{process->pidfd(), POLLIN, 0};
      spawned.alive = poll(&check, 1, 0) == 0;
    }
    (void)!write(pid_pipe[1], &spawned, sizeof(spawned));
    _exit(0);  // no destructor: only the parent-death signal can end the jailed child
  }
  close(pid_pipe[1]);
  Spawned spawned;
  ASSERT_EQ(read(pid_pipe[0], &spawned, sizeof(spawned)), static_cast<ssize_t>(sizeof(spawned)));
  close(pid_pipe[0]);
  ASSERT_GT(spawned.jailed, 0);
  EXPECT_EQ(spawned.alive, 1);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, spawned.jailed, 0));
  waitpid(middle, nullptr, 0);
  if (pidfd < 0) {
    EXPECT_EQ(errno, ESRCH);  // already gone and reaped by init
    return;
  }
  pollfd exited{pidfd, POLLIN, 0};
  // Not a timing assertion: the bound only keeps a broken build from hanging the suite.
  EXPECT_EQ(poll(&exited, 1, 60'000), 1) << "the jailed child outlived its parent";
  close(pidfd);
}

// In a nested user namespace, a namespace limit of 0 makes the machine refuse one kind of
// namespace; the error must name it.
TEST_F(JailTest, ARefusedNamespaceIsNamed) {
  for (const auto& [limit_file, kind] :
       {std::pair{"max_net_namespaces", "network"}, std::pair{"max_user_namespaces", "user"}}) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    const SeccompProgram& program = *program_;
    ChildRun run = RunForked([&](int out) {
      if (unshare(CLONE_NEWUSER) != 0 || !WriteIdentityIdMaps(uid, gid).ok()) {
        ReportLine(out, "skip=cannot create a nested user namespace");
        return 0;
      }
      std::string path = std::string("/proc/sys/user/") + limit_file;
      int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1) {
        ReportLine(out, "skip=cannot write %s (errno %d)", path.c_str(), errno);
        return 0;
      }
      close(fd);
      auto process = SpawnJailed(Options(), program, [] { return 0; });
      ReportLine(out, "spawn=%s", process ? "OK" : process.error().ToString().c_str());
      ReportLine(out, "probe=%s", ProbeJailSupport().ToString().c_str());
      return 0;
    });
    if (run.values.count("skip")) GTEST_SKIP() << run.values["skip"];
    std::string expected = fmt::format("cannot create a {} namespace", kind);
    EXPECT_THAT(run.values["spawn"],
                HasSubstr("SandboxError: jail step 'namespaces' failed: " + expected));
    EXPECT_THAT(run.values["spawn"], HasSubstr(limit_file));
    EXPECT_THAT(run.values["probe"], HasSubstr(expected));
  }
}

// A container runtime's seccomp profile (or an old kernel) refuses clone3 itself; simulated
// here with a filter installed in a forked child.
TEST_F(JailTest, ARefusedClone3IsExplained) {
  const std::pair<int, const char*> cases[] = {
      {EPERM,
       "cannot create a user namespace: clone3: Operation not permitted: user namespaces "
       "are disabled"},
      {ENOSYS, "clone3 is not supported"},
  };
  for (const auto& [error, expected] : cases) {
    const SeccompProgram& program = *program_;
    ChildRun run = RunForked([&program, error = error](int out) {
      auto refuse_clone3 = SeccompProgram::FromInstructions({
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | static_cast<uint32_t>(error)),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      });
      if (!refuse_clone3 || !SetNoNewPrivs().ok() || !InstallSeccomp(*refuse_clone3).ok()) return 2;
      auto process = SpawnJailed(Options(), program, [] { return 0; });
      ReportLine(out, "spawn=%s", process ? "OK" : process.error().ToString().c_str());
      return 0;
    });
    EXPECT_EQ(run.exit_code, 0);
    EXPECT_THAT(run.values["spawn"], HasSubstr("SandboxError: jail step 'namespaces' failed: "));
    EXPECT_THAT(run.values["spawn"], HasSubstr(expected));
  }
}

TEST_F(JailTest, SandboxNoneWarnsAndKeepsOnlyTheUnprivilegedSteps) {
  JailOptions options = Options();
  options.mode = SandboxMode::kNone;
  testing::internal::CaptureStderr();
  std::string host_net = std::to_string(NamespaceInode("self", "net"));
  ChildRun run = RunJailed(options, *program_, [](int out, int) {
    struct stat st {};
    stat("/proc/self/ns/net", &st);
    ReportLine(out, "net=%lu", static_cast<unsigned long>(st.st_ino));
    ReportLine(out, "etc=%d", access("/etc", F_OK));
    ReportConfinement(out);
    return 0;
  });
  std::string log = testing::internal::GetCapturedStderr();
  ASSERT_OK(run.spawn);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(log, HasSubstr(std::string(kSandboxNoneWarning)));
  EXPECT_EQ(run.values["net"], host_net);
  EXPECT_EQ(run.values["etc"], "0");
  EXPECT_NE(run.values["pid"], "1");
  EXPECT_EQ(run.values["no_new_privs"], "1");
  EXPECT_EQ(run.values["dumpable"], "0");
  EXPECT_EQ(run.values["rlimit_nofile"], "64/64");
  EXPECT_EQ(run.values["open_fds"], JoinSorted(run.kept_fds));
}

// An unprivileged caller (uid 65534, no capabilities) gets the same jail through a user
// namespace. The forked middle process drops to 65534 and spawns; results come back by pipe.
TEST_F(JailTest, WorksForAnUnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534 for this test";
  const SeccompProgram& program = *program_;
  ChildRun run = RunForked([&program](int out) {
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      ReportLine(out, "setup_errno=%d", errno);
      return 1;
    }
    JailOptions inspect = Options();
    inspect.stop_after = JailStep::kNotDumpable;
    std::string uid_map;
    ChildRun inside = RunJailed(
        inspect, program,
        [](int report, int hold) {
          ReportConfinement(report);
          WaitForRelease(hold);
          return 0;
        },
        [&](const JailedProcess& process) {
          uid_map = Squeeze(ReadFile("/proc/" + std::to_string(process.pid()) + "/uid_map"));
        });
    ReportLine(out, "inspect_spawn=%s", inside.spawn.ToString().c_str());
    ReportLine(out, "uid_map=%s", uid_map.c_str());
    for (const char* key : {"ids", "pid", "interfaces", "root_entries", "caps", "no_new_privs"}) {
      ReportLine(out, "inside_%s=%s", key, inside.values[key].c_str());
    }
    ChildRun full = RunJailed(Options(), program, [](int report, int) {
      long fd = syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY);
      ReportLine(report, "openat=%ld/%d", fd, errno);
      syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
      return 0;
    });
    ReportLine(out, "full_spawn=%s", full.spawn.ToString().c_str());
    ReportLine(out, "full_openat=%s", full.values["openat"].c_str());
    ReportLine(out, "full_signal=%d", full.signal);
    return 0;
  });
  ASSERT_EQ(run.exit_code, 0) << run.output;
  if (run.values["inspect_spawn"].find("cannot create a user namespace") != std::string::npos) {
    GTEST_SKIP() << "this machine refuses user namespaces to uid 65534: "
                 << run.values["inspect_spawn"];
  }
  EXPECT_EQ(run.values["inspect_spawn"], "OK");
  EXPECT_EQ(run.values["uid_map"], "65534 65534 1");
  EXPECT_EQ(run.values["inside_ids"], "65534/65534/65534/65534");
  EXPECT_EQ(run.values["inside_pid"], "1");
  EXPECT_EQ(run.values["inside_interfaces"], "lo,");
  EXPECT_EQ(run.values["inside_root_entries"], "");
  EXPECT_EQ(run.values["inside_caps"], "0000");
  EXPECT_EQ(run.values["inside_no_new_privs"], "1");
  EXPECT_EQ(run.values["full_spawn"], "OK");
  EXPECT_EQ(run.values["full_openat"], "-1/" + std::to_string(EPERM));
  EXPECT_EQ(run.values["full_signal"], std::to_string(SIGSYS));
}

// Prints the spawn cost (clone3 + every step + ready) per step; no timing assertions. Runs:
// SHAPEX_JAIL_TIMING_RUNS (default 50).
TEST_F(JailTest, SpawnTimings) {
  int runs = 50;
  if (const char* env = std::getenv("SHAPEX_JAIL_TIMING_RUNS")) runs = std::max(1, std::atoi(env));
  // One row per step, then the two waits for a CPU, total, and spawn + exit + reap.
  std::vector<std::vector<double>> micros(kJailStepCount + 4);
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto process = SpawnJailed(Options(), *program_, [] { return 0; });
    ASSERT_OK(process);
    ASSERT_OK(process->Wait());
    auto reaped = std::chrono::steady_clock::now() - start;
    const JailTimings& timings = process->timings();
    for (size_t s = 0; s < kJailStepCount; ++s) micros[s].push_back(timings.steps[s].count() / 1e3);
    micros[kJailStepCount].push_back(timings.child_start_delay.count() / 1e3);
    micros[kJailStepCount + 1].push_back(timings.ready_delay.count() / 1e3);
    micros[kJailStepCount + 2].push_back(timings.total.count() / 1e3);
    micros[kJailStepCount + 3].push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(reaped).count() / 1e3);
  }
  const char* extra_rows[] = {"wait: child start", "wait: parent wake-up", "total (spawn to ready)",
                              "spawn + exit + reap"};
  fmt::print("SpawnJailed timings over {} runs (microseconds){}:\n", runs,
             shapex_testing::UnderAddressSanitizer() ? " [ASan build]" : "");
  fmt::print("  {:<26} {:>9} {:>9} {:>9}\n", "step", "median", "p99", "max");
  for (size_t s = 0; s < micros.size(); ++s) {
    std::vector<double>& v = micros[s];
    std::sort(v.begin(), v.end());
    std::string name = s < kJailStepCount ? std::string(JailStepName(static_cast<JailStep>(s)))
                                          : extra_rows[s - kJailStepCount];
    size_t p99 = std::min(v.size() - 1, (v.size() * 99) / 100);
    fmt::print("  {:<26} {:>9.1f} {:>9.1f} {:>9.1f}\n", name, v[v.size() / 2], v[p99], v.back());
  }
}

}  // namespace
}  // namespace shapex::sandbox
