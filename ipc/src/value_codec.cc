// WireValue <-> MessagePack, as specified in docs/wire-protocol.md ("Values"). Scalars are plain
// MessagePack scalars; every other kind is an array [tag, ...] whose tags are listed below and
// in the spec. Decoding validates everything a WireValue promises (see value_codec.h).
#include "shapex/ipc/value_codec.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "value_codec_internal.h"

namespace shapex::ipc {
namespace internal {
namespace {

// Wire tags of the non-scalar kinds (docs/wire-protocol.md). Never renumber.
enum Tag : uint64_t {
  kTagArray = 1,
  kTagMap = 2,
  kTagStruct = 3,
  kTagEnum = 4,
  kTagSome = 5,
  kTagOk = 6,
  kTagErr = 7,
  kTagRange = 8,
  kTagFunction = 9,
  kTagNative = 10,
  kTagClosure = 11,
  kTagTypedArray = 12,
  kTagMatrix = 13,
  kTagSidecarRef = 14,
  kTagRef = 15,
  kTagCell = 16,
};

// Wire codes of typed-array element kinds, by code.
constexpr engine::ElemKind kElemByCode[] = {
    engine::ElemKind::kF64, engine::ElemKind::kF32, engine::ElemKind::kI64, engine::ElemKind::kI32,
    engine::ElemKind::kI16, engine::ElemKind::kI8,  engine::ElemKind::kU8,  engine::ElemKind::kBool,
};
constexpr uint64_t kNumElemCodes = std::size(kElemByCode);

uint64_t ElemCode(engine::ElemKind elem) {
  for (uint64_t i = 0; i < kNumElemCodes; ++i)
    if (kElemByCode[i] == elem) return i;
  return kNumElemCodes;  // never for a valid ElemKind; rejected by decoders
}

const WireTypeSchema kEmptyStruct{WireTypeSchema::Kind::kStruct, "", {}, {}};
const WireTypeSchema kEmptyEnum{WireTypeSchema::Kind::kEnum, "", {}, {}};

// The schema a struct/enum value names; a malformed in-process value gets an empty one, which
// decoders reject.
const WireTypeSchema* SchemaOfValue(const WireValue& v) {
  const WireTypeRef* t = std::get_if<WireTypeRef>(&v.data);
  if (t != nullptr && t->schema != nullptr) return t->schema.get();
  return v.kind == WireKind::kStruct ? &kEmptyStruct : &kEmptyEnum;
}

void PackSchema(Packer& pk, const WireTypeSchema& s) {
  pk.pack_array(4);
  pk.pack_uint8(static_cast<uint8_t>(s.kind));
  PackStr(pk, s.name);
  pk.pack_array(static_cast<uint32_t>(s.names.size()));
  for (const std::string& n : s.names) PackStr(pk, n);
  pk.pack_array(static_cast<uint32_t>(s.arity.size()));
  for (uint32_t a : s.arity) pk.pack_uint32(a);
}

// Accessors that tolerate an in-process value whose data does not match its kind (it then
// encodes as a default and decoders, or FromWire, reject it).
template <class T>
const T& DataOr(const WireValue& v) {
  static const T kDefault{};
  const T* p = std::get_if<T>(&v.data);
  return p != nullptr ? *p : kDefault;
}

}  // namespace

std::string SchemaKey(const WireTypeSchema& s) {
  std::string key(1, static_cast<char>(s.kind));
  auto add = [&key](std::string_view text) {
    key += std::to_string(text.size());
    key += ':';
    key += text;
  };
  add(s.name);
  for (const std::string& n : s.names) add(n);
  key += '|';
  for (uint32_t a : s.arity) add(std::to_string(a));
  return key;
}

uint32_t SchemaTableWriter::Add(const WireTypeSchema& schema) {
  auto [it, inserted] =
      by_content_.emplace(SchemaKey(schema), static_cast<uint32_t>(schemas_.size()));
  if (inserted) schemas_.push_back(&schema);
  by_address_.emplace(&schema, it->second);
  return it->second;
}

void SchemaTableWriter::Collect(const WireValue& v) {
  if (v.kind == WireKind::kStruct || v.kind == WireKind::kEnum) {
    const WireTypeSchema* s = SchemaOfValue(v);
    if (!by_address_.count(s)) Add(*s);
  }
  for (const WireValue& child : v.children) Collect(child);
}

uint32_t SchemaTableWriter::IndexOf(const WireTypeSchema* schema) const {
  auto it = by_address_.find(schema);
  return it == by_address_.end() ? 0 : it->second;
}

void SchemaTableWriter::Pack(Packer& pk) const {
  pk.pack_array(static_cast<uint32_t>(schemas_.size()));
  for (const WireTypeSchema* s : schemas_) PackSchema(pk, *s);
}

void PackValue(Packer& pk, const WireValue& v, const SchemaTableWriter& schemas) {
  auto head = [&](Tag tag, size_t fixed) {
    pk.pack_array(static_cast<uint32_t>(1 + fixed + v.children.size()));
    pk.pack_uint64(tag);
  };
  auto children = [&] {
    for (const WireValue& c : v.children) PackValue(pk, c, schemas);
  };
  switch (v.kind) {
    case WireKind::kNone:
      pk.pack_nil();
      return;
    case WireKind::kBool:
      DataOr<bool>(v) ? pk.pack_true() : pk.pack_false();
      return;
    case WireKind::kInt:
      pk.pack_int64(DataOr<int64_t>(v));
      return;
    case WireKind::kNumber:
      pk.pack_float64(DataOr<double>(v));
      return;
    case WireKind::kString:
      PackStr(pk, DataOr<std::string>(v));
      return;
    case WireKind::kArray:
      head(kTagArray, 0);
      return children();
    case WireKind::kMap:
      head(kTagMap, 0);
      return children();
    case WireKind::kStruct:
      head(kTagStruct, 1);
      pk.pack_uint32(schemas.IndexOf(SchemaOfValue(v)));
      return children();
    case WireKind::kEnum:
      head(kTagEnum, 2);
      pk.pack_uint32(schemas.IndexOf(SchemaOfValue(v)));
      pk.pack_uint32(DataOr<WireTypeRef>(v).variant);
      return children();
    case WireKind::kSome:
      head(kTagSome, 0);
      return children();
    case WireKind::kOk:
      head(kTagOk, 0);
      return children();
    case WireKind::kErr:
      head(kTagErr, 0);
      return children();
    case WireKind::kRange: {
      const WireRange& r = DataOr<WireRange>(v);
      head(kTagRange, 4);
      pk.pack_int64(r.start);
      pk.pack_int64(r.end);
      pk.pack_int64(r.step);
      r.inclusive ? pk.pack_true() : pk.pack_false();
      return;
    }
    case WireKind::kFunction:
      head(kTagFunction, 1);
      return PackHash(pk, DataOr<engine::FunctionHash>(v));
    case WireKind::kNative:
      head(kTagNative, 1);
      return PackStr(pk, DataOr<std::string>(v));
    case WireKind::kClosure:
      head(kTagClosure, 1);
      PackHash(pk, DataOr<engine::FunctionHash>(v));
      return children();
    case WireKind::kTypedArray:
      head(kTagTypedArray, 2);
      pk.pack_uint64(ElemCode(DataOr<WireBuffer>(v).elem));
      return PackBin(pk, DataOr<WireBuffer>(v).data());
    case WireKind::kMatrix: {
      head(kTagMatrix, 3);
      const WireBuffer& b = DataOr<WireBuffer>(v);
      pk.pack_uint64(b.rows);
      pk.pack_uint64(b.cols);
      return PackBin(pk, b.data());
    }
    case WireKind::kRef:
      head(kTagRef, 1);
      pk.pack_uint64(static_cast<uint64_t>(std::max<int64_t>(0, DataOr<int64_t>(v))));
      return;
    case WireKind::kCell:
      head(kTagCell, 0);
      return children();
    case WireKind::kSidecarRef: {
      const WireSidecarRef& s = DataOr<WireSidecarRef>(v);
      size_t extra = s.kind == SidecarKind::kTypedArray ? 1
                     : s.kind == SidecarKind::kMatrix   ? 2
                                                        : 0;
      head(kTagSidecarRef, 4 + extra);
      pk.pack_uint32(s.id);
      pk.pack_uint8(static_cast<uint8_t>(s.kind));
      pk.pack_uint64(s.length);
      pk.pack_uint64(s.checksum);
      if (s.kind == SidecarKind::kTypedArray) pk.pack_uint64(ElemCode(s.elem));
      if (s.kind == SidecarKind::kMatrix) {
        pk.pack_uint64(s.rows);
        pk.pack_uint64(s.cols);
      }
      return;
    }
  }
}

namespace {

Result<WireTypeSchema> ReadSchema(const msgpack::object& o) {
  ASSIGN_OR_RETURN(Items f, ReadArray(o, "schema", 4, 4));
  WireTypeSchema s;
  ASSIGN_OR_RETURN(uint64_t kind, ReadUint(f[0], "schema kind", 1));
  s.kind = static_cast<WireTypeSchema::Kind>(kind);
  ASSIGN_OR_RETURN(std::string_view name, ReadStr(f[1], "schema name", kMaxSchemaNameBytes));
  s.name = name;
  ASSIGN_OR_RETURN(Items names, ReadArray(f[2], "schema names", 0, kMaxSchemaNames));
  std::set<std::string_view> seen;
  for (const msgpack::object& n : names) {
    ASSIGN_OR_RETURN(std::string_view member,
                     ReadStr(n, "schema member name", kMaxSchemaNameBytes));
    if (!seen.insert(member).second)
      return ProtocolError(fmt::format("schema {}: member '{}' appears twice", s.name, member));
    s.names.emplace_back(member);
  }
  size_t want_arity = s.kind == WireTypeSchema::Kind::kEnum ? s.names.size() : 0;
  ASSIGN_OR_RETURN(Items arity, ReadArray(f[3], "schema arities", want_arity, want_arity));
  for (const msgpack::object& a : arity) {
    ASSIGN_OR_RETURN(uint64_t n, ReadUint(a, "variant arity", kMaxEnumArity));
    s.arity.push_back(static_cast<uint32_t>(n));
  }
  return s;
}

Result<engine::ElemKind> ReadElem(const msgpack::object& o) {
  ASSIGN_OR_RETURN(uint64_t code, ReadUint(o, "element kind", kNumElemCodes - 1));
  return kElemByCode[code];
}

Status CheckTypedBytes(engine::ElemKind elem, uint64_t length, const uint8_t* data) {
  if (length % engine::ElemSize(elem) != 0)
    return ProtocolError(
        fmt::format("typed array of {}: {} bytes is not a whole number of elements",
                    engine::ElemKindName(elem), length));
  if (data != nullptr && elem == engine::ElemKind::kBool &&
      std::any_of(data, data + length, [](uint8_t b) { return b > 1; }))
    return ProtocolError("bool typed array holds a byte other than 0 or 1");
  return Status::Ok();
}

Status CheckMatrixBytes(uint64_t rows, uint64_t cols, uint64_t length) {
  if (cols != 0 && rows > length / sizeof(double) / cols)
    return ProtocolError(fmt::format("matrix {}x{} does not match {} bytes", rows, cols, length));
  if (rows * cols * sizeof(double) != length)
    return ProtocolError(fmt::format("matrix {}x{} does not match {} bytes", rows, cols, length));
  return Status::Ok();
}

// A map key's identity for the duplicate check (Int, String and Bool keys never compare equal
// across kinds).
std::string KeyIdentity(const WireValue& key) {
  switch (key.kind) {
    case WireKind::kInt:
      return "i" + std::to_string(key.as_int());
    case WireKind::kBool:
      return key.as_bool() ? "t" : "f";
    default:
      return "s" + key.text();
  }
}

class ValueReader {
 public:
  explicit ValueReader(const SchemaList& schemas) : schemas_(schemas) {}

  Result<WireValue> Read(const msgpack::object& o, int depth) {
    switch (o.type) {
      case msgpack::type::NIL:
        return WireValue::None();
      case msgpack::type::BOOLEAN:
        return WireValue::Bool(o.via.boolean);
      case msgpack::type::POSITIVE_INTEGER:
      case msgpack::type::NEGATIVE_INTEGER: {
        ASSIGN_OR_RETURN(int64_t i, ReadInt(o, "int value"));
        return WireValue::Int(i);
      }
      case msgpack::type::FLOAT32:
      case msgpack::type::FLOAT64:
        return WireValue::Number(o.via.f64);
      case msgpack::type::STR:
        return WireValue::String(std::string(o.via.str.ptr, o.via.str.size));
      case msgpack::type::ARRAY:
        return Compound(o, depth);
      default:
        return ProtocolError(fmt::format("value: unexpected MessagePack {}", MsgpackTypeName(o)));
    }
  }

 private:
  Status Children(Items items, int depth, WireValue* out) {
    out->children.reserve(items.size());
    for (const msgpack::object& item : items) {
      ASSIGN_OR_RETURN(WireValue child, Read(item, depth + 1));
      out->children.push_back(std::move(child));
    }
    return Status::Ok();
  }

  Result<SchemaPtr> Schema(const msgpack::object& o, WireTypeSchema::Kind kind) {
    ASSIGN_OR_RETURN(uint64_t index, ReadUint(o, "schema index"));
    if (index >= schemas_.size())
      return ProtocolError(
          fmt::format("schema index {} out of range ({} schemas)", index, schemas_.size()));
    if (schemas_[index]->kind != kind)
      return ProtocolError(fmt::format("schema {} is not a {} schema", schemas_[index]->name,
                                       kind == WireTypeSchema::Kind::kStruct ? "struct" : "enum"));
    return schemas_[index];
  }

  Result<WireValue> Map(Items rest, int depth) {
    if (rest.size() % 2 != 0) return ProtocolError("map: odd number of keys and values");
    WireValue m = WireValue::Map({});
    RETURN_IF_ERROR(Children(rest, depth, &m));
    std::set<std::string> keys;
    for (size_t i = 0; i < m.children.size(); i += 2) {
      const WireValue& key = m.children[i];
      if (key.kind != WireKind::kInt && key.kind != WireKind::kString &&
          key.kind != WireKind::kBool)
        return ProtocolError("map key must be an int, string or bool, not " + DescribeWire(key));
      if (!keys.insert(KeyIdentity(key)).second) return ProtocolError("map has a duplicate key");
    }
    return m;
  }

  Result<WireValue> Enum(Items rest, int depth) {
    if (rest.size() < 2) return ProtocolError("enum: missing schema or variant");
    ASSIGN_OR_RETURN(SchemaPtr schema, Schema(rest[0], WireTypeSchema::Kind::kEnum));
    ASSIGN_OR_RETURN(uint64_t variant, ReadUint(rest[1], "enum variant"));
    if (variant >= schema->names.size())
      return ProtocolError(fmt::format("enum {}: variant {} out of range", schema->name, variant));
    if (rest.size() - 2 != schema->arity[variant])
      return ProtocolError(fmt::format("enum {}::{}: {} payload values, expected {}", schema->name,
                                       schema->names[variant], rest.size() - 2,
                                       schema->arity[variant]));
    WireValue e = WireValue::Enum(schema, static_cast<uint32_t>(variant), {});
    RETURN_IF_ERROR(Children(rest.subspan(2), depth, &e));
    return e;
  }

  Result<WireValue> SidecarRef(Items rest) {
    if (rest.size() < 4) return ProtocolError("sidecar ref: too few fields");
    WireSidecarRef s;
    ASSIGN_OR_RETURN(uint64_t id, ReadUint(rest[0], "sidecar id", UINT32_MAX));
    ASSIGN_OR_RETURN(uint64_t kind, ReadUint(rest[1], "sidecar kind", 2));
    ASSIGN_OR_RETURN(s.length, ReadUint(rest[2], "sidecar length"));
    ASSIGN_OR_RETURN(s.checksum, ReadUint(rest[3], "sidecar checksum"));
    s.id = static_cast<uint32_t>(id);
    s.kind = static_cast<SidecarKind>(kind);
    size_t extra = s.kind == SidecarKind::kTypedArray ? 1 : s.kind == SidecarKind::kMatrix ? 2 : 0;
    if (rest.size() != 4 + extra) return ProtocolError("sidecar ref: wrong number of fields");
    if (s.kind == SidecarKind::kTypedArray) {
      ASSIGN_OR_RETURN(s.elem, ReadElem(rest[4]));
      RETURN_IF_ERROR(CheckTypedBytes(s.elem, s.length, nullptr));
    } else if (s.kind == SidecarKind::kMatrix) {
      ASSIGN_OR_RETURN(s.rows, ReadUint(rest[4], "matrix rows"));
      ASSIGN_OR_RETURN(s.cols, ReadUint(rest[5], "matrix cols"));
      RETURN_IF_ERROR(CheckMatrixBytes(s.rows, s.cols, s.length));
    }
    return WireValue::SidecarRef(s);
  }

  Result<WireValue> Compound(const msgpack::object& o, int depth) {
    if (depth > kMaxWireDepth)
      return ProtocolError(fmt::format("value nested deeper than {} levels", kMaxWireDepth));
    ASSIGN_OR_RETURN(Items items, ReadArray(o, "value", 1));
    ASSIGN_OR_RETURN(uint64_t tag, ReadUint(items[0], "value tag"));
    Items rest = items.subspan(1);
    auto exactly = [&](size_t n, const char* what) -> Status {
      if (rest.size() != n)
        return ProtocolError(fmt::format("{}: {} fields, expected {}", what, rest.size(), n));
      return Status::Ok();
    };
    switch (tag) {
      case kTagArray: {
        WireValue a = WireValue::Array({});
        RETURN_IF_ERROR(Children(rest, depth, &a));
        return a;
      }
      case kTagMap:
        return Map(rest, depth);
      case kTagStruct: {
        if (rest.empty()) return ProtocolError("struct: missing schema");
        ASSIGN_OR_RETURN(SchemaPtr schema, Schema(rest[0], WireTypeSchema::Kind::kStruct));
        if (rest.size() - 1 != schema->names.size())
          return ProtocolError(fmt::format("struct {}: {} fields, expected {}", schema->name,
                                           rest.size() - 1, schema->names.size()));
        WireValue s = WireValue::Struct(schema, {});
        RETURN_IF_ERROR(Children(rest.subspan(1), depth, &s));
        return s;
      }
      case kTagEnum:
        return Enum(rest, depth);
      case kTagSome:
      case kTagOk:
      case kTagErr: {
        RETURN_IF_ERROR(exactly(1, "Some/Ok/Err"));
        WireValue w;
        w.kind = tag == kTagSome ? WireKind::kSome : tag == kTagOk ? WireKind::kOk : WireKind::kErr;
        RETURN_IF_ERROR(Children(rest, depth, &w));
        return w;
      }
      case kTagRange: {
        RETURN_IF_ERROR(exactly(4, "range"));
        WireRange r;
        ASSIGN_OR_RETURN(r.start, ReadInt(rest[0], "range start"));
        ASSIGN_OR_RETURN(r.end, ReadInt(rest[1], "range end"));
        ASSIGN_OR_RETURN(r.step, ReadInt(rest[2], "range step"));
        ASSIGN_OR_RETURN(r.inclusive, ReadBool(rest[3], "range inclusive"));
        if (r.step < 1) return ProtocolError("range step must be at least 1");
        return WireValue::Range(r);
      }
      case kTagFunction: {
        RETURN_IF_ERROR(exactly(1, "function"));
        ASSIGN_OR_RETURN(engine::FunctionHash h, ReadHash(rest[0], "function hash"));
        return WireValue::Function(h);
      }
      case kTagNative: {
        RETURN_IF_ERROR(exactly(1, "native"));
        ASSIGN_OR_RETURN(std::string_view name,
                         ReadStr(rest[0], "native name", kMaxNativeNameBytes));
        return WireValue::Native(std::string(name));
      }
      case kTagClosure: {
        if (rest.empty()) return ProtocolError("closure: missing function hash");
        ASSIGN_OR_RETURN(engine::FunctionHash h, ReadHash(rest[0], "closure hash"));
        WireValue c = WireValue::Closure(h, {});
        RETURN_IF_ERROR(Children(rest.subspan(1), depth, &c));
        return c;
      }
      case kTagTypedArray: {
        RETURN_IF_ERROR(exactly(2, "typed array"));
        ASSIGN_OR_RETURN(engine::ElemKind elem, ReadElem(rest[0]));
        ASSIGN_OR_RETURN(std::span<const uint8_t> bytes,
                         ReadBin(rest[1], "typed array", kMaxBinBytes));
        RETURN_IF_ERROR(CheckTypedBytes(elem, bytes.size(), bytes.data()));
        return WireValue::TypedArray(elem, std::vector<uint8_t>(bytes.begin(), bytes.end()));
      }
      case kTagMatrix: {
        RETURN_IF_ERROR(exactly(3, "matrix"));
        ASSIGN_OR_RETURN(uint64_t rows, ReadUint(rest[0], "matrix rows"));
        ASSIGN_OR_RETURN(uint64_t cols, ReadUint(rest[1], "matrix cols"));
        ASSIGN_OR_RETURN(std::span<const uint8_t> bytes, ReadBin(rest[2], "matrix", kMaxBinBytes));
        RETURN_IF_ERROR(CheckMatrixBytes(rows, cols, bytes.size()));
        return WireValue::Matrix(rows, cols, std::vector<uint8_t>(bytes.begin(), bytes.end()));
      }
      case kTagSidecarRef:
        return SidecarRef(rest);
      case kTagRef: {
        RETURN_IF_ERROR(exactly(1, "ref"));
        ASSIGN_OR_RETURN(uint64_t index, ReadUint(rest[0], "ref index", kMaxWireNodes));
        return WireValue::Ref(index);
      }
      case kTagCell: {
        RETURN_IF_ERROR(exactly(1, "cell"));
        WireValue c;
        c.kind = WireKind::kCell;
        RETURN_IF_ERROR(Children(rest, depth, &c));
        return c;
      }
      default:
        return ProtocolError(fmt::format("unknown value tag {}", tag));
    }
  }

  const SchemaList& schemas_;
};

}  // namespace

Result<SchemaList> ReadSchemaTable(const msgpack::object& o) {
  ASSIGN_OR_RETURN(Items items, ReadArray(o, "schema table", 0, kMaxSchemas));
  SchemaList out;
  out.reserve(items.size());
  for (const msgpack::object& item : items) {
    ASSIGN_OR_RETURN(WireTypeSchema s, ReadSchema(item));
    out.push_back(std::make_shared<const WireTypeSchema>(std::move(s)));
  }
  return out;
}

Result<WireValue> ReadValue(const msgpack::object& o, const SchemaList& schemas, int depth) {
  ValueReader reader(schemas);
  return reader.Read(o, depth);
}

}  // namespace internal

std::vector<uint8_t> EncodeValue(const WireValue& value) {
  std::vector<uint8_t> out;
  internal::ByteSink sink(&out);
  internal::Packer pk(sink);
  internal::SchemaTableWriter schemas;
  schemas.Collect(value);
  pk.pack_array(2);
  schemas.Pack(pk);
  internal::PackValue(pk, value, schemas);
  return out;
}

Result<WireValue> DecodeValue(std::span<const uint8_t> bytes) {
  // [schemas, value]: the value's root sits one level below the document array.
  ASSIGN_OR_RETURN(msgpack::object_handle handle,
                   internal::UnpackUntrusted(bytes, kMaxWireDepth + 1));
  ASSIGN_OR_RETURN(internal::Items doc, internal::ReadArray(handle.get(), "value document", 2, 2));
  ASSIGN_OR_RETURN(internal::SchemaList schemas, internal::ReadSchemaTable(doc[0]));
  return internal::ReadValue(doc[1], schemas);
}

std::vector<uint8_t> EncodeSchemas(std::span<const WireTypeSchema> schemas) {
  std::vector<uint8_t> out;
  internal::ByteSink sink(&out);
  internal::Packer pk(sink);
  internal::SchemaTableWriter table;
  for (const WireTypeSchema& s : schemas) table.Add(s);
  table.Pack(pk);
  return out;
}

Result<std::vector<WireTypeSchema>> DecodeSchemas(std::span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(msgpack::object_handle handle, internal::UnpackUntrusted(bytes, 3));
  ASSIGN_OR_RETURN(internal::SchemaList list, internal::ReadSchemaTable(handle.get()));
  std::vector<WireTypeSchema> out;
  for (const SchemaPtr& s : list) out.push_back(*s);
  return out;
}

}  // namespace shapex::ipc
