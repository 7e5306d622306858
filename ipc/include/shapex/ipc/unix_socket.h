// UnixSocket: a non-blocking AF_UNIX SOCK_STREAM connection with one SCM_RIGHTS wrapper for
// passing file descriptors, and UnixListener for accepting connections on a path.
//
// Why SOCK_STREAM: frames may be up to 64 MiB, far beyond what one SOCK_SEQPACKET message can
// carry (bounded by the socket buffer), and the FrameReader already reassembles arbitrary splits;
// fds are queued in arrival order and each frame says how many it consumes (docs/architecture.md).
//
// Usage:
//   ASSIGN_OR_RETURN(auto listener, UnixListener::Listen("/run/shapex.sock"));
//   ASSIGN_OR_RETURN(std::optional<UnixSocket> conn, listener.Accept());  // nullopt: would block
//   if (conn && conn->peer_credentials().uid != getuid()) ...             // read once at accept
//
//   ASSIGN_OR_RETURN(auto pair, UnixSocket::Pair());
//   ASSIGN_OR_RETURN(IoResult sent, pair.first.SendMsg(bytes, fds_to_pass));
//   std::vector<ScopedFd> received;
//   ASSIGN_OR_RETURN(IoResult got, pair.second.RecvMsg(buffer, &received));
//
// Guarantees:
// - Every descriptor is created close-on-exec (SOCK_CLOEXEC, accept4, MSG_CMSG_CLOEXEC) and
//   non-blocking. Sends use MSG_NOSIGNAL: a closed peer is kPeerClosed, never SIGPIPE.
// - EINTR is retried internally; EAGAIN is reported as kWouldBlock, never as an error.
// - RecvMsg puts every received descriptor into a ScopedFd at once; on every error path those
//   descriptors are closed. More than `max_fds` descriptors in one message, MSG_CTRUNC, MSG_TRUNC
//   or unexpected control messages are ProtocolErrors (the excess descriptors are closed).
// - OS failures are IoErrors naming the call; misuse is InvalidArgument.
// - Not thread-safe: one thread at a time per socket (a sender and a receiver thread may share a
//   socket only if the caller serialises each direction; the kernel allows it, we do not track it).
#ifndef SHAPEX_IPC_UNIX_SOCKET_H_
#define SHAPEX_IPC_UNIX_SOCKET_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/core/status.h"

namespace shapex::ipc {

// Default cap on descriptors accepted in one message.
inline constexpr size_t kDefaultMaxFdsPerMessage = 16;

// Identity of the process at the other end, as recorded by the kernel when the connection was
// made (SO_PEERCRED). Read once; later changes of the peer (setuid, exec) are not reflected.
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Outcome of one non-blocking transfer.
struct IoResult {
  enum class State : uint8_t {
    kTransferred,  // `bytes` > 0 bytes moved
    kWouldBlock,   // nothing moved; wait for readiness (WaitReadable/WaitWritable or epoll)
    kPeerClosed,   // orderly EOF on receive; EPIPE/ECONNRESET on send
  };
  State state = State::kWouldBlock;
  size_t bytes = 0;

  bool transferred() const { return state == State::kTransferred; }
};

class UnixSocket {
 public:
  UnixSocket() = default;
  UnixSocket(UnixSocket&&) noexcept = default;
  UnixSocket& operator=(UnixSocket&&) noexcept = default;

  // A connected pair (socketpair). Both ends carry the caller's own credentials.
  static Result<std::pair<UnixSocket, UnixSocket>> Pair();

  // Connects to a listener at `path`. A path starting with '@' names the Linux abstract
  // namespace. IoError if nobody listens; kWouldBlock-style backlog overflow is an IoError too.
  // `*error_number` (if given) receives connect's errno on failure (ENOENT, ECONNREFUSED,
  // EAGAIN...), 0 otherwise.
  static Result<UnixSocket> Connect(std::string_view path, int* error_number = nullptr);

  // Takes ownership of a connected AF_UNIX stream socket (e.g. inherited by an executor); makes it
  // non-blocking and close-on-exec and reads its peer credentials.
  static Result<UnixSocket> Adopt(ScopedFd fd);

  // Sends up to bytes.size() bytes (must be > 0: a stream needs at least one byte to carry fds)
  // with `fds` attached to the first byte. If the result is kTransferred, all of `fds` were sent
  // (the caller keeps its own copies open); a partial byte count means the rest must be sent with
  // an empty fd list. At most kMaxFdsPerSend descriptors per call.
  Result<IoResult> SendMsg(std::span<const uint8_t> bytes, std::span<const int> fds = {});

  // Receives up to buf.size() bytes; descriptors that arrive with them are appended to `*fds`
  // (which may be null only if the caller refuses descriptors: any received one is then a
  // ProtocolError). More than `max_fds` descriptors in this message is a ProtocolError.
  Result<IoResult> RecvMsg(std::span<uint8_t> buf, std::vector<ScopedFd>* fds,
                           size_t max_fds = kDefaultMaxFdsPerMessage);

  // Blocking helpers built on poll(): wait until readable/writable. Return false on timeout.
  // timeout_ms < 0 waits forever.
  Result<bool> WaitReadable(int timeout_ms) const;
  Result<bool> WaitWritable(int timeout_ms) const;

  // Sends all of `bytes` (fds with the first chunk), waiting for writability as needed.
  // IoError if the peer closed the connection or the timeout expired.
  Status SendAll(std::span<const uint8_t> bytes, std::span<const int> fds = {},
                 int timeout_ms = -1);

  // Half-closes the sending direction (the peer then reads EOF).
  Status ShutdownWrite();

  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  const PeerCredentials& peer_credentials() const { return peer_; }
  // Closes the socket.
  void Close() { fd_.reset(); }

  // Linux refuses more than SCM_MAX_FD (253) descriptors per message.
  static constexpr size_t kMaxFdsPerSend = 253;

 private:
  UnixSocket(ScopedFd fd, PeerCredentials peer) : fd_(std::move(fd)), peer_(peer) {}
  static Result<UnixSocket> FromConnectedFd(ScopedFd fd);

  ScopedFd fd_;
  PeerCredentials peer_;

  friend class UnixListener;
};

// A listening socket bound to a filesystem path or an abstract name ('@' prefix).
// The listener does not unlink its path on destruction (a newer listener may own it by then).
class UnixListener {
 public:
  UnixListener() = default;
  UnixListener(UnixListener&&) noexcept = default;
  UnixListener& operator=(UnixListener&&) noexcept = default;

  // Binds and listens. IoError if the path exists (remove stale sockets first) or is too long.
  static Result<UnixListener> Listen(std::string_view path, int backlog = 128);

  // Takes a socket that already listens (e.g. passed by systemd socket activation): checks that
  // it is a listening AF_UNIX stream socket, makes it non-blocking and close-on-exec.
  static Result<UnixListener> Adopt(ScopedFd fd, std::string path);

  // Accepts one pending connection (nullopt if none is pending) and reads its SO_PEERCRED.
  Result<std::optional<UnixSocket>> Accept();

  // Waits up to timeout_ms for a connection (timeout_ms < 0: forever). False on timeout.
  Result<bool> WaitPending(int timeout_ms) const;

  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  ScopedFd fd_;
  std::string path_;
};

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_UNIX_SOCKET_H_
