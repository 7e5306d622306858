// SpawnJailed: clone3 into new namespaces, run the jail steps in the child, report back.
//
// The parent prepares everything the child needs (id-map lines, the sorted keep list, the
// seccomp program) before cloning, so the child only reads memory and makes system calls until
// it is confined. The child reports over a pipe: one fixed-size record, written with a single
// write(2) (atomic, it is smaller than PIPE_BUF), saying either "ready" with per-step timings or
// which step failed and why. The parent waits on that pipe and on the child's pidfd, so a child
// that dies without a word is noticed too.
#include "shapex/sandbox/jail.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "jail_steps_internal.h"
#include "shapex/core/errno_status.h"
#include "shapex/core/log.h"

namespace shapex::sandbox {
namespace {

using internal::StepFailure;

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

constexpr uint64_t kNamespaceFlags =
    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;

// Exit code of a child whose setup failed (the parent learns why through the report).
constexpr int kSetupFailedExitCode = 125;
constexpr uint32_t kReportMagic = 0x314a5853;  // "SXJ1"

// The kernel's struct clone_args (v2, 88 bytes), declared here so that <linux/sched.h> and
// glibc's <sched.h> do not clash.
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

struct ChildReport {
  uint32_t magic = kReportMagic;
  uint8_t ready = 0;
  uint8_t failed_step = 0;
  int32_t error = 0;
  char operation[96] = {};
  uint64_t step_nanos[kJailStepCount] = {};
  uint64_t started_at = 0;  // CLOCK_MONOTONIC when the child first ran
  uint64_t ready_at = 0;    // CLOCK_MONOTONIC just before the ready report was written
};
static_assert(sizeof(ChildReport) <= PIPE_BUF, "the report must be written atomically");

// Everything the child reads. Filled in by the parent before clone3.
struct ChildPlan {
  SandboxMode mode = SandboxMode::kFull;
  JailStep stop_after = JailStep::kSeccomp;
  int report_read_fd = -1;
  int report_write_fd = -1;
  bool kill_with_parent = true;
  internal::IdMapLines id_maps;
  const RlimitOptions* limits = nullptr;
  std::array<int, kMaxKeptFds + 1> keep{};  // sorted; includes report_write_fd
  size_t keep_count = 0;
  const sock_filter* filter = nullptr;
  size_t filter_size = 0;
  const std::function<int()>* body = nullptr;
};

uint64_t MonotonicNanos() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

long Clone3(CloneArgs* args) { return syscall(SYS_clone3, args, sizeof(*args)); }

bool StepRuns(const ChildPlan& plan, JailStep step) {
  if (step > plan.stop_after) return false;
  if (plan.mode == SandboxMode::kFull) return true;
  switch (step) {
    case JailStep::kProcessGroup:
    case JailStep::kDropCapabilities:
    case JailStep::kRlimits:
    case JailStep::kCloseFds:
    case JailStep::kNoNewPrivs:
    case JailStep::kNotDumpable:
      return true;
    default:
      return false;
  }
}

StepFailure RunStep(const ChildPlan& plan, JailStep step) {
  switch (step) {
    case JailStep::kNamespaces:
      return {};  // done by clone3
    case JailStep::kIdMaps:
      return internal::WriteIdMapsRaw(plan.id_maps);
    case JailStep::kProcessGroup:
      return internal::StartProcessGroupRaw(plan.kill_with_parent ? plan.report_write_fd : -1);
    case JailStep::kHostname:
      return internal::SetHostnameRaw();
    case JailStep::kMountJail:
      return internal::EnterMountJailRaw();
    case JailStep::kDropCapabilities:
      return internal::DropCapabilitiesRaw();
    case JailStep::kRlimits:
      return internal::ApplyRlimitsRaw(*plan.limits);
    case JailStep::kCloseFds:
      return internal::CloseFdsExceptRaw(std::span<const int>(plan.keep.data(), plan.keep_count));
    case JailStep::kNoNewPrivs:
      return internal::SetNoNewPrivsRaw();
    case JailStep::kNotDumpable:
      return internal::SetNotDumpableRaw();
    case JailStep::kSeccomp:
      return internal::InstallSeccompRaw(plan.filter, plan.filter_size);
  }
  return internal::Failure("unknown jail step", EINVAL);
}

void WriteReport(int fd, const ChildReport& report) {
  while (write(fd, &report, sizeof(report)) < 0 && errno == EINTR) {
  }
}

// The child: steps, report, body. Only system calls and stack memory until `body` runs.
[[noreturn]] void ChildMain(const ChildPlan& plan) {
  close(plan.report_read_fd);  // or the parent-death check would see a reader that is us
  ChildReport report;
  uint64_t previous = MonotonicNanos();
  report.started_at = previous;
  for (size_t i = 1; i < kJailStepCount; ++i) {
    auto step = static_cast<JailStep>(i);
    if (!StepRuns(plan, step)) continue;
    StepFailure failure = RunStep(plan, step);
    if (failure.failed()) {
      report.failed_step = static_cast<uint8_t>(i);
      report.error = failure.error;
      strncpy(report.operation, failure.operation, sizeof(report.operation) - 1);
      WriteReport(plan.report_write_fd, report);
      _exit(kSetupFailedExitCode);
    }
    uint64_t now = MonotonicNanos();
    report.step_nanos[i] = now - previous;
    previous = now;
  }
  report.ready = 1;
  report.ready_at = MonotonicNanos();
  WriteReport(plan.report_write_fd, report);
  close(plan.report_write_fd);
  _exit((*plan.body)());
}

struct NamespaceKind {
  uint64_t flag;
  const char* name;
  const char* limit_file;
  const char* kernel_option;
};

constexpr NamespaceKind kNamespaceKinds[] = {
    {CLONE_NEWUSER, "user", "max_user_namespaces", "CONFIG_USER_NS"},
    {CLONE_NEWPID, "pid", "max_pid_namespaces", "CONFIG_PID_NS"},
    {CLONE_NEWNS, "mount", "max_mnt_namespaces", "CONFIG_NAMESPACES"},
    {CLONE_NEWIPC, "ipc", "max_ipc_namespaces", "CONFIG_IPC_NS"},
    {CLONE_NEWUTS, "uts", "max_uts_namespaces", "CONFIG_UTS_NS"},
    {CLONE_NEWNET, "network", "max_net_namespaces", "CONFIG_NET_NS"},
};

std::string ExplainNamespaceError(const NamespaceKind& kind, int err) {
  std::string cause = ErrnoStatus("clone3", {}, err).message();
  std::string hint;
  switch (err) {
    case EPERM:
      hint =
          kind.flag == CLONE_NEWUSER
              ? "user namespaces are disabled for this user (kernel.unprivileged_userns_clone=0, "
                "an AppArmor or SELinux policy such as "
                "kernel.apparmor_restrict_unprivileged_userns=1, or a container's seccomp "
                "profile)"
              : "a security policy or the container runtime forbids it";
      break;
    case ENOSPC:
      hint = fmt::format("the limit is reached (see /proc/sys/user/{})", kind.limit_file);
      break;
    case EUSERS:
      hint = "namespaces are nested too deeply (32 levels at most)";
      break;
    case EINVAL:
      hint = fmt::format("the kernel lacks {}", kind.kernel_option);
      break;
    default:
      break;
  }
  return fmt::format(
      "jail step 'namespaces' failed: cannot create a {} namespace: {}{}{}; "
      "--sandbox=none runs without a sandbox (unsafe)",
      kind.name, cause, hint.empty() ? "" : ": ", hint);
}

// clone3 with all namespace flags failed with `err`: find the namespace the machine refuses by
// trying each one alone (with a user namespace, which is what grants the right to create the
// others). Costs a few clones, only on this error path.
Status DiagnoseNamespaceFailure(int err) {
  for (const NamespaceKind& kind : kNamespaceKinds) {
    CloneArgs args{};
    args.flags = CLONE_NEWUSER | kind.flag;
    args.exit_signal = SIGCHLD;
    long pid = Clone3(&args);
    if (pid == 0) _exit(0);
    if (pid < 0) return SandboxError(ExplainNamespaceError(kind, errno));
    int status = 0;
    while (waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
    }
  }
  return SandboxError(fmt::format("jail step 'namespaces' failed: {} (each namespace alone works)",
                                  ErrnoStatus("clone3", {}, err).message()));
}

std::chrono::nanoseconds Nanos(uint64_t n) {
  return std::chrono::nanoseconds(static_cast<int64_t>(n));
}

void WarnSandboxNoneOnce() {
  static std::once_flag once;
  std::call_once(once, [] { SHAPEX_LOG(WARN, "{}", kSandboxNoneWarning); });
}

Status ValidateOptions(const JailOptions& options, const SeccompProgram& seccomp,
                       const std::function<int()>& body) {
  if (!body) return InvalidArgument("SpawnJailed: empty body");
  if (options.keep_fds.size() > kMaxKeptFds) {
    return InvalidArgument(fmt::format("SpawnJailed: more than {} keep_fds", kMaxKeptFds));
  }
  for (int fd : options.keep_fds) {
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
      return InvalidArgument(fmt::format("SpawnJailed: keep_fds has {}, which is not open", fd));
    }
  }
  if (options.mode == SandboxMode::kFull && seccomp.size() == 0) {
    return InvalidArgument("SpawnJailed: empty seccomp program");
  }
  return Status::Ok();
}

// The child ended without a complete report: reap it and say how it ended.
Status DiedBeforeReady(JailedProcess& process) {
  Result<ExitInfo> exit = process.Wait();
  if (!exit) return exit.error();
  std::string how = exit->ToString();
  if (!exit->exited && exit->signal == SIGSYS) {
    how += "; a jail step made a system call the seccomp filter forbids";
  }
  return SandboxError(
      fmt::format("jailed process {} died before it was ready ({})", process.pid(), how));
}

// Waits for the child's report (or its death, or the deadline). On any outcome but "ready" the
// returned error explains it; the caller's JailedProcess then kills and reaps the child.
Result<ChildReport> AwaitReport(int report_fd, JailedProcess& process,
                                std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{report_fd, POLLIN, 0}, {process.pidfd(), POLLIN, 0}};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    int n = poll(fds, 2, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SandboxError(ErrnoStatus("poll", "jail report").message());
    if (n == 0) {
      return SandboxError(fmt::format("jailed process {} did not report ready within {} ms",
                                      process.pid(), timeout.count()));
    }
    // A report written before the child died is readable together with the pidfd.
    if (fds[0].revents != 0) break;
    if (fds[1].revents != 0) return DiedBeforeReady(process);
  }
  ChildReport report;
  ssize_t n;
  do {
    n = read(report_fd, &report, sizeof(report));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return SandboxError(ErrnoStatus("read", "jail report").message());
  if (n != static_cast<ssize_t>(sizeof(report)) || report.magic != kReportMagic) {
    return DiedBeforeReady(process);
  }
  if (!report.ready) {
    report.operation[sizeof(report.operation) - 1] = '\0';
    auto step = static_cast<JailStep>(std::min<size_t>(report.failed_step, kJailStepCount - 1));
    return internal::StepStatus(step, {report.operation, report.error});
  }
  return report;
}

}  // namespace

std::string ExitInfo::ToString() const {
  if (exited) return fmt::format("exit code {}", exit_code);
  const char* name = sigabbrev_np(signal);
  return name ? fmt::format("killed by SIG{}", name) : fmt::format("killed by signal {}", signal);
}

JailedProcess::JailedProcess(JailedProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      reaped_(other.reaped_),
      exit_(other.exit_),
      timings_(other.timings_) {}

JailedProcess& JailedProcess::operator=(JailedProcess&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    reaped_ = other.reaped_;
    exit_ = other.exit_;
    timings_ = other.timings_;
  }
  return *this;
}

JailedProcess::~JailedProcess() { KillAndReap(); }

void JailedProcess::KillAndReap() {
  if (!pidfd_ || reaped_) return;
  (void)Kill(SIGKILL);
  (void)Wait();
}

Status JailedProcess::Kill(int signal) {
  if (!pidfd_) return InvalidArgument("JailedProcess::Kill: no process");
  if (reaped_) return Status::Ok();
  if (syscall(SYS_pidfd_send_signal, pidfd_.get(), signal, nullptr, 0) != 0 && errno != ESRCH) {
    return ErrnoStatus("pidfd_send_signal", fmt::format("pid {}", pid_));
  }
  return Status::Ok();
}

Result<ExitInfo> JailedProcess::Wait() {
  if (!pidfd_) return InvalidArgument("JailedProcess::Wait: no process");
  if (reaped_) return exit_;
  siginfo_t info{};
  while (waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED) != 0) {
    if (errno != EINTR) return ErrnoStatus("waitid", fmt::format("pid {}", pid_));
  }
  reaped_ = true;
  exit_.exited = info.si_code == CLD_EXITED;
  exit_.exit_code = exit_.exited ? info.si_status : 0;
  exit_.signal = exit_.exited ? 0 : info.si_status;
  return exit_;
}

Result<JailedProcess> SpawnJailed(const JailOptions& options, const SeccompProgram& seccomp,
                                  const std::function<int()>& body) {
  RETURN_IF_ERROR(ValidateOptions(options, seccomp, body));
  if (options.mode == SandboxMode::kNone) WarnSandboxNoneOnce();

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", "jail report");
  ScopedFd report_read(pipe_fds[0]);
  ScopedFd report_write(pipe_fds[1]);

  ChildPlan plan;
  plan.mode = options.mode;
  plan.stop_after = options.stop_after;
  plan.report_read_fd = report_read.get();
  plan.report_write_fd = report_write.get();
  plan.kill_with_parent = options.kill_with_parent;
  // The parent's effective ids: inside a fresh user namespace the child would see overflow ids.
  plan.id_maps = internal::FormatIdentityIdMaps(geteuid(), getegid());
  plan.limits = &options.limits;
  std::vector<int> keep = options.keep_fds;
  keep.push_back(report_write.get());
  int count = internal::SortKeptFds(keep, plan.keep);
  if (count < 0) return InvalidArgument("SpawnJailed: bad keep_fds");
  plan.keep_count = static_cast<size_t>(count);
  plan.filter = seccomp.instructions().data();
  plan.filter_size = seccomp.size();
  plan.body = &body;

  int pidfd = -1;
  CloneArgs args{};
  args.flags = CLONE_PIDFD | CLONE_CLEAR_SIGHAND |
               (options.mode == SandboxMode::kFull ? kNamespaceFlags : 0);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (options.cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(options.cgroup_fd);
  }
  uint64_t start = MonotonicNanos();
  long pid = Clone3(&args);
  if (pid == 0) ChildMain(plan);
  uint64_t cloned = MonotonicNanos();
  if (pid < 0) {
    int err = errno;
    if (options.cgroup_fd >= 0) {
      // Not a namespace problem until the same clone without the cgroup fails too (the
      // zygote retries without it): name the cgroup.
      return SandboxError(fmt::format("jail step 'namespaces' failed: clone3 into cgroup: {}",
                                      ErrnoStatus("clone3", {}, err).message()));
    }
    if (err == ENOSYS) {
      return SandboxError(
          "jail step 'namespaces' failed: clone3 is not supported (Linux 5.5 or newer is "
          "required)");
    }
    // These errors are how a kernel refuses a namespace; others (EAGAIN, ENOMEM) are not.
    bool refused = err == EPERM || err == ENOSPC || err == EUSERS || err == EINVAL;
    if (options.mode == SandboxMode::kFull && refused) return DiagnoseNamespaceFailure(err);
    return SandboxError(
        fmt::format("jail step 'namespaces' failed: {}", ErrnoStatus("clone3", {}, err).message()));
  }
  report_write.reset();

  JailedProcess process(static_cast<pid_t>(pid), ScopedFd(pidfd));
  ASSIGN_OR_RETURN(ChildReport report,
                   AwaitReport(report_read.get(), process, options.ready_timeout));
  process.timings_.steps[0] = Nanos(cloned - start);
  for (size_t i = 1; i < kJailStepCount; ++i) {
    process.timings_.steps[i] = Nanos(report.step_nanos[i]);
  }
  uint64_t now = MonotonicNanos();
  // CLOCK_MONOTONIC is one clock for every process, so the child's stamps compare with ours.
  process.timings_.child_start_delay =
      Nanos(report.started_at - std::min(cloned, report.started_at));
  process.timings_.ready_delay = Nanos(now - std::min(now, report.ready_at));
  process.timings_.total = Nanos(now - start);
  return process;
}

Status ProbeJailSupport() {
  Result<SeccompProgram> program = SeccompProgram::BuildExecutorPolicy();
  if (!program) return Status(program.error()).WithContext("sandbox probe");
  // Inside the jail, opening a file must fail with EPERM (seccomp), not ENOENT (empty root).
  std::function<int()> body = [] {
    long fd = syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY | O_CLOEXEC);
    return fd < 0 && errno == EPERM ? 0 : 1;
  };
  JailOptions options;
  Result<JailedProcess> process = SpawnJailed(options, *program, body);
  if (!process) return Status(process.error()).WithContext("sandbox probe");
  Result<ExitInfo> exit = process->Wait();
  if (!exit) return Status(exit.error()).WithContext("sandbox probe");
  if (!exit->exited || exit->exit_code != 0) {
    return SandboxError(
        fmt::format("sandbox probe: the jailed test process ended with {} "
                    "(expected exit code 0: seccomp must deny openat with EPERM)",
                    exit->ToString()));
  }
  return Status::Ok();
}

}  // namespace shapex::sandbox
