#include "shapex/ipc/unix_socket.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>

#include "shapex/core/errno_status.h"

namespace shapex::ipc {
namespace {

using Clock = std::chrono::steady_clock;

// Room for the largest SCM_RIGHTS message Linux delivers (SCM_MAX_FD descriptors) plus one
// credentials message. Receiving with a buffer this large means the kernel installs every
// descriptor the peer sent, so we can close the excess ourselves and report a clear error,
// instead of relying on MSG_CTRUNC silently dropping some.
constexpr size_t kRecvControlSize =
    CMSG_SPACE(UnixSocket::kMaxFdsPerSend * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred));

struct SocketAddress {
  sockaddr_un addr{};
  socklen_t length = 0;
};

Result<SocketAddress> MakeAddress(std::string_view path) {
  SocketAddress out;
  out.addr.sun_family = AF_UNIX;
  bool abstract = !path.empty() && path[0] == '@';
  // A filesystem path needs its terminating NUL inside sun_path; an abstract name does not.
  size_t limit = sizeof(out.addr.sun_path) - (abstract ? 0 : 1);
  if (path.empty() || path.size() > limit) {
    return InvalidArgument(
        fmt::format("unix socket path '{}' is empty or longer than {} bytes", path, limit));
  }
  std::memcpy(out.addr.sun_path, path.data(), path.size());
  if (abstract) out.addr.sun_path[0] = '\0';
  out.length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return out;
}

Result<ScopedFd> NewStreamSocket() {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus("socket(AF_UNIX)");
  return fd;
}

// Milliseconds left until `deadline` for poll(), or -1 for "no deadline".
int RemainingMs(std::optional<Clock::time_point> deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

std::optional<Clock::time_point> DeadlineAfter(int timeout_ms) {
  if (timeout_ms < 0) return std::nullopt;
  return Clock::now() + std::chrono::milliseconds(timeout_ms);
}

// poll() for `events` on one fd, retrying EINTR with the remaining time. True if ready (or in an
// error/hangup state, which the next I/O call reports precisely).
Result<bool> PollFor(int fd, short events, int timeout_ms) {
  auto deadline = DeadlineAfter(timeout_ms);
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, RemainingMs(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return ErrnoStatus("poll");
  }
}

}  // namespace

Result<UnixSocket> UnixSocket::FromConnectedFd(ScopedFd fd) {
  struct ucred cred {};
  socklen_t length = sizeof(cred);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    return ErrnoStatus("getsockopt(SO_PEERCRED)");
  }
  return UnixSocket(std::move(fd), PeerCredentials{cred.pid, cred.uid, cred.gid});
}

Result<std::pair<UnixSocket, UnixSocket>> UnixSocket::Pair() {
  int raw[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, raw) != 0) {
    return ErrnoStatus("socketpair(AF_UNIX)");
  }
  ScopedFd a(raw[0]);
  ScopedFd b(raw[1]);
  ASSIGN_OR_RETURN(UnixSocket first, FromConnectedFd(std::move(a)));
  ASSIGN_OR_RETURN(UnixSocket second, FromConnectedFd(std::move(b)));
  return std::make_pair(std::move(first), std::move(second));
}

Result<UnixSocket> UnixSocket::Connect(std::string_view path, int* error_number) {
  if (error_number != nullptr) *error_number = 0;
  ASSIGN_OR_RETURN(SocketAddress address, MakeAddress(path));
  ASSIGN_OR_RETURN(ScopedFd fd, NewStreamSocket());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address.addr), address.length) != 0) {
    if (error_number != nullptr) *error_number = errno;
    if (errno == EAGAIN) return IoError(fmt::format("connect {}: listener backlog is full", path));
    if (errno != EINTR && errno != EINPROGRESS) return ErrnoStatus("connect", path);
    if (error_number != nullptr) *error_number = 0;
    // Interrupted: the connection completes asynchronously; wait and collect its result.
    ASSIGN_OR_RETURN(bool ready, PollFor(fd.get(), POLLOUT, -1));
    (void)ready;
    int err = 0;
    socklen_t length = sizeof(err);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &length) != 0) {
      return ErrnoStatus("getsockopt(SO_ERROR)", path);
    }
    if (err != 0) {
      if (error_number != nullptr) *error_number = err;
      return ErrnoStatus("connect", path, err);
    }
  }
  return FromConnectedFd(std::move(fd));
}

Result<UnixSocket> UnixSocket::Adopt(ScopedFd fd) {
  int type = 0;
  int domain = 0;
  socklen_t length = sizeof(type);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
    return ErrnoStatus("getsockopt(SO_TYPE)");
  }
  length = sizeof(domain);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0) {
    return ErrnoStatus("getsockopt(SO_DOMAIN)");
  }
  if (type != SOCK_STREAM || domain != AF_UNIX) {
    return InvalidArgument("UnixSocket::Adopt needs an AF_UNIX SOCK_STREAM socket");
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("fcntl(O_NONBLOCK)");
  }
  if (::fcntl(fd.get(), F_SETFD, FD_CLOEXEC) != 0) return ErrnoStatus("fcntl(FD_CLOEXEC)");
  return FromConnectedFd(std::move(fd));
}

Result<IoResult> UnixSocket::SendMsg(std::span<const uint8_t> bytes, std::span<const int> fds) {
  if (!fd_) return InvalidArgument("SendMsg on a closed socket");
  if (bytes.empty()) return InvalidArgument("SendMsg needs at least one byte");
  if (fds.size() > kMaxFdsPerSend) {
    return InvalidArgument(
        fmt::format("cannot send {} fds in one message (max {})", fds.size(), kMaxFdsPerSend));
  }
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFdsPerSend * sizeof(int))];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), fds.data(), fds.size() * sizeof(int));
  }
  for (;;) {
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n > 0) return IoResult{IoResult::State::kTransferred, static_cast<size_t>(n)};
    if (n == 0) return IoResult{IoResult::State::kWouldBlock, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{IoResult::State::kWouldBlock, 0};
    if (errno == EPIPE || errno == ECONNRESET) return IoResult{IoResult::State::kPeerClosed, 0};
    return ErrnoStatus("sendmsg");
  }
}

Result<IoResult> UnixSocket::RecvMsg(std::span<uint8_t> buf, std::vector<ScopedFd>* fds,
                                     size_t max_fds) {
  if (!fd_) return InvalidArgument("RecvMsg on a closed socket");
  if (buf.empty()) return InvalidArgument("RecvMsg needs a non-empty buffer");
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  alignas(cmsghdr) char control[kRecvControlSize];
  ssize_t n;
  for (;;) {
    msg = msghdr{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{IoResult::State::kWouldBlock, 0};
    if (errno == ECONNRESET) return IoResult{IoResult::State::kPeerClosed, 0};
    return ErrnoStatus("recvmsg");
  }

  // Own every received descriptor before looking at anything else, so that each return below
  // closes them.
  std::vector<ScopedFd> received;
  bool unexpected_control = false;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
      size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char* data = CMSG_DATA(cmsg);
      for (size_t i = 0; i < count; ++i) {
        int raw;
        std::memcpy(&raw, data + i * sizeof(int), sizeof(int));
        received.emplace_back(raw);
      }
    } else {
      unexpected_control = true;
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return ProtocolError("recvmsg: control data truncated (MSG_CTRUNC); descriptors were lost");
  }
  if (msg.msg_flags & MSG_TRUNC) return ProtocolError("recvmsg: message truncated (MSG_TRUNC)");
  if (unexpected_control) return ProtocolError("recvmsg: unexpected control message");
  if (!received.empty() && fds == nullptr) {
    return ProtocolError(
        fmt::format("peer sent {} fds on a connection that accepts none", received.size()));
  }
  if (received.size() > max_fds) {
    return ProtocolError(
        fmt::format("peer sent {} fds in one message (max {})", received.size(), max_fds));
  }
  if (n == 0) return IoResult{IoResult::State::kPeerClosed, 0};
  for (ScopedFd& fd : received) fds->push_back(std::move(fd));
  return IoResult{IoResult::State::kTransferred, static_cast<size_t>(n)};
}

Result<bool> UnixSocket::WaitReadable(int timeout_ms) const {
  return PollFor(fd_.get(), POLLIN, timeout_ms);
}

Result<bool> UnixSocket::WaitWritable(int timeout_ms) const {
  return PollFor(fd_.get(), POLLOUT, timeout_ms);
}

Status UnixSocket::SendAll(std::span<const uint8_t> bytes, std::span<const int> fds,
                           int timeout_ms) {
  auto deadline = DeadlineAfter(timeout_ms);
  while (!bytes.empty()) {
    ASSIGN_OR_RETURN(IoResult r, SendMsg(bytes, fds));
    switch (r.state) {
      case IoResult::State::kTransferred:
        bytes = bytes.subspan(r.bytes);
        fds = {};  // the descriptors went with the first chunk
        break;
      case IoResult::State::kPeerClosed:
        return IoError("send: connection closed by peer");
      case IoResult::State::kWouldBlock: {
        ASSIGN_OR_RETURN(bool ready, WaitWritable(RemainingMs(deadline)));
        if (!ready) return TimeoutError("send: timed out waiting for the socket to drain");
        break;
      }
    }
  }
  return Status::Ok();
}

Status UnixSocket::ShutdownWrite() {
  if (::shutdown(fd_.get(), SHUT_WR) != 0) return ErrnoStatus("shutdown(SHUT_WR)");
  return Status::Ok();
}

Result<UnixListener> UnixListener::Listen(std::string_view path, int backlog) {
  ASSIGN_OR_RETURN(SocketAddress address, MakeAddress(path));
  ASSIGN_OR_RETURN(ScopedFd fd, NewStreamSocket());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address.addr), address.length) != 0) {
    return ErrnoStatus("bind", path);
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoStatus("listen", path);
  UnixListener listener;
  listener.fd_ = std::move(fd);
  listener.path_ = std::string(path);
  return listener;
}

Result<UnixListener> UnixListener::Adopt(ScopedFd fd, std::string path) {
  int type = 0, listening = 0, domain = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return ErrnoStatus("getsockopt(SO_TYPE)", path);
  }
  len = sizeof listening;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) {
    return ErrnoStatus("getsockopt(SO_ACCEPTCONN)", path);
  }
  len = sizeof domain;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
    return ErrnoStatus("getsockopt(SO_DOMAIN)", path);
  }
  if (type != SOCK_STREAM || listening == 0 || domain != AF_UNIX) {
    return InvalidArgument("the passed descriptor is not a listening AF_UNIX stream socket");
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0 ||
      ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC) != 0) {
    return ErrnoStatus("fcntl", path);
  }
  UnixListener listener;
  listener.fd_ = std::move(fd);
  listener.path_ = std::move(path);
  return listener;
}

Result<std::optional<UnixSocket>> UnixListener::Accept() {
  if (!fd_) return InvalidArgument("Accept on a closed listener");
  for (;;) {
    ScopedFd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (fd) {
      ASSIGN_OR_RETURN(UnixSocket socket, UnixSocket::FromConnectedFd(std::move(fd)));
      return std::optional<UnixSocket>(std::move(socket));
    }
    // ECONNABORTED: the client gave up while queued; look at the next one.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::optional<UnixSocket>();
    return ErrnoStatus("accept4", path_);
  }
}

Result<bool> UnixListener::WaitPending(int timeout_ms) const {
  return PollFor(fd_.get(), POLLIN, timeout_ms);
}

}  // namespace shapex::ipc
