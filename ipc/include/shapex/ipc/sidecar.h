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
// Reassembly is strict: every SidecarRef must find exactly one sidecar with its id, kind, byte
// length and checksum; shapes must be consistent (typed array length a multiple of the element
// size, matrix length rows*cols*8); duplicate sidecar ids and sidecars no reference used are
// errors too. Every failure is a ProtocolError and leaves the values unspecified.
#ifndef SHAPEX_IPC_SIDECAR_H_
#define SHAPEX_IPC_SIDECAR_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "shapex/core/status.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc {

inline constexpr size_t kSidecarThreshold = size_t{1} << 20;  // 1 MiB, as in the seed

// The bytes of one extracted value (a string's UTF-8, a typed array's or matrix's elements).
struct Sidecar {
  uint32_t id = 0;
  SidecarKind kind = SidecarKind::kString;
  std::vector<uint8_t> bytes;
  friend bool operator==(const Sidecar&, const Sidecar&) = default;
};

uint64_t SidecarChecksum(std::span<const uint8_t> bytes);  // XXH3_64bits

std::vector<Sidecar> ExtractSidecars(WireValue* value, size_t threshold = kSidecarThreshold);
std::vector<Sidecar> ExtractSidecars(std::vector<WireValue>* values,
                                     size_t threshold = kSidecarThreshold);

Status ReassembleSidecars(WireValue* value, std::vector<Sidecar> sidecars);
Status ReassembleSidecars(std::vector<WireValue>* values, std::vector<Sidecar> sidecars);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_SIDECAR_H_
