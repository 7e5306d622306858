// engine::Value <-> WireValue. Both directions walk the tree recursively; recursion depth is
// bounded by kMaxWireDepth, so the native stack stays small whatever the input.
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>
#include <unordered_set>

#include "shapex/engine/natives.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/shared_vec.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc {
namespace {

using engine::Obj;
using engine::Type;
using engine::Value;

// Typed arrays and matrices travel as little-endian bytes and are copied with memcpy.
static_assert(std::endian::native == std::endian::little, "shapex assumes a little-endian host");

std::vector<uint8_t> CopyBytes(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  return std::vector<uint8_t>(p, p + n);
}

}  // namespace

class WireEncoder::Walker {
 public:
  explicit Walker(const ToWireContext& ctx) : ctx_(ctx) {}

  // `depth` is the depth this value would have if it is a new container.
  Result<WireValue> Convert(const Value& v, int depth) {
    if (++nodes_ > kMaxWireNodes) return ArgumentError("value is too large to send");
    if (ctx_.fuel != nullptr && !ctx_.fuel->ChargeFuel(1))
      return ResourceExhausted("fuel exhausted");
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
      default:
        break;
    }
    const Obj* o = v.as.o;
    if (auto seen = memo_.find(o); seen != memo_.end()) return WireValue::Ref(seen->second);
    if (depth > kMaxWireDepth)
      return ArgumentError(fmt::format("value is nested deeper than {} levels", kMaxWireDepth));
    memo_.emplace(o, next_index_++);
    return Object(v, depth);
  }

  Result<std::vector<WireValue>> Captures(const engine::ObjClosure* c, int depth) {
    std::vector<WireValue> out;
    out.reserve(c->cells.size());
    for (const engine::ObjCell* cell : c->cells) {
      if (++nodes_ > kMaxWireNodes) return ArgumentError("value is too large to send");
      if (cell != nullptr) {
        if (auto seen = memo_.find(cell); seen != memo_.end()) {
          out.push_back(WireValue::Ref(seen->second));
          continue;
        }
        memo_.emplace(cell, next_index_);
      }
      ++next_index_;  // every Cell node takes an index, also an empty one
      Value value = cell != nullptr ? cell->value : Value::None();
      ASSIGN_OR_RETURN(WireValue w, Convert(value, depth + 1));
      out.push_back(WireValue::Cell(std::move(w)));
    }
    return out;
  }

  const std::vector<engine::FunctionHash>& functions() const { return functions_; }
  const std::vector<const engine::StructType*>& struct_types() const { return struct_types_; }
  const std::vector<const engine::EnumType*>& enum_types() const { return enum_types_; }

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
    const engine::FunctionHash& h = ctx_.proto_hashes[proto->index];
    if (function_set_.insert(proto->index).second) functions_.push_back(h);
    return h;
  }

  template <class T>
  SchemaPtr SchemaFor(const T* type) {
    SchemaPtr& s = schemas_[type];
    if (s == nullptr) {
      s = std::make_shared<const WireTypeSchema>(TypeRegistry::SchemaOf(*type));
      if constexpr (std::is_same_v<T, engine::StructType>) {
        struct_types_.push_back(type);
      } else {
        enum_types_.push_back(type);
      }
    }
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

  // A container met for the first time (its memo index is taken).
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
      case Type::kClosure: {
        const engine::ObjClosure* c = engine::AsClosure(v);
        ASSIGN_OR_RETURN(engine::FunctionHash h, HashOf(c->proto));
        ASSIGN_OR_RETURN(std::vector<WireValue> captures, Captures(c, depth));
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
    // Bytes a Vm adopted from a SharedVec are already a segment: its descriptor goes, no copy.
    if (auto adopted = FindAdoptedSegment(data, size)) return adopted;
    struct Borrowed {
      std::shared_ptr<const void> owner;
      SegmentView view;
    };
    auto b = std::make_shared<Borrowed>(
        Borrowed{ctx_.borrow_owner, SegmentView{{data, size}, -1, 0, false}});
    return std::shared_ptr<const SegmentView>(b, &b->view);
  }

  const ToWireContext ctx_;
  std::unordered_map<const Obj*, uint64_t> memo_;  // containers and cells written, by index
  uint64_t next_index_ = 0;
  size_t nodes_ = 0;
  std::unordered_map<const void*, SchemaPtr> schemas_;  // engine type -> shared schema
  std::vector<engine::FunctionHash> functions_;
  std::unordered_set<uint32_t> function_set_;  // proto indexes in functions_
  std::vector<const engine::StructType*> struct_types_;  // in first-use order
  std::vector<const engine::EnumType*> enum_types_;
};


// Builds engine values; no Vm code runs in between, so nothing is collected meanwhile.
class WireDecoder::Builder {
 public:
  explicit Builder(FromWireContext& ctx) : ctx_(ctx), vm_(*ctx.vm) {}

  Result<Value> Build(const WireValue& w, int depth) {
    if (++nodes_ > kMaxWireNodes) return ArgumentError("value is too large");
    if (ctx_.charge_fuel && !vm_.ChargeFuel(1)) return ResourceExhausted("fuel exhausted");
    if (w.IsContainer() && depth > kMaxWireDepth)
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
        RETURN_IF_ERROR(Reserve(w.children.size() * sizeof(Value)));
        Value array = Remember(vm_.NewArray());
        engine::ObjArray* a = engine::AsArray(array);
        a->items.reserve(w.children.size());
        for (const WireValue& item : w.children) {
          ASSIGN_OR_RETURN(Value v, Build(item, depth + 1));
          a->items.push_back(v);
        }
        vm_.Recharge(a);
        return array;
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
        Value inner = Value::None();
        Value e = w.kind == WireKind::kSome ? vm_.NewSome(inner)
                  : w.kind == WireKind::kOk ? vm_.NewOk(inner)
                                            : vm_.NewErr(inner);
        Remember(e);
        ASSIGN_OR_RETURN(engine::AsEnum(e)->payload[0], Build(w.children[0], depth + 1));
        return e;
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
      case WireKind::kRef: {
        ASSIGN_OR_RETURN(Value v, Resolve(w));
        if (v.type == Type::kCell) return ArgumentError("a captured variable outside a closure");
        return v;
      }
      case WireKind::kCell:
        return ArgumentError("a captured variable outside a closure");
    }
    return Malformed(w);
  }

  // A closure of proto `index`; each capture is a Cell (a new variable, remembered), a Ref to
  // a Cell (a shared variable) or a plain value (a new variable).
  Result<Value> Closure(uint32_t index, const std::vector<WireValue>& captures, int depth) {
    const engine::Proto& proto = *vm_.program().protos[index];
    if (!proto.is_closure || captures.size() != proto.captures.size())
      return ArgumentError(fmt::format("closure {} captures {} values, the value has {}",
                                       proto.name, proto.captures.size(), captures.size()));
    Value closure = vm_.NewClosure(index, {});
    engine::ObjClosure* c = engine::AsClosure(closure);
    return Fill(closure, c, captures, depth);
  }

  Result<Value> Fill(Value closure, engine::ObjClosure* c, const std::vector<WireValue>& captures,
                     int depth) {
    for (size_t i = 0; i < captures.size(); ++i) {
      const WireValue& w = captures[i];
      if (w.kind == WireKind::kRef) {
        if (ctx_.charge_fuel && !vm_.ChargeFuel(1)) return ResourceExhausted("fuel exhausted");
        ASSIGN_OR_RETURN(Value target, Resolve(w));
        if (target.type != Type::kCell)
          return ArgumentError("a closure's captured variable refers to a value, not a variable");
        c->cells[i] = engine::AsCell(target);
        continue;
      }
      if (w.kind == WireKind::kCell) {
        if (w.children.size() != 1) return Malformed(w);
        if (++nodes_ > kMaxWireNodes) return ArgumentError("value is too large");
        Remember(Value::Object(c->cells[i]));
        ASSIGN_OR_RETURN(c->cells[i]->value, Build(w.children[0], depth + 1));
        continue;
      }
      ASSIGN_OR_RETURN(c->cells[i]->value, Build(w, depth + 1));
    }
    return closure;
  }

 private:
  static Status Malformed(const WireValue& w) {
    return ArgumentError("malformed " + DescribeWire(w) + " value");
  }

  Value Remember(Value v) {
    memo_.push_back(v);
    return v;
  }

  Result<Value> Resolve(const WireValue& w) {
    const int64_t* index = std::get_if<int64_t>(&w.data);
    if (index == nullptr || *index < 0 || static_cast<uint64_t>(*index) >= memo_.size())
      return ArgumentError("reference to an object that was not written before it");
    return memo_[static_cast<size_t>(*index)];
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

  Result<Value> Map(const WireValue& w, int depth) {
    if (w.children.size() % 2 != 0) return Malformed(w);
    Value map = Remember(vm_.NewMap());
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
    RETURN_IF_ERROR(Reserve(w.children.size() * sizeof(Value)));
    Value s = Remember(vm_.NewStruct(type, {}));
    engine::ObjStruct* obj = engine::AsStruct(s);
    for (size_t i = 0; i < w.children.size(); ++i) {
      ASSIGN_OR_RETURN(obj->fields[i], Build(w.children[i], depth + 1));
    }
    return s;
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
    RETURN_IF_ERROR(Reserve(w.children.size() * sizeof(Value)));
    Value e = Remember(
        vm_.NewEnum(type, t->variant, std::vector<Value>(w.children.size(), Value::None())));
    engine::ObjEnum* obj = engine::AsEnum(e);
    for (size_t i = 0; i < w.children.size(); ++i) {
      ASSIGN_OR_RETURN(obj->payload[i], Build(w.children[i], depth + 1));
    }
    return e;
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
    Value closure = Remember(vm_.NewClosure(it->second, {}));
    return Fill(closure, engine::AsClosure(closure), w.children, depth);
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
    return Remember(out);
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
      return Remember(out);
    }
    if (!vm_.NewMatrix(b->rows, b->cols, &out)) return ResourceExhausted("memory limit exceeded");
    if (!bytes.empty()) std::memcpy(engine::AsMatrix(out)->data, bytes.data(), bytes.size());
    return Remember(out);
  }

  FromWireContext& ctx_;
  engine::Vm& vm_;
  std::vector<Value> memo_;  // containers and cells built, by memo index
  size_t nodes_ = 0;
};

WireEncoder::WireEncoder(const ToWireContext& ctx) : walker_(std::make_unique<Walker>(ctx)) {}
WireEncoder::~WireEncoder() = default;

Result<WireValue> WireEncoder::Encode(const Value& value) { return walker_->Convert(value, 1); }

Result<std::vector<WireValue>> WireEncoder::EncodeCaptures(const Value& closure) {
  if (closure.type != Type::kClosure) return ArgumentError("not a closure");
  return walker_->Captures(engine::AsClosure(closure), 0);
}

const std::vector<engine::FunctionHash>& WireEncoder::functions() const {
  return walker_->functions();
}

const std::vector<const engine::StructType*>& WireEncoder::struct_types() const {
  return walker_->struct_types();
}

const std::vector<const engine::EnumType*>& WireEncoder::enum_types() const {
  return walker_->enum_types();
}

Result<WireValue> ToWire(const Value& value, const ToWireContext& ctx) {
  WireEncoder encoder(ctx);
  return encoder.Encode(value);
}

ProtoIndex MakeProtoIndex(std::span<const engine::FunctionHash> proto_hashes) {
  ProtoIndex index;
  for (size_t i = 0; i < proto_hashes.size(); ++i)
    index.emplace(proto_hashes[i], static_cast<uint32_t>(i));
  return index;
}

WireDecoder::WireDecoder(FromWireContext& ctx) {
  if (ctx.vm != nullptr && ctx.protos != nullptr && ctx.types != nullptr)
    builder_ = std::make_unique<Builder>(ctx);
}
WireDecoder::~WireDecoder() = default;

Result<Value> WireDecoder::Decode(const WireValue& wire) {
  if (builder_ == nullptr) return InvalidArgument("FromWireContext is incomplete");
  return builder_->Build(wire, 1);
}

Result<Value> WireDecoder::DecodeClosure(uint32_t proto, const std::vector<WireValue>& captures) {
  if (builder_ == nullptr) return InvalidArgument("FromWireContext is incomplete");
  return builder_->Closure(proto, captures, 0);
}

Result<Value> FromWire(const WireValue& wire, FromWireContext& ctx) {
  WireDecoder decoder(ctx);
  return decoder.Decode(wire);
}

}  // namespace shapex::ipc
