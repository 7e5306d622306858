#include "shapex/ipc/connection.h"

#include <fmt/core.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "shapex/core/errno_status.h"
#include "fd_queue.h"
#include "shapex/engine/blob.h"
#include "shapex/ipc/messages.h"

namespace shapex::ipc {

using std::chrono::nanoseconds;

namespace {

// Descriptors per sendmsg: what a receiver accepts per recvmsg by default.
constexpr size_t kFdsPerSendmsg = kDefaultMaxFdsPerMessage;
constexpr size_t kSocketReadChunk = 64 << 10;

nanoseconds Remaining(std::chrono::steady_clock::time_point deadline) {
  return std::max(nanoseconds(0), deadline - std::chrono::steady_clock::now());
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  auto ns = Remaining(deadline).count();
  return static_cast<int>(std::min<int64_t>((ns + 999'999) / 1'000'000, 1 << 30));
}

std::chrono::steady_clock::time_point DeadlineAfter(nanoseconds timeout) {
  auto now = std::chrono::steady_clock::now();
  if (timeout >= nanoseconds(std::chrono::hours(24 * 365))) return now + std::chrono::hours(24 * 365);
  return now + std::max(timeout, nanoseconds(0));
}

Handshake OurHandshake(const ConnectionOptions& options, bool ring) {
  Handshake h;
  h.protocol_version = options.protocol_version != 0 ? options.protocol_version
                                                     : kWireProtocolVersion;
  h.vm_version = options.vm_version != 0 ? options.vm_version : engine::kVmVersion;
  h.flags = ring ? Handshake::kFlagCallRing : 0;
  h.max_frame_payload = options.max_frame_payload;
  return h;
}

bool IsApplicationFrame(FrameType type) {
  return type == FrameType::kMessage || type == FrameType::kMessageWithFds ||
         type == FrameType::kCancel || type == FrameType::kGoodbye;
}

}  // namespace

Connection::~Connection() { Close(); }

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    Close();
    socket_ = std::move(other.socket_);
    ring_ = std::move(other.ring_);
    other.ring_.reset();
    options_ = other.options_;
    peer_handshake_ = other.peer_handshake_;
    reader_ = std::move(other.reader_);
    fd_queue_ = std::move(other.fd_queue_);
    scratch_ = std::move(other.scratch_);
    stats_ = other.stats_;
    error_ = std::move(other.error_);
    shut_down_ = other.shut_down_;
  }
  return *this;
}

Status Connection::CheckHandshake(const Handshake& peer) const {
  Handshake ours = OurHandshake(options_, false);
  if (peer.protocol_version != ours.protocol_version || peer.vm_version != ours.vm_version) {
    return ProtocolError(fmt::format(
        "version mismatch: this side speaks protocol {} / VM {}, the peer protocol {} / VM {}",
        ours.protocol_version, ours.vm_version, peer.protocol_version, peer.vm_version));
  }
  return Status::Ok();
}

Connection::Connection(UnixSocket socket, const ConnectionOptions& options)
    : socket_(std::move(socket)), options_(options), reader_(options.max_frame_payload) {}

Result<Connection> Connection::Connect(UnixSocket socket, const ConnectionOptions& options) {
  Connection c(std::move(socket), options);
  auto deadline = DeadlineAfter(options.handshake_timeout);
  bool want_ring = options.transport == Transport::kCallRing;
  std::optional<CallRing> ring;
  ScopedFd ring_fd;
  if (want_ring) {
    ASSIGN_OR_RETURN(ring, CallRing::Create(RingSide::kClient, options.ring));
    ASSIGN_OR_RETURN(ring_fd, ring->ShareFd());
  }
  std::vector<uint8_t> hello = EncodeHandshake(OurHandshake(options, want_ring));
  int fd = ring_fd.get();
  RETURN_IF_ERROR(c.SendOnSocket(FrameType::kHello, 0, hello,
                                 want_ring ? std::span<const int>(&fd, 1) : std::span<const int>(),
                                 deadline));
  ring_fd.reset();
  IncomingFrame reply;
  RETURN_IF_ERROR(c.ReceiveFromSocket(&reply, deadline));
  if (reply.type == FrameType::kReject) {
    auto text = reply.payload();
    return ProtocolError(fmt::format("server refused the connection: {}",
                                     std::string(text.begin(), text.end())));
  }
  if (reply.type != FrameType::kWelcome) {
    return ProtocolError(fmt::format("expected Welcome, got frame type {:#x}",
                                     static_cast<int>(reply.type)));
  }
  ASSIGN_OR_RETURN(c.peer_handshake_, DecodeHandshake(reply.payload()));
  RETURN_IF_ERROR(c.CheckHandshake(c.peer_handshake_));
  if (((c.peer_handshake_.flags & Handshake::kFlagCallRing) != 0) != want_ring) {
    return ProtocolError("server answered with a different transport than offered");
  }
  c.ring_ = std::move(ring);
  return c;
}

Result<Connection> Connection::Accept(UnixSocket socket, const ConnectionOptions& options) {
  Connection c(std::move(socket), options);
  auto deadline = DeadlineAfter(options.handshake_timeout);
  IncomingFrame hello;
  RETURN_IF_ERROR(c.ReceiveFromSocket(&hello, deadline));
  auto reject = [&](Status status) -> Status {
    // Best effort: the client learns why before the socket closes.
    const std::string& why = status.message();
    (void)c.SendOnSocket(FrameType::kReject, 0,
                         std::span(reinterpret_cast<const uint8_t*>(why.data()), why.size()), {},
                         deadline);
    c.Close();
    return status;
  };
  if (hello.type != FrameType::kHello) {
    return reject(ProtocolError(fmt::format("expected Hello, got frame type {:#x}",
                                            static_cast<int>(hello.type))));
  }
  Result<Handshake> peer = DecodeHandshake(hello.payload());
  if (!peer.has_value()) return reject(peer.error());
  c.peer_handshake_ = *peer;
  if (Status s = c.CheckHandshake(*peer); !s.ok()) return reject(s);
  bool ring = (peer->flags & Handshake::kFlagCallRing) != 0;
  if (hello.fds.size() != (ring ? 1u : 0u)) {
    return reject(ProtocolError(fmt::format("Hello came with {} descriptors, expected {}",
                                            hello.fds.size(), ring ? 1 : 0)));
  }
  if (ring) {
    if (options.transport == Transport::kSocket) {
      return reject(ProtocolError("this server accepts the socket transport only"));
    }
    Result<CallRing> attached =
        CallRing::Attach(std::move(hello.fds[0]), RingSide::kServer, options.ring.max_spin);
    if (!attached.has_value()) return reject(attached.error());
    c.ring_ = std::move(*attached);
  }
  std::vector<uint8_t> welcome = EncodeHandshake(OurHandshake(options, ring));
  RETURN_IF_ERROR(c.SendOnSocket(FrameType::kWelcome, 0, welcome, {}, deadline));
  return c;
}

Status Connection::Fail(Status status) {
  if (error_.ok()) error_ = std::move(status);
  return error_;
}

Status Connection::Send(FrameType type, uint64_t call_id, std::span<const uint8_t> payload,
                        std::span<const int> fds) {
  if (!error_.ok()) return error_;
  if (!socket_.valid()) return InvalidArgument("connection is closed");
  if (!IsApplicationFrame(type)) {
    return InvalidArgument(fmt::format("frame type {:#x} cannot be sent by the application",
                                       static_cast<int>(type)));
  }
  if ((type == FrameType::kMessageWithFds) != !fds.empty() || fds.size() > kMaxFdsPerFrame) {
    return InvalidArgument(fmt::format("frame type {:#x} with {} descriptors",
                                       static_cast<int>(type), fds.size()));
  }
  if (payload.size() > options_.max_frame_payload ||
      payload.size() > peer_handshake_.max_frame_payload) {
    return ResourceExhausted(fmt::format(
        "frame payload of {} bytes exceeds the connection's maximum of {} (use a sidecar)",
        payload.size(), std::min(options_.max_frame_payload, peer_handshake_.max_frame_payload)));
  }
  auto deadline = DeadlineAfter(options_.send_timeout);
  if (ring_ && fds.empty() && ring_->Fits(kFrameHeaderSize + payload.size())) {
    auto header = EncodeFrameHeader(
        {static_cast<uint32_t>(payload.size()), static_cast<uint8_t>(type), call_id});
    RETURN_IF_ERROR(SendOnRing(header, payload, deadline));
    ++stats_.frames_sent_ring;
    return Status::Ok();
  }
  if (ring_) {
    // Keep one ordered stream per direction: the ring says where the next frame is.
    auto doorbell = EncodeFrameHeader(
        {0, static_cast<uint8_t>(FrameType::kSocketFrame), call_id});
    RETURN_IF_ERROR(SendOnRing(doorbell, {}, deadline));
  }
  RETURN_IF_ERROR(SendOnSocket(type, call_id, payload, fds, deadline));
  ++stats_.frames_sent_socket;
  stats_.fds_sent += fds.size();
  return Status::Ok();
}

Status Connection::SendOnRing(std::span<const uint8_t> header, std::span<const uint8_t> payload,
                              Clock::time_point deadline) {
  for (;;) {
    nanoseconds slice = std::min<nanoseconds>(Remaining(deadline), options_.liveness_interval);
    Status s = ring_->Write(header, payload, slice);
    if (s.ok()) return s;
    if (s.kind() != ErrorKind::kTimeout) return Fail(s);
    ASSIGN_OR_RETURN(bool gone, PeerGone());
    if (gone) return Fail(IoError("connection closed by peer"));
    if (Remaining(deadline) == nanoseconds(0)) return s;
  }
}

Status Connection::SendOnSocket(FrameType type, uint64_t call_id,
                                std::span<const uint8_t> payload, std::span<const int> fds,
                                Clock::time_point deadline) {
  scratch_.clear();
  auto header = EncodeFrameHeader(
      {static_cast<uint32_t>(payload.size()), static_cast<uint8_t>(type), call_id});
  scratch_.insert(scratch_.end(), header.begin(), header.end());
  scratch_.insert(scratch_.end(), payload.begin(), payload.end());
  std::span<const uint8_t> bytes = scratch_;
  // Groups of descriptors ride on single bytes; the last group goes with the rest of the frame.
  while (fds.size() > kFdsPerSendmsg) {
    Status s = socket_.SendAll(bytes.first(1), fds.first(kFdsPerSendmsg), RemainingMs(deadline));
    if (!s.ok()) return Fail(s);
    bytes = bytes.subspan(1);
    fds = fds.subspan(kFdsPerSendmsg);
  }
  Status s = socket_.SendAll(bytes, fds, RemainingMs(deadline));
  if (!s.ok()) return Fail(s);
  return Status::Ok();
}

Status Connection::Receive(IncomingFrame* frame, nanoseconds timeout) {
  if (!error_.ok()) return error_;
  if (!socket_.valid()) return InvalidArgument("connection is closed");
  auto deadline = DeadlineAfter(timeout);
  Status s = ring_ ? ReceiveFromRing(frame, deadline) : ReceiveFromSocket(frame, deadline);
  if (!s.ok()) return s;
  if (!IsApplicationFrame(frame->type)) {
    return Fail(ProtocolError(fmt::format("unexpected frame type {:#x} after the handshake",
                                          static_cast<int>(frame->type))));
  }
  return Status::Ok();
}

Status Connection::ReceiveFromRing(IncomingFrame* frame, Clock::time_point deadline) {
  // Check on the peer soon at first, then less often: a peer that dies during a call is noticed
  // within milliseconds, while a long idle wait settles at one check per liveness_interval.
  nanoseconds check_after = std::chrono::milliseconds(1);
  for (;;) {
    nanoseconds slice = std::min<nanoseconds>(
        {Remaining(deadline), check_after, nanoseconds(options_.liveness_interval)});
    check_after *= 2;
    Status s = ring_->Read(&frame->buffer_, slice);
    if (s.kind() == ErrorKind::kTimeout) {
      ASSIGN_OR_RETURN(bool gone, PeerGone());
      if (gone) {
        // The peer publishes before it closes its socket: one last look at the ring.
        Result<bool> last = ring_->TryRead(&frame->buffer_);
        if (!last.has_value()) return Fail(last.error());
        if (!*last) return Fail(IoError("connection closed by peer"));
        s = Status::Ok();
      } else if (Remaining(deadline) == nanoseconds(0)) {
        return s;
      } else {
        continue;
      }
    }
    if (!s.ok()) {
      if (s.kind() == ErrorKind::kIoError) return Fail(IoError("connection closed by peer"));
      return Fail(s);
    }
    Result<Frame> decoded = DecodeSingleFrame(frame->buffer_, options_.max_frame_payload);
    if (!decoded.has_value()) return Fail(decoded.error());
    if (decoded->type == static_cast<uint8_t>(FrameType::kSocketFrame)) {
      return ReceiveFromSocket(frame, deadline);
    }
    if (decoded->type == static_cast<uint8_t>(FrameType::kMessageWithFds)) {
      return Fail(ProtocolError("a frame with descriptors arrived through the call ring"));
    }
    frame->type = static_cast<FrameType>(decoded->type);
    frame->call_id = decoded->call_id;
    frame->payload_offset_ = kFrameHeaderSize;
    frame->fds.clear();
    ++stats_.frames_received_ring;
    return Status::Ok();
  }
}

Status Connection::ReceiveFromSocket(IncomingFrame* frame, Clock::time_point deadline) {
  for (;;) {
    Frame next;
    Result<ReadProgress> progress = reader_.Next(&next);
    if (!progress.has_value()) return Fail(progress.error());
    if (*progress == ReadProgress::kFrame) {
      if (!IsKnownFrameType(next.type)) {
        return Fail(ProtocolError(fmt::format("unknown frame type {:#x}", next.type)));
      }
      frame->type = static_cast<FrameType>(next.type);
      frame->call_id = next.call_id;
      frame->buffer_.assign(next.payload.begin(), next.payload.end());
      frame->payload_offset_ = 0;
      frame->fds.clear();
      if (next.type != static_cast<uint8_t>(FrameType::kHello) &&
          next.type != static_cast<uint8_t>(FrameType::kWelcome) &&
          next.type != static_cast<uint8_t>(FrameType::kReject)) {
        ++stats_.frames_received_socket;
      }
      RETURN_IF_ERROR(ClaimFds(frame));
      // Descriptors ride on a frame's first bytes: with nothing else buffered, any descriptor
      // still queued belongs to no frame.
      if (!reader_.has_partial_frame() && !fd_queue_.empty()) {
        fd_queue_.clear();
        return Fail(ProtocolError("descriptors arrived that no frame announced"));
      }
      return Status::Ok();
    }
    // Descriptors ride on a frame's first bytes, so with no partial frame buffered every
    // frame received so far has claimed its descriptors: the rest are strays.
    if (!reader_.has_partial_frame() && !fd_queue_.empty()) {
      fd_queue_.clear();
      return Fail(ProtocolError("descriptors arrived that no frame announced"));
    }
    Result<std::span<uint8_t>> window = reader_.PrepareWrite(kSocketReadChunk);
    if (!window.has_value()) return Fail(window.error());
    std::vector<ScopedFd> fds;
    Result<IoResult> got = socket_.RecvMsg(*window, &fds);
    if (!got.has_value()) return Fail(got.error());
    stats_.fds_received += fds.size();
    if (Status queued = internal::EnqueueReceivedFds(&fds, &fd_queue_); !queued.ok()) {
      return Fail(queued);
    }
    switch (got->state) {
      case IoResult::State::kTransferred:
        reader_.CommitWrite(got->bytes);
        break;
      case IoResult::State::kPeerClosed:
        if (reader_.has_partial_frame()) {
          return Fail(ProtocolError("connection closed in the middle of a frame"));
        }
        return Fail(IoError("connection closed by peer"));
      case IoResult::State::kWouldBlock: {
        if (Remaining(deadline) == nanoseconds(0)) {
          return TimeoutError("timed out waiting for a frame");
        }
        Result<bool> ready = socket_.WaitReadable(RemainingMs(deadline));
        if (!ready.has_value()) return Fail(ready.error());
        if (!*ready) return TimeoutError("timed out waiting for a frame");
        break;
      }
    }
  }
}

Status Connection::ClaimFds(IncomingFrame* frame) {
  if (frame->type != FrameType::kMessageWithFds && frame->type != FrameType::kHello) return {};
  size_t wanted = 0;
  if (frame->type == FrameType::kHello) {
    Result<Handshake> h = DecodeHandshake(frame->payload());
    if (!h.has_value()) return Fail(h.error());
    wanted = (h->flags & Handshake::kFlagCallRing) != 0 ? 1 : 0;
  } else {
    // Only the count: the rest of the table is the message layer's to judge.
    Result<uint32_t> count = PeekFdCount(frame->payload());
    if (!count.has_value()) return Fail(count.error());
    wanted = *count;
  }
  if (Status s = internal::ClaimQueuedFds(wanted, &fd_queue_, &frame->fds); !s.ok()) {
    return Fail(s);
  }
  return Status::Ok();
}

Result<bool> Connection::PeerGone() const {
  pollfd p{socket_.fd(), POLLRDHUP, 0};
  int n = ::poll(&p, 1, 0);
  if (n < 0) {
    if (errno == EINTR) return false;
    return ErrnoStatus("poll");
  }
  return n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void Connection::Shutdown() {
  if (!socket_.valid() || shut_down_) return;
  shut_down_ = true;
  if (error_.ok()) (void)Send(FrameType::kGoodbye, 0, {});
  if (ring_) ring_->MarkClosed();
  (void)socket_.ShutdownWrite();
}

void Connection::Close() {
  if (ring_) ring_->MarkClosed();
  ring_.reset();
  socket_.Close();
  fd_queue_.clear();
}

}  // namespace shapex::ipc
