// Sidecars: large strings, typed arrays and matrices moved out of a value tree so the bytes can
// travel beside the message (today in a Sidecar message, later in shared memory), as the seed's
// extract_sidecars / reassemble_sidecars.
//
//   std::vector<Sidecar> sidecars = ExtractSidecars(&request.arguments);   // caller
//   ... send sidecars, then the request ...
//   RETURN_IF_ERROR(ReassembleSidecars(&request.arguments, std::move(sidecars)));  // callee
//
// Extraction replaces every string, typed array or matrix whose byte size is >= threshold, at
// any depth (array items, map values, struct fields, enum/Option/Result payloads, closure
// captures), by a SidecarRef {id, kind, element kind or shape, length, XXH3-64 checksum}. Map
// keys stay inline (keys are short by nature and must stay Int/String/Bool). Ids are 0, 1, 2...
// in depth-first order across the whole list.
//
// Reassembly of a segment sidecar makes a typed array or matrix that points into the segment (no
// copy); a string is copied out. Its kind comes from the reference, and no checksum is checked.
//
// Reassembly is strict: every SidecarRef must find exactly one sidecar with its id, kind, byte
// length and checksum; shapes must be consistent (typed array length a multiple of the element
// size, matrix length rows*cols*8); duplicate sidecar ids and sidecars no reference used are
// errors too. Every failure is a ProtocolError and leaves the values unspecified.
#ifndef SHAPEX_IPC_SIDECAR_H_
#define SHAPEX_IPC_SIDECAR_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <memory>
#include <vector>

#include "shapex/core/status.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc {

inline constexpr size_t kSidecarThreshold = size_t{1} << 20;  // 1 MiB, as in the seed

// The bytes of one extracted value (a string's UTF-8, a typed array's or matrix's elements):
// inline in `bytes`, or in shared memory (`segment`; then `bytes` is empty). A segment sidecar
// carries no checksum (its SidecarRef's checksum is 0): segments are sealed or read-only, so
// nothing can corrupt them in transit, and hashing 1 GiB would cost what sharing it saves.
struct Sidecar {
  uint32_t id = 0;
  SidecarKind kind = SidecarKind::kString;
  std::vector<uint8_t> bytes;
  std::shared_ptr<const SegmentView> segment;

  std::span<const uint8_t> data() const {
    return segment ? segment->bytes : std::span<const uint8_t>(bytes);
  }
  friend bool operator==(const Sidecar& a, const Sidecar& b);
};

struct ExtractOptions {
  size_t threshold = kSidecarThreshold;
  // Compute XXH3 checksums of inline sidecars (for Sidecar messages). Off when the bytes will
  // travel in a sealed segment.
  bool checksums = true;
};

uint64_t SidecarChecksum(std::span<const uint8_t> bytes);  // XXH3_64bits

std::vector<Sidecar> ExtractSidecars(WireValue* value, size_t threshold = kSidecarThreshold);
std::vector<Sidecar> ExtractSidecars(std::vector<WireValue>* values,
                                     size_t threshold = kSidecarThreshold);
// Typed arrays and matrices already in a segment (WireBuffer::segment) are always extracted,
// whatever their size, as segment sidecars (zero-copy).
std::vector<Sidecar> ExtractSidecars(std::vector<WireValue*> roots, const ExtractOptions& options);

Status ReassembleSidecars(WireValue* value, std::vector<Sidecar> sidecars);
Status ReassembleSidecars(std::vector<WireValue>* values, std::vector<Sidecar> sidecars);
Status ReassembleSidecars(std::vector<WireValue*> roots, std::vector<Sidecar> sidecars);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_SIDECAR_H_
