// Each jail step alone, in a fork()ed child (inside fresh namespaces where the step needs them).
// The child reports what it observes; assertions happen in the parent.
#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "jail_steps_internal.h"
#include "shapex/sandbox/jail_steps.h"
#include "testing/jailed_child.h"
#include "testing/status_matchers.h"

namespace shapex::sandbox {
namespace {

using ::shapex_testing::ChildRun;
using ::shapex_testing::IsError;
using ::shapex_testing::ReportLine;
using ::shapex_testing::RunForked;
using ::testing::HasSubstr;

// Reports "step=OK" or "step=<status>" and returns the matching exit code.
int ReportStatus(int out, const char* key, const Status& status) {
  ReportLine(out, "%s=%s", key, status.ToString().c_str());
  return status.ok() ? 0 : 1;
}

// Enters new namespaces (always a user namespace, which grants the others) and maps ids.
Status EnterNamespaces(int extra_flags, uid_t uid, gid_t gid) {
  if (unshare(CLONE_NEWUSER | extra_flags) != 0) return SandboxError("unshare failed");
  return WriteIdentityIdMaps(uid, gid);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Descriptors open in the calling process, from /proc/self/fd, joined by ','.
std::string ListOpenFds() {
  std::string fds;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return "?";
  int own = dirfd(dir);
  std::set<int> sorted;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    int fd = std::stoi(entry->d_name);
    if (fd != own) sorted.insert(fd);
  }
  closedir(dir);
  for (int fd : sorted) {
    if (!fds.empty()) fds += ',';
    fds += std::to_string(fd);
  }
  return fds;
}

TEST(JailStepNameTest, EveryStepHasADistinctName) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kJailStepCount; ++i) {
    std::string_view name = JailStepName(static_cast<JailStep>(i));
    EXPECT_NE(name, "unknown");
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kJailStepCount);
  EXPECT_EQ(JailStepName(JailStep::kSeccomp), "seccomp");
}

TEST(IdMapsStepTest, MapsTheCallerToItselfAndDeniesSetgroups) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  ChildRun run = RunForked([&](int out) {
    if (unshare(CLONE_NEWUSER) != 0) return 2;
    int rc = ReportStatus(out, "step", WriteIdentityIdMaps(uid, gid));
    ReportLine(out, "uid=%d", getuid());
    ReportLine(out, "gid=%d", getgid());
    ReportLine(out, "uid_map=%s", ReadFile("/proc/self/uid_map").c_str());
    ReportLine(out, "setgroups=%s", ReadFile("/proc/self/setgroups").c_str());
    ReportLine(out, "setgroups_call_errno=%d", setgroups(0, nullptr) == 0 ? 0 : errno);
    return rc;
  });
  ASSERT_TRUE(run.exited) << run.output;
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.values["step"], "OK");
  EXPECT_EQ(run.values["uid"], std::to_string(uid));
  EXPECT_EQ(run.values["gid"], std::to_string(gid));
  // /proc/self/uid_map pads columns: "         0          0          1".
  EXPECT_THAT(run.values["uid_map"], testing::MatchesRegex(" *" + std::to_string(uid) + " +" +
                                                           std::to_string(uid) + " +1\\s*"));
  EXPECT_THAT(run.values["setgroups"], HasSubstr("deny"));
  EXPECT_EQ(run.values["setgroups_call_errno"], std::to_string(EPERM));
}

// A process that changed ids without exec is not dumpable, and its /proc/self files belong to
// root: the step must still manage (regression guard for supervisors that drop privileges).
TEST(IdMapsStepTest, WorksForANonDumpableProcessAndKeepsItNonDumpable) {
  ChildRun run = RunForked([](int out) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return 2;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER) != 0) return 2;
    int rc = ReportStatus(out, "step", WriteIdentityIdMaps(uid, gid));
    ReportLine(out, "dumpable=%d", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    return rc;
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  EXPECT_EQ(run.values["dumpable"], "0");
}

TEST(ProcessGroupStepTest, OwnProcessGroupAndEmptySignalMask) {
  ChildRun run = RunForked([](int out) {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, nullptr);
    pid_t parent_group = getpgrp();
    int rc = ReportStatus(out, "step", StartProcessGroup());
    sigset_t now;
    sigprocmask(SIG_BLOCK, nullptr, &now);
    ReportLine(out, "usr1_blocked=%d", sigismember(&now, SIGUSR1));
    ReportLine(out, "group_leader=%d", getpgrp() == getpid());
    ReportLine(out, "left_parent_group=%d", getpgrp() != parent_group);
    return rc;
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  EXPECT_EQ(run.values["usr1_blocked"], "0");
  EXPECT_EQ(run.values["group_leader"], "1");
  EXPECT_EQ(run.values["left_parent_group"], "1");
}

TEST(ProcessGroupStepTest, ArmsTheParentDeathSignalWhileTheParentListens) {
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  int write_end = pipe_fds[1];
  ChildRun run = RunForked([write_end](int out) {
    int rc = ReportStatus(out, "step", StartProcessGroup(write_end));
    int signal = 0;
    prctl(PR_GET_PDEATHSIG, &signal, 0, 0, 0);
    ReportLine(out, "pdeathsig=%d", signal);
    return rc;
  });
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  EXPECT_EQ(run.values["pdeathsig"], std::to_string(SIGKILL));
}

TEST(ProcessGroupStepTest, FailsWhenTheParentIsAlreadyGone) {
  ChildRun run = RunForked([](int out) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return 2;
    close(pipe_fds[0]);  // nobody listens: as if the parent had died
    return ReportStatus(out, "step", StartProcessGroup(pipe_fds[1]));
  });
  EXPECT_THAT(run.values["step"], HasSubstr("jail step 'process-group' failed: parent exited"));
  EXPECT_EQ(run.exit_code, 1);
}

TEST(HostnameStepTest, SetsTheJailHostnameInANewUtsNamespace) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  ChildRun run = RunForked([&](int out) {
    Status entered = EnterNamespaces(CLONE_NEWUTS, uid, gid);
    if (!entered.ok()) return ReportStatus(out, "step", entered);
    int rc = ReportStatus(out, "step", SetJailHostname());
    char name[128] = {};
    gethostname(name, sizeof(name) - 1);
    ReportLine(out, "hostname=%s", name);
    return rc;
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  EXPECT_EQ(run.values["hostname"], "shapex");
}

TEST(MountJailStepTest, LeavesAnEmptyReadOnlyRootAndTheHostUntouched) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  std::string host_mounts_before = ReadFile("/proc/self/mountinfo");
  ChildRun run = RunForked([&](int out) {
    Status entered = EnterNamespaces(CLONE_NEWNS, uid, gid);
    if (!entered.ok()) return ReportStatus(out, "step", entered);
    int rc = ReportStatus(out, "step", EnterMountJail());
    std::string entries;
    if (DIR* dir = opendir("/")) {
      while (dirent* entry = readdir(dir)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..") entries += name + ",";
      }
      closedir(dir);
    }
    ReportLine(out, "root_entries=%s", entries.c_str());
    char cwd[256] = {};
    ReportLine(out, "cwd=%s", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
    ReportLine(out, "mkdir_errno=%d", mkdir("/x", 0700) == 0 ? 0 : errno);
    ReportLine(out, "proc_errno=%d", access("/proc/self", F_OK) == 0 ? 0 : errno);
    ReportLine(out, "etc_errno=%d", access("/etc/passwd", F_OK) == 0 ? 0 : errno);
    ReportLine(out, "dotdot_entries=%d", [] {
      int n = 0;
      if (DIR* dir = opendir("/../..")) {
        while (dirent* entry = readdir(dir)) n += entry->d_name[0] != '.';
        closedir(dir);
      }
      return n;
    }());
    return rc;
  });
  ASSERT_TRUE(run.exited) << run.output;
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  EXPECT_EQ(run.values["root_entries"], "");
  EXPECT_EQ(run.values["cwd"], "/");
  EXPECT_EQ(run.values["mkdir_errno"], std::to_string(EROFS));
  EXPECT_EQ(run.values["proc_errno"], std::to_string(ENOENT));
  EXPECT_EQ(run.values["etc_errno"], std::to_string(ENOENT));
  EXPECT_EQ(run.values["dotdot_entries"], "0");
  // Private propagation: nothing the child mounted or detached shows up on the host.
  EXPECT_EQ(ReadFile("/proc/self/mountinfo"), host_mounts_before);
}

TEST(DropCapabilitiesStepTest, ClearsEverySetInsideAUserNamespace) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  ChildRun run = RunForked([&](int out) {
    Status entered = EnterNamespaces(0, uid, gid);
    if (!entered.ok()) return ReportStatus(out, "step", entered);
    int rc = ReportStatus(out, "step", DropCapabilities());
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    syscall(SYS_capget, &header, data);
    ReportLine(out, "sets=%x,%x,%x,%x,%x,%x", data[0].effective, data[1].effective,
               data[0].permitted, data[1].permitted, data[0].inheritable, data[1].inheritable);
    int bounding = 0;
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap) {
      bounding += prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    }
    ReportLine(out, "bounding=%d", bounding);
    return rc;
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  EXPECT_EQ(run.values["sets"], "0,0,0,0,0,0");
  EXPECT_EQ(run.values["bounding"], "0");
}

TEST(DropCapabilitiesStepTest, NothingToDropIsFine) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged uid";
  ChildRun run = RunForked([](int out) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) return 2;
    return ReportStatus(out, "step", DropCapabilities());
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
}

TEST(RlimitsStepTest, SetsSoftAndHardLimitsAndKeepsUnsetOnes) {
  rlimit stack_before{};
  getrlimit(RLIMIT_STACK, &stack_before);
  ChildRun run = RunForked([](int out) {
    RlimitOptions limits;
    limits.address_space_bytes =
        shapex_testing::UnderAddressSanitizer() ? std::nullopt : std::optional<uint64_t>(1 << 30);
    limits.cpu_seconds = 50;
    limits.open_files = 20;
    int rc = ReportStatus(out, "step", ApplyRlimits(limits));
    const std::pair<const char*, int> resources[] = {
        {"as", RLIMIT_AS},     {"cpu", RLIMIT_CPU},     {"nofile", RLIMIT_NOFILE},
        {"core", RLIMIT_CORE}, {"nproc", RLIMIT_NPROC}, {"stack", RLIMIT_STACK}};
    for (auto [name, resource] : resources) {
      rlimit limit{};
      getrlimit(static_cast<__rlimit_resource_t>(resource), &limit);
      ReportLine(out, "%s=%llu/%llu", name, static_cast<unsigned long long>(limit.rlim_cur),
                 static_cast<unsigned long long>(limit.rlim_max));
    }
    return rc;
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  if (!shapex_testing::UnderAddressSanitizer()) {
    EXPECT_EQ(run.values["as"], "1073741824/1073741824");
  }
  EXPECT_EQ(run.values["cpu"], "50/50");
  EXPECT_EQ(run.values["nofile"], "20/20");
  EXPECT_EQ(run.values["core"], "0/0");
  EXPECT_EQ(run.values["nproc"], "0/0");
  EXPECT_EQ(run.values["stack"],
            std::to_string(stack_before.rlim_cur) + "/" + std::to_string(stack_before.rlim_max));
}

TEST(RlimitsStepTest, RaisingAboveTheKernelMaximumNamesTheLimit) {
  uint64_t nr_open = std::stoull(ReadFile("/proc/sys/fs/nr_open"));
  ChildRun run = RunForked([nr_open](int out) {
    RlimitOptions limits;
    limits.address_space_bytes = std::nullopt;
    limits.open_files = nr_open + 1;
    return ReportStatus(out, "step", ApplyRlimits(limits));
  });
  EXPECT_THAT(run.values["step"],
              HasSubstr("SandboxError: jail step 'rlimits' failed: setrlimit(RLIMIT_NOFILE)"));
}

// Opens /dev/null at each of `fds` (dup2), for close-fds tests.
void OpenAt(std::initializer_list<int> fds) {
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (int fd : fds) dup2(null, fd);
  close(null);
}

TEST(CloseFdsStepTest, ClosesEverythingButTheKeptDescriptors) {
  ChildRun run = RunForked([](int out) {
    OpenAt({10, 20, 30, 100, 1000});
    int keep[] = {100, out, 20, 20};  // any order, duplicates allowed
    int rc = ReportStatus(out, "step", CloseFdsExcept(keep));
    ReportLine(out, "open=%s", ListOpenFds().c_str());
    return rc;
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  // The report pipe's write end is the lowest free descriptor in the child, below 20.
  EXPECT_THAT(run.values["open"], testing::MatchesRegex("[0-9]+,20,100"));
}

TEST(CloseFdsStepTest, ScanFallbackClosesTheSame) {
  ChildRun run = RunForked([](int out) {
    OpenAt({10, 20, 30, 100, 1000});
    int keep[] = {out, 20, 100};
    std::sort(std::begin(keep), std::end(keep));
    internal::StepFailure failure = internal::CloseFdsByScanRaw(keep);
    ReportLine(out, "step=%s", failure.failed() ? failure.operation : "OK");
    ReportLine(out, "open=%s", ListOpenFds().c_str());
    return 0;
  });
  EXPECT_EQ(run.values["step"], "OK") << run.output;
  EXPECT_THAT(run.values["open"], testing::MatchesRegex("[0-9]+,20,100"));
}

TEST(CloseFdsStepTest, RejectsBadKeepLists) {
  int negative[] = {3, -1};
  EXPECT_THAT(CloseFdsExcept(negative), IsError(ErrorKind::kInvalidArgument));
  std::vector<int> too_many;
  for (int fd = 0; fd <= static_cast<int>(kMaxKeptFds); ++fd) too_many.push_back(fd);
  EXPECT_THAT(CloseFdsExcept(too_many), IsError(ErrorKind::kInvalidArgument));
}

TEST(PrctlStepsTest, NoNewPrivsAndNotDumpable) {
  ChildRun run = RunForked([](int out) {
    int rc = ReportStatus(out, "nnp_step", SetNoNewPrivs());
    rc |= ReportStatus(out, "dumpable_step", SetNotDumpable());
    ReportLine(out, "nnp=%d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    ReportLine(out, "dumpable=%d", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    return rc;
  });
  EXPECT_EQ(run.values["nnp_step"], "OK") << run.output;
  EXPECT_EQ(run.values["dumpable_step"], "OK");
  EXPECT_EQ(run.values["nnp"], "1");
  EXPECT_EQ(run.values["dumpable"], "0");
}

}  // namespace
}  // namespace shapex::sandbox
