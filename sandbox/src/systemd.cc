#include "systemd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "shapex/core/errno_status.h"

namespace shapex::sandbox {

namespace {
constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START
}

std::vector<ScopedFd> TakeSystemdListenFds() {
  std::vector<ScopedFd> fds;
  const char* pid = std::getenv("LISTEN_PID");
  const char* count = std::getenv("LISTEN_FDS");
  if (pid != nullptr && count != nullptr) {
    char* end = nullptr;
    long for_pid = std::strtol(pid, &end, 10);
    long n = std::strtol(count, nullptr, 10);
    if (end != pid && *end == '\0' && for_pid == ::getpid() && n > 0 && n < 64) {
      for (int fd = kListenFdsStart; fd < kListenFdsStart + n; ++fd) {
        if (::fcntl(fd, F_GETFD) < 0) continue;  // not open after all
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        fds.emplace_back(fd);
      }
    }
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return fds;
}

Status NotifySystemd(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Status::Ok();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) {
    return InvalidArgument(std::string("unusable NOTIFY_SOCKET ") + path);
  }
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len +
                                              (path[0] == '@' ? 0 : 1));
  ScopedFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus("socket(NOTIFY_SOCKET)");
  if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&addr), addr_len) < 0) {
    return ErrnoStatus("sendto", path);
  }
  return Status::Ok();
}

}  // namespace shapex::sandbox
