// cgroup v2 limits per executor (sandbox/src/cgroup.h; docs/sandbox.md, "cgroups").
//   - Parsing and the decision tree, against fixtures taken from real hosts: run everywhere.
//   - Mechanics (make, move into, clone3 CLONE_INTO_CGROUP, kill and remove a cgroup): need a
//     writable cgroup2 directory, whatever its controllers; skip with the reason elsewhere.
//   - End to end (an executor over memory.max gives ResourceExhausted; pids.max stops forks):
//     need a delegated cgroup v2 with the memory (pids) controller; skip with the reason
//     elsewhere. Set SHAPEX_TEST_CGROUP to a delegated, empty cgroup directory to run them
//     as a normal user (e.g. one made by `systemd-run --user -p Delegate=yes`).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "cgroup.h"
#include "shapex/client/client.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/unix_socket.h"
#include "shapex/sandbox/jail.h"
#include "testing/status_matchers.h"

namespace shapex::sandbox {
namespace {

using ::testing::HasSubstr;

#ifndef SHAPEX_BIN
#error "SHAPEX_BIN must name the shapex binary"
#endif

// ---------------------------------------------------------------- fixtures

// This development VM: a hybrid hierarchy (Debian 12 image, kernel 6.18): cgroup v1
// controllers, and a cgroup2 mount at /sys/fs/cgroup/unified that has only hugetlb.
constexpr char kHybridMountinfo[] =
    "23 1 8:1 / / rw,relatime - ext4 /dev/vda rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr char kHybridProcCgroup[] =
    "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/516af635\n1:cpu:/\n0::/\n";

// A stock Debian 12 host (systemd 252, unified hierarchy), a user's service with Delegate=yes.
constexpr char kUnifiedMountinfo[] =
    "22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";
constexpr char kUnifiedProcCgroup[] =
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/shapex.service\n";

// A container that sees only its own subtree, bind-mounted (mount root is not "/").
constexpr char kBindMountinfo[] =
    "700 650 0:30 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n"
    "701 650 0:31 / /mnt/with\\040space rw - cgroup2 cgroup2 rw\n";

constexpr char kMemoryEvents[] = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";

// ---------------------------------------------------------------- parsing

TEST(CgroupParseTest, HybridHierarchyHasCgroup2WithoutMemory) {
  MountInfoSummary m = ParseMountInfo(kHybridMountinfo);
  ASSERT_EQ(m.cgroup2.size(), 1u);
  EXPECT_EQ(m.cgroup2[0].mount_point, "/sys/fs/cgroup/unified");
  EXPECT_EQ(m.cgroup2[0].root, "/");
  EXPECT_TRUE(m.memory_on_v1);
  EXPECT_EQ(ParseUnifiedCgroupPath(kHybridProcCgroup), "/");
  EXPECT_EQ(*CgroupDirectory(m.cgroup2, "/"), "/sys/fs/cgroup/unified");
}

TEST(CgroupParseTest, UnifiedHierarchy) {
  MountInfoSummary m = ParseMountInfo(kUnifiedMountinfo);
  ASSERT_EQ(m.cgroup2.size(), 1u);
  EXPECT_EQ(m.cgroup2[0].mount_point, "/sys/fs/cgroup");
  EXPECT_FALSE(m.memory_on_v1);
  std::optional<std::string> path = ParseUnifiedCgroupPath(kUnifiedProcCgroup);
  ASSERT_TRUE(path.has_value());
  EXPECT_EQ(*CgroupDirectory(m.cgroup2, *path),
            "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/shapex.service");
}

TEST(CgroupParseTest, BindMountedSubtreeAndEscapes) {
  MountInfoSummary m = ParseMountInfo(kBindMountinfo);
  ASSERT_EQ(m.cgroup2.size(), 2u);
  EXPECT_EQ(m.cgroup2[0].root, "/docker/abc");
  EXPECT_EQ(m.cgroup2[1].mount_point, "/mnt/with space");
  // The mount whose root is the longest prefix wins.
  EXPECT_EQ(*CgroupDirectory(m.cgroup2, "/docker/abc/sub"), "/sys/fs/cgroup/sub");
  EXPECT_EQ(*CgroupDirectory(m.cgroup2, "/docker/abc"), "/sys/fs/cgroup");
}

TEST(CgroupParseTest, CgroupNotVisible) {
  std::vector<Cgroup2Mount> bind = {{"/sys/fs/cgroup", "/docker/abc"}};
  Result<std::string> other = CgroupDirectory(bind, "/docker/abcdef");
  ASSERT_FALSE(other.has_value());
  EXPECT_THAT(other.error().message(), HasSubstr("not visible under the cgroup2 mount"));
  Result<std::string> outside = CgroupDirectory(bind, "/../../user.slice");
  ASSERT_FALSE(outside.has_value());
  EXPECT_THAT(outside.error().message(), HasSubstr("outside this process's cgroup namespace"));
  Result<std::string> none = CgroupDirectory({}, "/");
  ASSERT_FALSE(none.has_value());
  EXPECT_THAT(none.error().message(), HasSubstr("no cgroup2 filesystem"));
  EXPECT_EQ(ParseUnifiedCgroupPath("4:memory:/x\n1:cpu:/\n"), std::nullopt);
}

TEST(CgroupParseTest, FilesAndValues) {
  EXPECT_EQ(ParseKeyedValue(kMemoryEvents, "oom_kill"), 1u);
  EXPECT_EQ(ParseKeyedValue(kMemoryEvents, "oom"), 2u);
  EXPECT_EQ(ParseKeyedValue(kMemoryEvents, "oom_group"), std::nullopt);
  EXPECT_EQ(ParseKeyedValue("populated 0\nfrozen 0\n", "populated"), 0u);
  EXPECT_EQ(ParseWords("cpuset cpu io memory hugetlb pids rdma misc\n"),
            (std::vector<std::string>{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma",
                                      "misc"}));
  EXPECT_TRUE(ParseWords("\n").empty());
  EXPECT_EQ(ParsePidList("1\n42\n\n123456\nx\n"), (std::vector<pid_t>{1, 42, 123456}));
  EXPECT_EQ(FormatLimit(0), "max");
  EXPECT_EQ(FormatLimit(67108864), "67108864");
  EXPECT_EQ(FormatCpuMax(0), "max 100000");
  EXPECT_EQ(FormatCpuMax(1.5), "150000 100000");
  EXPECT_EQ(FormatCpuMax(0.001), "1000 100000");  // the kernel's minimum quota
}

// ---------------------------------------------------------------- the decision tree

CgroupProbe Delegated(std::vector<pid_t> procs = {100}) {
  CgroupProbe p;
  p.path = "/user.slice/user-1000.slice/user@1000.service/app.slice/shapex.service";
  p.dir = "/sys/fs/cgroup" + p.path;
  p.type = "domain";
  p.controllers = {"cpu", "io", "memory", "pids"};
  p.procs = std::move(procs);
  return p;
}

TEST(CgroupDecisionTest, DelegatedCgroupOfOurOwnIsTheLeafLayout) {
  CgroupPlan plan = DecideCgroupPlan(Delegated(), 100, 1000);
  EXPECT_EQ(plan.layout, CgroupPlan::kLeaf);
  EXPECT_EQ(plan.base, Delegated().dir);
  EXPECT_EQ(plan.controllers, (std::vector<std::string>{"memory", "pids", "cpu"}));
}

TEST(CgroupDecisionTest, TheRealRootIsTheNestedLayout) {
  CgroupProbe p = Delegated({1, 2, 3, 100});
  p.dir = "/sys/fs/cgroup";
  p.is_root = true;
  p.type.clear();
  p.controllers = {"memory"};
  CgroupPlan plan = DecideCgroupPlan(p, 100, 0);
  EXPECT_EQ(plan.layout, CgroupPlan::kNested);
  EXPECT_EQ(plan.base, "/sys/fs/cgroup/shapex-100");
  EXPECT_EQ(plan.controllers, std::vector<std::string>{"memory"});
}

TEST(CgroupDecisionTest, HybridHostIsOffWithTheReason) {
  CgroupProbe p;
  p.dir = "/sys/fs/cgroup/unified";
  p.is_root = true;
  p.controllers = {"hugetlb"};
  p.memory_on_v1 = true;
  CgroupPlan plan = DecideCgroupPlan(p, 100, 0);
  EXPECT_EQ(plan.layout, CgroupPlan::kDisabled);
  EXPECT_EQ(plan.reason,
            "the memory controller is not available in /sys/fs/cgroup/unified "
            "(cgroup.controllers: \"hugetlb\"); it is bound to a cgroup v1 hierarchy (hybrid mode)");
}

TEST(CgroupDecisionTest, EveryRefusalHasItsReason) {
  CgroupProbe error;
  error.error = "no cgroup2 filesystem is mounted (cgroup v1 only)";
  EXPECT_EQ(DecideCgroupPlan(error, 100, 0).reason, error.error);

  CgroupProbe undelegated = Delegated();
  undelegated.controllers = {"cpu", "pids"};
  EXPECT_THAT(DecideCgroupPlan(undelegated, 100, 1000).reason,
              HasSubstr("the parent cgroup does not delegate it"));

  CgroupProbe threaded = Delegated();
  threaded.type = "threaded";
  EXPECT_THAT(DecideCgroupPlan(threaded, 100, 1000).reason,
              HasSubstr("is a \"threaded\" cgroup"));

  CgroupProbe readonly = Delegated();
  readonly.write_errno = EACCES;
  EXPECT_THAT(DecideCgroupPlan(readonly, 100, 1000).reason,
              HasSubstr("is not delegated to uid 1000 (Permission denied)"));
  readonly.write_errno = EROFS;
  EXPECT_THAT(DecideCgroupPlan(readonly, 100, 1000).reason, HasSubstr("Read-only file system"));

  CgroupPlan shared = DecideCgroupPlan(Delegated({7, 100, 9}), 100, 1000);
  EXPECT_EQ(shared.layout, CgroupPlan::kDisabled);
  EXPECT_THAT(shared.reason, HasSubstr("holds 2 other processes (pid 7, ...)"));
  EXPECT_THAT(shared.reason, HasSubstr("no-internal-process rule"));
  for (const CgroupProbe& p : {error, undelegated, threaded, readonly}) {
    EXPECT_EQ(DecideCgroupPlan(p, 100, 1000).layout, CgroupPlan::kDisabled);
  }
}

// What this host decides, printed: on this project's VM it is off (hybrid hierarchy).
TEST(CgroupDecisionTest, ThisHost) {
  CgroupProbe probe = ProbeOwnCgroup();
  CgroupPlan plan = DecideCgroupPlan(probe, getpid(), geteuid());
  std::printf("cgroup plan here: %s: %s\n",
              plan.layout == CgroupPlan::kDisabled ? "off"
              : plan.layout == CgroupPlan::kLeaf   ? "leaf"
                                                   : "nested",
              plan.reason.c_str());
  if (plan.layout == CgroupPlan::kDisabled) {
    EXPECT_FALSE(plan.reason.empty());
  }
  ExecutorCgroups off = ExecutorCgroups::Disabled("turned off (serve --cgroups off)");
  EXPECT_FALSE(off.enabled());
  EXPECT_THAT(off.StatusJson(), HasSubstr("\"enabled\": false, \"reason\": \"turned off"));
  EXPECT_EQ(off.StatusLine(), "cgroups     off: turned off (serve --cgroups off)\n");
  EXPECT_FALSE(off.Create(1).has_value());
}


// ---------------------------------------------------------------- mechanics

std::string ReadText(const std::string& path) {
  Result<std::string> text = ReadCgroupFile(path);
  return text.has_value() ? *text : std::string();
}

// The unified-hierarchy line of /proc/PID/cgroup.
std::string CgroupOf(pid_t pid) {
  return ParseUnifiedCgroupPath(ReadText(fmt::format("/proc/{}/cgroup", pid))).value_or("?");
}

// A fresh child cgroup of our own cgroup (controllers do not matter here), or why not.
class CgroupMechanicsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CgroupProbe probe = ProbeOwnCgroup();
    if (!probe.error.empty()) GTEST_SKIP() << "no cgroup2 directory: " << probe.error;
    name_ = fmt::format("shapex-test-{}", getpid());
    path_ = probe.path == "/" ? "/" + name_ : probe.path + "/" + name_;
    dir_ = probe.dir + "/" + name_;
    Status made = MakeCgroup(dir_);
    if (!made.ok()) GTEST_SKIP() << "cannot make a cgroup here: " << made.message();
    made_ = true;
  }
  void TearDown() override {
    if (made_) {
      EXPECT_OK(RemoveCgroupKilling(dir_, std::chrono::milliseconds(2000)));
    }
  }
  std::string name_, path_, dir_;
  bool made_ = false;
};

// A forked child that waits until `release` is written to (or closed).
pid_t ForkWaiter(int* release_fd) {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[1]);
    char c;
    (void)!read(fds[0], &c, 1);
    _exit(0);
  }
  close(fds[0]);
  *release_fd = fds[1];
  return pid;
}

TEST_F(CgroupMechanicsTest, MakeMoveAndRemove) {
  int release = -1;
  pid_t child = ForkWaiter(&release);
  ASSERT_OK(MoveToCgroup(dir_, child));
  EXPECT_EQ(ParsePidList(ReadText(dir_ + "/cgroup.procs")), std::vector<pid_t>{child});
  EXPECT_EQ(CgroupOf(child), path_);
  EXPECT_THAT(RemoveCgroup(dir_), shapex_testing::IsError(ErrorKind::kIoError));  // EBUSY
  close(release);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_OK(RemoveCgroup(dir_));
  EXPECT_FALSE(std::filesystem::exists(dir_));
  made_ = false;
}

TEST_F(CgroupMechanicsTest, RemoveKillsWhatStillRuns) {
  int release = -1;
  pid_t child = ForkWaiter(&release);
  ASSERT_OK(MoveToCgroup(dir_, child));
  // cgroup.kill (Linux 5.14); a killed child that is not yet reaped does not hold the cgroup.
  EXPECT_OK(RemoveCgroupKilling(dir_, std::chrono::milliseconds(2000)));
  made_ = !std::filesystem::exists(dir_) ? false : made_;
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  close(release);
}

class CgroupSpawnTest : public CgroupMechanicsTest {
 protected:
  void SetUp() override {
    CgroupMechanicsTest::SetUp();
    if (IsSkipped()) return;
    if (Status jail = ProbeJailSupport(); !jail.ok()) GTEST_SKIP() << jail.ToString();
    Result<SeccompProgram> program = SeccompProgram::BuildExecutorPolicy();
    ASSERT_TRUE(program.has_value()) << program.error();
    program_.emplace(std::move(*program));
  }
  std::optional<SeccompProgram> program_;
};

// clone3(CLONE_INTO_CGROUP): the jailed child is in the cgroup from its start.
TEST_F(CgroupSpawnTest, SpawnJailedPlacesTheChildInTheCgroup) {
  ScopedFd dirfd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  ScopedFd wait_end(fds[0]), release(fds[1]);
  JailOptions options;
  options.cgroup_fd = dirfd.get();
  options.keep_fds = {wait_end.get()};
  int keep = wait_end.get();
  ASSERT_OK_AND_ASSIGN(JailedProcess child, SpawnJailed(options, *program_, [keep] {
    char c;
    return read(keep, &c, 1) == 0 ? 0 : 3;
  }));
  EXPECT_EQ(CgroupOf(child.pid()), path_);
  EXPECT_EQ(ParsePidList(ReadText(dir_ + "/cgroup.procs")), std::vector<pid_t>{child.pid()});
  release.reset();
  ASSERT_OK_AND_ASSIGN(ExitInfo exit, child.Wait());
  EXPECT_TRUE(exit.exited && exit.exit_code == 0) << exit.ToString();
}

TEST_F(CgroupSpawnTest, AGoneCgroupIsNamedAndNothingSpawns) {
  ScopedFd dirfd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd);
  ASSERT_OK(RemoveCgroup(dir_));
  made_ = false;
  JailOptions options;
  options.cgroup_fd = dirfd.get();
  Result<JailedProcess> child = SpawnJailed(options, *program_, [] { return 0; });
  ASSERT_FALSE(child.has_value());
  EXPECT_THAT(child.error().message(),
              HasSubstr("jail step 'namespaces' failed: clone3 into cgroup: clone3: "));
}

// ---------------------------------------------------------------- end to end

// A cgroup directory whose children get the memory controller and that we may write, to make
// fresh cgroups in (SHAPEX_TEST_CGROUP, else our cgroup's parent, or the root if we are there).
// Empty string and *why set when there is none.
std::string DelegatedParent(std::string* why, const char* controller = "memory") {
  std::string parent;
  if (const char* env = std::getenv("SHAPEX_TEST_CGROUP"); env != nullptr && env[0] != '\0') {
    parent = env;
  } else {
    CgroupProbe probe = ProbeOwnCgroup();
    if (!probe.error.empty()) {
      *why = probe.error;
      return {};
    }
    parent = probe.is_root ? probe.dir : probe.dir.substr(0, probe.dir.rfind('/'));
  }
  std::vector<std::string> enabled = ParseWords(ReadText(parent + "/cgroup.subtree_control"));
  if (std::find(enabled.begin(), enabled.end(), controller) == enabled.end()) {
    std::vector<std::string> available = ParseWords(ReadText(parent + "/cgroup.controllers"));
    std::string listed;
    for (const std::string& c : available) listed += (listed.empty() ? "" : " ") + c;
    *why = fmt::format(
        "no delegated cgroup v2 with the {} controller: {} does not enable it for its children "
        "(cgroup.controllers: \"{}\"); set SHAPEX_TEST_CGROUP to a delegated cgroup to run this",
        controller, parent, listed);
    return {};
  }
  if (access(parent.c_str(), W_OK) != 0) {
    *why = fmt::format("{} is not writable: {}", parent, std::strerror(errno));
    return {};
  }
  return parent;
}

// Connects to the control socket as a raw client and asks for an executor's exit reason.
Result<ipc::ControlMessage> AskExitReason(const std::string& socket, pid_t pid) {
  ASSIGN_OR_RETURN(ipc::UnixSocket s, ipc::UnixSocket::Connect(socket));
  ASSIGN_OR_RETURN(ipc::Connection c,
                   ipc::Connection::Connect(std::move(s), ipc::ControlConnectionOptions()));
  ipc::ControlMessage request("exit_reason");
  request.Set("executor_pid", static_cast<int64_t>(pid));
  RETURN_IF_ERROR(ipc::SendControl(c, request));
  std::vector<ScopedFd> fds;
  return ipc::ReceiveControl(c, &fds, std::chrono::seconds(5));
}

int64_t JsonIntAfter(const std::string& json, const std::string& key, size_t from = 0) {
  std::string needle = "\"" + key + "\": ";
  size_t pos = json.find(needle, from);
  if (pos == std::string::npos) return -1;
  return std::strtoll(json.c_str() + pos + needle.size(), nullptr, 10);
}

// Runs argv with stdout and stderr to `out`; its exit status, or -1 after 120 s (killed).
int RunTo(const std::vector<std::string>& argv, const std::string& out) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status;
}

class CgroupEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    parent_ = DelegatedParent(&why);
    if (parent_.empty()) GTEST_SKIP() << why;
    char pattern[] = "/tmp/shapex-cgroup-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    tmp_ = pattern;
    socket_ = tmp_ + "/run/sock";
    cgroup_ = fmt::format("{}/shapex-e2e-{}", parent_, getpid());
    Status made = MakeCgroup(cgroup_);
    if (!made.ok()) GTEST_SKIP() << "cannot make a cgroup for the supervisor: " << made.message();
  }
  void TearDown() override {
    if (supervisor_ > 0) {
      kill(supervisor_, SIGTERM);
      int status = 0;
      waitpid(supervisor_, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
      // Nothing left behind: no executor cgroup, no supervisor leaf.
      for (const auto& entry : std::filesystem::directory_iterator(cgroup_)) {
        EXPECT_FALSE(entry.is_directory()) << "left behind: " << entry.path();
      }
    }
    if (!cgroup_.empty()) (void)RemoveCgroupKilling(cgroup_, std::chrono::milliseconds(2000));
    if (!tmp_.empty()) std::filesystem::remove_all(tmp_);
  }

  // `shapex serve` alone in the fresh cgroup, so it takes the leaf layout.
  void StartSupervisor(const std::vector<std::string>& extra) {
    supervisor_ = fork();
    ASSERT_GE(supervisor_, 0);
    if (supervisor_ == 0) {
      if (!MoveToCgroup(cgroup_, getpid()).ok()) _exit(97);
      std::vector<std::string> argv = {SHAPEX_BIN, "serve", "--socket", socket_,
                                       "--store", "none", "--pool", "1"};
      argv.insert(argv.end(), extra.begin(), extra.end());
      std::string log = tmp_ + "/serve.log";
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }

  // The status JSON once one executor is idle.
  std::string SettledStatus() {
    ClientOptions options;
    options.socket_path = socket_;
    options.start_supervisor = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      Result<Client> client = Client::Connect(options);
      if (client.has_value()) {
        Result<std::string> json = client->StatusJson();
        if (json.has_value() && json->find("\"state\": \"idle\"") != std::string::npos) {
          return *json;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
  }

  std::string parent_, tmp_, socket_, cgroup_;
  pid_t supervisor_ = -1;
};

TEST_F(CgroupEndToEndTest, AnExecutorOverMemoryMaxGivesResourceExhausted) {
  StartSupervisor({"--executor-memory", "64M", "--executor-pids", "16"});
  std::string status = SettledStatus();
  ASSERT_FALSE(status.empty()) << "the supervisor did not come up; see " << tmp_ << "/serve.log";
  size_t cgroups = status.find("\"cgroups\": ");
  ASSERT_NE(cgroups, std::string::npos) << status;
  ASSERT_THAT(status.substr(cgroups), HasSubstr("\"enabled\": true")) << status.substr(cgroups);
  pid_t executor = static_cast<pid_t>(JsonIntAfter(status, "pid", status.find("\"executors\"")));
  ASSERT_GT(executor, 0) << status;

  // 1 MiB strings kept alive: over 64 MiB long before the VM's own 1 GiB heap limit.
  std::string program = tmp_ + "/hog.shape";
  std::ofstream(program) << "function hog() {\n  let s = \"x\".repeat(1048576)\n"
                            "  let xs = []\n  while true { xs.push(s + \"y\") }\n}\n";
  std::string out = tmp_ + "/call.out";
  int rc = RunTo({SHAPEX_BIN, "call", program, "hog", "--memory", "1G", "--socket", socket_}, out);
  std::string printed = ReadText(out);
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) != 0) << printed;

  // The supervisor's answer: the kernel's OOM kill, read from memory.events.
  ASSERT_OK_AND_ASSIGN(ipc::ControlMessage reason, AskExitReason(socket_, executor));
  EXPECT_EQ(reason.Text("kind"), "ResourceExhausted") << reason.Text("message");
  EXPECT_THAT(reason.Text("message"), HasSubstr("memory limit exceeded (cgroup)"));
  // What the caller sees (client/src/client.cc asks `exit_reason` when its executor is lost).
  EXPECT_THAT(printed, HasSubstr("error[ResourceExhausted]")) << printed;
  EXPECT_THAT(printed, HasSubstr("memory limit exceeded (cgroup)")) << printed;

  std::string after = SettledStatus();
  EXPECT_EQ(JsonIntAfter(after, "oom_kills", after.find("\"cgroups\"")), 1) << after;
}

// Forks are killed by seccomp inside the full jail (docs/sandbox.md), so pids.max is shown on
// a kNone child with RLIMIT_NPROC left alone: only the cgroup stops it.
TEST(CgroupPidsTest, PidsMaxStopsForks) {
  std::string why;
  std::string parent = DelegatedParent(&why, "pids");
  if (parent.empty()) GTEST_SKIP() << why;
  std::string dir = fmt::format("{}/shapex-pids-{}", parent, getpid());
  Status made = MakeCgroup(dir);
  if (!made.ok()) GTEST_SKIP() << "cannot make a cgroup: " << made.message();
  ASSERT_OK(WriteCgroupFile(dir + "/pids.max", "4"));
  ScopedFd dirfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_OK_AND_ASSIGN(SeccompProgram program, SeccompProgram::BuildExecutorPolicy());
  JailOptions options;
  options.mode = SandboxMode::kNone;
  options.limits.processes = std::nullopt;
  options.cgroup_fd = dirfd.get();
  ASSERT_OK_AND_ASSIGN(JailedProcess child, SpawnJailed(options, program, [] {
    pid_t kids[10];
    int forked = 0;
    for (pid_t& kid : kids) {
      kid = fork();
      if (kid == 0) {
        pause();
        _exit(0);
      }
      if (kid < 0) break;
      ++forked;
    }
    int err = errno;
    for (int i = 0; i < forked; ++i) kill(kids[i], SIGKILL);
    for (int i = 0; i < forked; ++i) waitpid(kids[i], nullptr, 0);
    return forked < 10 && err == EAGAIN ? forked : 100 + forked;
  }));
  ASSERT_OK_AND_ASSIGN(ExitInfo exit, child.Wait());
  EXPECT_TRUE(exit.exited) << exit.ToString();
  EXPECT_EQ(exit.exit_code, 3) << "pids.max 4 = the child and 3 forks";
  EXPECT_OK(RemoveCgroupKilling(dir, std::chrono::milliseconds(2000)));
}

}  // namespace
}  // namespace shapex::sandbox
