// The object file format of the on-disk blob store (docs/blob-format.md, "On-disk blob store").
// One object file holds one function blob, or every member of one recursion group in group
// order, behind a fixed 48-byte header:
//
//   offset  size  field
//        0     4  magic "SXOB"
//        4     2  object format version (u16 LE) = 1
//        6     2  flags (u16 LE), must be 0
//        8     4  member count (u32 LE), 1 ..= kMaxObjectMembers
//       12     4  payload length (u32 LE) = file size - 48
//       16    32  SHA-256 of the payload
//       48     -  payload: member count x (u32 LE length, EncodeBlob bytes)
//
// The payload checksum covers the debug info too (names, lines), which the function hash does
// not, so any flipped bit anywhere in the file is detected.
//
// Everything here is pure (no I/O) and treats its input as untrusted: malformed bytes give a
// ProtocolError, never a crash. Thread-safe (no shared state).
#ifndef SHAPEX_SANDBOX_BLOB_STORE_FORMAT_H_
#define SHAPEX_SANDBOX_BLOB_STORE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/blob.h"

namespace shapex::sandbox {

inline constexpr char kObjectMagic[4] = {'S', 'X', 'O', 'B'};
inline constexpr uint16_t kObjectFormatVersion = 1;
inline constexpr size_t kObjectHeaderSize = 48;
inline constexpr uint32_t kMaxObjectMembers = 4096;
// Largest object file the store writes or reads (header included).
inline constexpr size_t kMaxObjectFileBytes = size_t{64} << 20;

// Encodes `members` (one single function, or a whole recursion group in group order). The
// caller has verified the blobs; ResourceExhausted when the result would exceed
// kMaxObjectFileBytes.
Result<std::vector<uint8_t>> EncodeObject(std::span<const engine::FunctionBlob> members);

// Parses an object: header, checksum, and every member through engine::DecodeBlob. Does not
// recompute function hashes. ProtocolError naming the first problem.
Result<std::vector<engine::FunctionBlob>> ParseObject(std::span<const uint8_t> bytes);

// ParseObject, then proves the contents: every member's hash is recomputed
// (engine::VerifyBlobHashes, so a group is checked as a whole), a multi-member object must be
// exactly one complete group in group order, and `name` must be one of its members. Returns
// the members; ProtocolError otherwise.
Result<std::vector<engine::FunctionBlob>> VerifyObject(std::span<const uint8_t> bytes,
                                                       const engine::FunctionHash& name);

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_BLOB_STORE_FORMAT_H_
