#include "shapex/ipc/supervisor_socket.h"

#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "shapex/core/errno_status.h"

namespace shapex::ipc {

Result<std::string> DefaultSupervisorSocketPath() {
  if (const char* explicit_path = std::getenv("SHAPEX_SOCKET");
      explicit_path != nullptr && explicit_path[0] != '\0') {
    return std::string(explicit_path);
  }
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && runtime[0] == '/') {
    return std::string(runtime) + "/shapex/sock";
  }
  if (::geteuid() == 0) return std::string("/run/shapex/sock");
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    return std::string(home) + "/.shapex/run/sock";
  }
  return InvalidArgument("no place for the supervisor socket: set XDG_RUNTIME_DIR or HOME");
}

Status CreatePrivateDirectories(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", prefix);
    }
  }
  return Status::Ok();
}

std::string ServeLockPath(const std::string& socket_path) { return socket_path + ".lock"; }

Status PrepareSocketDirectory(const std::string& socket_path) {
  size_t slash = socket_path.rfind('/');
  if (slash == std::string::npos || slash == 0) {
    return InvalidArgument(fmt::format("socket path '{}' has no directory", socket_path));
  }
  std::string dir = socket_path.substr(0, slash);
  // Create missing parents (e.g. $HOME/.shapex) 0700 too.
  RETURN_IF_ERROR(CreatePrivateDirectories(dir));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoStatus("lstat", dir);
  if (!S_ISDIR(st.st_mode)) return SandboxError(fmt::format("{} is not a directory", dir));
  if (st.st_uid != ::geteuid()) {
    return SandboxError(fmt::format("{} belongs to uid {}, not to us ({})", dir, st.st_uid,
                                    ::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    return SandboxError(fmt::format("{} is accessible to other users (mode {:o}); it must be 0700",
                                    dir, st.st_mode & 0777));
  }
  return Status::Ok();
}

}  // namespace shapex::ipc
