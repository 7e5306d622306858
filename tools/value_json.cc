// The walk of value_json.h. It follows the engine's printing walk (engine/src/value_print.cc):
// the same fuel per element, the same cycle test against the containers being converted, the
// same depth cap; what it builds is an nlohmann tree instead of text.
#include "value_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "shapex/engine/natives.h"

namespace shapex::cli {
namespace {

using engine::Obj;
using engine::Type;
using engine::Value;

// The containers being converted, outermost first, with where each sits in the tree (the
// JSON Pointer tokens leading to it), and what has been built so far.
struct JsonWalk {
  engine::WalkBudget& budget;
  const ValueJsonOptions& options;
  size_t built = 0;
  std::vector<const Obj*> path;
  std::vector<size_t> path_tokens;  // tokens.size() when path[i] was entered
  std::vector<std::string> tokens;  // of the value being converted

  // `bytes` more in the tree: false when that passes the memory limit.
  bool Add(size_t bytes) {
    built += bytes;
    return budget.Grow(built);
  }
};

// The JSON Pointer token of a child for as long as it is being converted.
class Token {
 public:
  Token(JsonWalk& w, std::string token) : w_(w) { w_.tokens.push_back(std::move(token)); }
  ~Token() { w_.tokens.pop_back(); }
  Token(const Token&) = delete;
  Token& operator=(const Token&) = delete;

 private:
  JsonWalk& w_;
};

bool Convert(JsonWalk& w, const Value& v, Json* out);

// Appends a member whose key is known to be new (a map's keys and a struct's field names are
// distinct): ordered_map's own insertion searches the members linearly, which would make a
// map of n string keys cost n^2.
void AppendMember(Json* object, std::string key, Json value) {
  auto& members = object->get_ref<Json::object_t&>();
  static_cast<Json::object_t::Container&>(members).emplace_back(std::move(key), std::move(value));
}

Json Tagged(std::string_view tag, Json value) {
  Json object = Json::object();
  AppendMember(&object, std::string(tag), std::move(value));
  return object;
}

Json IntJson(int64_t i) {
  if (i >= -kMaxExactJsonInt && i <= kMaxExactJsonInt) return Json(i);
  return Tagged("$int", std::to_string(i));
}

Json NumberJson(double d) {
  if (std::isnan(d)) return Tagged("$number", "NaN");
  if (std::isinf(d)) return Tagged("$number", d > 0 ? "Infinity" : "-Infinity");
  return Json(d);
}

// An f32 as the double its shortest decimal form reads back as (0.1f is 0.1, not
// 0.10000000149011612), like printing shows it.
Json F32Json(float f) {
  if (!std::isfinite(f)) return NumberJson(static_cast<double>(f));
  return Json(std::strtod(fmt::format("{}", f).c_str(), nullptr));
}

std::string Pointer(const JsonWalk& w, size_t depth) {
  std::string pointer;
  for (size_t i = 0; i < w.path_tokens[depth]; ++i) {
    pointer.push_back('/');
    for (char c : w.tokens[i]) {
      if (c == '~') {
        pointer.append("~0");
      } else if (c == '/') {
        pointer.append("~1");
      } else {
        pointer.push_back(c);
      }
    }
  }
  return pointer;
}

Json FunctionJson(const JsonWalk& w, std::string_view tag, const engine::Proto& proto) {
  Json object = Tagged(tag, proto.name);
  std::optional<engine::FunctionHash> hash;
  if (w.options.hash_of) hash = w.options.hash_of(proto);
  AppendMember(&object, "hash", hash ? Json(engine::HashToHex(*hash)) : Json(nullptr));
  return object;
}

bool SequenceJson(JsonWalk& w, const std::vector<Value>& items, Json* out) {
  if (!w.budget.Charge(items.size())) return false;
  *out = Json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    Token token(w, std::to_string(i));
    Json item;
    if (!Convert(w, items[i], &item)) return false;
    out->push_back(std::move(item));
  }
  return true;
}

// A plain object when every key is a string that cannot be taken for a tag.
bool IsPlainObject(const engine::ObjMap* m) {
  bool plain = true;
  m->ForEach([&](const Value& k, const Value&) {
    plain = plain && k.IsObject() && k.type == Type::kString &&
            !engine::AsString(k)->str.starts_with('$');
  });
  return plain;
}

bool MapJson(JsonWalk& w, const engine::ObjMap* m, Json* out) {
  if (!w.budget.Charge(m->count)) return false;
  bool ok = true;
  if (IsPlainObject(m)) {
    *out = Json::object();
    m->ForEach([&](const Value& k, const Value& v) {
      if (!ok) return;
      const std::string& key = engine::AsString(k)->str;
      Token token(w, key);
      Json value;
      ok = w.Add(key.size()) && Convert(w, v, &value);
      if (ok) AppendMember(out, key, std::move(value));
    });
    return ok;
  }
  Json entries = Json::array();
  Token tag(w, "$map");
  size_t i = 0;
  m->ForEach([&](const Value& k, const Value& v) {
    if (!ok) return;
    Token entry(w, std::to_string(i++));
    Json key, value;
    {
      Token slot(w, "0");
      ok = Convert(w, k, &key);
    }
    if (ok) {
      Token slot(w, "1");
      ok = Convert(w, v, &value);
    }
    if (ok) entries.push_back(Json::array({std::move(key), std::move(value)}));
  });
  *out = Tagged("$map", std::move(entries));
  return ok;
}

bool StructJson(JsonWalk& w, const engine::ObjStruct* s, Json* out) {
  if (!w.budget.Charge(s->fields.size())) return false;
  *out = Tagged("$struct", s->stype->name);
  for (size_t i = 0; i < s->fields.size(); ++i) {
    // Field names are identifiers, so they never collide with the tag.
    std::string name =
        i < s->stype->field_names.size() ? s->stype->field_names[i] : std::to_string(i);
    Token token(w, name);
    Json value;
    if (!Convert(w, s->fields[i], &value)) return false;
    AppendMember(out, std::move(name), std::move(value));
  }
  return true;
}

bool EnumJson(JsonWalk& w, const engine::ObjEnum* e, Json* out) {
  const engine::EnumType* t = e->etype;
  *out = Tagged("$enum", t->name);
  AppendMember(
      out, "variant",
      e->variant < t->variant_names.size() ? Json(t->variant_names[e->variant]) : Json(e->variant));
  if (e->payload.empty()) return true;
  Token token(w, "payload");
  Json payload;
  if (!SequenceJson(w, e->payload, &payload)) return false;
  AppendMember(out, "payload", std::move(payload));
  return true;
}

bool TypedArrayJson(JsonWalk& w, const engine::ObjTypedArray* a, Json* out) {
  if (!w.budget.Charge(a->length)) return false;
  Json data = Json::array();
  for (size_t i = 0; i < a->length; ++i) {
    if (!w.Add(kJsonNodeBytes)) return false;
    switch (a->kind) {
      case engine::ElemKind::kF64:
        data.push_back(NumberJson(a->As<double>()[i]));
        break;
      case engine::ElemKind::kF32:
        data.push_back(F32Json(a->As<float>()[i]));
        break;
      case engine::ElemKind::kBool:
        data.push_back(a->As<uint8_t>()[i] != 0);
        break;
      default:
        data.push_back(IntJson(a->Get(i).as.i));
        break;
    }
  }
  *out = Tagged("$vec", std::string(engine::ElemKindName(a->kind)));
  AppendMember(out, "data", std::move(data));
  return true;
}

bool MatrixJson(JsonWalk& w, const engine::ObjMatrix* m, Json* out) {
  if (!w.budget.Charge(m->rows * m->cols)) return false;
  Json rows = Json::array();
  for (size_t r = 0; r < m->rows; ++r) {
    Json row = Json::array();
    for (size_t c = 0; c < m->cols; ++c) {
      if (!w.Add(kJsonNodeBytes)) return false;
      row.push_back(NumberJson(m->At(r, c)));
    }
    rows.push_back(std::move(row));
  }
  *out = Tagged("$matrix", Json::array({m->rows, m->cols}));
  AppendMember(out, "data", std::move(rows));
  return true;
}

Json RangeJson(const engine::ObjRange* r, const Value& v) {
  Json object = Tagged("$range", engine::ValueToString(v));
  AppendMember(&object, "start", IntJson(r->start));
  AppendMember(&object, "end", IntJson(r->end));
  AppendMember(&object, "step", IntJson(r->step));
  AppendMember(&object, "inclusive", r->inclusive);
  return object;
}

// Arrays, maps, structs and enums hold values, so only they can close a cycle.
bool ContainerJson(JsonWalk& w, const Value& v, Json* out) {
  switch (v.type) {
    case Type::kArray:
      return SequenceJson(w, engine::AsArray(v)->items, out);
    case Type::kMap:
      return MapJson(w, engine::AsMap(v), out);
    case Type::kStruct:
      return StructJson(w, engine::AsStruct(v), out);
    default:
      return EnumJson(w, engine::AsEnum(v), out);
  }
}

bool Convert(JsonWalk& w, const Value& v, Json* out) {
  if (!w.Add(kJsonNodeBytes)) return false;
  switch (v.type) {
    case Type::kNone:
      *out = nullptr;
      return true;
    case Type::kBool:
      *out = v.as.b;
      return true;
    case Type::kInt:
      *out = IntJson(v.as.i);
      return true;
    case Type::kNumber:
      *out = NumberJson(v.as.n);
      return true;
    case Type::kString: {
      const std::string& s = engine::AsString(v)->str;
      if (!w.Add(s.size())) return false;
      *out = s;
      return true;
    }
    case Type::kRange:
      *out = RangeJson(engine::AsRange(v), v);
      return true;
    case Type::kFunction:
      *out = FunctionJson(w, "$function", *engine::AsFunction(v)->proto);
      return true;
    case Type::kClosure:
      *out = FunctionJson(w, "$closure", *engine::AsClosure(v)->proto);
      return true;
    case Type::kNative:
      *out = Tagged("$native", engine::AsNative(v)->def->name);
      return true;
    case Type::kTypedArray:
      return TypedArrayJson(w, engine::AsTypedArray(v), out);
    case Type::kMatrix:
      return MatrixJson(w, engine::AsMatrix(v), out);
    case Type::kCell:  // internal; never a result, but shown as what it holds
      return w.budget.Charge(1) && Convert(w, engine::AsCell(v)->value, out);
    case Type::kArray:
    case Type::kMap:
    case Type::kStruct:
    case Type::kEnum:
      break;
  }
  const Obj* object = v.as.o;
  auto seen = std::find(w.path.begin(), w.path.end(), object);
  if (seen != w.path.end()) {
    *out = Tagged("$ref", Pointer(w, static_cast<size_t>(seen - w.path.begin())));
    return true;
  }
  if (w.path.size() >= kMaxJsonDepth) {
    *out = Tagged("$truncated", engine::TypeName(v));
    return true;
  }
  w.path.push_back(object);
  w.path_tokens.push_back(w.tokens.size());
  bool paid = ContainerJson(w, v, out);
  w.path.pop_back();
  w.path_tokens.pop_back();
  return paid;
}

}  // namespace

bool ValueToJson(const Value& v, engine::WalkBudget& budget, const ValueJsonOptions& options,
                 Json* out, size_t* built) {
  JsonWalk walk{budget, options, 0, {}, {}, {}};
  bool paid = Convert(walk, v, out);
  if (built != nullptr) *built = walk.built;
  return paid;
}

bool ValueToJson(engine::Vm& vm, const Value& v, const ValueJsonOptions& options, Json* out) {
  engine::WalkBudget budget(vm);
  size_t built = 0;
  return ValueToJson(v, budget, options, out, &built) && budget.Settle(built);
}

std::optional<engine::FunctionHash> ProgramHashes::Of(const engine::Proto& proto) {
  if (!built_) {
    built_ = true;
    Result<engine::ProgramBlobs> blobs = engine::BuildProgramBlobs(program_);
    if (blobs.has_value()) hashes_ = std::move(blobs->proto_hashes);
  }
  // Only code of this program has a hash here (a value may name code the program lacks).
  size_t i = proto.index;
  if (i >= hashes_.size() || i >= program_.protos.size() || program_.protos[i].get() != &proto)
    return std::nullopt;
  return hashes_[i];
}

}  // namespace shapex::cli
