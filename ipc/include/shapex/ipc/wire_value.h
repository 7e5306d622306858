// WireValue: a VM-independent tree that can hold every value kind of LANGUAGE.md, so a value can
// leave one Vm (ToWire), travel as bytes (value_codec.h) and be rebuilt in another Vm (FromWire).
//
//   engine::ProgramBlobs pb = ...;                         // proto_hashes name functions
//   ASSIGN_OR_RETURN(WireValue w, ToWire(value, {&program, pb.proto_hashes}));
//   ...bytes...
//   TypeRegistry types(vm.program());                      // must outlive the Vm's values
//   ProtoIndex index = MakeProtoIndex(linked.proto_hashes);
//   FromWireContext ctx{&vm, &index, &types};
//   ASSIGN_OR_RETURN(engine::Value v, FromWire(w, ctx));
//
// Semantics (the send-copy model of docs/language.md, "What crosses a remote call"):
//   * Containers are copied deeply, but sharing and cycles survive the copy: within one
//     document (a message's values, see WireEncoder) every container gets a memo index the
//     first time it is written, in pre-order, and every later occurrence is written as a Ref to
//     that index (what pickle's memo does). An object reached twice is sent once, so a DAG
//     crosses in linear size and aliasing inside the callee is what it was in the caller.
//     Memoized ("container") kinds: Array, Map, Struct, Enum, Some, Ok, Err, Closure, Cell,
//     TypedArray, Matrix, and a SidecarRef standing for a typed array or matrix. Strings,
//     ranges, functions and natives are immutable and are written in place every time.
//   * Nesting deeper than kMaxWireDepth or more than kMaxWireNodes nodes is an ArgumentError.
//   * Functions travel as their content hash (FunctionHash); natives as their qualified name.
//     Closures travel as the hash of their function plus one Cell per captured variable; two
//     closures that share a variable share the Cell (a Ref), and a captured value is a copy.
//   * Structs and enums carry their type's schema (name + field names, or name + variant names
//     + arities). The receiver maps a schema to its Program's type of the same schema, or to a
//     type the TypeRegistry creates (see type_registry.h).
//   * Typed arrays and matrices carry their elements as raw little-endian bytes.
//   * A SidecarRef stands for a large string/typed array/matrix whose bytes travel separately
//     (sidecar.h); FromWire rejects one that was not reassembled.
//
// A WireValue is a plain value type: copyable, no thread-safety beyond that of std::vector.
#ifndef SHAPEX_IPC_WIRE_VALUE_H_
#define SHAPEX_IPC_WIRE_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/blob_cache.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"

namespace shapex::ipc {

// Deepest nesting of containers in one value; the root container is at depth 1.
inline constexpr int kMaxWireDepth = 64;
// Most nodes ToWire produces for one value (bounds the copy of a value with shared parts).
inline constexpr size_t kMaxWireNodes = size_t{1} << 24;

enum class WireKind : uint8_t {
  kNone,
  kBool,
  kInt,
  kNumber,
  kString,
  kArray,
  kMap,
  kStruct,
  kEnum,  // a user enum; Option and Result have their own kinds
  kSome,
  kOk,
  kErr,
  kRange,
  kFunction,  // a compiled function, by content hash
  kNative,    // a native, by qualified name ("math.sqrt")
  kClosure,   // function hash + captured values
  kTypedArray,
  kMatrix,
  kSidecarRef,
  kRef,   // a container written earlier in the same document: data = its memo index (int64_t)
  kCell,  // a closure's captured variable: children = its one value (only inside a Closure)
};
std::string_view WireKindName(WireKind kind);

// The identity of a struct or enum type.
struct WireTypeSchema {
  enum class Kind : uint8_t { kStruct = 0, kEnum = 1 };
  Kind kind = Kind::kStruct;
  std::string name;
  std::vector<std::string> names;  // struct: field names; enum: variant names
  std::vector<uint32_t> arity;     // enum: payload count per variant; struct: empty
  // Index of a field or variant name, or -1.
  int IndexOf(std::string_view name) const;
  friend bool operator==(const WireTypeSchema&, const WireTypeSchema&) = default;
};
using SchemaPtr = std::shared_ptr<const WireTypeSchema>;

// A struct's or enum's type (and, for an enum, the variant).
struct WireTypeRef {
  SchemaPtr schema;  // never null in a well-formed value
  uint32_t variant = 0;
  // Compares schemas by content.
  friend bool operator==(const WireTypeRef& a, const WireTypeRef& b);
};

struct WireRange {
  int64_t start = 0, end = 0, step = 1;  // step >= 1
  bool inclusive = false;
  friend bool operator==(const WireRange&, const WireRange&) = default;
};

// Bytes that live in a shared-memory segment (shared_memory.h): a zero-copy typed array or
// matrix built in a segment (SharedVec), or a sidecar received as a descriptor. SegmentViews
// are handed out as shared_ptrs that own the mapping and the descriptor (aliasing), so `bytes`
// (this process's mapping) and `fd` (the whole segment, sealed or opened read-only, fit to pass
// to a peer) stay valid while any copy of the shared_ptr lives.
// Bytes of a typed array or matrix that live outside the WireValue. With fd >= 0 they are in a
// shared-memory segment and travel as its descriptor. With fd == -1 they are borrowed: they
// point into a sender's own memory (e.g. a Vm's buffer, see ToWireContext::borrow_threshold),
// kept valid by whoever shares ownership of the view, and are copied when sent.
struct SegmentView {
  std::span<const uint8_t> bytes;
  int fd = -1;
  uint64_t offset = 0;  // of `bytes` within the segment
  // The receiver checked that the segment carries all four immutability seals: nobody can
  // change these bytes, so FromWire may map them privately instead of copying them.
  bool sealed = false;
};

// Elements of a typed array (elem, bytes) or matrix (rows, cols, bytes of rows*cols f64),
// little-endian, row-major. The bytes are either inline (`bytes`) or in a segment (`segment`,
// then `bytes` is empty); data() gives them either way. Equality compares data().
struct WireBuffer {
  engine::ElemKind elem = engine::ElemKind::kF64;
  uint64_t rows = 0, cols = 0;
  std::vector<uint8_t> bytes;
  std::shared_ptr<const SegmentView> segment;

  std::span<const uint8_t> data() const {
    return segment ? segment->bytes : std::span<const uint8_t>(bytes);
  }
  friend bool operator==(const WireBuffer& a, const WireBuffer& b);
};

// What a SidecarRef stands for.
enum class SidecarKind : uint8_t { kString = 0, kTypedArray = 1, kMatrix = 2 };
std::string_view SidecarKindName(SidecarKind kind);

struct WireSidecarRef {
  uint32_t id = 0;
  SidecarKind kind = SidecarKind::kString;
  engine::ElemKind elem = engine::ElemKind::kF64;  // kTypedArray
  uint64_t rows = 0, cols = 0;                     // kMatrix
  uint64_t length = 0;                             // byte length of the sidecar
  uint64_t checksum = 0;                           // XXH3_64bits of the sidecar bytes
  friend bool operator==(const WireSidecarRef&, const WireSidecarRef&) = default;
};

// One node. `kind` says which members are meaningful:
//   kBool/kInt/kNumber   data holds bool / int64_t / double
//   kString, kNative     data holds std::string (UTF-8 text / qualified native name)
//   kArray               children = items
//   kMap                 children = key0, value0, key1, value1, ... (insertion order)
//   kStruct              data = WireTypeRef, children = fields in schema order
//   kEnum                data = WireTypeRef (with variant), children = payload
//   kSome/kOk/kErr       children = the one wrapped value
//   kRange               data = WireRange
//   kFunction            data = FunctionHash
//   kClosure             data = FunctionHash, children = captured values in capture order
//   kTypedArray/kMatrix  data = WireBuffer
//   kSidecarRef          data = WireSidecarRef
//   kRef                 data = int64_t memo index (>= 0) of an earlier container
//   kCell                children = the captured variable's value
// The constructors below keep `data` consistent with `kind`; the accessors assume it.
struct WireValue {
  WireKind kind = WireKind::kNone;
  std::vector<WireValue> children;
  std::variant<std::monostate, bool, int64_t, double, std::string, WireTypeRef,
               engine::FunctionHash, WireRange, WireBuffer, WireSidecarRef>
      data;

  static WireValue None() { return WireValue(); }
  static WireValue Bool(bool b);
  static WireValue Int(int64_t i);
  static WireValue Number(double n);
  static WireValue String(std::string s);
  static WireValue Array(std::vector<WireValue> items);
  static WireValue Map(std::vector<std::pair<WireValue, WireValue>> entries);
  static WireValue Struct(SchemaPtr schema, std::vector<WireValue> fields);
  static WireValue Enum(SchemaPtr schema, uint32_t variant, std::vector<WireValue> payload);
  static WireValue Some(WireValue v);
  static WireValue Ok(WireValue v);
  static WireValue Err(WireValue v);
  static WireValue Range(WireRange r);
  static WireValue Function(const engine::FunctionHash& hash);
  static WireValue Native(std::string qualified_name);
  static WireValue Closure(const engine::FunctionHash& hash, std::vector<WireValue> captures);
  static WireValue TypedArray(engine::ElemKind elem, std::vector<uint8_t> bytes);
  static WireValue Matrix(uint64_t rows, uint64_t cols, std::vector<uint8_t> bytes);
  // A typed array or matrix whose bytes stay in shared memory (no copy).
  static WireValue SharedTypedArray(engine::ElemKind elem, std::shared_ptr<const SegmentView> seg);
  static WireValue SharedMatrix(uint64_t rows, uint64_t cols,
                                std::shared_ptr<const SegmentView> seg);
  static WireValue SidecarRef(const WireSidecarRef& ref);
  static WireValue Ref(uint64_t memo_index);
  static WireValue Cell(WireValue value);

  bool as_bool() const { return *std::get_if<bool>(&data); }
  int64_t as_int() const { return *std::get_if<int64_t>(&data); }
  double as_number() const { return *std::get_if<double>(&data); }
  const std::string& text() const { return *std::get_if<std::string>(&data); }
  const WireTypeRef& type() const { return *std::get_if<WireTypeRef>(&data); }
  const engine::FunctionHash& hash() const { return *std::get_if<engine::FunctionHash>(&data); }
  const WireRange& range() const { return *std::get_if<WireRange>(&data); }
  const WireBuffer& buffer() const { return *std::get_if<WireBuffer>(&data); }
  const WireSidecarRef& sidecar() const { return *std::get_if<WireSidecarRef>(&data); }
  uint64_t ref() const { return static_cast<uint64_t>(*std::get_if<int64_t>(&data)); }
  // True for the kinds that take a memo index when written (see "Semantics" above).
  bool IsContainer() const;

  // Deep equality; numbers compare bit for bit (NaN equals the same NaN), schemas by content.
  friend bool operator==(const WireValue& a, const WireValue& b);
};

// A short description for messages and test failures ("Array(3)", "Struct Point", ...).
std::string DescribeWire(const WireValue& v);

// ---------------------------------------------------------------------------------------------
// Value -> WireValue

struct ToWireContext {
  const engine::Program* program = nullptr;  // the program the value's functions belong to
  std::span<const engine::FunctionHash> proto_hashes;  // hash of proto i (ProgramBlobs or
                                                       // LinkedProgram::proto_hashes)
  // Typed arrays and matrices of at least this many bytes are borrowed instead of copied: the
  // WireBuffer's segment is a view (fd -1) of the Vm's own buffer, which `borrow_owner` keeps
  // alive for as long as the view lives. The Vm must not run (nor free the value) while the
  // WireValue is in use. SIZE_MAX: always copy.
  size_t borrow_threshold = SIZE_MAX;
  std::shared_ptr<const void> borrow_owner = nullptr;
  // Pays for the walk: one unit of fuel per node written (Vm::ChargeFuel), so copying a value
  // is work like any other. nullptr: free.
  engine::Vm* fuel = nullptr;
};

// Value -> WireValue for the values of one document (a message's arguments, captures and
// globals, or a response's result), with one memo: an object met again, in this value or an
// earlier one, becomes a Ref. Errors: ArgumentError for a value nested deeper than
// kMaxWireDepth, more than kMaxWireNodes nodes, or a function `ctx` has no hash for;
// ResourceExhausted when ctx.fuel runs out.
class WireEncoder {
 public:
  explicit WireEncoder(const ToWireContext& ctx);
  ~WireEncoder();
  WireEncoder(const WireEncoder&) = delete;
  WireEncoder& operator=(const WireEncoder&) = delete;

  Result<WireValue> Encode(const engine::Value& value);
  // The captured variables of closure `closure` (kClosure), as Cells or Refs to Cells: what a
  // request's `captures` carries to call that closure.
  Result<std::vector<WireValue>> EncodeCaptures(const engine::Value& closure);
  // Every function and closure hash written so far, first occurrence order (link roots).
  const std::vector<engine::FunctionHash>& functions() const;
  // The struct and enum types of the values written so far (Option and Result aside), first
  // occurrence order: their methods must travel with the call.
  const std::vector<const engine::StructType*>& struct_types() const;
  const std::vector<const engine::EnumType*>& enum_types() const;

 private:
  class Walker;
  std::unique_ptr<Walker> walker_;
};

// One value as a document of its own (a WireEncoder used once).
Result<WireValue> ToWire(const engine::Value& value, const ToWireContext& ctx);

// ---------------------------------------------------------------------------------------------
// WireValue -> Value

using ProtoIndex = std::unordered_map<engine::FunctionHash, uint32_t, engine::FunctionHashHasher>;
// Maps each hash to its proto index (the first one when two protos share a hash: their bytes,
// and so their behaviour, are identical).
ProtoIndex MakeProtoIndex(std::span<const engine::FunctionHash> proto_hashes);

class TypeRegistry;

struct FromWireContext {
  engine::Vm* vm = nullptr;            // allocates the values; vm->program() resolves functions
  const ProtoIndex* protos = nullptr;  // hash -> proto index in vm->program()
  TypeRegistry* types = nullptr;       // schema -> type; must outlive the Vm's values
  bool charge_fuel = false;            // one unit of vm's fuel per node read
};

// WireValue -> Value for the values of one document, in the order they were encoded, with one
// memo (Refs resolve to the object built for that index: sharing and cycles come back).
// Errors: FunctionNotFound (a function/closure hash the program lacks), MissingModuleFunction
// (an unknown native), ResourceExhausted (the Vm's memory limit, or its fuel with
// charge_fuel), ProtocolError (an unresolved SidecarRef), ArgumentError (anything else
// inconsistent: field or payload counts, capture counts, map keys, buffer sizes, depth, a Ref
// to an index not yet written or to a Cell outside a closure).
// Returned values are not rooted: root them (Vm::RootScope) before running code in the Vm.
class WireDecoder {
 public:
  explicit WireDecoder(FromWireContext& ctx);
  ~WireDecoder();
  WireDecoder(const WireDecoder&) = delete;
  WireDecoder& operator=(const WireDecoder&) = delete;

  Result<engine::Value> Decode(const WireValue& wire);
  // A closure of `proto` (index in vm->program()) whose captured variables are `captures`
  // (Cells, Refs to Cells, or plain values, each then a fresh variable).
  Result<engine::Value> DecodeClosure(uint32_t proto, const std::vector<WireValue>& captures);

 private:
  class Builder;
  std::unique_ptr<Builder> builder_;
};

// One document holding one value (a WireDecoder used once).
Result<engine::Value> FromWire(const WireValue& wire, FromWireContext& ctx);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_WIRE_VALUE_H_
