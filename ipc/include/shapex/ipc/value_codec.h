// Value codec: WireValue <-> MessagePack bytes (msgpack-c). The byte layout is specified in
// docs/wire-protocol.md ("Values"); this header holds the limits a decoder enforces.
//
//   std::vector<uint8_t> bytes = EncodeValue(w);
//   ASSIGN_OR_RETURN(WireValue back, DecodeValue(bytes));   // back == w
//
// Encoding is deterministic: equal WireValues give equal bytes (integers use their shortest
// MessagePack form, numbers are always float64, struct/enum schemas are listed once per
// document in first-use order).
//
// Decoding treats its input as hostile: sizes are checked against the limits below and against
// the input length before anything is allocated, msgpack-c runs with an unpack_limit, every
// msgpack-c exception is caught here, and every field is validated (kinds, schema indexes,
// field/payload counts, variant ranges, map keys and duplicates, buffer sizes, UTF-8, trailing
// bytes). Any problem is a ProtocolError naming what was wrong; decoding never crashes, aborts
// or throws.
#ifndef SHAPEX_IPC_VALUE_CODEC_H_
#define SHAPEX_IPC_VALUE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc {

// Decoder maxima (also applied to messages, see messages.h).
inline constexpr size_t kMaxDecodeBytes = size_t{1} << 31;  // one encoded document
inline constexpr uint32_t kMaxArrayItems = uint32_t{1} << 26;
inline constexpr uint32_t kMaxMapPairs = uint32_t{1} << 25;
inline constexpr uint32_t kMaxStringBytes = uint32_t{1} << 30;
inline constexpr uint32_t kMaxBinBytes = uint32_t{1} << 30;
inline constexpr uint32_t kMaxSchemas = 1 << 16;       // per document
inline constexpr uint32_t kMaxSchemaNames = 1 << 12;   // fields or variants per type
inline constexpr uint32_t kMaxSchemaNameBytes = 1024;  // a type, field or variant name
inline constexpr uint32_t kMaxEnumArity = 255;
inline constexpr uint32_t kMaxNativeNameBytes = 256;
// MessagePack nesting above a root value: a message array and the list holding the value.
inline constexpr int kMaxEnvelopeDepth = 2;

// [schemas, value]
std::vector<uint8_t> EncodeValue(const WireValue& value);
Result<WireValue> DecodeValue(std::span<const uint8_t> bytes);

// A list of schemas on its own (the seed's TypeSchemaRegistry travelling alone).
std::vector<uint8_t> EncodeSchemas(std::span<const WireTypeSchema> schemas);
Result<std::vector<WireTypeSchema>> DecodeSchemas(std::span<const uint8_t> bytes);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_VALUE_CODEC_H_
