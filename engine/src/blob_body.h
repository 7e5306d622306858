// BlobBody: the decoded form of a blob's canonical bytes, shared by the blob builder (which
// encodes it) and the linker (which decodes untrusted bytes into it). Operands in `code`
// refer to the body's own tables (symbols, globals, types, fn_refs), never to a Program's.
#ifndef SHAPEX_ENGINE_BLOB_BODY_H_
#define SHAPEX_ENGINE_BLOB_BODY_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/opcodes.h"
#include "shapex/engine/program.h"

namespace shapex::engine {

struct BlobConstant {
  enum Tag : uint8_t { kInt = 1, kNumber = 2, kString = 3 };
  Tag tag = kInt;
  int64_t i = 0;
  double n = 0;
  std::string s;
};

struct BlobFnRef {
  bool in_group = false;
  uint32_t index = 0;   // in_group: member index in the recursion group
  FunctionHash hash{};  // !in_group: the function's hash
};

struct TypeSchema {
  enum Kind : uint8_t { kStruct = 1, kEnum = 2 };
  Kind kind = kStruct;
  std::string name;
  std::vector<std::string> names;  // fields or variants
  std::vector<uint32_t> arity;     // enums: payload count per variant
};

struct BlobBody {
  uint32_t num_params = 0, num_required = 0, num_regs = 0;
  uint8_t flags = 0;  // bit 0: closure, bit 1: has return type, bit 2: @remote
  uint32_t group_size = 1, group_index = 0;
  std::vector<TypeSpec> param_types;  // kStruct/kEnum index into `types`
  TypeSpec return_type;
  std::vector<uint32_t> code;
  std::vector<BlobConstant> constants;
  std::vector<BlobFnRef> fn_refs;
  std::vector<std::string> natives;
  std::vector<CaptureDesc> captures;
  std::vector<std::string> symbols;
  std::vector<std::string> globals;
  std::vector<TypeSchema> types;
};
inline constexpr uint8_t kFlagClosure = 1, kFlagReturnType = 2, kFlagRemote = 4;

std::vector<uint8_t> EncodeBody(const BlobBody& body);
// ProtocolError on malformed bytes (bounds, counts, unknown tags, trailing bytes).
Result<BlobBody> DecodeBody(std::span<const uint8_t> canonical);
std::vector<uint8_t> EncodeSchema(const TypeSchema& schema);
// Hash of a recursion-group member from the group's canonical bytes in member order.
std::vector<FunctionHash> GroupMemberHashes(const std::vector<std::vector<uint8_t>>& members);

// Checks `blob`'s claimed hash against its decoded `body` (blob_verify.cc). A single function:
// SHA-256 of its canonical bytes. A recursion-group member: every member must be found through
// `find` with an identical group list, and all member hashes are recomputed from the group.
// Appends every hash it proved to `verified` (the whole group for a member). ProtocolError on
// any mismatch or missing member. Shared by the linker and VerifyBlobHashes.
using BlobLookup = std::function<const FunctionBlob*(const FunctionHash&)>;
Status VerifyBlobHash(const FunctionBlob& blob, const BlobBody& body, const BlobLookup& find,
                      std::vector<FunctionHash>* verified);

// Operand kinds that the blob builder and the linker remap between program and body tables.
enum class RemapKind { kNone, kSymbol, kStruct, kEnum, kGlobal };
// The remap kind of an instruction's extra word (kNone if it has no remappable extra word).
RemapKind ExtraRemapKind(Op op);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_BLOB_BODY_H_
