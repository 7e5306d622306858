// Where the per-user supervisor listens, and the checks that keep other users out.
//
// The path (first rule that applies):
//   1. $SHAPEX_SOCKET, if set (tests, several supervisors side by side);
//   2. $XDG_RUNTIME_DIR/shapex/sock, if XDG_RUNTIME_DIR is set and absolute;
//   3. /run/shapex/sock for root;
//   4. $HOME/.shapex/run/sock otherwise.
// The directory holding the socket is created mode 0700 if missing, and must be owned by us and
// not accessible to group or others (else SandboxError: someone else could connect or replace
// the socket). The supervisor additionally checks SO_PEERCRED: a peer with another uid is refused.
#ifndef SHAPEX_IPC_SUPERVISOR_SOCKET_H_
#define SHAPEX_IPC_SUPERVISOR_SOCKET_H_

#include <string>

#include "shapex/core/result.h"

namespace shapex::ipc {

// The socket path by the rules above (InvalidArgument when no rule applies, e.g. no HOME).
Result<std::string> DefaultSupervisorSocketPath();

// Creates the socket's directory (0700) if needed and checks its owner and mode.
Status PrepareSocketDirectory(const std::string& socket_path);

// Creates `dir` and its missing parents with mode 0700 (existing ones are left as they are).
Status CreatePrivateDirectories(const std::string& dir);

// The lock file beside the socket: a supervisor holds an exclusive flock on it while it serves
// `socket_path` (docs/wire-protocol.md, "Finding the supervisor").
std::string ServeLockPath(const std::string& socket_path);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_SUPERVISOR_SOCKET_H_
