// engine::Value <-> WireValue. Both directions walk the tree recursively; recursion depth is
// bounded by kMaxWireDepth, so the native stack stays small whatever the input.
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "shapex/engine/natives.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc {
namespace {

using engine::Obj;
using engine::Type;
using engine::Value;

// Typed arrays and matrices travel as little-endian bytes and are copied with memcpy.
static_assert(std::endian::native == std::endian::little, "shapex assumes a little-endian host");

bool IsScalar(WireKind k) {
  return k == WireKind::kNone || k == WireKind::kBool || k == WireKind::kInt ||
         k == WireKind::kNumber || k == WireKind::kString;
}

std::vector<uint8_t> CopyBytes(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  return std::vector<uint8_t>(p, p + n);
}

class ToWireWalker {
 public:
  explicit ToWireWalker(const ToWireContext& ctx) : ctx_(ctx) {}

  // `depth` is the depth this value would have if it is not a scalar.
  Result<WireValue> Convert(const Value& v, int depth) {
    if (++nodes_ > kMaxWireNodes) return ArgumentError("value is too large to send");
    switch (v.type) {
      case Type::kNone:
        return WireValue::None();
      case Type::kBool:
        return WireValue::Bool(v.as.b);
      case Type::kInt:
        return WireValue::Int(v.as.i);
      case Type::kNumber:
        return WireValue::Number(v.as.n);
      case Type::kString:
        return WireValue::String(engine::AsString(v)->str);
      default:
        break;
    }
    if (depth > kMaxWireDepth)
      return ArgumentError(fmt::format("value is nested deeper than {} levels", kMaxWireDepth));
    const Obj* o = v.as.o;
    if (std::find(path_.begin(), path_.end(), o) != path_.end())
      return ArgumentError("cannot send a cyclic value");
    path_.push_back(o);
    Result<WireValue> out = Object(v, depth);
    path_.pop_back();
    return out;
  }

 private:
  Result<std::vector<WireValue>> List(const std::vector<Value>& items, int depth) {
    std::vector<WireValue> out;
    out.reserve(items.size());
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(WireValue w, Convert(item, depth + 1));
      out.push_back(std::move(w));
    }
    return out;
  }

  Result<engine::FunctionHash> HashOf(const engine::Proto* proto) {
    const engine::Program* p = ctx_.program;
    bool ours =
        p == nullptr || (proto->index < p->protos.size() && p->protos[proto->index].get() == proto);
    if (!ours || proto->index >= ctx_.proto_hashes.size())
      return ArgumentError(fmt::format("function {} has no content hash here", proto->name));
    return ctx_.proto_hashes[proto->index];
  }

  template <class T>
  SchemaPtr SchemaFor(const T* type) {
    SchemaPtr& s = schemas_[type];
    if (s == nullptr) s = std::make_shared<const WireTypeSchema>(TypeRegistry::SchemaOf(*type));
    return s;
  }

  Result<WireValue> Enum(const engine::ObjEnum* e, int depth) {
    ASSIGN_OR_RETURN(std::vector<WireValue> payload, List(e->payload, depth));
    if (e->etype == engine::OptionType() || e->etype == engine::ResultType()) {
      if (payload.size() != 1) return ArgumentError("malformed Option/Result value");
      if (e->etype == engine::OptionType()) return WireValue::Some(std::move(payload[0]));
      if (e->variant == engine::kOkVariant) return WireValue::Ok(std::move(payload[0]));
      return WireValue::Err(std::move(payload[0]));
    }
    return WireValue::Enum(SchemaFor(e->etype), e->variant, std::move(payload));
  }

  Result<WireValue> Object(const Value& v, int depth) {
    switch (v.type) {
      case Type::kArray: {
        ASSIGN_OR_RETURN(std::vector<WireValue> items, List(engine::AsArray(v)->items, depth));
        return WireValue::Array(std::move(items));
      }
      case Type::kMap: {
        WireValue m = WireValue::Map({});
        Status status;
        engine::AsMap(v)->ForEach([&](const Value& key, const Value& value) {
          if (!status.ok()) return;
          Result<WireValue> k = Convert(key, depth + 1);
          Result<WireValue> x = k ? Convert(value, depth + 1) : Result<WireValue>(k.error());
          if (!x) {
            status = x.error();
            return;
          }
          m.children.push_back(std::move(*k));
          m.children.push_back(std::move(*x));
        });
        RETURN_IF_ERROR(status);
        return m;
      }
      case Type::kStruct: {
        const engine::ObjStruct* s = engine::AsStruct(v);
        ASSIGN_OR_RETURN(std::vector<WireValue> fields, List(s->fields, depth));
        return WireValue::Struct(SchemaFor(s->stype), std::move(fields));
      }
      case Type::kEnum:
        return Enum(engine::AsEnum(v), depth);
      case Type::kRange: {
        const engine::ObjRange* r = engine::AsRange(v);
        return WireValue::Range({r->start, r->end, r->step, r->inclusive});
      }
      case Type::kFunction: {
        ASSIGN_OR_RETURN(engine::FunctionHash h, HashOf(engine::AsFunction(v)->proto));
        return WireValue::Function(h);
      }
      case Type::kNative:
        return WireValue::Native(engine::AsNative(v)->def->name);
      case Type::kClosure: {
        const engine::ObjClosure* c = engine::AsClosure(v);
        ASSIGN_OR_RETURN(engine::FunctionHash h, HashOf(c->proto));
        std::vector<Value> captured;
        for (const engine::ObjCell* cell : c->cells)
          captured.push_back(cell != nullptr ? cell->value : Value::None());
        ASSIGN_OR_RETURN(std::vector<WireValue> captures, List(captured, depth));
        return WireValue::Closure(h, std::move(captures));
      }
      case Type::kTypedArray: {
        const engine::ObjTypedArray* a = engine::AsTypedArray(v);
        if (a->ByteSize() >= ctx_.borrow_threshold)
          return WireValue::SharedTypedArray(a->kind, Borrow(a->data, a->ByteSize()));
        return WireValue::TypedArray(a->kind, CopyBytes(a->data, a->ByteSize()));
      }
      case Type::kMatrix: {
        const engine::ObjMatrix* m = engine::AsMatrix(v);
        size_t size = m->rows * m->cols * sizeof(double);
        if (size >= ctx_.borrow_threshold)
          return WireValue::SharedMatrix(m->rows, m->cols,
                                         Borrow(reinterpret_cast<const uint8_t*>(m->data), size));
        return WireValue::Matrix(m->rows, m->cols,
                                 CopyBytes(reinterpret_cast<const uint8_t*>(m->data), size));
      }
      default:
        return ArgumentError("cannot send a value of type " + engine::TypeName(v));
    }
  }

  // A borrowed view of `size` bytes at `data` (see ToWireContext::borrow_threshold).
  std::shared_ptr<const SegmentView> Borrow(const uint8_t* data, size_t size) const {
    struct Borrowed {
      std::shared_ptr<const void> owner;
      SegmentView view;
    };
    auto b = std::make_shared<Borrowed>(
        Borrowed{ctx_.borrow_owner, SegmentView{{data, size}, -1, 0, false}});
    return std::shared_ptr<const SegmentView>(b, &b->view);
  }

  const ToWireContext& ctx_;
  std::vector<const Obj*> path_;  // containers being converted, outermost first
  size_t nodes_ = 0;
  std::unordered_map<const void*, SchemaPtr> schemas_;  // engine type -> shared schema
};

// Builds engine values; no Vm code runs in between, so nothing is collected meanwhile.
class FromWireBuilder {
 public:
  explicit FromWireBuilder(FromWireContext& ctx) : ctx_(ctx), vm_(*ctx.vm) {}

  Result<Value> Build(const WireValue& w, int depth) {
    if (!IsScalar(w.kind) && depth > kMaxWireDepth)
      return ArgumentError(fmt::format("value is nested deeper than {} levels", kMaxWireDepth));
    switch (w.kind) {
      case WireKind::kNone:
        return Value::None();
      case WireKind::kBool:
        return Scalar<bool>(w, [](bool b) { return Value::Bool(b); });
      case WireKind::kInt:
        return Scalar<int64_t>(w, [](int64_t i) { return Value::Int(i); });
      case WireKind::kNumber:
        return Scalar<double>(w, [](double n) { return Value::Number(n); });
      case WireKind::kString: {
        ASSIGN_OR_RETURN(const std::string* s, Data<std::string>(w));
        RETURN_IF_ERROR(Reserve(s->size()));
        return vm_.NewString(*s);
      }
      case WireKind::kArray: {
        ASSIGN_OR_RETURN(std::vector<Value> items, List(w.children, depth));
        return vm_.NewArray(std::move(items));
      }
      case WireKind::kMap:
        return Map(w, depth);
      case WireKind::kStruct:
        return Struct(w, depth);
      case WireKind::kEnum:
        return Enum(w, depth);
      case WireKind::kSome:
      case WireKind::kOk:
      case WireKind::kErr: {
        if (w.children.size() != 1) return Malformed(w);
        ASSIGN_OR_RETURN(Value inner, Build(w.children[0], depth + 1));
        if (w.kind == WireKind::kSome) return vm_.NewSome(inner);
        return w.kind == WireKind::kOk ? vm_.NewOk(inner) : vm_.NewErr(inner);
      }
      case WireKind::kRange: {
        ASSIGN_OR_RETURN(const WireRange* r, Data<WireRange>(w));
        if (r->step < 1) return ArgumentError("range step must be at least 1");
        return vm_.NewRange(r->start, r->end, r->step, r->inclusive);
      }
      case WireKind::kFunction:
      case WireKind::kClosure:
        return Callable(w, depth);
      case WireKind::kNative: {
        ASSIGN_OR_RETURN(const std::string* name, Data<std::string>(w));
        const engine::NativeDef* def = engine::FindNative(*name);
        if (def == nullptr)
          return MissingModuleFunctionError("this executor has no native '" + *name + "'");
        return vm_.NewNative(def);
      }
      case WireKind::kTypedArray:
        return TypedArray(w);
      case WireKind::kMatrix:
        return Matrix(w);
      case WireKind::kSidecarRef:
        return ProtocolError("sidecar reference was not reassembled before use");
    }
    return Malformed(w);
  }

 private:
  static Status Malformed(const WireValue& w) {
    return ArgumentError("malformed " + DescribeWire(w) + " value");
  }

  template <class T>
  Result<const T*> Data(const WireValue& w) {
    const T* p = std::get_if<T>(&w.data);
    if (p == nullptr) return Malformed(w);
    return p;
  }

  template <class T, class F>
  Result<Value> Scalar(const WireValue& w, F make) {
    ASSIGN_OR_RETURN(const T* p, Data<T>(w));
    return make(*p);
  }

  Status Reserve(size_t bytes) {
    if (!vm_.CheckAlloc(bytes)) return ResourceExhausted("memory limit exceeded");
    return Status::Ok();
  }

  Result<std::vector<Value>> List(const std::vector<WireValue>& items, int depth) {
    RETURN_IF_ERROR(Reserve(items.size() * sizeof(Value)));
    std::vector<Value> out;
    out.reserve(items.size());
    for (const WireValue& item : items) {
      ASSIGN_OR_RETURN(Value v, Build(item, depth + 1));
      out.push_back(v);
    }
    return out;
  }

  Result<Value> Map(const WireValue& w, int depth) {
    if (w.children.size() % 2 != 0) return Malformed(w);
    Value map = vm_.NewMap();
    engine::ObjMap* m = engine::AsMap(map);
    for (size_t i = 0; i < w.children.size(); i += 2) {
      ASSIGN_OR_RETURN(Value key, Build(w.children[i], depth + 1));
      if (!engine::ObjMap::ValidKey(key))
        return ArgumentError("map key must be an int, string or bool, not " +
                             engine::TypeName(key));
      if (m->Find(key) != nullptr)
        return ArgumentError("duplicate map key " + engine::ValueToString(key, true));
      ASSIGN_OR_RETURN(Value value, Build(w.children[i + 1], depth + 1));
      m->Set(key, value);
    }
    vm_.Recharge(m);
    return map;
  }

  Result<Value> Struct(const WireValue& w, int depth) {
    ASSIGN_OR_RETURN(const WireTypeRef* t, Data<WireTypeRef>(w));
    if (t->schema == nullptr) return Malformed(w);
    ASSIGN_OR_RETURN(const engine::StructType* type, ctx_.types->ResolveStruct(*t->schema));
    if (w.children.size() != type->field_names.size())
      return ArgumentError(fmt::format("struct {} has {} fields, the value {}", type->name,
                                       type->field_names.size(), w.children.size()));
    ASSIGN_OR_RETURN(std::vector<Value> fields, List(w.children, depth));
    return vm_.NewStruct(type, std::move(fields));
  }

  Result<Value> Enum(const WireValue& w, int depth) {
    ASSIGN_OR_RETURN(const WireTypeRef* t, Data<WireTypeRef>(w));
    if (t->schema == nullptr) return Malformed(w);
    ASSIGN_OR_RETURN(const engine::EnumType* type, ctx_.types->ResolveEnum(*t->schema));
    if (t->variant >= type->variant_names.size())
      return ArgumentError(fmt::format("enum {} has no variant {}", type->name, t->variant));
    if (w.children.size() != type->variant_arity[t->variant])
      return ArgumentError(fmt::format("{}::{} takes {} values, got {}", type->name,
                                       type->variant_names[t->variant],
                                       type->variant_arity[t->variant], w.children.size()));
    ASSIGN_OR_RETURN(std::vector<Value> payload, List(w.children, depth));
    return vm_.NewEnum(type, t->variant, std::move(payload));
  }

  Result<Value> Callable(const WireValue& w, int depth) {
    ASSIGN_OR_RETURN(const engine::FunctionHash* hash, Data<engine::FunctionHash>(w));
    auto it = ctx_.protos->find(*hash);
    const engine::Program& program = vm_.program();
    if (it == ctx_.protos->end() || it->second >= program.protos.size() ||
        it->second == program.script)
      return FunctionNotFoundError("no function with hash " + engine::HashToHex(*hash));
    const engine::Proto& proto = *program.protos[it->second];
    if (w.kind == WireKind::kFunction) {
      if (proto.is_closure || !w.children.empty())
        return ArgumentError(fmt::format("function {} needs captured values", proto.name));
      return vm_.NewFunction(it->second);
    }
    if (!proto.is_closure || w.children.size() != proto.captures.size())
      return ArgumentError(fmt::format("closure {} captures {} values, the value has {}",
                                       proto.name, proto.captures.size(), w.children.size()));
    ASSIGN_OR_RETURN(std::vector<Value> captures, List(w.children, depth));
    return vm_.NewClosure(it->second, std::move(captures));
  }

  // A private copy-on-write mapping of a sealed segment's bytes, for a typed array or matrix
  // to adopt instead of copying them: reading shares the page cache's pages, writing copies
  // only the pages written. Empty when the bytes are not in a sealed segment, too small to be
  // worth a mapping, or the mapping fails (then the caller copies).
  struct Adopted {
    uint8_t* data = nullptr;
    engine::ExternalBuffer owner;
  };
  static Adopted MapPrivately(const WireBuffer& b) {
    constexpr size_t kMinAdopt = size_t{256} << 10;
    const SegmentView* s = b.segment.get();
    // The peer chose the offset: adopt only 64-byte aligned data (what every Vm buffer is).
    if (s == nullptr || !s->sealed || s->fd < 0 || s->bytes.size() < kMinAdopt ||
        s->offset % 64 != 0)
      return {};
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t start = s->offset / page * page;
    const size_t length = static_cast<size_t>(s->offset - start) + s->bytes.size();
    void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, s->fd,
                        static_cast<off_t>(start));
    if (base == MAP_FAILED) return {};
    Adopted a;
    a.data = static_cast<uint8_t*>(base) + (s->offset - start);
    a.owner = engine::ExternalBuffer{[](void* p, size_t n) { ::munmap(p, n); }, base, length};
    return a;
  }

  Result<Value> TypedArray(const WireValue& w) {
    ASSIGN_OR_RETURN(const WireBuffer* b, Data<WireBuffer>(w));
    if (static_cast<int>(b->elem) >= engine::kNumElemKinds) return Malformed(w);
    size_t size = engine::ElemSize(b->elem);
    std::span<const uint8_t> bytes = b->data();
    if (bytes.size() % size != 0)
      return ArgumentError(fmt::format("typed array of {} has {} bytes",
                                       engine::ElemKindName(b->elem), bytes.size()));
    Value out;
    uint8_t* data = nullptr;
    if (Adopted a = MapPrivately(*b); a.data != nullptr) {
      // Sealed: the bytes cannot change, so checking them in place is safe.
      if (!vm_.AdoptTypedArray(b->elem, bytes.size() / size, a.data, a.owner, &out))
        return ResourceExhausted("memory limit exceeded");
      data = a.data;
    } else {
      if (!vm_.NewTypedArray(b->elem, bytes.size() / size, &out))
        return ResourceExhausted("memory limit exceeded");
      data = engine::AsTypedArray(out)->data;
      if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
    }
    // Validate the private copy (or the sealed bytes): a writable segment may change under us
    // after any check.
    if (b->elem == engine::ElemKind::kBool &&
        std::any_of(data, data + bytes.size(), [](uint8_t x) { return x > 1; }))
      return ArgumentError("bool typed array holds a byte other than 0 or 1");
    return out;
  }

  Result<Value> Matrix(const WireValue& w) {
    ASSIGN_OR_RETURN(const WireBuffer* b, Data<WireBuffer>(w));
    std::span<const uint8_t> bytes = b->data();
    if (b->cols != 0 && b->rows > bytes.size() / sizeof(double) / b->cols)
      return ArgumentError("matrix shape does not match its data");
    if (b->rows * b->cols * sizeof(double) != bytes.size())
      return ArgumentError("matrix shape does not match its data");
    Value out;
    if (Adopted a = MapPrivately(*b); a.data != nullptr) {
      if (!vm_.AdoptMatrix(b->rows, b->cols, reinterpret_cast<double*>(a.data), a.owner, &out))
        return ResourceExhausted("memory limit exceeded");
      return out;
    }
    if (!vm_.NewMatrix(b->rows, b->cols, &out)) return ResourceExhausted("memory limit exceeded");
    if (!bytes.empty()) std::memcpy(engine::AsMatrix(out)->data, bytes.data(), bytes.size());
    return out;
  }

  FromWireContext& ctx_;
  engine::Vm& vm_;
};

}  // namespace

Result<WireValue> ToWire(const Value& value, const ToWireContext& ctx) {
  ToWireWalker walker(ctx);
  return walker.Convert(value, 1);
}

ProtoIndex MakeProtoIndex(std::span<const engine::FunctionHash> proto_hashes) {
  ProtoIndex index;
  for (size_t i = 0; i < proto_hashes.size(); ++i)
    index.emplace(proto_hashes[i], static_cast<uint32_t>(i));
  return index;
}

Result<Value> FromWire(const WireValue& wire, FromWireContext& ctx) {
  if (ctx.vm == nullptr || ctx.protos == nullptr || ctx.types == nullptr)
    return InvalidArgument("FromWireContext is incomplete");
  FromWireBuilder builder(ctx);
  return builder.Build(wire, 1);
}

}  // namespace shapex::ipc
