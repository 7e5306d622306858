// WireValue construction, equality and descriptions. Conversion to and from engine values is in
// wire_convert.cc.
#include "shapex/ipc/wire_value.h"

#include <algorithm>

#include <fmt/format.h>

#include <cstring>

namespace shapex::ipc {
namespace {

WireValue Make(WireKind kind) {
  WireValue v;
  v.kind = kind;
  return v;
}

WireValue Wrap(WireKind kind, WireValue inner) {
  WireValue v = Make(kind);
  v.children.push_back(std::move(inner));
  return v;
}

bool SameData(const WireValue& a, const WireValue& b) {
  if (a.data.index() != b.data.index()) return false;
  if (const double* x = std::get_if<double>(&a.data)) {
    const double* y = std::get_if<double>(&b.data);
    return std::memcmp(x, y, sizeof(double)) == 0;  // bit for bit: NaN == NaN, 0.0 != -0.0
  }
  return a.data == b.data;
}

}  // namespace

bool operator==(const WireTypeRef& a, const WireTypeRef& b) {
  if (a.variant != b.variant) return false;
  if (a.schema == b.schema) return true;
  return a.schema != nullptr && b.schema != nullptr && *a.schema == *b.schema;
}

std::string_view WireKindName(WireKind kind) {
  switch (kind) {
    case WireKind::kNone:
      return "None";
    case WireKind::kBool:
      return "Bool";
    case WireKind::kInt:
      return "Int";
    case WireKind::kNumber:
      return "Number";
    case WireKind::kString:
      return "String";
    case WireKind::kArray:
      return "Array";
    case WireKind::kMap:
      return "Map";
    case WireKind::kStruct:
      return "Struct";
    case WireKind::kEnum:
      return "Enum";
    case WireKind::kSome:
      return "Some";
    case WireKind::kOk:
      return "Ok";
    case WireKind::kErr:
      return "Err";
    case WireKind::kRange:
      return "Range";
    case WireKind::kFunction:
      return "Function";
    case WireKind::kNative:
      return "Native";
    case WireKind::kClosure:
      return "Closure";
    case WireKind::kTypedArray:
      return "TypedArray";
    case WireKind::kMatrix:
      return "Matrix";
    case WireKind::kSidecarRef:
      return "SidecarRef";
    case WireKind::kRef:
      return "Ref";
    case WireKind::kCell:
      return "Cell";
  }
  return "?";
}

std::string_view SidecarKindName(SidecarKind kind) {
  switch (kind) {
    case SidecarKind::kString:
      return "string";
    case SidecarKind::kTypedArray:
      return "typed array";
    case SidecarKind::kMatrix:
      return "matrix";
  }
  return "?";
}

int WireTypeSchema::IndexOf(std::string_view n) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == n) return static_cast<int>(i);
  return -1;
}

WireValue WireValue::Bool(bool b) {
  WireValue v = Make(WireKind::kBool);
  v.data = b;
  return v;
}

WireValue WireValue::Int(int64_t i) {
  WireValue v = Make(WireKind::kInt);
  v.data = i;
  return v;
}

WireValue WireValue::Number(double n) {
  WireValue v = Make(WireKind::kNumber);
  v.data = n;
  return v;
}

WireValue WireValue::String(std::string s) {
  WireValue v = Make(WireKind::kString);
  v.data = std::move(s);
  return v;
}

WireValue WireValue::Array(std::vector<WireValue> items) {
  WireValue v = Make(WireKind::kArray);
  v.children = std::move(items);
  return v;
}

WireValue WireValue::Map(std::vector<std::pair<WireValue, WireValue>> entries) {
  WireValue v = Make(WireKind::kMap);
  v.children.reserve(entries.size() * 2);
  for (auto& [key, value] : entries) {
    v.children.push_back(std::move(key));
    v.children.push_back(std::move(value));
  }
  return v;
}

WireValue WireValue::Struct(SchemaPtr schema, std::vector<WireValue> fields) {
  WireValue v = Make(WireKind::kStruct);
  v.data = WireTypeRef{std::move(schema), 0};
  v.children = std::move(fields);
  return v;
}

WireValue WireValue::Enum(SchemaPtr schema, uint32_t variant, std::vector<WireValue> payload) {
  WireValue v = Make(WireKind::kEnum);
  v.data = WireTypeRef{std::move(schema), variant};
  v.children = std::move(payload);
  return v;
}

WireValue WireValue::Some(WireValue inner) { return Wrap(WireKind::kSome, std::move(inner)); }
WireValue WireValue::Ok(WireValue inner) { return Wrap(WireKind::kOk, std::move(inner)); }
WireValue WireValue::Err(WireValue inner) { return Wrap(WireKind::kErr, std::move(inner)); }

WireValue WireValue::Range(WireRange r) {
  WireValue v = Make(WireKind::kRange);
  v.data = r;
  return v;
}

WireValue WireValue::Function(const engine::FunctionHash& hash) {
  WireValue v = Make(WireKind::kFunction);
  v.data = hash;
  return v;
}

WireValue WireValue::Native(std::string qualified_name) {
  WireValue v = Make(WireKind::kNative);
  v.data = std::move(qualified_name);
  return v;
}

WireValue WireValue::Closure(const engine::FunctionHash& hash, std::vector<WireValue> captures) {
  WireValue v = Make(WireKind::kClosure);
  v.data = hash;
  v.children = std::move(captures);
  return v;
}

WireValue WireValue::TypedArray(engine::ElemKind elem, std::vector<uint8_t> bytes) {
  WireValue v = Make(WireKind::kTypedArray);
  v.data = WireBuffer{elem, 0, 0, std::move(bytes), nullptr};
  return v;
}

WireValue WireValue::Matrix(uint64_t rows, uint64_t cols, std::vector<uint8_t> bytes) {
  WireValue v = Make(WireKind::kMatrix);
  v.data = WireBuffer{engine::ElemKind::kF64, rows, cols, std::move(bytes), nullptr};
  return v;
}

WireValue WireValue::SidecarRef(const WireSidecarRef& ref) {
  WireValue v = Make(WireKind::kSidecarRef);
  v.data = ref;
  return v;
}

WireValue WireValue::Ref(uint64_t memo_index) {
  WireValue v = Make(WireKind::kRef);
  v.data = static_cast<int64_t>(memo_index);
  return v;
}

WireValue WireValue::Cell(WireValue value) { return Wrap(WireKind::kCell, std::move(value)); }

bool WireValue::IsContainer() const {
  switch (kind) {
    case WireKind::kArray:
    case WireKind::kMap:
    case WireKind::kStruct:
    case WireKind::kEnum:
    case WireKind::kSome:
    case WireKind::kOk:
    case WireKind::kErr:
    case WireKind::kClosure:
    case WireKind::kCell:
    case WireKind::kTypedArray:
    case WireKind::kMatrix:
      return true;
    case WireKind::kSidecarRef: {
      const WireSidecarRef* s = std::get_if<WireSidecarRef>(&data);
      return s != nullptr && s->kind != SidecarKind::kString;
    }
    default:
      return false;
  }
}

WireValue WireValue::SharedTypedArray(engine::ElemKind elem,
                                      std::shared_ptr<const SegmentView> seg) {
  WireValue v;
  v.kind = WireKind::kTypedArray;
  v.data = WireBuffer{elem, 0, 0, {}, std::move(seg)};
  return v;
}

WireValue WireValue::SharedMatrix(uint64_t rows, uint64_t cols,
                                  std::shared_ptr<const SegmentView> seg) {
  WireValue v;
  v.kind = WireKind::kMatrix;
  v.data = WireBuffer{engine::ElemKind::kF64, rows, cols, {}, std::move(seg)};
  return v;
}

bool operator==(const WireBuffer& a, const WireBuffer& b) {
  auto x = a.data(), y = b.data();
  return a.elem == b.elem && a.rows == b.rows && a.cols == b.cols &&
         std::equal(x.begin(), x.end(), y.begin(), y.end());
}

bool operator==(const WireValue& a, const WireValue& b) {
  return a.kind == b.kind && SameData(a, b) && a.children == b.children;
}

std::string DescribeWire(const WireValue& v) {
  std::string_view kind = WireKindName(v.kind);
  switch (v.kind) {
    case WireKind::kArray:
      return fmt::format("{}({})", kind, v.children.size());
    case WireKind::kMap:
      return fmt::format("{}({})", kind, v.children.size() / 2);
    case WireKind::kStruct:
    case WireKind::kEnum: {
      const WireTypeRef* t = std::get_if<WireTypeRef>(&v.data);
      return fmt::format("{} {}", kind, t && t->schema ? t->schema->name : "<no schema>");
    }
    case WireKind::kNative:
      return fmt::format("{} {}", kind, v.text());
    case WireKind::kTypedArray:
      return fmt::format("{}<{}>", kind, engine::ElemKindName(v.buffer().elem));
    case WireKind::kSidecarRef:
      return fmt::format("{} #{}", kind, v.sidecar().id);
    case WireKind::kRef: {
      const int64_t* index = std::get_if<int64_t>(&v.data);
      return fmt::format("{} #{}", kind, index != nullptr ? *index : -1);
    }
    default:
      return std::string(kind);
  }
}

}  // namespace shapex::ipc
