// The connection protocol's vocabulary: frame types, the handshake records and the prefix of a
// frame that carries descriptors. docs/wire-protocol.md ("Connection protocol") is normative;
// connection.h implements the behaviour.
//
// Everything here is plain encoding: fixed little-endian layouts, checked on decode. Decoders
// treat their input as hostile (any byte string gives a value or a ProtocolError).
#ifndef SHAPEX_IPC_PROTOCOL_H_
#define SHAPEX_IPC_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "shapex/core/result.h"

namespace shapex::ipc {

// Frame types (the u8 `type` of a frame header, frame.h).
enum class FrameType : uint8_t {
  kHello = 0x01,           // client -> server, socket only; 0 or 1 descriptor (the call ring)
  kWelcome = 0x02,         // server -> client, socket only
  kReject = 0x03,          // server -> client, socket only; then the server closes
  kMessage = 0x10,         // a message (messages.h), no descriptors
  kMessageWithFds = 0x11,  // FdTable prefix + a message; the descriptors travel with the frame
  kCancel = 0x20,          // "stop call `call_id`"; empty payload
  kGoodbye = 0x30,         // "I will send nothing more"; empty payload
  kSocketFrame = 0x40,     // ring only: "my next frame in this direction is on the socket"
};

// Whether a byte is one of the types above.
bool IsKnownFrameType(uint8_t type);

// The handshake record, sent by the client as kHello and answered by the server as kWelcome.
// 24 bytes: u32 magic, u32 protocol version, u32 VM version, u32 flags, u32 max frame payload,
// u32 reserved (0).
struct Handshake {
  static constexpr uint32_t kMagic = 0x48585853;  // "SXXH" in little-endian memory
  static constexpr uint32_t kFlagCallRing = 1;    // a call-ring descriptor comes with the Hello
  static constexpr size_t kSize = 24;

  uint32_t protocol_version = 0;
  uint32_t vm_version = 0;
  uint32_t flags = 0;
  uint32_t max_frame_payload = 0;
};

std::vector<uint8_t> EncodeHandshake(const Handshake& handshake);
// ProtocolError for a wrong size, magic or reserved field, or unknown flags.
Result<Handshake> DecodeHandshake(std::span<const uint8_t> bytes);

// The start of a kMessageWithFds payload: which descriptor, and which bytes of it, each
// sidecar of the message occupies. Layout: u8 fd count (1..kMaxFdsPerFrame), u32 sidecar count,
// then per sidecar u32 fd index, u64 offset, u64 length; the message follows.
inline constexpr size_t kMaxFdsPerFrame = 64;
inline constexpr size_t kMaxSidecarsPerFrame = 4096;

struct FdSlice {
  uint32_t fd_index = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  friend bool operator==(const FdSlice&, const FdSlice&) = default;
};

struct FdTable {
  uint32_t fd_count = 0;
  std::vector<FdSlice> slices;  // slice i is sidecar id i of the message
};

// The descriptor count at the start of a kMessageWithFds payload (all a connection needs to hand
// a frame its descriptors). ProtocolError for an empty payload or a count out of range.
Result<uint32_t> PeekFdCount(std::span<const uint8_t> payload);

// Appends the encoded table to `out`.
void EncodeFdTable(const FdTable& table, std::vector<uint8_t>* out);
// Decodes the table at the start of `payload`; `*message` receives the rest. ProtocolError for a
// short table, a count out of range, an fd index >= fd count, or offset + length overflowing.
Result<FdTable> DecodeFdTable(std::span<const uint8_t> payload,
                              std::span<const uint8_t>* message);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_PROTOCOL_H_
