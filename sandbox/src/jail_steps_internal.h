// Allocation-free forms of the jail steps (jail_steps.h), for the child that SpawnJailed clones.
//
// That child is a copy of one thread of a possibly multithreaded parent, so until the jail is
// complete it must not allocate, lock or touch stdio: every function here uses only system
// calls and stack memory and reports failure as a StepFailure (a string literal naming the
// failed operation plus errno) instead of a Status. The public step functions wrap these.
#ifndef SHAPEX_SANDBOX_SRC_JAIL_STEPS_INTERNAL_H_
#define SHAPEX_SANDBOX_SRC_JAIL_STEPS_INTERNAL_H_

#include <linux/filter.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <span>

#include "shapex/core/status.h"
#include "shapex/sandbox/jail_steps.h"

namespace shapex::sandbox::internal {

struct StepFailure {
  const char* operation = nullptr;  // a string literal; nullptr means success
  int error = 0;

  bool failed() const { return operation != nullptr; }
};

inline StepFailure Failure(const char* operation, int error = errno) { return {operation, error}; }

// OK for a success, otherwise SandboxError "jail step '<name>' failed: <operation>: <strerror>".
Status StepStatus(JailStep step, StepFailure failure);

// The lines written to uid_map and gid_map, formatted by the parent before cloning.
struct IdMapLines {
  char uid_map[40] = {};
  char gid_map[40] = {};
};
IdMapLines FormatIdentityIdMaps(uid_t outer_uid, gid_t outer_gid);

StepFailure WriteIdMapsRaw(const IdMapLines& lines);
StepFailure StartProcessGroupRaw(int parent_pipe_fd);
StepFailure SetHostnameRaw();
StepFailure EnterMountJailRaw();
StepFailure DropCapabilitiesRaw();
StepFailure ApplyRlimitsRaw(const RlimitOptions& limits);
// `sorted_keep` must be sorted ascending, without duplicates or negative numbers.
StepFailure CloseFdsExceptRaw(std::span<const int> sorted_keep);
// The fallback of CloseFdsExceptRaw when close_range(2) is missing; exposed for tests.
StepFailure CloseFdsByScanRaw(std::span<const int> sorted_keep);
StepFailure SetNoNewPrivsRaw();
StepFailure SetNotDumpableRaw();
StepFailure InstallSeccompRaw(const sock_filter* instructions, size_t count);

// Copies `keep` into `out`, sorted and deduplicated; returns the count, or -1 when `keep` has a
// negative number or more distinct entries than `out` can hold.
int SortKeptFds(std::span<const int> keep, std::span<int> out);

}  // namespace shapex::sandbox::internal

#endif  // SHAPEX_SANDBOX_SRC_JAIL_STEPS_INTERNAL_H_
