// The jail steps. Everything below the public wrappers runs in the cloned child before the jail
// is complete, so it sticks to system calls and stack memory (see jail_steps_internal.h).
#include "shapex/sandbox/jail_steps.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstring>

#include "jail_steps_internal.h"
#include "shapex/core/errno_status.h"

namespace shapex::sandbox {
namespace {

using internal::Failure;
using internal::StepFailure;

constexpr std::string_view kStepNames[kJailStepCount] = {
    "namespaces", "id-maps",   "process-group", "hostname",     "mount-jail", "drop-capabilities",
    "rlimits",    "close-fds", "no-new-privs",  "not-dumpable", "seccomp",
};

constexpr char kHostname[] = "shapex";

// Where the new root is mounted before pivot_root makes it "/". Any existing directory works:
// the mount lives only in the child's private mount namespace and moves away with pivot_root.
constexpr char kStagingDir[] = "/tmp";

// Writes all of `text` to `path` (a /proc file that wants a single write).
StepFailure WriteProcFile(const char* path, const char* text, const char* open_op,
                          const char* write_op) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Failure(open_op);
  size_t length = strlen(text);
  ssize_t n = write(fd, text, length);
  int saved = errno;
  close(fd);
  if (n != static_cast<ssize_t>(length)) return Failure(write_op, n < 0 ? saved : EIO);
  return {};
}

bool IsKept(int fd, std::span<const int> sorted_keep) {
  return std::binary_search(sorted_keep.begin(), sorted_keep.end(), fd);
}

// Parses a decimal descriptor number from a /proc/self/fd entry name; -1 if it is not one.
int ParseFd(const char* name) {
  if (*name == '\0') return -1;
  long value = 0;
  for (const char* p = name; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9' || value > 1'000'000'000) return -1;
    value = value * 10 + (*p - '0');
  }
  return static_cast<int>(value);
}

// Last resort without /proc: close every number below the hard descriptor limit.
StepFailure CloseFdsByBruteForce(std::span<const int> sorted_keep) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return Failure("getrlimit(RLIMIT_NOFILE)");
  rlim_t end = std::min<rlim_t>(limit.rlim_max, rlim_t{1} << 20);
  for (rlim_t fd = 0; fd < end; ++fd) {
    if (!IsKept(static_cast<int>(fd), sorted_keep)) close(static_cast<int>(fd));
  }
  return {};
}

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

}  // namespace

std::string_view JailStepName(JailStep step) {
  auto index = static_cast<size_t>(step);
  return index < kJailStepCount ? kStepNames[index] : std::string_view("unknown");
}

namespace internal {

Status StepStatus(JailStep step, StepFailure failure) {
  if (!failure.failed()) return Status::Ok();
  return SandboxError(fmt::format("jail step '{}' failed: {}", JailStepName(step),
                                  ErrnoStatus(failure.operation, {}, failure.error).message()));
}

IdMapLines FormatIdentityIdMaps(uid_t outer_uid, gid_t outer_gid) {
  IdMapLines lines;
  fmt::format_to_n(lines.uid_map, sizeof(lines.uid_map) - 1, "{} {} 1\n", outer_uid, outer_uid);
  fmt::format_to_n(lines.gid_map, sizeof(lines.gid_map) - 1, "{} {} 1\n", outer_gid, outer_gid);
  return lines;
}

StepFailure WriteIdMapsRaw(const IdMapLines& lines) {
  // A process that is not dumpable (e.g. it changed uid without exec) has root-owned /proc/self
  // files and cannot write its own maps. Become dumpable just for these writes.
  int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  bool raised = dumpable != 1;
  if (raised && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
    return Failure("prctl(PR_SET_DUMPABLE, 1)");
  }
  // Without CAP_SETGID in the parent namespace, gid_map may only be written once setgroups(2)
  // is disabled for good, so supplementary groups can never be dropped to gain access.
  StepFailure failure = WriteProcFile("/proc/self/setgroups", "deny", "open /proc/self/setgroups",
                                      "write /proc/self/setgroups");
  if (!failure.failed()) {
    failure = WriteProcFile("/proc/self/uid_map", lines.uid_map, "open /proc/self/uid_map",
                            "write /proc/self/uid_map");
  }
  if (!failure.failed()) {
    failure = WriteProcFile("/proc/self/gid_map", lines.gid_map, "open /proc/self/gid_map",
                            "write /proc/self/gid_map");
  }
  if (raised && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 && !failure.failed()) {
    failure = Failure("prctl(PR_SET_DUMPABLE, 0)");
  }
  return failure;
}

StepFailure StartProcessGroupRaw(int parent_pipe_fd) {
  if (setpgid(0, 0) != 0) return Failure("setpgid");
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) return Failure("sigprocmask");
  if (parent_pipe_fd < 0) return {};
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return Failure("prctl(PR_SET_PDEATHSIG)");
  // The parent may have died before PR_SET_PDEATHSIG took effect. A pipe's write end reports
  // POLLERR once no reader is left, and only the parent holds the read end.
  pollfd watch{parent_pipe_fd, POLLOUT, 0};
  if (poll(&watch, 1, 0) < 0) return Failure("poll(parent pipe)");
  if (watch.revents & POLLERR) return Failure("parent exited before the jail was ready", ESRCH);
  return {};
}

StepFailure SetHostnameRaw() {
  if (sethostname(kHostname, sizeof(kHostname) - 1) != 0) return Failure("sethostname");
  return {};
}

StepFailure EnterMountJailRaw() {
  // Private first, recursively, so that nothing below (least of all the detach of the old root)
  // can propagate to the host's mount namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return Failure("mount / MS_REC|MS_PRIVATE");
  }
  if (mount("shapex-root", kStagingDir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "size=4k,nr_inodes=2,mode=0555") != 0) {
    return Failure("mount tmpfs on /tmp");
  }
  if (chdir(kStagingDir) != 0) return Failure("chdir /tmp");
  // pivot_root(".", ".") stacks the old root on top of the new one at "/", so the new root needs
  // no put_old directory and stays empty. umount2(".") then detaches that top mount (the old
  // root with every host mount under it).
  if (syscall(SYS_pivot_root, ".", ".") != 0) return Failure("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) return Failure("umount2 old root");
  if (chdir("/") != 0) return Failure("chdir /");
  if (mount(nullptr, "/", nullptr,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return Failure("remount / read-only");
  }
  return {};
}

StepFailure DropCapabilitiesRaw() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return Failure("capget");
  bool holds_any = false;
  for (const auto& word : data) {
    holds_any |= (word.effective | word.permitted | word.inheritable) != 0;
  }
  if (!holds_any) return {};
  // The bounding set needs CAP_SETPCAP, so it goes before the effective set.
  for (int cap = 0; cap < 64; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
    if (errno == EINVAL) break;  // past the kernel's last capability
    return Failure("prctl(PR_CAPBSET_DROP)");
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return Failure("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  }
  std::memset(data, 0, sizeof(data));
  if (syscall(SYS_capset, &header, data) != 0) return Failure("capset");
  return {};
}

StepFailure ApplyRlimitsRaw(const RlimitOptions& limits) {
  struct Entry {
    __rlimit_resource_t resource;
    const std::optional<uint64_t>* value;
    const char* operation;
  };
  const Entry entries[] = {
      {RLIMIT_AS, &limits.address_space_bytes, "setrlimit(RLIMIT_AS)"},
      {RLIMIT_CPU, &limits.cpu_seconds, "setrlimit(RLIMIT_CPU)"},
      {RLIMIT_NOFILE, &limits.open_files, "setrlimit(RLIMIT_NOFILE)"},
      {RLIMIT_FSIZE, &limits.file_size_bytes, "setrlimit(RLIMIT_FSIZE)"},
      {RLIMIT_CORE, &limits.core_file_bytes, "setrlimit(RLIMIT_CORE)"},
      {RLIMIT_NPROC, &limits.processes, "setrlimit(RLIMIT_NPROC)"},
  };
  for (const Entry& entry : entries) {
    if (!entry.value->has_value()) continue;
    rlimit limit{static_cast<rlim_t>(**entry.value), static_cast<rlim_t>(**entry.value)};
    if (setrlimit(entry.resource, &limit) != 0) {
      return Failure(entry.operation);
    }
  }
  return {};
}

StepFailure CloseFdsExceptRaw(std::span<const int> sorted_keep) {
  // Close the gaps around the kept descriptors: [0, k0 - 1], [k0 + 1, k1 - 1], ..., [kn + 1, ~0U].
  auto close_gap = [](unsigned first, unsigned last) -> long {
    return first <= last ? syscall(SYS_close_range, first, last, 0) : 0;
  };
  unsigned next = 0;
  for (int kept : sorted_keep) {
    auto fd = static_cast<unsigned>(kept);
    if (fd > next && close_gap(next, fd - 1) != 0) {
      if (errno == ENOSYS) return CloseFdsByScanRaw(sorted_keep);
      return Failure("close_range");
    }
    next = fd + 1;
  }
  if (close_gap(next, ~0U) != 0) {
    if (errno == ENOSYS) return CloseFdsByScanRaw(sorted_keep);
    return Failure("close_range");
  }
  return {};
}

StepFailure CloseFdsByScanRaw(std::span<const int> sorted_keep) {
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return CloseFdsByBruteForce(sorted_keep);
  // Entries are generated from the descriptor table in order, so closing the descriptors seen
  // so far does not disturb the rest of the listing.
  alignas(LinuxDirent64) char buffer[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dir, buffer, sizeof(buffer));
    if (n < 0) {
      int saved = errno;
      close(dir);
      return Failure("getdents64 /proc/self/fd", saved);
    }
    if (n == 0) break;
    for (long offset = 0; offset < n;) {
      const auto* entry = reinterpret_cast<const LinuxDirent64*>(buffer + offset);
      int fd = ParseFd(entry->d_name);
      if (fd >= 0 && fd != dir && !IsKept(fd, sorted_keep)) close(fd);
      offset += entry->d_reclen;
    }
  }
  close(dir);
  return {};
}

StepFailure SetNoNewPrivsRaw() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Failure("prctl(PR_SET_NO_NEW_PRIVS)");
  return {};
}

StepFailure SetNotDumpableRaw() {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Failure("prctl(PR_SET_DUMPABLE, 0)");
  return {};
}

StepFailure InstallSeccompRaw(const sock_filter* instructions, size_t count) {
  sock_fprog program{static_cast<unsigned short>(count), const_cast<sock_filter*>(instructions)};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
    return Failure("seccomp(SECCOMP_SET_MODE_FILTER)");
  }
  return {};
}

int SortKeptFds(std::span<const int> keep, std::span<int> out) {
  size_t count = 0;
  for (int fd : keep) {
    if (fd < 0) return -1;
    if (std::find(out.begin(), out.begin() + count, fd) != out.begin() + count) continue;
    if (count == out.size()) return -1;
    out[count++] = fd;
  }
  std::sort(out.begin(), out.begin() + count);
  return static_cast<int>(count);
}

}  // namespace internal

Status WriteIdentityIdMaps(uid_t outer_uid, gid_t outer_gid) {
  return internal::StepStatus(
      JailStep::kIdMaps,
      internal::WriteIdMapsRaw(internal::FormatIdentityIdMaps(outer_uid, outer_gid)));
}

Status StartProcessGroup(int parent_pipe_fd) {
  return internal::StepStatus(JailStep::kProcessGroup,
                              internal::StartProcessGroupRaw(parent_pipe_fd));
}

Status SetJailHostname() {
  return internal::StepStatus(JailStep::kHostname, internal::SetHostnameRaw());
}

Status EnterMountJail() {
  return internal::StepStatus(JailStep::kMountJail, internal::EnterMountJailRaw());
}

Status DropCapabilities() {
  return internal::StepStatus(JailStep::kDropCapabilities, internal::DropCapabilitiesRaw());
}

Status ApplyRlimits(const RlimitOptions& limits) {
  return internal::StepStatus(JailStep::kRlimits, internal::ApplyRlimitsRaw(limits));
}

Status CloseFdsExcept(std::span<const int> keep) {
  std::array<int, kMaxKeptFds> sorted{};
  int count = internal::SortKeptFds(keep, sorted);
  if (count < 0) {
    return InvalidArgument(
        fmt::format("CloseFdsExcept: keep list must hold at most {} "
                    "non-negative descriptors",
                    kMaxKeptFds));
  }
  return internal::StepStatus(JailStep::kCloseFds, internal::CloseFdsExceptRaw(std::span<const int>(
                                                       sorted.data(), static_cast<size_t>(count))));
}

Status SetNoNewPrivs() {
  return internal::StepStatus(JailStep::kNoNewPrivs, internal::SetNoNewPrivsRaw());
}

Status SetNotDumpable() {
  return internal::StepStatus(JailStep::kNotDumpable, internal::SetNotDumpableRaw());
}

}  // namespace shapex::sandbox
