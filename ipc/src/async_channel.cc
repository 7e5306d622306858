#include "shapex/ipc/async_channel.h"

#include <fmt/core.h>

#include <string>
#include <utility>

#include "shapex/engine/blob.h"
#include "fd_queue.h"
#include "shapex/ipc/messages.h"

namespace shapex::ipc {
namespace {

constexpr size_t kReadChunk = 64 << 10;

Handshake OurHandshake(uint32_t max_payload) {
  Handshake h;
  h.protocol_version = kWireProtocolVersion;
  h.vm_version = engine::kVmVersion;
  h.flags = 0;  // control connections use the socket transport
  h.max_frame_payload = max_payload;
  return h;
}

std::vector<uint8_t> HandshakeFrame(FrameType type, std::span<const uint8_t> payload) {
  auto header = EncodeFrameHeader(
      {static_cast<uint32_t>(payload.size()), static_cast<uint8_t>(type), 0});
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace

Result<AsyncChannel> AsyncChannel::Start(UnixSocket socket, Role role,
                                         const AsyncChannelLimits& limits) {
  if (!socket.valid()) return InvalidArgument("AsyncChannel needs a connected socket");
  AsyncChannel ch;
  ch.socket_ = std::move(socket);
  ch.role_ = role;
  ch.limits_ = limits;
  ch.reader_ = FrameReader(limits.max_frame_payload);
  if (role == Role::kClient) {
    ch.Queue(HandshakeFrame(FrameType::kHello,
                            EncodeHandshake(OurHandshake(limits.max_frame_payload))),
             {});
    RETURN_IF_ERROR(ch.Flush());
  }
  return ch;
}

Status AsyncChannel::Fail(Status status) {
  if (error_.ok()) error_ = std::move(status);
  return error_;
}

void AsyncChannel::Close() {
  socket_.Close();
  output_.clear();
  output_bytes_ = 0;
  fd_queue_.clear();
}

void AsyncChannel::Queue(std::vector<uint8_t> bytes, std::vector<ScopedFd> fds) {
  if (output_.empty()) output_since_ = Clock::now();
  output_bytes_ += bytes.size();
  output_.push_back(OutFrame{std::move(bytes), std::move(fds), 0});
}

Status AsyncChannel::Send(const ControlMessage& message, std::vector<ScopedFd> fds) {
  if (!error_.ok()) return error_;
  if (fds.size() > kDefaultMaxFdsPerMessage) {
    return InvalidArgument(fmt::format("a control message carries at most {} descriptors",
                                       kDefaultMaxFdsPerMessage));
  }
  std::vector<uint8_t> frame = EncodeControlFrame(message, fds.size());
  if (frame.size() - kFrameHeaderSize > limits_.max_frame_payload) {
    return InvalidArgument(fmt::format("control message of {} bytes exceeds the frame limit",
                                       frame.size()));
  }
  Queue(std::move(frame), std::move(fds));
  RETURN_IF_ERROR(Flush());
  if (output_bytes_ > limits_.max_output_bytes) {
    return ResourceExhausted(fmt::format("{} bytes of replies are waiting for the peer to read",
                                         output_bytes_));
  }
  return Status::Ok();
}

Status AsyncChannel::Flush() {
  if (!error_.ok()) return error_;
  while (!output_.empty()) {
    OutFrame& out = output_.front();
    std::vector<int> fds;
    if (out.sent == 0) {
      for (const ScopedFd& fd : out.fds) fds.push_back(fd.get());
    }
    std::span<const uint8_t> rest = std::span<const uint8_t>(out.bytes).subspan(out.sent);
    Result<IoResult> r = socket_.SendMsg(rest, fds);
    if (!r.has_value()) return Fail(r.error());
    if (r->state == IoResult::State::kWouldBlock) return Status::Ok();
    if (r->state == IoResult::State::kPeerClosed) {
      return Fail(IoError("connection closed by peer"));
    }
    if (out.sent == 0) out.fds.clear();  // sent with the first bytes: ours are closed now
    out.sent += r->bytes;
    output_bytes_ -= r->bytes;
    if (out.sent == out.bytes.size()) {
      output_.pop_front();
      if (!output_.empty()) output_since_ = Clock::now();
    }
  }
  return Status::Ok();
}

Status AsyncChannel::OnFrame(const Frame& frame, const Handler& handle, bool* delivered) {
  *delivered = false;
  auto type = static_cast<FrameType>(frame.type);
  if (!handshake_done_) {
    FrameType expected = role_ == Role::kServer ? FrameType::kHello : FrameType::kWelcome;
    if (role_ == Role::kClient && type == FrameType::kReject) {
      return Fail(ProtocolError(fmt::format(
          "peer refused the connection: {}",
          std::string(frame.payload.begin(), frame.payload.end()))));
    }
    Status bad;
    Result<Handshake> peer = DecodeHandshake(frame.payload);
    if (type != expected) {
      bad = ProtocolError(fmt::format("expected the handshake, got frame type {:#x}", frame.type));
    } else if (!peer.has_value()) {
      bad = peer.error();
    } else if (peer->protocol_version != kWireProtocolVersion ||
               peer->vm_version != engine::kVmVersion) {
      bad = ProtocolError(fmt::format(
          "version mismatch: this side speaks protocol {} / VM {}, the peer protocol {} / VM {}",
          kWireProtocolVersion, engine::kVmVersion, peer->protocol_version, peer->vm_version));
    } else if (peer->flags != 0) {
      bad = ProtocolError("control connections use the socket transport only");
    }
    if (!bad.ok()) {
      if (role_ == Role::kServer) {
        const std::string& why = bad.message();
        Queue(HandshakeFrame(FrameType::kReject,
                             std::span(reinterpret_cast<const uint8_t*>(why.data()), why.size())),
              {});
        (void)Flush();  // best effort: the peer learns why
      }
      return Fail(bad);
    }
    if (role_ == Role::kServer) {
      // Welcome goes before anything queued meanwhile.
      std::vector<uint8_t> welcome = HandshakeFrame(
          FrameType::kWelcome, EncodeHandshake(OurHandshake(limits_.max_frame_payload)));
      if (output_.empty()) output_since_ = Clock::now();
      output_bytes_ += welcome.size();
      auto pos = output_.begin();
      if (pos != output_.end() && pos->sent != 0) ++pos;
      output_.insert(pos, OutFrame{std::move(welcome), {}, 0});
      RETURN_IF_ERROR(Flush());
    }
    handshake_done_ = true;
    return Status::Ok();
  }
  std::vector<ScopedFd> received;
  if (type == FrameType::kMessageWithFds) {
    Result<uint32_t> count = PeekFdCount(frame.payload);
    if (!count.has_value()) return Fail(count.error());
    if (Status s = internal::ClaimQueuedFds(*count, &fd_queue_, &received); !s.ok()) {
      return Fail(s);
    }
  } else if (type == FrameType::kGoodbye) {
    return Fail(IoError("peer said goodbye"));
  }
  std::vector<ScopedFd> fds;
  Result<ControlMessage> m = DecodeControlPayload(type, frame.payload, std::move(received), &fds);
  if (!m.has_value()) return Fail(m.error());
  *delivered = true;
  handle(*m, fds);
  return Status::Ok();
}

Status AsyncChannel::OnReadable(size_t max_messages, const Handler& handle) {
  if (!error_.ok()) return error_;
  size_t messages = 0;
  size_t read = 0;
  for (;;) {
    Frame frame;
    Result<ReadProgress> progress = reader_.Next(&frame);
    if (!progress.has_value()) return Fail(progress.error());
    if (*progress == ReadProgress::kFrame) {
      bool delivered = false;
      RETURN_IF_ERROR(OnFrame(frame, handle, &delivered));
      if (!error_.ok()) return error_;  // the handler may have closed us
      if (delivered && ++messages >= max_messages) return Status::Ok();
      // Descriptors ride on a frame's first bytes: with nothing else buffered, any descriptor
      // still queued belongs to no frame.
      if (!reader_.has_partial_frame() && !fd_queue_.empty()) {
        fd_queue_.clear();
        return Fail(ProtocolError("descriptors arrived that no frame announced"));
      }
      continue;
    }
    if (read >= limits_.max_read_bytes) return Status::Ok();
    Result<std::span<uint8_t>> window = reader_.PrepareWrite(kReadChunk);
    if (!window.has_value()) return Fail(window.error());
    std::span<uint8_t> into = *window;
    if (into.size() > limits_.max_read_bytes - read) {
      into = into.first(std::max<size_t>(limits_.max_read_bytes - read, 1));
    }
    std::vector<ScopedFd> fds;
    Result<IoResult> got = socket_.RecvMsg(into, &fds);
    if (!got.has_value()) return Fail(got.error());
    if (Status queued = internal::EnqueueReceivedFds(&fds, &fd_queue_); !queued.ok()) {
      return Fail(queued);
    }
    switch (got->state) {
      case IoResult::State::kTransferred:
        reader_.CommitWrite(got->bytes);
        read += got->bytes;
        break;
      case IoResult::State::kPeerClosed:
        if (reader_.has_partial_frame()) {
          return Fail(ProtocolError("connection closed in the middle of a frame"));
        }
        return Fail(IoError("connection closed by peer"));
      case IoResult::State::kWouldBlock:
        return Status::Ok();
    }
  }
}

}  // namespace shapex::ipc
