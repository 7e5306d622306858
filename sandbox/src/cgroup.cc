// cgroup v2 per executor: parsing, the decision tree, and the few kernel interactions. Every
// interaction is one system call on one file, so that what the kernel refused is named in the
// reason (Documentation/admin-guide/cgroup-v2.rst: "Delegation", "No Internal Process
// Constraint", memory.events; clone3(2) CLONE_INTO_CGROUP).
#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>

#include "shapex/core/errno_status.h"
#include "shapex/core/log.h"
#include "status_json.h"

namespace shapex::sandbox {
namespace {

constexpr std::string_view kSupervisorLeaf = "supervisor";
constexpr std::string_view kExecutorPrefix = "exec-";
constexpr uint64_t kCpuPeriodMicros = 100000;

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string DecodeOctalEscapes(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() &&
        std::all_of(s.begin() + static_cast<long>(i) + 1, s.begin() + static_cast<long>(i) + 4,
                    [](char c) { return c >= '0' && c <= '7'; })) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool Contains(const std::vector<std::string>& words, std::string_view word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

std::string HumanBytes(uint64_t n) {
  if (n == 0) return "max";
  if (n % (uint64_t{1} << 30) == 0) return fmt::format("{} GiB", n >> 30);
  if (n % (uint64_t{1} << 20) == 0) return fmt::format("{} MiB", n >> 20);
  if (n % (uint64_t{1} << 10) == 0) return fmt::format("{} KiB", n >> 10);
  return fmt::format("{} bytes", n);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

// ---------------------------------------------------------------- parsing

MountInfoSummary ParseMountInfo(std::string_view mountinfo) {
  MountInfoSummary summary;
  for (std::string_view line : SplitLines(mountinfo)) {
    std::vector<std::string_view> f = SplitSpaces(line);
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 7 || dash == f.end() || dash - f.begin() < 6 || f.end() - dash < 3) continue;
    std::string_view fstype = *(dash + 1);
    if (fstype == "cgroup2") {
      summary.cgroup2.push_back({DecodeOctalEscapes(f[4]), DecodeOctalEscapes(f[3])});
    } else if (fstype == "cgroup") {
      // Super options are comma-separated: "rw,memory".
      std::string options = "," + std::string(*(dash + 3)) + ",";
      if (options.find(",memory,") != std::string::npos) summary.memory_on_v1 = true;
    }
  }
  return summary;
}

std::optional<std::string> ParseUnifiedCgroupPath(std::string_view proc_self_cgroup) {
  for (std::string_view line : SplitLines(proc_self_cgroup)) {
    if (line.substr(0, 3) == "0::") return std::string(line.substr(3));
  }
  return std::nullopt;
}

Result<std::string> CgroupDirectory(const std::vector<Cgroup2Mount>& mounts,
                                    std::string_view path) {
  if (mounts.empty()) return SandboxError("no cgroup2 filesystem is mounted (cgroup v1 only)");
  if (path.empty() || path[0] != '/' || path.find("/..") != std::string_view::npos) {
    return SandboxError(fmt::format(
        "our cgroup \"{}\" lies outside this process's cgroup namespace", path));
  }
  const Cgroup2Mount* best = nullptr;
  for (const Cgroup2Mount& m : mounts) {
    std::string_view root = m.root;
    bool under = root == "/" || path == root ||
                 (path.substr(0, root.size()) == root && path.size() > root.size() &&
                  path[root.size()] == '/');
    if (under && (best == nullptr || root.size() > best->root.size())) best = &m;
  }
  if (best == nullptr) {
    return SandboxError(fmt::format("our cgroup {} is not visible under the cgroup2 mount at {}",
                                    path, mounts.front().mount_point));
  }
  std::string_view rest = best->root == "/" ? path : path.substr(best->root.size());
  std::string dir = best->mount_point;
  if (rest != "/" && !rest.empty()) dir += rest;
  return dir;
}

std::vector<std::string> ParseWords(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view line : SplitLines(text)) {
    for (std::string_view w : SplitSpaces(line)) out.emplace_back(w);
  }
  return out;
}

std::vector<pid_t> ParsePidList(std::string_view text) {
  std::vector<pid_t> out;
  for (std::string_view line : SplitLines(text)) {
    if (line.empty() || line.size() > 10 ||
        !std::all_of(line.begin(), line.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    out.push_back(static_cast<pid_t>(std::stoll(std::string(line))));
  }
  return out;
}

std::optional<uint64_t> ParseKeyedValue(std::string_view text, std::string_view key) {
  for (std::string_view line : SplitLines(text)) {
    std::vector<std::string_view> f = SplitSpaces(line);
    if (f.size() != 2 || f[0] != key || f[1].size() > 20 ||
        !std::all_of(f[1].begin(), f[1].end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    return std::stoull(std::string(f[1]));
  }
  return std::nullopt;
}

std::string FormatLimit(uint64_t value) { return value == 0 ? "max" : std::to_string(value); }

std::string FormatCpuMax(double cpus) {
  if (!(cpus > 0)) return fmt::format("max {}", kCpuPeriodMicros);
  // The kernel's minimum quota is 1 ms.
  auto quota = static_cast<uint64_t>(std::llround(cpus * static_cast<double>(kCpuPeriodMicros)));
  return fmt::format("{} {}", std::max<uint64_t>(quota, 1000), kCpuPeriodMicros);
}

// ---------------------------------------------------------------- the decision

CgroupPlan DecideCgroupPlan(const CgroupProbe& probe, pid_t self, uid_t uid) {
  CgroupPlan plan;
  auto disabled = [&](std::string reason) {
    plan.layout = CgroupPlan::kDisabled;
    plan.reason = std::move(reason);
    return plan;
  };
  if (!probe.error.empty()) return disabled(probe.error);
  if (!Contains(probe.controllers, "memory")) {
    std::string listed = Join(probe.controllers);
    return disabled(fmt::format(
        "the memory controller is not available in {} (cgroup.controllers: \"{}\"){}", probe.dir,
        listed, probe.memory_on_v1 ? "; it is bound to a cgroup v1 hierarchy (hybrid mode)"
                                   : "; the parent cgroup does not delegate it"));
  }
  if (!probe.is_root && probe.type != "domain") {
    return disabled(fmt::format("{} is a \"{}\" cgroup; the memory controller needs a domain cgroup",
                                probe.dir, probe.type));
  }
  if (probe.write_errno != 0) {
    return disabled(fmt::format("{} is not delegated to uid {} ({}); run the supervisor in a "
                                "cgroup of its own with Delegate=yes (systemd)",
                                probe.dir, uid, std::strerror(probe.write_errno)));
  }
  for (std::string_view c : {"memory", "pids", "cpu"}) {
    if (Contains(probe.controllers, c)) plan.controllers.emplace_back(c);
  }
  if (probe.is_root) {
    plan.layout = CgroupPlan::kNested;
    plan.base = fmt::format("{}/shapex-{}", probe.dir, self);
    return plan;
  }
  std::vector<pid_t> others;
  for (pid_t p : probe.procs) {
    if (p != self) others.push_back(p);
  }
  if (!others.empty()) {
    return disabled(fmt::format(
        "{} holds {} other process{} (pid {}{}), so cgroup v2's no-internal-process rule keeps "
        "controllers from its children; run the supervisor in a cgroup of its own with "
        "Delegate=yes (the shapex.service unit, or systemd-run --user -p Delegate=yes)",
        probe.dir, others.size(), others.size() == 1 ? "" : "es", others.front(),
        others.size() > 1 ? ", ..." : ""));
  }
  plan.layout = CgroupPlan::kLeaf;
  plan.base = probe.dir;
  return plan;
}

CgroupProbe ProbeCgroup(std::string_view mountinfo, std::string_view proc_self_cgroup) {
  CgroupProbe probe;
  MountInfoSummary mounts = ParseMountInfo(mountinfo);
  probe.memory_on_v1 = mounts.memory_on_v1;
  std::optional<std::string> path = ParseUnifiedCgroupPath(proc_self_cgroup);
  if (mounts.cgroup2.empty()) {
    probe.error = "no cgroup2 filesystem is mounted (cgroup v1 only)";
    return probe;
  }
  if (!path) {
    probe.error = "this process is in no cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup)";
    return probe;
  }
  probe.path = *path;
  Result<std::string> dir = CgroupDirectory(mounts.cgroup2, *path);
  if (!dir.has_value()) {
    probe.error = dir.error().message();
    return probe;
  }
  probe.dir = *dir;
  Result<std::string> controllers = ReadCgroupFile(probe.dir + "/cgroup.controllers");
  if (!controllers.has_value()) {
    probe.error = controllers.error().message();
    return probe;
  }
  probe.controllers = ParseWords(*controllers);
  Result<std::string> type = ReadCgroupFile(probe.dir + "/cgroup.type");
  probe.is_root = !type.has_value() && ::access((probe.dir + "/cgroup.type").c_str(), F_OK) != 0 &&
                  errno == ENOENT;
  if (type.has_value()) probe.type = Trim(*type);
  Result<std::string> procs = ReadCgroupFile(probe.dir + "/cgroup.procs");
  if (!procs.has_value()) {
    probe.error = procs.error().message();
    return probe;
  }
  probe.procs = ParsePidList(*procs);
  for (const std::string& p : {probe.dir, probe.dir + "/cgroup.procs",
                               probe.dir + "/cgroup.subtree_control"}) {
    if (::access(p.c_str(), W_OK) != 0) {
      probe.write_errno = errno;
      break;
    }
  }
  return probe;
}

CgroupProbe ProbeOwnCgroup() {
  Result<std::string> mountinfo = ReadCgroupFile("/proc/self/mountinfo");
  Result<std::string> cgroup = ReadCgroupFile("/proc/self/cgroup");
  if (!mountinfo.has_value() || !cgroup.has_value()) {
    CgroupProbe probe;
    probe.error = (!mountinfo.has_value() ? mountinfo.error() : cgroup.error()).message();
    return probe;
  }
  return ProbeCgroup(*mountinfo, *cgroup);
}

// ---------------------------------------------------------------- kernel interactions

Status WriteCgroupFile(const std::string& path, std::string_view value) {
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open", path);
  // One write: the kernel parses each write(2) to a cgroup file as one command.
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) return ErrnoStatus(fmt::format("write \"{}\" to", value), path);
  if (static_cast<size_t>(n) != value.size()) {
    return IoError(fmt::format("write \"{}\" to {}: short write", value, path));
  }
  return Status::Ok();
}

Result<std::string> ReadCgroupFile(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open", path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (size_t{16} << 20)) return IoError(fmt::format("{}: too large", path));
  }
  return out;
}

Status MakeCgroup(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0) return ErrnoStatus("mkdir", dir);
  return Status::Ok();
}

Status RemoveCgroup(const std::string& dir) {
  if (::rmdir(dir.c_str()) != 0) return ErrnoStatus("rmdir", dir);
  return Status::Ok();
}

Status MoveToCgroup(const std::string& dir, pid_t pid) {
  return WriteCgroupFile(dir + "/cgroup.procs", std::to_string(pid));
}

Status RemoveCgroupKilling(const std::string& dir, std::chrono::milliseconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  bool killed = false;
  for (;;) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Status::Ok();
    if (errno != EBUSY) return ErrnoStatus("rmdir", dir);
    if (!killed) {
      // Linux 5.14+; older kernels lack the file and the processes die another way (the
      // zygote's exit kills its executors).
      (void)WriteCgroupFile(dir + "/cgroup.kill", "1");
      killed = true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return ErrnoStatus("rmdir", dir, EBUSY);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// ---------------------------------------------------------------- ExecutorCgroups

ExecutorCgroups ExecutorCgroups::Disabled(std::string reason) {
  ExecutorCgroups c;
  c.plan_.reason = std::move(reason);
  return c;
}

ExecutorCgroups ExecutorCgroups::Setup(const CgroupLimits& limits) {
  ExecutorCgroups c;
  c.limits_ = limits;
  CgroupProbe probe = ProbeOwnCgroup();
  CgroupPlan plan = DecideCgroupPlan(probe, ::getpid(), ::geteuid());
  if (plan.layout == CgroupPlan::kDisabled) {
    SHAPEX_LOG(INFO, "cgroup limits off: {}", plan.reason);
    return Disabled(plan.reason);
  }
  c.own_dir_ = probe.dir;
  // Undoes what was done so far and turns the feature off with the step's error.
  auto fail = [&](const Status& step) {
    c.Teardown();  // undoes only the steps done (set_up_ is set once each layout exists)
    std::string reason = fmt::format("cannot set up cgroups: {}", step.message());
    SHAPEX_LOG(INFO, "cgroup limits off: {}", reason);
    return Disabled(reason);
  };
  Result<std::string> before = ReadCgroupFile(probe.dir + "/cgroup.subtree_control");
  if (!before.has_value()) return fail(before.error());
  std::vector<std::string> already = ParseWords(*before);
  if (plan.layout == CgroupPlan::kLeaf) {
    // Stale executor cgroups of a supervisor that died here: empty ones go (rmdir only).
    if (DIR* d = ::opendir(probe.dir.c_str())) {
      while (dirent* entry = ::readdir(d)) {
        std::string_view name = entry->d_name;
        if (name.substr(0, kExecutorPrefix.size()) == kExecutorPrefix) {
          (void)RemoveCgroup(probe.dir + "/" + std::string(name));
        }
      }
      ::closedir(d);
    }
    std::string leaf = probe.dir + "/" + std::string(kSupervisorLeaf);
    // An empty leaf left by a supervisor that died is ours to reuse.
    if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) return fail(ErrnoStatus("mkdir", leaf));
    c.set_up_ = plan.layout;  // from here on Teardown moves us back and removes the leaf
    c.plan_ = plan;
    if (Status moved = MoveToCgroup(leaf, ::getpid()); !moved.ok()) return fail(moved);
  } else {
    if (Status made = MakeCgroup(plan.base); !made.ok()) return fail(made);
    c.set_up_ = plan.layout;
    c.plan_ = plan;
  }
  // Controllers, one write each so that an optional one (pids, cpu) may be refused alone.
  std::vector<std::string> missing;
  for (const std::string& controller : plan.controllers) {
    if (Contains(already, controller)) continue;
    Status on = WriteCgroupFile(probe.dir + "/cgroup.subtree_control", "+" + controller);
    if (on.ok()) {
      // The root's subtree_control stays as we leave it: other cgroups may use it by then.
      if (plan.layout == CgroupPlan::kLeaf) c.enabled_controllers_.push_back(controller);
    } else if (controller == "memory") {
      return fail(on);
    } else {
      missing.push_back(controller);
    }
  }
  if (plan.layout == CgroupPlan::kNested) {
    for (const std::string& controller : plan.controllers) {
      if (Contains(missing, controller)) continue;
      Status on = WriteCgroupFile(plan.base + "/cgroup.subtree_control", "+" + controller);
      if (!on.ok() && controller == "memory") return fail(on);
      if (!on.ok()) missing.push_back(controller);
    }
  }
  std::vector<std::string> active;
  for (const std::string& controller : plan.controllers) {
    if (!Contains(missing, controller)) active.push_back(controller);
  }
  c.plan_.controllers = active;
  std::string what = fmt::format("memory.max {}", HumanBytes(limits.memory_max));
  if (Contains(active, "pids")) what += fmt::format(", pids.max {}", FormatLimit(limits.pids_max));
  if (limits.cpus > 0 && Contains(active, "cpu")) {
    what += fmt::format(", cpu.max {}", FormatCpuMax(limits.cpus));
  }
  c.plan_.reason = fmt::format("{} per executor under {}", what, plan.base);
  if (!Contains(active, "pids")) c.plan_.reason += " (no pids controller: pids.max not set)";
  if (limits.cpus > 0 && !Contains(active, "cpu")) {
    c.plan_.reason += " (no cpu controller: cpu.max not set)";
  }
  SHAPEX_LOG(INFO, "cgroup limits on: {}", c.plan_.reason);
  return c;
}

ExecutorCgroups::ExecutorCgroups(ExecutorCgroups&& other) noexcept { *this = std::move(other); }

ExecutorCgroups& ExecutorCgroups::operator=(ExecutorCgroups&& other) noexcept {
  if (this != &other) {
    Teardown();
    plan_ = std::move(other.plan_);
    limits_ = other.limits_;
    set_up_ = std::exchange(other.set_up_, CgroupPlan::kDisabled);
    own_dir_ = std::move(other.own_dir_);
    enabled_controllers_ = std::move(other.enabled_controllers_);
    pending_ = std::move(other.pending_);
    by_pid_ = std::move(other.by_pid_);
    oom_kills_ = other.oom_kills_;
    torn_down_ = std::exchange(other.torn_down_, true);
    other.pending_.clear();
    other.by_pid_.clear();
  }
  return *this;
}

ExecutorCgroups::~ExecutorCgroups() { Teardown(); }

std::string ExecutorCgroups::ExecutorDir(int64_t token) const {
  return fmt::format("{}/{}{}", plan_.base, kExecutorPrefix, token);
}

Result<ScopedFd> ExecutorCgroups::Create(int64_t token) {
  if (!enabled()) return SandboxError("cgroup limits are off: " + plan_.reason);
  std::string dir = ExecutorDir(token);
  auto fail = [&](const Status& step) -> Status {
    (void)RemoveCgroup(dir);
    Disable(fmt::format("cannot make an executor cgroup: {}", step.message()));
    return step;
  };
  if (Status made = MakeCgroup(dir); !made.ok()) return fail(made);
  if (limits_.memory_max > 0) {
    if (Status s = WriteCgroupFile(dir + "/memory.max", FormatLimit(limits_.memory_max)); !s.ok()) {
      return fail(s);
    }
    // With swap, memory.max alone lets the excess go to swap; memory.swap.max exists only
    // where swap is accounted.
    if (::access((dir + "/memory.swap.max").c_str(), F_OK) == 0) {
      if (Status s = WriteCgroupFile(dir + "/memory.swap.max", "0"); !s.ok()) return fail(s);
    }
  }
  if (limits_.pids_max > 0 && Contains(plan_.controllers, "pids")) {
    if (Status s = WriteCgroupFile(dir + "/pids.max", FormatLimit(limits_.pids_max)); !s.ok()) {
      return fail(s);
    }
  }
  if (limits_.cpus > 0 && Contains(plan_.controllers, "cpu")) {
    if (Status s = WriteCgroupFile(dir + "/cpu.max", FormatCpuMax(limits_.cpus)); !s.ok()) {
      return fail(s);
    }
  }
  ScopedFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail(ErrnoStatus("open", dir));
  pending_[token] = dir;
  return fd;
}

void ExecutorCgroups::Assign(int64_t token, pid_t pid) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return;
  by_pid_[pid] = std::move(it->second);
  pending_.erase(it);
}

void ExecutorCgroups::Abandon(int64_t token) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return;
  (void)RemoveCgroupKilling(it->second, std::chrono::milliseconds(100));
  pending_.erase(it);
}

std::optional<uint64_t> ExecutorCgroups::OomKills(pid_t pid) const {
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return std::nullopt;
  Result<std::string> events = ReadCgroupFile(it->second + "/memory.events");
  if (!events.has_value()) return std::nullopt;
  return ParseKeyedValue(*events, "oom_kill");
}

uint64_t ExecutorCgroups::Release(pid_t pid) {
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return 0;
  uint64_t kills = OomKills(pid).value_or(0);
  oom_kills_ += kills;
  // Reaped, so the cgroup is empty: rmdir succeeds at once.
  Status removed = RemoveCgroupKilling(it->second, std::chrono::milliseconds(100));
  if (!removed.ok()) SHAPEX_LOG(WARN, "executor {}: {}", pid, removed.ToString());
  by_pid_.erase(it);
  return kills;
}

void ExecutorCgroups::Disable(std::string reason) {
  if (!enabled()) return;
  SHAPEX_LOG(WARN, "cgroup limits off: {}", reason);
  plan_.layout = CgroupPlan::kDisabled;
  plan_.reason = std::move(reason);
  // Live executors keep their cgroups until they are released; Teardown undoes the layout.
}

void ExecutorCgroups::Teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  constexpr std::chrono::milliseconds kPatience{1000};
  for (auto& [token, dir] : pending_) (void)RemoveCgroupKilling(dir, kPatience);
  for (auto& [pid, dir] : by_pid_) {
    Status removed = RemoveCgroupKilling(dir, kPatience);
    if (!removed.ok()) SHAPEX_LOG(WARN, "cgroup of executor {}: {}", pid, removed.ToString());
  }
  pending_.clear();
  by_pid_.clear();
  if (set_up_ == CgroupPlan::kLeaf) {
    // Controllers off first: a cgroup that hands controllers to children may hold no process.
    for (auto c = enabled_controllers_.rbegin(); c != enabled_controllers_.rend(); ++c) {
      Status off = WriteCgroupFile(own_dir_ + "/cgroup.subtree_control", "-" + *c);
      if (!off.ok()) SHAPEX_LOG(WARN, "cgroup teardown: {}", off.ToString());
    }
    Status back = MoveToCgroup(own_dir_, ::getpid());
    if (!back.ok()) SHAPEX_LOG(WARN, "cgroup teardown: {}", back.ToString());
    std::string leaf = own_dir_ + "/" + std::string(kSupervisorLeaf);
    // Never cgroup.kill here: it would be us if the move failed.
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (::rmdir(leaf.c_str()) != 0 && errno == EBUSY &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } else if (set_up_ == CgroupPlan::kNested) {
    (void)RemoveCgroupKilling(plan_.base, kPatience);
  }
  enabled_controllers_.clear();
  set_up_ = CgroupPlan::kDisabled;
}

nlohmann::ordered_json ExecutorCgroups::StatusObject() const {
  nlohmann::ordered_json status = nlohmann::ordered_json::object();
  status["enabled"] = enabled();
  status["reason"] = plan_.reason;
  status["dir"] = enabled() ? nlohmann::ordered_json(plan_.base) : nlohmann::ordered_json(nullptr);
  status["memory_max"] = limits_.memory_max;
  status["pids_max"] = limits_.pids_max;
  status["cpu_max"] = limits_.cpus > 0 ? FormatCpuMax(limits_.cpus) : "max";
  status["executors"] = by_pid_.size();
  status["oom_kills"] = oom_kills_;
  return status;
}

nlohmann::ordered_json ExecutorCgroups::DisabledStatusObject() {
  return {{"enabled", false}, {"reason", ""}};
}

std::string ExecutorCgroups::StatusJson() const { return DumpStatusJson(StatusObject()); }

std::string ExecutorCgroups::StatusLine() const {
  if (!enabled()) return fmt::format("cgroups     off: {}\n", plan_.reason);
  return fmt::format("cgroups     on: {}; OOM kills {}\n", plan_.reason, oom_kills_);
}

}  // namespace shapex::sandbox
