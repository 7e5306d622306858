#include "shapex/ipc/protocol.h"

#include <fmt/core.h>

#include <cstring>

#include "shapex/core/status.h"

namespace shapex::ipc {
namespace {

void PutU32(std::vector<uint8_t>* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(std::vector<uint8_t>* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{p[i]} << (8 * i);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

constexpr size_t kFdTableHeader = 1 + 4;
constexpr size_t kFdSliceSize = 4 + 8 + 8;

}  // namespace

bool IsKnownFrameType(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHello:
    case FrameType::kWelcome:
    case FrameType::kReject:
    case FrameType::kMessage:
    case FrameType::kMessageWithFds:
    case FrameType::kCancel:
    case FrameType::kGoodbye:
    case FrameType::kSocketFrame:
      return true;
  }
  return false;
}

std::vector<uint8_t> EncodeHandshake(const Handshake& handshake) {
  std::vector<uint8_t> out;
  out.reserve(Handshake::kSize);
  PutU32(&out, Handshake::kMagic);
  PutU32(&out, handshake.protocol_version);
  PutU32(&out, handshake.vm_version);
  PutU32(&out, handshake.flags);
  PutU32(&out, handshake.max_frame_payload);
  PutU32(&out, 0);
  return out;
}

Result<Handshake> DecodeHandshake(std::span<const uint8_t> bytes) {
  if (bytes.size() != Handshake::kSize) {
    return ProtocolError(fmt::format("handshake of {} bytes, expected {}", bytes.size(),
                                     Handshake::kSize));
  }
  const uint8_t* p = bytes.data();
  if (GetU32(p) != Handshake::kMagic) {
    return ProtocolError(fmt::format("handshake magic {:#x} is not shapex's", GetU32(p)));
  }
  Handshake h;
  h.protocol_version = GetU32(p + 4);
  h.vm_version = GetU32(p + 8);
  h.flags = GetU32(p + 12);
  h.max_frame_payload = GetU32(p + 16);
  if (GetU32(p + 20) != 0) return ProtocolError("handshake reserved field is not zero");
  if ((h.flags & ~Handshake::kFlagCallRing) != 0) {
    return ProtocolError(fmt::format("handshake has unknown flags {:#x}", h.flags));
  }
  return h;
}

Result<uint32_t> PeekFdCount(std::span<const uint8_t> payload) {
  if (payload.empty()) return ProtocolError("descriptor table is truncated");
  uint32_t count = payload[0];
  if (count == 0 || count > kMaxFdsPerFrame) {
    return ProtocolError(fmt::format("frame announces {} descriptors (1 to {} allowed)", count,
                                     kMaxFdsPerFrame));
  }
  return count;
}

void EncodeFdTable(const FdTable& table, std::vector<uint8_t>* out) {
  out->push_back(static_cast<uint8_t>(table.fd_count));
  PutU32(out, static_cast<uint32_t>(table.slices.size()));
  for (const FdSlice& slice : table.slices) {
    PutU32(out, slice.fd_index);
    PutU64(out, slice.offset);
    PutU64(out, slice.length);
  }
}

Result<FdTable> DecodeFdTable(std::span<const uint8_t> payload,
                              std::span<const uint8_t>* message) {
  if (payload.size() < kFdTableHeader) return ProtocolError("descriptor table is truncated");
  FdTable table;
  table.fd_count = payload[0];
  uint32_t count = GetU32(payload.data() + 1);
  if (table.fd_count == 0 || table.fd_count > kMaxFdsPerFrame) {
    return ProtocolError(fmt::format("frame announces {} descriptors (1 to {} allowed)",
                                     table.fd_count, kMaxFdsPerFrame));
  }
  if (count > kMaxSidecarsPerFrame) {
    return ProtocolError(fmt::format("frame announces {} sidecars (at most {})", count,
                                     kMaxSidecarsPerFrame));
  }
  size_t table_size = kFdTableHeader + size_t{count} * kFdSliceSize;
  if (payload.size() < table_size) return ProtocolError("descriptor table is truncated");
  table.slices.resize(count);
  const uint8_t* p = payload.data() + kFdTableHeader;
  for (FdSlice& slice : table.slices) {
    slice.fd_index = GetU32(p);
    slice.offset = GetU64(p + 4);
    slice.length = GetU64(p + 12);
    p += kFdSliceSize;
    if (slice.fd_index >= table.fd_count) {
      return ProtocolError(fmt::format("sidecar names descriptor {} of {}", slice.fd_index,
                                       table.fd_count));
    }
    if (slice.offset + slice.length < slice.offset) {
      return ProtocolError("sidecar offset + length overflows");
    }
  }
  *message = payload.subspan(table_size);
  return table;
}

}  // namespace shapex::ipc
