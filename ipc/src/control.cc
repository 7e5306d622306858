#include "shapex/ipc/control.h"

#include <fmt/core.h>

#include "msgpack_io.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/protocol.h"

namespace shapex::ipc {

using internal::ByteSink;
using internal::Items;
using internal::Packer;

int64_t ControlMessage::Int(std::string_view key, int64_t fallback) const {
  for (const auto& [k, v] : ints) {
    if (k == key) return v;
  }
  return fallback;
}

std::string ControlMessage::Text(std::string_view key, std::string_view fallback) const {
  for (const auto& [k, v] : texts) {
    if (k == key) return v;
  }
  return std::string(fallback);
}

ControlMessage& ControlMessage::Set(std::string key, int64_t value) {
  for (auto& [k, v] : ints) {
    if (k == key) {
      v = value;
      return *this;
    }
  }
  ints.emplace_back(std::move(key), value);
  return *this;
}

ControlMessage& ControlMessage::Set(std::string key, std::string value) {
  for (auto& [k, v] : texts) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  texts.emplace_back(std::move(key), std::move(value));
  return *this;
}

ConnectionOptions ControlConnectionOptions() {
  ConnectionOptions options;
  options.transport = Transport::kSocket;
  return options;
}

ControlMessage ControlError(const Status& status) {
  ControlMessage m("error");
  m.Set("kind", std::string(ErrorKindName(status.kind())));
  m.Set("message", status.message());
  return m;
}

Status ControlErrorStatus(const ControlMessage& message) {
  ErrorKind kind = ErrorKind::kInternal;
  if (!ErrorKindFromName(message.Text("kind"), &kind)) kind = ErrorKind::kProtocolError;
  return Status(kind, message.Text("message", "error without a message"));
}

std::vector<uint8_t> EncodeControl(const ControlMessage& m) {
  std::vector<uint8_t> out;
  ByteSink sink(&out);
  Packer pk(sink);
  pk.pack_array(5);
  internal::PackStr(pk, m.op);
  pk.pack_array(static_cast<uint32_t>(m.ints.size()));
  for (const auto& [k, v] : m.ints) {
    pk.pack_array(2);
    internal::PackStr(pk, k);
    pk.pack_int64(v);
  }
  pk.pack_array(static_cast<uint32_t>(m.texts.size()));
  for (const auto& [k, v] : m.texts) {
    pk.pack_array(2);
    internal::PackStr(pk, k);
    internal::PackStr(pk, v);
  }
  pk.pack_array(static_cast<uint32_t>(m.hashes.size()));
  for (const auto& h : m.hashes) internal::PackHash(pk, h);
  pk.pack_array(static_cast<uint32_t>(m.blobs.size()));
  for (const auto& b : m.blobs) internal::PackBin(pk, b);
  return out;
}

Result<ControlMessage> DecodeControl(std::span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(msgpack::object_handle handle, internal::UnpackUntrusted(bytes, 4));
  const msgpack::object& root = handle.get();
  ASSIGN_OR_RETURN(Items top, internal::ReadArray(root, "control message", 5, 5));
  ControlMessage m;
  ASSIGN_OR_RETURN(std::string_view op, internal::ReadStr(top[0], "control op", 64));
  m.op = std::string(op);
  ASSIGN_OR_RETURN(Items ints, internal::ReadArray(top[1], "control ints", 0, kMaxControlFields));
  for (const msgpack::object& item : ints) {
    ASSIGN_OR_RETURN(Items pair, internal::ReadArray(item, "control int", 2, 2));
    ASSIGN_OR_RETURN(std::string_view key, internal::ReadStr(pair[0], "control key", 64));
    ASSIGN_OR_RETURN(int64_t value, internal::ReadInt(pair[1], "control int value"));
    m.ints.emplace_back(std::string(key), value);
  }
  ASSIGN_OR_RETURN(Items texts,
                   internal::ReadArray(top[2], "control texts", 0, kMaxControlFields));
  for (const msgpack::object& item : texts) {
    ASSIGN_OR_RETURN(Items pair, internal::ReadArray(item, "control text", 2, 2));
    ASSIGN_OR_RETURN(std::string_view key, internal::ReadStr(pair[0], "control key", 64));
    ASSIGN_OR_RETURN(std::string_view value,
                     internal::ReadStr(pair[1], "control text value", kMaxControlText));
    m.texts.emplace_back(std::string(key), std::string(value));
  }
  ASSIGN_OR_RETURN(Items hashes,
                   internal::ReadArray(top[3], "control hashes", 0, kMaxHashesPerMessage));
  for (const msgpack::object& item : hashes) {
    ASSIGN_OR_RETURN(engine::FunctionHash h, internal::ReadHash(item, "control hash"));
    m.hashes.push_back(h);
  }
  ASSIGN_OR_RETURN(Items blobs,
                   internal::ReadArray(top[4], "control blobs", 0, kMaxBlobsPerMessage));
  for (const msgpack::object& item : blobs) {
    ASSIGN_OR_RETURN(std::span<const uint8_t> b,
                     internal::ReadBin(item, "control blob", size_t{64} << 20));
    m.blobs.emplace_back(b.begin(), b.end());
  }
  return m;
}

namespace {

std::vector<uint8_t> ControlPayload(const ControlMessage& message, size_t fd_count) {
  std::vector<uint8_t> payload;
  if (fd_count != 0) {
    FdTable table;
    table.fd_count = static_cast<uint32_t>(fd_count);
    EncodeFdTable(table, &payload);
  }
  std::vector<uint8_t> body = EncodeControl(message);
  payload.insert(payload.end(), body.begin(), body.end());
  return payload;
}

}  // namespace

Status SendControl(Connection& connection, const ControlMessage& message,
                   std::span<const int> fds) {
  std::vector<uint8_t> payload = ControlPayload(message, fds.size());
  return connection.Send(fds.empty() ? FrameType::kMessage : FrameType::kMessageWithFds, 0,
                         payload, fds);
}

std::vector<uint8_t> EncodeControlFrame(const ControlMessage& message, size_t fd_count) {
  std::vector<uint8_t> payload = ControlPayload(message, fd_count);
  FrameType type = fd_count == 0 ? FrameType::kMessage : FrameType::kMessageWithFds;
  auto header = EncodeFrameHeader(
      {static_cast<uint32_t>(payload.size()), static_cast<uint8_t>(type), 0});
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Result<ControlMessage> DecodeControlFrame(IncomingFrame* frame, std::vector<ScopedFd>* fds) {
  std::vector<ScopedFd> received = std::move(frame->fds);
  frame->fds.clear();
  return DecodeControlPayload(frame->type, frame->payload(), std::move(received), fds);
}

Result<ControlMessage> DecodeControlPayload(FrameType type, std::span<const uint8_t> payload,
                                            std::vector<ScopedFd> received,
                                            std::vector<ScopedFd>* fds) {
  std::span<const uint8_t> body = payload;
  if (type == FrameType::kMessageWithFds) {
    ASSIGN_OR_RETURN(FdTable table, DecodeFdTable(payload, &body));
    if (!table.slices.empty()) return ProtocolError("control frames carry no sidecars");
    if (received.size() != table.fd_count) return ProtocolError("descriptor count mismatch");
  } else if (type != FrameType::kMessage) {
    return ProtocolError(fmt::format("frame type {:#x} is not a control message",
                                     static_cast<int>(type)));
  }
  ASSIGN_OR_RETURN(ControlMessage message, DecodeControl(body));
  for (ScopedFd& fd : received) fds->push_back(std::move(fd));
  return message;
}

Result<ControlMessage> ReceiveControl(Connection& connection, std::vector<ScopedFd>* fds,
                                      std::chrono::nanoseconds timeout) {
  IncomingFrame frame;
  RETURN_IF_ERROR(connection.Receive(&frame, timeout));
  if (frame.type == FrameType::kGoodbye) return IoError("peer said goodbye");
  return DecodeControlFrame(&frame, fds);
}

}  // namespace shapex::ipc
