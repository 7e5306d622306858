// cgroup v2 limits per executor (docs/sandbox.md, "cgroups"): memory.max, pids.max and
// optionally cpu.max on a cgroup of its own for every executor, where the supervisor has a
// delegated cgroup v2 (root, or a systemd unit with Delegate=yes). Private to sandbox/.
//
//   ExecutorCgroups cgroups = ExecutorCgroups::Setup(limits);   // before the zygote is forked
//   if (!cgroups.enabled()) ... cgroups.reason() says why (logged once) ...
//   Result<ScopedFd> dir = cgroups.Create(token);  // per spawn: clone3(CLONE_INTO_CGROUP) into it
//   cgroups.Assign(token, pid);                    // spawned; or Abandon(token) if it failed
//   uint64_t oom = cgroups.OomKills(pid);          // memory.events oom_kill, live
//   uint64_t oom = cgroups.Release(pid);           // reaped: final oom_kill count, cgroup removed
//   cgroups.Teardown();                            // at exit (the destructor does it too)
//
// Layouts. The supervisor's own cgroup C comes from the "0::" line of /proc/self/cgroup, under
// the cgroup2 mount that /proc/self/mountinfo names (never assumed to be /sys/fs/cgroup).
//   leaf:   C holds no process but ours. The supervisor moves itself into C/supervisor (cgroup
//           v2 lets no cgroup with processes hand controllers to its children: the
//           "no internal process" rule), enables memory (+pids, +cpu) in C/cgroup.subtree_control
//           and makes C/exec-<token> per executor. Teardown undoes all of it.
//   nested: C is the hierarchy's real root (it has no cgroup.type; the rule does not apply
//           there): executors go under C/shapex-<pid>/exec-<token>, the supervisor stays.
// Everything is fail-safe: a step that fails disables the feature with a one-line reason and
// undoes what it did; the service then runs exactly as without cgroups.
//
// Thread-safety: none; the supervisor's event loop owns it.
#ifndef SHAPEX_SANDBOX_SRC_CGROUP_H_
#define SHAPEX_SANDBOX_SRC_CGROUP_H_

#include <nlohmann/json_fwd.hpp>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/core/status.h"

namespace shapex::sandbox {

// ---------------------------------------------------------------- parsing (pure, unit-tested)

struct Cgroup2Mount {
  std::string mount_point;  // where it is mounted (octal escapes of mountinfo decoded)
  std::string root;         // the hierarchy path mounted there ("/" usually)
};

struct MountInfoSummary {
  std::vector<Cgroup2Mount> cgroup2;  // every cgroup2 mount, in file order
  bool memory_on_v1 = false;          // a cgroup (v1) mount carries the memory controller
};

// Reads /proc/self/mountinfo text (proc(5): fields, " - ", fstype, source, super options).
MountInfoSummary ParseMountInfo(std::string_view mountinfo);

// The path of the "0::PATH" line of /proc/self/cgroup text, or nullopt if there is none.
std::optional<std::string> ParseUnifiedCgroupPath(std::string_view proc_self_cgroup);

// The directory of cgroup `path` (as /proc/self/cgroup gives it) under one of `mounts`: the
// mount whose root is the longest prefix of `path`. Error text (not a Status) if none shows it.
Result<std::string> CgroupDirectory(const std::vector<Cgroup2Mount>& mounts,
                                    std::string_view path);

// Space-separated words (cgroup.controllers, cgroup.subtree_control).
std::vector<std::string> ParseWords(std::string_view text);
// One decimal per line (cgroup.procs). Lines that are not numbers are skipped.
std::vector<pid_t> ParsePidList(std::string_view text);
// The value of `key` in a flat keyed file ("key value" lines: memory.events, cgroup.events).
std::optional<uint64_t> ParseKeyedValue(std::string_view text, std::string_view key);

// memory.max / pids.max values: the number, or "max" for 0 (no limit).
std::string FormatLimit(uint64_t value);
// cpu.max for `cpus` CPUs' worth of time per 100 ms period: "150000 100000"; "max 100000" for 0.
std::string FormatCpuMax(double cpus);

// ---------------------------------------------------------------- the decision (pure)

struct CgroupLimits {
  uint64_t memory_max = 0;  // bytes; 0: no memory.max (accounting only)
  uint64_t pids_max = 0;    // 0: no pids.max
  double cpus = 0;          // cpu.max in CPUs; 0: none
};

// What the supervisor found about its own cgroup (ProbeOwnCgroup), or an error reason.
struct CgroupProbe {
  std::string error;                     // non-empty: probing stopped here, this is why
  std::string path;                      // as /proc/self/cgroup names it
  std::string dir;                       // its directory
  bool is_root = false;                  // the hierarchy's real root (no cgroup.type file)
  std::string type;                      // cgroup.type: "domain", "threaded", ...
  std::vector<std::string> controllers;  // cgroup.controllers
  std::vector<pid_t> procs;              // cgroup.procs
  int write_errno = 0;                   // access(W_OK) of the files we must write; 0: OK
  bool memory_on_v1 = false;             // for the reason's hint
};

struct CgroupPlan {
  enum Layout { kDisabled, kLeaf, kNested };
  Layout layout = kDisabled;
  std::string reason;  // why disabled, or what is planned
  std::string base;    // the directory executors' cgroups go in
  std::vector<std::string> controllers;  // to enable: memory first, then pids, cpu if there
};

// The decision tree of docs/sandbox.md "cgroups", from probed facts only.
CgroupPlan DecideCgroupPlan(const CgroupProbe& probe, pid_t self, uid_t uid);

// Reads mountinfo and /proc/self/cgroup (texts given, so tests can pass fixtures) and then the
// cgroup's own files from the filesystem.
CgroupProbe ProbeCgroup(std::string_view mountinfo, std::string_view proc_self_cgroup);
// The same with this process's /proc/self files.
CgroupProbe ProbeOwnCgroup();

// ---------------------------------------------------------------- small kernel interactions

// Each is one system call or one small file, with the path in its error (IoError).
Status WriteCgroupFile(const std::string& path, std::string_view value);
Result<std::string> ReadCgroupFile(const std::string& path);
Status MakeCgroup(const std::string& dir);    // mkdir 0755; EEXIST is an error
Status RemoveCgroup(const std::string& dir);  // rmdir
Status MoveToCgroup(const std::string& dir, pid_t pid);  // write pid to dir/cgroup.procs
// Removes `dir`, killing what still runs in it (cgroup.kill, Linux 5.14) and retrying while it
// is busy for up to `patience`. OK if it did not exist.
Status RemoveCgroupKilling(const std::string& dir, std::chrono::milliseconds patience);

// ---------------------------------------------------------------- the supervisor's manager

class ExecutorCgroups {
 public:
  // Probes and prepares (see the layouts above). Never fails: disabled() then, with a reason,
  // logged once. `limits.memory_max` etc. are written into each executor's cgroup.
  static ExecutorCgroups Setup(const CgroupLimits& limits);
  // A disabled manager with `reason` (e.g. "--cgroups off").
  static ExecutorCgroups Disabled(std::string reason);

  ExecutorCgroups(ExecutorCgroups&& other) noexcept;
  ExecutorCgroups& operator=(ExecutorCgroups&& other) noexcept;
  ExecutorCgroups(const ExecutorCgroups&) = delete;
  ExecutorCgroups& operator=(const ExecutorCgroups&) = delete;
  ~ExecutorCgroups();

  bool enabled() const { return plan_.layout != CgroupPlan::kDisabled; }
  const std::string& reason() const { return plan_.reason; }
  const std::string& base() const { return plan_.base; }
  const CgroupLimits& limits() const { return limits_; }
  uint64_t oom_kills() const { return oom_kills_; }

  // Makes base/exec-<token> with the limits and returns a directory descriptor of it (for
  // clone3's CLONE_INTO_CGROUP). An error disables the feature (Disable) and is returned.
  Result<ScopedFd> Create(int64_t token);
  // The spawn of `token` gave `pid` / failed (the cgroup is removed).
  void Assign(int64_t token, pid_t pid);
  void Abandon(int64_t token);
  // OOM kills in `pid`'s cgroup so far (memory.events oom_kill); nullopt if it has none.
  std::optional<uint64_t> OomKills(pid_t pid) const;
  // `pid` was reaped: its final OOM kill count (0 if unknown); its cgroup is removed.
  uint64_t Release(pid_t pid);
  // Turns the feature off with `reason` (logged once); removes the cgroups it can.
  void Disable(std::string reason);
  // Removes every executor cgroup and undoes the layout. Idempotent.
  void Teardown();

  // {"enabled": bool, "reason": "...", ...} for `shapex status --json` (its "cgroups"), as JSON
  // and as the report's text; and its one line of `shapex status`.
  nlohmann::ordered_json StatusObject() const;
  std::string StatusJson() const;
  // What the report says when the supervisor has no cgroups object at all.
  static nlohmann::ordered_json DisabledStatusObject();
  std::string StatusLine() const;

 private:
  ExecutorCgroups() = default;
  std::string ExecutorDir(int64_t token) const;

  CgroupPlan plan_;
  CgroupLimits limits_;
  CgroupPlan::Layout set_up_ = CgroupPlan::kDisabled;  // what Teardown undoes
  std::string own_dir_;           // kLeaf: C (we move back here at teardown)
  std::vector<std::string> enabled_controllers_;  // we wrote "+X" for these in own_dir_
  std::map<int64_t, std::string> pending_;  // token -> dir, spawn in progress
  std::map<pid_t, std::string> by_pid_;     // live executors
  uint64_t oom_kills_ = 0;
  bool torn_down_ = false;
};

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SRC_CGROUP_H_
