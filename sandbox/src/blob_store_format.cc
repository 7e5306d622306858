// Object file encoding for the blob store; layout in blob_store_format.h and docs/blob-format.md.
#include "blob_store_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace shapex::sandbox {
namespace {

void PutLe(std::vector<uint8_t>* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t GetLe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace

Result<std::vector<uint8_t>> EncodeObject(std::span<const engine::FunctionBlob> members) {
  if (members.empty() || members.size() > kMaxObjectMembers)
    return InvalidArgument(
        fmt::format("an object holds 1 to {} blobs, not {}", kMaxObjectMembers, members.size()));
  std::vector<uint8_t> payload;
  for (const engine::FunctionBlob& blob : members) {
    std::vector<uint8_t> encoded = engine::EncodeBlob(blob);
    if (encoded.size() > kMaxObjectFileBytes || payload.size() > kMaxObjectFileBytes)
      return ResourceExhausted("blob store object exceeds the 64 MiB limit");
    PutLe(&payload, encoded.size(), 4);
    payload.insert(payload.end(), encoded.begin(), encoded.end());
  }
  if (payload.size() + kObjectHeaderSize > kMaxObjectFileBytes)
    return ResourceExhausted(fmt::format("blob store object of {} bytes exceeds the 64 MiB limit",
                                         payload.size() + kObjectHeaderSize));
  std::vector<uint8_t> out;
  out.reserve(kObjectHeaderSize + payload.size());
  out.insert(out.end(), kObjectMagic, kObjectMagic + 4);
  PutLe(&out, kObjectFormatVersion, 2);
  PutLe(&out, 0, 2);
  PutLe(&out, members.size(), 4);
  PutLe(&out, payload.size(), 4);
  engine::FunctionHash sum = engine::Sha256(payload);
  out.insert(out.end(), sum.begin(), sum.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Result<std::vector<engine::FunctionBlob>> ParseObject(std::span<const uint8_t> bytes) {
  if (bytes.size() < kObjectHeaderSize)
    return ProtocolError(fmt::format("truncated object: {} bytes, header needs {}", bytes.size(),
                                     kObjectHeaderSize));
  if (bytes.size() > kMaxObjectFileBytes) return ProtocolError("object exceeds the 64 MiB limit");
  const uint8_t* h = bytes.data();
  if (std::memcmp(h, kObjectMagic, 4) != 0) return ProtocolError("not a blob store object");
  uint64_t version = GetLe(h + 4, 2), flags = GetLe(h + 6, 2);
  uint64_t count = GetLe(h + 8, 4), length = GetLe(h + 12, 4);
  if (version != kObjectFormatVersion)
    return ProtocolError(fmt::format("unsupported object format version {}", version));
  if (flags != 0) return ProtocolError(fmt::format("unknown object flags {:#x}", flags));
  if (count == 0 || count > kMaxObjectMembers)
    return ProtocolError(fmt::format("bad member count {}", count));
  std::span<const uint8_t> payload = bytes.subspan(kObjectHeaderSize);
  if (length != payload.size())
    return ProtocolError(
        fmt::format("payload length {} but {} bytes follow the header", length, payload.size()));
  engine::FunctionHash sum;
  std::memcpy(sum.data(), h + 16, sum.size());
  if (engine::Sha256(payload) != sum) return ProtocolError("payload checksum mismatch");
  std::vector<engine::FunctionBlob> members;
  size_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (payload.size() - pos < 4) return ProtocolError("truncated member length");
    uint64_t n = GetLe(payload.data() + pos, 4);
    pos += 4;
    if (n > payload.size() - pos) return ProtocolError("member length exceeds the payload");
    ASSIGN_OR_RETURN(engine::FunctionBlob blob, engine::DecodeBlob(payload.subspan(pos, n)));
    members.push_back(std::move(blob));
    pos += n;
  }
  if (pos != payload.size()) return ProtocolError("trailing bytes after the last member");
  return members;
}

Result<std::vector<engine::FunctionBlob>> VerifyObject(std::span<const uint8_t> bytes,
                                                       const engine::FunctionHash& name) {
  ASSIGN_OR_RETURN(std::vector<engine::FunctionBlob> members, ParseObject(bytes));
  if (members.size() == 1) {
    if (!members[0].group.empty()) return ProtocolError("recursion-group member stored alone");
  } else {
    // Exactly one group, complete and in group order: member k claims group[k].
    const std::vector<engine::FunctionHash>& group = members[0].group;
    if (group.size() != members.size()) return ProtocolError("object is not one whole group");
    for (size_t k = 0; k < members.size(); ++k) {
      if (members[k].group != group || members[k].hash != group[k])
        return ProtocolError("object is not one whole group in group order");
    }
  }
  Status verified = engine::VerifyBlobHashes(members);
  if (!verified.ok()) return ProtocolError(verified.message());
  bool named = std::any_of(members.begin(), members.end(),
                           [&](const engine::FunctionBlob& b) { return b.hash == name; });
  if (!named) return ProtocolError("object holds no function with hash " + engine::HashToHex(name));
  return members;
}

}  // namespace shapex::sandbox
