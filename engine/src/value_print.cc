// Printing (LANGUAGE.md "Printing", decisions.md #13, #14, #17, #18, #21, #22) and type
// names. Split from value.cc to keep each file readable.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>

#include "shapex/engine/natives.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"

namespace shapex::engine {
namespace {

// Containers nested deeper than this print as "[...]" (or "{...}"): it bounds the native
// stack used by printing deeply nested data.
constexpr int kMaxDepth = 64;

// The containers currently being printed, outermost first.
using Path = std::vector<const Obj*>;

void AppendAt(std::string* out, const Value& v, bool quoted, Path& path);
void AppendObject(std::string* out, const Value& v, bool quoted, Path& path);

void AppendSequence(std::string* out, const std::vector<Value>& items, Path& path) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out->append(", ");
    AppendAt(out, items[i], true, path);
  }
}

void AppendMap(std::string* out, const ObjMap* m, Path& path) {
  out->push_back('{');
  bool first = true;
  m->ForEach([&](const Value& k, const Value& v) {
    if (!first) out->append(", ");
    first = false;
    AppendAt(out, k, true, path);
    out->append(": ");
    AppendAt(out, v, true, path);
  });
  out->push_back('}');
}

void AppendStruct(std::string* out, const ObjStruct* s, Path& path) {
  out->append(s->stype->name);
  if (s->fields.empty()) {
    out->append(" {}");
    return;
  }
  out->append(" { ");
  for (size_t i = 0; i < s->fields.size(); ++i) {
    if (i > 0) out->append(", ");
    if (i < s->stype->field_names.size()) out->append(s->stype->field_names[i]);
    out->append(": ");
    AppendAt(out, s->fields[i], true, path);
  }
  out->append(" }");
}

void AppendEnum(std::string* out, const ObjEnum* e, Path& path) {
  const EnumType* t = e->etype;
  if (!t->builtin) {
    out->append(t->name);
    out->append("::");
  }
  if (e->variant < t->variant_names.size()) out->append(t->variant_names[e->variant]);
  if (e->payload.empty()) return;
  out->push_back('(');
  AppendSequence(out, e->payload, path);
  out->push_back(')');
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

void AppendTypedArray(std::string* out, const ObjTypedArray* a) {
  out->append("Vec<");
  out->append(ElemKindName(a->kind));
  out->append(">[");
  for (size_t i = 0; i < a->length; ++i) {
    if (i > 0) out->append(", ");
    AppendElem(out, a, i);
  }
  out->push_back(']');
}

void AppendMatrix(std::string* out, const ObjMatrix* m) {
  fmt::format_to(std::back_inserter(*out), "Matrix({}x{})[", m->rows, m->cols);
  for (size_t r = 0; r < m->rows; ++r) {
    if (r > 0) out->append(", ");
    out->push_back('[');
    for (size_t c = 0; c < m->cols; ++c) {
      if (c > 0) out->append(", ");
      AppendNumber(out, m->At(r, c));
    }
    out->push_back(']');
  }
  out->push_back(']');
}

void AppendAt(std::string* out, const Value& v, bool quoted, Path& path) {
  switch (v.type) {
    case Type::kNone:
      out->append("None");
      return;
    case Type::kBool:
      out->append(v.as.b ? "true" : "false");
      return;
    case Type::kInt:
      fmt::format_to(std::back_inserter(*out), "{}", v.as.i);
      return;
    case Type::kNumber:
      AppendNumber(out, v.as.n);
      return;
    case Type::kString:
      if (quoted) {
        AppendQuoted(out, AsString(v)->str);
      } else {
        out->append(AsString(v)->str);
      }
      return;
    default:
      break;
  }
  // A container already being printed further up (a cycle), or nesting past the cap, prints
  // as "[...]" like Python; this keeps printing linear in the size of a cyclic structure.
  if (path.size() >= kMaxDepth || std::find(path.begin(), path.end(), v.as.o) != path.end()) {
    out->append(v.type == Type::kMap ? "{...}" : "[...]");
    return;
  }
  path.push_back(v.as.o);
  AppendObject(out, v, quoted, path);
  path.pop_back();
}

void AppendObject(std::string* out, const Value& v, bool quoted, Path& path) {
  switch (v.type) {
    case Type::kArray:
      out->push_back('[');
      AppendSequence(out, AsArray(v)->items, path);
      out->push_back(']');
      return;
    case Type::kMap:
      return AppendMap(out, AsMap(v), path);
    case Type::kStruct:
      return AppendStruct(out, AsStruct(v), path);
    case Type::kEnum:
      return AppendEnum(out, AsEnum(v), path);
    case Type::kRange:
      return AppendRange(out, AsRange(v));
    case Type::kFunction:
      out->append("<function ");
      out->append(AsFunction(v)->proto->name);
      out->push_back('>');
      return;
    case Type::kClosure:
      out->append("<closure>");
      return;
    case Type::kNative:
      out->append("<function ");
      out->append(AsNative(v)->def->name);
      out->push_back('>');
      return;
    case Type::kTypedArray:
      return AppendTypedArray(out, AsTypedArray(v));
    case Type::kMatrix:
      return AppendMatrix(out, AsMatrix(v));
    case Type::kCell:
      return AppendAt(out, AsCell(v)->value, quoted, path);
    default:
      out->append("<?>");
      return;
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

void AppendValue(std::string* out, const Value& v, bool quoted) {
  Path path;
  AppendAt(out, v, quoted, path);
}

std::string ValueToString(const Value& v, bool quoted) {
  std::string s;
  AppendValue(&s, v, quoted);
  return s;
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
