// Connection: one end of a shapex connection, i.e. a UnixSocket plus (by default) a CallRing,
// after a version handshake. It moves frames (frame.h) of the types in protocol.h; what the
// payloads mean is the caller's business (messages.h, sidecar_transport.h).
//
//   // Client
//   ASSIGN_OR_RETURN(UnixSocket s, UnixSocket::Connect(path));
//   ASSIGN_OR_RETURN(Connection c, Connection::Connect(std::move(s)));   // Hello/Welcome
//   RETURN_IF_ERROR(c.Send(FrameType::kMessage, call_id, payload));
//   IncomingFrame in;
//   RETURN_IF_ERROR(c.Receive(&in, std::chrono::seconds(5)));            // any call's response
//   // Server
//   ASSIGN_OR_RETURN(Connection c, Connection::Accept(std::move(accepted)));
//
// Transports. With Transport::kCallRing (the default) the client creates the call-ring segment
// and sends it with its Hello; afterwards every frame that fits the ring and carries no
// descriptors goes through the ring. Any other frame goes through the socket, announced by a
// kSocketFrame record in the ring, so each direction stays one ordered stream. With
// Transport::kSocket (`--transport=socket`, the benchmark baseline) every frame uses the socket.
//
// Guarantees:
// - Handshake: both sides state protocol and VM version; a mismatch is a ProtocolError on both
//   sides that names both versions (the server answers kReject with the reason, then closes).
// - Descriptors: a kMessageWithFds frame carries 1..kMaxFdsPerFrame descriptors, sent with the
//   frame's first bytes (in groups of at most 16 per sendmsg). The receiver queues descriptors in
//   arrival order and hands each such frame exactly the number its payload announces. A frame
//   that announces more than arrived, more than kMaxFdsPerFrame + 16 queued descriptors, or
//   descriptors that no frame can claim are ProtocolErrors. Received descriptors are always
//   owned (ScopedFd), so nothing leaks on any path.
// - Every error from the peer's bytes or descriptors is a ProtocolError and is sticky: the
//   connection is dead, other connections are unaffected. A peer that disappears gives IoError
//   ("connection closed by peer"); a ring reader that sleeps checks after 1 ms, then at doubling
//   intervals up to liveness_interval.
// - Not thread-safe. Sending and receiving must happen on one thread (or be serialised).
#ifndef SHAPEX_IPC_CONNECTION_H_
#define SHAPEX_IPC_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/core/status.h"
#include "shapex/ipc/call_ring.h"
#include "shapex/ipc/frame.h"
#include "shapex/ipc/protocol.h"
#include "shapex/ipc/unix_socket.h"

namespace shapex::ipc {

enum class Transport : uint8_t { kCallRing, kSocket };

struct ConnectionOptions {
  // Client: which transport to ask for. Server: kSocket refuses clients that offer a ring.
  Transport transport = Transport::kCallRing;
  CallRingOptions ring;
  uint32_t max_frame_payload = kDefaultMaxFramePayload;
  std::chrono::milliseconds handshake_timeout{5000};
  // How long a blocked Send waits for the peer to make room before TimeoutError.
  std::chrono::milliseconds send_timeout{30000};
  // A ring reader asleep on its futex checks the socket for a vanished peer at least this often.
  std::chrono::milliseconds liveness_interval{1000};
  // What this side states in the handshake (tests change them to provoke mismatches).
  uint32_t protocol_version = 0;  // 0: kWireProtocolVersion
  uint32_t vm_version = 0;        // 0: engine::kVmVersion
};

// A received frame. The payload is a private copy (never a view of shared memory).
class IncomingFrame {
 public:
  FrameType type = FrameType::kMessage;
  uint64_t call_id = 0;
  std::vector<ScopedFd> fds;  // kMessageWithFds only

  std::span<const uint8_t> payload() const {
    return std::span<const uint8_t>(buffer_).subspan(payload_offset_);
  }

 private:
  friend class Connection;
  std::vector<uint8_t> buffer_;  // reused across Receive calls
  size_t payload_offset_ = 0;
};

struct ConnectionStats {
  uint64_t frames_sent_ring = 0;
  uint64_t frames_sent_socket = 0;
  uint64_t frames_received_ring = 0;
  uint64_t frames_received_socket = 0;
  uint64_t fds_sent = 0;
  uint64_t fds_received = 0;
};

class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(Connection&& other) noexcept { *this = std::move(other); }
  Connection& operator=(Connection&& other) noexcept;

  // Client side: sends Hello (with a new call ring unless options.transport is kSocket) and
  // waits for Welcome.
  static Result<Connection> Connect(UnixSocket socket, const ConnectionOptions& options = {});
  // Server side: waits for Hello, checks it, attaches the client's ring, answers Welcome.
  static Result<Connection> Accept(UnixSocket socket, const ConnectionOptions& options = {});

  // Sends one frame of type kMessage, kMessageWithFds (then `fds` must match the payload's
  // descriptor table), kCancel or kGoodbye. The caller keeps its copies of `fds`.
  Status Send(FrameType type, uint64_t call_id, std::span<const uint8_t> payload,
              std::span<const int> fds = {});

  // Receives the next frame (kMessage, kMessageWithFds, kCancel or kGoodbye), waiting up to
  // `timeout`. TimeoutError when nothing arrived; IoError when the peer is gone.
  Status Receive(IncomingFrame* frame, std::chrono::nanoseconds timeout);

  // Sends kGoodbye (best effort), tells the peer through the ring and half-closes the socket.
  // Receive keeps working until the peer's Goodbye or end of stream.
  void Shutdown();
  // Closes everything at once (the peer sees end of stream / a closed ring).
  void Close();

  bool valid() const { return socket_.valid(); }
  Transport transport() const { return ring_ ? Transport::kCallRing : Transport::kSocket; }
  const PeerCredentials& peer_credentials() const { return socket_.peer_credentials(); }
  const Handshake& peer_handshake() const { return peer_handshake_; }
  const ConnectionStats& stats() const { return stats_; }
  const CallRing* ring() const { return ring_ ? &*ring_ : nullptr; }
  int socket_fd() const { return socket_.fd(); }
  // The sticky error after a ProtocolError or a lost peer, else OK.
  const Status& error() const { return error_; }

 private:
  using Clock = std::chrono::steady_clock;

  Connection(UnixSocket socket, const ConnectionOptions& options);  // before the handshake
  Status Fail(Status status);
  Status SendOnSocket(FrameType type, uint64_t call_id, std::span<const uint8_t> payload,
                      std::span<const int> fds, Clock::time_point deadline);
  Status SendOnRing(std::span<const uint8_t> header, std::span<const uint8_t> payload,
                    Clock::time_point deadline);
  // Reads one whole frame from the socket into `frame`.
  Status ReceiveFromSocket(IncomingFrame* frame, Clock::time_point deadline);
  Status ReceiveFromRing(IncomingFrame* frame, Clock::time_point deadline);
  // Moves the descriptors a complete frame announced from the queue into `frame`.
  Status ClaimFds(IncomingFrame* frame);
  // True if the socket shows the peer has gone (end of stream or hang-up).
  Result<bool> PeerGone() const;
  Status CheckHandshake(const Handshake& peer) const;

  UnixSocket socket_;
  std::optional<CallRing> ring_;
  ConnectionOptions options_;
  Handshake peer_handshake_;
  FrameReader reader_;
  std::deque<ScopedFd> fd_queue_;
  std::vector<uint8_t> scratch_;  // frame encoding for the socket path
  ConnectionStats stats_;
  Status error_;
  bool shut_down_ = false;
};

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_CONNECTION_H_
