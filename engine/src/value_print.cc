// Printing (LANGUAGE.md "Printing", decisions.md #13, #14, #17, #18, #21, #22) and type
// names. Split from value.cc to keep each file readable.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <vector>

#include "shapex/engine/natives.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"

namespace shapex::engine {
namespace {

// Containers nested deeper than this print as "[...]" (or "{...}"): it bounds the native
// stack used by printing deeply nested data.
constexpr int kMaxDepth = 64;

// The containers currently being printed, outermost first; the string being built; what the
// walk may spend.
struct PrintWalk {
  std::string* out;
  std::vector<const Obj*> path;
  WalkBudget& budget;
};

// Each returns false when the budget refused. A container pays for its elements before it
// prints them, so a value too big for the budget stops before its text is built.
bool AppendAt(PrintWalk& w, const Value& v, bool quoted);
bool AppendObject(PrintWalk& w, const Value& v, bool quoted);

bool AppendSequence(PrintWalk& w, const std::vector<Value>& items) {
  if (!w.budget.Charge(items.size())) return false;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) w.out->append(", ");
    if (!AppendAt(w, items[i], true)) return false;
  }
  return true;
}

bool AppendMap(PrintWalk& w, const ObjMap* m) {
  if (!w.budget.Charge(m->count)) return false;
  w.out->push_back('{');
  bool first = true;
  bool paid = true;
  m->ForEach([&](const Value& k, const Value& v) {
    if (!paid) return;
    if (!first) w.out->append(", ");
    first = false;
    paid = AppendAt(w, k, true);
    w.out->append(": ");
    paid = paid && AppendAt(w, v, true);
  });
  w.out->push_back('}');
  return paid;
}

bool AppendStruct(PrintWalk& w, const ObjStruct* s) {
  std::string* out = w.out;
  out->append(s->stype->name);
  if (s->fields.empty()) {
    out->append(" {}");
    return true;
  }
  if (!w.budget.Charge(s->fields.size())) return false;
  out->append(" { ");
  for (size_t i = 0; i < s->fields.size(); ++i) {
    if (i > 0) out->append(", ");
    if (i < s->stype->field_names.size()) out->append(s->stype->field_names[i]);
    out->append(": ");
    if (!AppendAt(w, s->fields[i], true)) return false;
  }
  out->append(" }");
  return true;
}

bool AppendEnum(PrintWalk& w, const ObjEnum* e) {
  const EnumType* t = e->etype;
  if (!t->builtin) {
    w.out->append(t->name);
    w.out->append("::");
  }
  if (e->variant < t->variant_names.size()) w.out->append(t->variant_names[e->variant]);
  if (e->payload.empty()) return true;
  w.out->push_back('(');
  if (!AppendSequence(w, e->payload)) return false;
  w.out->push_back(')');
  return true;
}

void AppendRange(std::string* out, const ObjRange* r) {
  fmt::format_to(std::back_inserter(*out), "{}{}{}", r->start, r->inclusive ? "..=" : "..", r->end);
  if (r->step != 1) fmt::format_to(std::back_inserter(*out), " step {}", r->step);
}

void AppendElem(std::string* out, const ObjTypedArray* a, size_t i) {
  switch (a->kind) {
    case ElemKind::kF64:
      AppendNumber(out, a->As<double>()[i]);
      break;
    case ElemKind::kF32:
      AppendF32(out, a->As<float>()[i]);
      break;
    case ElemKind::kBool:
      out->append(a->As<uint8_t>()[i] ? "true" : "false");
      break;
    default:
      fmt::format_to(std::back_inserter(*out), "{}", a->Get(i).as.i);
      break;
  }
}

bool AppendTypedArray(PrintWalk& w, const ObjTypedArray* a) {
  if (!w.budget.Charge(a->length)) return false;
  std::string* out = w.out;
  out->append("Vec<");
  out->append(ElemKindName(a->kind));
  out->append(">[");
  for (size_t i = 0; i < a->length; ++i) {
    if (i > 0) out->append(", ");
    if (!w.budget.Grow(out->size())) return false;
    AppendElem(out, a, i);
  }
  out->push_back(']');
  return true;
}

bool AppendMatrix(PrintWalk& w, const ObjMatrix* m) {
  if (!w.budget.Charge(m->rows * m->cols)) return false;
  std::string* out = w.out;
  fmt::format_to(std::back_inserter(*out), "Matrix({}x{})[", m->rows, m->cols);
  for (size_t r = 0; r < m->rows; ++r) {
    if (r > 0) out->append(", ");
    out->push_back('[');
    for (size_t c = 0; c < m->cols; ++c) {
      if (c > 0) out->append(", ");
      if (!w.budget.Grow(out->size())) return false;
      AppendNumber(out, m->At(r, c));
    }
    out->push_back(']');
  }
  out->push_back(']');
  return true;
}

bool AppendAt(PrintWalk& w, const Value& v, bool quoted) {
  std::string* out = w.out;
  // What one value prints before its elements (a number, punctuation, a name) is short, so a
  // check per value keeps the string within a step of the last check; only a String's text is
  // unbounded, and it is checked before it is copied.
  if (!w.budget.Grow(out->size())) return false;
  switch (v.type) {
    case Type::kNone:
      out->append("None");
      return true;
    case Type::kBool:
      out->append(v.as.b ? "true" : "false");
      return true;
    case Type::kInt:
      fmt::format_to(std::back_inserter(*out), "{}", v.as.i);
      return true;
    case Type::kNumber:
      AppendNumber(out, v.as.n);
      return true;
    case Type::kString: {
      // Checked before it is copied (escapes may add up to the text's size again: the next
      // check sees them).
      const std::string& s = AsString(v)->str;
      if (!w.budget.Grow(out->size() + s.size())) return false;
      if (quoted) {
        AppendQuoted(out, s);
      } else {
        out->append(s);
      }
      return true;
    }
    default:
      break;
  }
  // A container already being printed further up (a cycle), or nesting past the cap, prints
  // as "[...]" like Python; this keeps printing linear in the size of a cyclic structure.
  if (w.path.size() >= kMaxDepth ||
      std::find(w.path.begin(), w.path.end(), v.as.o) != w.path.end()) {
    out->append(v.type == Type::kMap ? "{...}" : "[...]");
    return true;
  }
  w.path.push_back(v.as.o);
  bool paid = AppendObject(w, v, quoted);
  w.path.pop_back();
  return paid;
}

bool AppendObject(PrintWalk& w, const Value& v, bool quoted) {
  std::string* out = w.out;
  switch (v.type) {
    case Type::kArray:
      out->push_back('[');
      if (!AppendSequence(w, AsArray(v)->items)) return false;
      out->push_back(']');
      return true;
    case Type::kMap:
      return AppendMap(w, AsMap(v));
    case Type::kStruct:
      return AppendStruct(w, AsStruct(v));
    case Type::kEnum:
      return AppendEnum(w, AsEnum(v));
    case Type::kRange:
      AppendRange(out, AsRange(v));
      return true;
    case Type::kFunction:
      out->append("<function ");
      out->append(AsFunction(v)->proto->name);
      out->push_back('>');
      return true;
    case Type::kClosure:
      out->append("<closure>");
      return true;
    case Type::kNative:
      out->append("<function ");
      out->append(AsNative(v)->def->name);
      out->push_back('>');
      return true;
    case Type::kTypedArray:
      return AppendTypedArray(w, AsTypedArray(v));
    case Type::kMatrix:
      return AppendMatrix(w, AsMatrix(v));
    case Type::kCell:
      return w.budget.Charge(1) && AppendAt(w, AsCell(v)->value, quoted);
    default:
      out->append("<?>");
      return true;
  }
}

// Adds ".0" to a shortest-round-trip rendering that would otherwise read as an Int.
void AppendFormattedFloat(std::string* out, const std::string& s) {
  out->append(s);
  if (s.find_first_of(".en") == std::string::npos) out->append(".0");
}

}  // namespace

std::string TypeName(const Value& v) {
  switch (v.type) {
    case Type::kNone:
      return "none";
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kNumber:
      return "number";
    case Type::kString:
      return "string";
    case Type::kArray:
      return "array";
    case Type::kMap:
      return "map";
    case Type::kStruct:
      return AsStruct(v)->stype->name;
    case Type::kEnum: {
      const EnumType* t = AsEnum(v)->etype;
      if (t == OptionType()) return "option";
      if (t == ResultType()) return "result";
      return t->name;
    }
    case Type::kRange:
      return "range";
    case Type::kFunction:
    case Type::kClosure:
    case Type::kNative:
      return "function";
    case Type::kTypedArray:
      return fmt::format("Vec<{}>", ElemKindName(AsTypedArray(v)->kind));
    case Type::kMatrix:
      return "matrix";
    case Type::kCell:
      return "cell";
  }
  return "unknown";
}

bool AppendValue(std::string* out, const Value& v, bool quoted, WalkBudget& budget) {
  PrintWalk walk{out, {}, budget};
  return AppendAt(walk, v, quoted);
}

void AppendValue(std::string* out, const Value& v, bool quoted) {
  WalkBudget unlimited;
  AppendValue(out, v, quoted, unlimited);  // an unlimited budget never refuses
}

std::string ValueToString(const Value& v, bool quoted) {
  std::string s;
  AppendValue(&s, v, quoted);
  return s;
}

bool ValueToString(Vm& vm, const Value& v, bool quoted, std::string* out) {
  WalkBudget budget(vm);
  out->clear();
  return AppendValue(out, v, quoted, budget) && budget.Settle(out->size());
}

void AppendNumber(std::string* out, double d) {
  // fmt prints the sign of a NaN ("-nan"); the language has a single "nan".
  if (std::isnan(d)) {
    out->append("nan");
    return;
  }
  AppendFormattedFloat(out, fmt::format("{}", d));
}

void AppendF32(std::string* out, float f) {
  if (std::isnan(f)) {
    out->append("nan");
    return;
  }
  // Formatting the float (not the widened double) gives the shortest f32 round trip: 0.1f
  // prints "0.1", not "0.10000000149011612".
  AppendFormattedFloat(out, fmt::format("{}", f));
}

void AppendQuoted(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\0':
        out->append("\\0");
        break;
      default:
        // Other control characters use the language's own escape syntax, so the output
        // reads back as the same string. Bytes >= 0x80 (UTF-8) pass through unchanged.
        if (c < 0x20 || c == 0x7f) {
          fmt::format_to(std::back_inserter(*out), "\\u{{{:x}}}", c);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

}  // namespace shapex::engine
