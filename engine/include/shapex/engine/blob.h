// Content-addressed function blobs: how code travels between a caller and an executor.
//
// Every compiled function becomes a FunctionBlob whose identity is the SHA-256 of its
// canonical bytes (docs/blob-format.md). The canonical bytes hold what determines behaviour
// (bytecode, constants, parameter annotations, capture layout, the names of natives, fields,
// methods and globals it uses, the schemas of the types it builds or matches, and the hashes
// of the functions it references); debug info (names, source file, line table) rides beside
// them, so renaming a file or moving a function does not change a hash, while editing any
// callee changes every caller's hash.
//
// Functions that call each other (a strongly connected component of the reference graph) are
// hashed as a group: members refer to each other by index inside the group and each member's
// hash is derived from the group digest (see docs/blob-format.md, "Recursion").
//
//   ProgramBlobs pb = BuildProgramBlobs(*program);             // every function, hashed
//   ASSIGN_OR_RETURN(auto set, MinimalBlobs(pb, "add"));        // add + what it needs
//   bytes = EncodeBlob(set.blobs[0]);  ...  DecodeBlob(bytes)   // transport / disk
//   ASSIGN_OR_RETURN(auto linked, ProgramFromBlobs(set.entry, set.blobs, set.impls));
//   Vm vm(*linked.program, limits);  vm.CallProto(linked.entry, args, &result);
//
// Nothing received is trusted: DecodeBlob bounds-checks every field, ProgramFromBlobs
// recomputes every hash, requires every dependency, rejects natives this build lacks
// (MissingModuleFunction) and runs the bytecode verifier on the result.
#ifndef SHAPEX_ENGINE_BLOB_H_
#define SHAPEX_ENGINE_BLOB_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/program.h"

namespace shapex::engine {

using FunctionHash = std::array<uint8_t, 32>;
std::string HashToHex(const FunctionHash& h);
bool HashFromHex(std::string_view hex, FunctionHash* out);
FunctionHash Sha256(std::span<const uint8_t> bytes);

inline constexpr uint16_t kBlobFormatVersion = 1;
inline constexpr uint16_t kVmVersion = 2;  // bump when opcode semantics change

// Not part of the hash: names and lines for traces and lookups by name.
struct BlobDebugInfo {
  std::string name;  // "add", "Point.len", "<closure>"
  std::string source_file;
  std::vector<uint32_t> lines;  // one per code word
  std::vector<std::string> param_names;
};

struct FunctionBlob {
  FunctionHash hash{};              // claimed identity; verified by ProgramFromBlobs
  std::vector<uint8_t> canonical;   // the hashed bytes
  // Members of the same recursion group in group order (empty for a single function). Not
  // hashed: ProgramFromBlobs recomputes each member's hash from the group's canonical bytes.
  std::vector<FunctionHash> group;
  BlobDebugInfo debug;
};

// A method attached to a type by `impl`, so a linked program can dispatch v.m() on values of
// that type. Type identity is the schema hash (name + fields/variants).
struct ImplEntry {
  FunctionHash type_schema{};
  std::string method;
  FunctionHash function{};
};

// All blobs of a compiled program, one per proto (proto_hashes[i] is proto i's hash).
struct ProgramBlobs {
  std::vector<FunctionBlob> blobs;
  std::vector<FunctionHash> proto_hashes;
  std::vector<ImplEntry> impls;
};

Result<ProgramBlobs> BuildProgramBlobs(const Program& program);

// The module-global slots (Program::global_names) that `proto`'s code reads or writes,
// ascending: what a caller sends along with a remote call (RemoteCallRequest::globals).
std::vector<uint32_t> GlobalsUsedBy(const Proto& proto);

// The transitive closure of one function (plus the methods of every type it uses).
struct BlobSet {
  FunctionHash entry{};
  std::vector<FunctionBlob> blobs;
  std::vector<ImplEntry> impls;
};
// FunctionNotFound when the hash is unknown.
Result<BlobSet> MinimalBlobsByHash(const ProgramBlobs& pb, const FunctionHash& entry);
// FunctionNotFound when no top-level function has that name, or more than one ("ambiguous").
Result<BlobSet> MinimalBlobs(const ProgramBlobs& pb, std::string_view name);

// Transport/disk encoding of one blob (header, hash, canonical bytes, group, debug info).
std::vector<uint8_t> EncodeBlob(const FunctionBlob& blob);
// ProtocolError on any malformed input. Does not verify the hash (ProgramFromBlobs does).
Result<FunctionBlob> DecodeBlob(std::span<const uint8_t> bytes);

// Checks every blob's claimed hash without linking (what a store or cache does before keeping
// or serving a blob): a single function must hash to its claim; a recursion-group member needs
// all its group siblings in `blobs` and is verified with them. Dependencies outside a group are
// not required. ProtocolError on malformed canonical bytes, a mismatch, a missing sibling, or
// two different blobs claiming one hash.
Status VerifyBlobHashes(std::span<const FunctionBlob> blobs);

// The other functions `blob` needs in order to be linked: the members of its recursion group
// (`blob.group` without itself) and the functions its code references outside the group, in
// that order, each once. Methods a linker adds through impls are not included (a blob does not
// name them). Decodes the canonical bytes (ProtocolError if malformed) but verifies no hash.
Result<std::vector<FunctionHash>> BlobDependencies(const FunctionBlob& blob);

struct LinkedProgram {
  std::unique_ptr<Program> program;
  uint32_t entry = 0;                      // proto index of the entry function
  std::vector<FunctionHash> proto_hashes;  // hash of each linked proto (not the script)
};
// The schema hash (docs/blob-format.md, "schema") of a program's struct or enum type: what
// ImplEntry::type_schema names.
FunctionHash TypeSchemaHash(const StructType& type);
FunctionHash TypeSchemaHash(const EnumType& type);

// A struct or enum type a linked program must have although its code may not name it, because
// a value of that type crosses the call: the program gets the type and the methods `impls`
// give it (their functions are linked too).
struct ValueType {
  bool is_enum = false;
  std::string name;
  std::vector<std::string> names;  // fields, or variants
  std::vector<uint32_t> arity;     // enums: payload count per variant
};

// Verifies and links blobs into a runnable, verified Program: the entry, the functions in
// `roots` (e.g. function values a call passes), and everything they reach; plus `value_types`
// and their methods. Errors:
// FunctionNotFound (entry or root blob missing), ProtocolError (bad bytes, hash mismatch,
// missing dependency), MissingModuleFunction (a native this build lacks), InvalidArgument
// (bytecode verifier). The entry is proto 0.
Result<LinkedProgram> ProgramFromBlobs(const FunctionHash& entry,
                                       const std::vector<FunctionBlob>& blobs,
                                       const std::vector<ImplEntry>& impls = {},
                                       const std::vector<FunctionHash>& roots = {},
                                       const std::vector<ValueType>& value_types = {});

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_BLOB_H_
