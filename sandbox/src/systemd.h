// The two pieces of systemd's protocol the supervisor speaks, written directly (no libsystemd):
// socket activation (sd_listen_fds(3): LISTEN_PID, LISTEN_FDS, descriptors from 3) and
// readiness notification (sd_notify(3): one datagram to NOTIFY_SOCKET). Both do nothing when
// their variables are absent, so everything works the same without systemd.
#ifndef SHAPEX_SANDBOX_SRC_SYSTEMD_H_
#define SHAPEX_SANDBOX_SRC_SYSTEMD_H_

#include <string_view>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"

namespace shapex::sandbox {

// The descriptors systemd passed to this process (empty if none were passed to us). Unsets
// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES so children do not take them for theirs.
std::vector<ScopedFd> TakeSystemdListenFds();

// Sends `state` (e.g. "READY=1\nMAINPID=42") to $NOTIFY_SOCKET; OK without the variable.
Status NotifySystemd(std::string_view state);

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SRC_SYSTEMD_H_
