// AsyncChannel: one control connection (control.h) driven by an event loop, never blocking on
// its peer. The supervisor holds one per client, per executor and for its zygote.
//
//   ASSIGN_OR_RETURN(AsyncChannel ch, AsyncChannel::Start(std::move(socket),
//                                                          AsyncChannel::Role::kServer, limits));
//   // when the socket is readable:
//   Status s = ch.OnReadable(32, [&](ControlMessage& m, std::vector<ScopedFd>& fds) { ... });
//   // to answer (queued; written now if the socket takes it, else when it is writable):
//   Status q = ch.Send(reply);              // ResourceExhausted: the peer does not read
//   // when the socket is writable (poll for it while ch.wants_write()):
//   Status f = ch.Flush();
//
// The handshake of "Connection protocol" is part of the channel: as kClient it queues Hello at
// Start and expects Welcome first; as kServer it expects Hello first (socket transport only, no
// descriptors, same versions) and queues Welcome, or queues Reject and fails. handshake_done()
// tells when control messages may flow; messages queued earlier go out after the handshake
// record, in order.
//
// Guarantees:
// - No call waits: reads and writes use the non-blocking socket and stop at EAGAIN. OnReadable
//   reads at most `limits.max_read_bytes` and hands out at most `max_messages` messages per call
//   (level-triggered loops come back for the rest), so one peer cannot starve the others.
// - Memory a peer controls is bounded: an incoming frame by `limits.max_frame_payload` (checked
//   on the header, before anything is reserved), queued output by `limits.max_output_bytes`
//   (Send answers ResourceExhausted beyond it; the message is still queued, so the caller decides
//   whether to drop the peer), descriptors queued from the peer by kMaxFdsPerFrame + 16.
// - Every error is sticky: a ProtocolError for the peer's bytes, IoError when it went away
//   ("connection closed by peer"). Received descriptors are always owned; queued descriptors are
//   closed once sent or when the channel is destroyed.
// - output_pending_since() says for how long the peer has left queued output unread (the basis of
//   the supervisor's write deadline). Not thread-safe.
#ifndef SHAPEX_IPC_ASYNC_CHANNEL_H_
#define SHAPEX_IPC_ASYNC_CHANNEL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/frame.h"
#include "shapex/ipc/protocol.h"
#include "shapex/ipc/unix_socket.h"

namespace shapex::ipc {

struct AsyncChannelLimits {
  uint32_t max_frame_payload = kDefaultMaxFramePayload;
  size_t max_output_bytes = size_t{1} << 20;
  size_t max_read_bytes = size_t{256} << 10;  // per OnReadable call
};

class AsyncChannel {
 public:
  enum class Role { kClient, kServer };
  using Clock = std::chrono::steady_clock;
  using Handler = std::function<void(ControlMessage&, std::vector<ScopedFd>&)>;

  AsyncChannel() = default;
  AsyncChannel(AsyncChannel&&) noexcept = default;
  AsyncChannel& operator=(AsyncChannel&&) noexcept = default;

  // Takes the (non-blocking) socket; as kClient queues and tries to send Hello.
  static Result<AsyncChannel> Start(UnixSocket socket, Role role,
                                    const AsyncChannelLimits& limits = {});

  // Reads what the socket has (bounded, see above) and calls `handle` for each complete control
  // message, at most `max_messages` of them. OK also when nothing was there; the sticky error
  // when the peer broke the protocol or went away.
  Status OnReadable(size_t max_messages, const Handler& handle);
  // Whether bytes are buffered (after OnReadable stopped at `max_messages`, call it again
  // without waiting for the socket: poll will not report those bytes).
  bool has_buffered_bytes() const { return reader_.has_partial_frame(); }

  // Queues `message` (with `fds`, owned until sent) and writes what the socket takes now.
  Status Send(const ControlMessage& message, std::vector<ScopedFd> fds = {});
  // Writes queued output until the socket is full or the queue is empty.
  Status Flush();

  bool handshake_done() const { return handshake_done_; }
  bool wants_write() const { return !output_.empty(); }
  size_t output_bytes() const { return output_bytes_; }
  // When the queued output became non-empty (nullopt while it is empty).
  std::optional<Clock::time_point> output_pending_since() const {
    return output_.empty() ? std::nullopt : std::optional(output_since_);
  }
  const Status& error() const { return error_; }
  bool valid() const { return socket_.valid(); }
  int fd() const { return socket_.fd(); }
  const PeerCredentials& peer_credentials() const { return socket_.peer_credentials(); }
  void Close();

 private:
  struct OutFrame {
    std::vector<uint8_t> bytes;
    std::vector<ScopedFd> fds;
    size_t sent = 0;
  };

  Status Fail(Status status);
  void Queue(std::vector<uint8_t> bytes, std::vector<ScopedFd> fds);
  // Handles one complete frame; `*delivered` is set when it was a control message.
  Status OnFrame(const Frame& frame, const Handler& handle, bool* delivered);

  UnixSocket socket_;
  Role role_ = Role::kServer;
  AsyncChannelLimits limits_;
  FrameReader reader_;
  std::deque<ScopedFd> fd_queue_;
  std::deque<OutFrame> output_;
  size_t output_bytes_ = 0;
  Clock::time_point output_since_{};
  bool handshake_done_ = false;
  Status error_;
};

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_ASYNC_CHANNEL_H_
