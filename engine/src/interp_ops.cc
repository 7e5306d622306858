#include "interp_ops.h"

#include <cmath>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "natives_impl.h"
#include "utf8.h"

namespace shapex::engine {
namespace {

const char* OpText(char op) {
  switch (op) {
    case 'p': return "**";
    case 'l': return "<<";
    case 'r': return ">>";
    case '+': return "+";
    case '-': return "-";
    case '*': return "*";
    case '/': return "/";
    case '%': return "%";
    case '&': return "&";
    case '|': return "|";
    default: return "^";
  }
}

bool Unsupported(Vm& vm, char op, const Value& a, const Value& b) {
  return vm.Fail(fmt::format("unsupported operand types for {}: {} and {}", OpText(op),
                             TypeName(a), TypeName(b)));
}

bool IntPow(Vm& vm, int64_t base, int64_t exp, Value* out) {
  if (exp < 0) {
    *out = Value::Number(std::pow(static_cast<double>(base), static_cast<double>(exp)));
    return true;
  }
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) {
      if (__builtin_mul_overflow(result, base, &result)) return vm.Fail("integer overflow");
    }
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base)) return vm.Fail("integer overflow");
  }
  *out = Value::Int(result);
  return true;
}

bool IntArith(Vm& vm, char op, int64_t x, int64_t y, Value* out) {
  int64_t r = 0;
  switch (op) {
    case '+':
      if (__builtin_add_overflow(x, y, &r)) return vm.Fail("integer overflow");
      break;
    case '-':
      if (__builtin_sub_overflow(x, y, &r)) return vm.Fail("integer overflow");
      break;
    case '*':
      if (__builtin_mul_overflow(x, y, &r)) return vm.Fail("integer overflow");
      break;
    case '/':
      if (y == 0) return vm.Fail("division by zero");
      if (x == INT64_MIN && y == -1) return vm.Fail("integer overflow");
      r = x / y;
      break;
    case '%':
      if (y == 0) return vm.Fail("division by zero");
      r = y == -1 ? 0 : x % y;
      break;
    case 'p': return IntPow(vm, x, y, out);
    case '&': r = x & y; break;
    case '|': r = x | y; break;
    case '^': r = x ^ y; break;
    case 'l':
      if (y < 0 || y >= 64) return vm.Fail("invalid shift count " + std::to_string(y));
      r = static_cast<int64_t>(static_cast<uint64_t>(x) << y);
      if ((r >> y) != x) return vm.Fail("integer overflow");
      break;
    case 'r':
      if (y < 0 || y >= 64) return vm.Fail("invalid shift count " + std::to_string(y));
      r = x >> y;
      break;
  }
  *out = Value::Int(r);
  return true;
}

// Range index -> [start, end) as Int values for the slice natives.
bool RangeBounds(Vm& vm, const Value& index, Value* start, Value* end) {
  ObjRange* r = AsRange(index);
  if (r->step != 1) return vm.Fail("cannot slice with a stepped range");
  *start = Value::Int(r->start);
  if (r->inclusive) {
    if (r->end == INT64_MAX) return vm.Fail("index out of range");
    *end = Value::Int(r->end + 1);
  } else {
    *end = Value::Int(r->end);
  }
  return true;
}

}  // namespace

bool ArithSlow(Vm& vm, char op, const Value& a, const Value& b, Value* out) {
  if (a.type == Type::kInt && b.type == Type::kInt) return IntArith(vm, op, a.as.i, b.as.i, out);
  bool arith = op == '+' || op == '-' || op == '*' || op == '/';
  if (a.IsNumeric() && b.IsNumeric()) {
    double x = a.AsDouble(), y = b.AsDouble();
    switch (op) {
      case '+': *out = Value::Number(x + y); return true;
      case '-': *out = Value::Number(x - y); return true;
      case '*': *out = Value::Number(x * y); return true;
      case '/': *out = Value::Number(x / y); return true;
      case '%': *out = Value::Number(std::fmod(x, y)); return true;
      case 'p': *out = Value::Number(std::pow(x, y)); return true;
      default: return Unsupported(vm, op, a, b);
    }
  }
  if (op == '+' && a.type == Type::kString && b.type == Type::kString) {
    const std::string& x = AsString(a)->str;
    const std::string& y = AsString(b)->str;
    if (!vm.CheckAlloc(x.size() + y.size())) return false;
    std::string s;
    s.reserve(x.size() + y.size());
    s.append(x).append(y);
    *out = vm.NewString(std::move(s));
    return true;
  }
  if (arith && (a.type == Type::kTypedArray || b.type == Type::kTypedArray) &&
      (a.type == Type::kTypedArray || a.IsNumeric()) &&
      (b.type == Type::kTypedArray || b.IsNumeric()))
    return TypedBinary(vm, op, a, b, out);
  if (arith && (a.type == Type::kMatrix || b.type == Type::kMatrix) &&
      (a.type == Type::kMatrix || a.IsNumeric()) && (b.type == Type::kMatrix || b.IsNumeric()))
    return MatrixBinary(vm, op, a, b, out);
  return Unsupported(vm, op, a, b);
}

bool CompareOrFail(Vm& vm, const Value& a, const Value& b, int* cmp) {
  if (CompareValues(a, b, cmp)) return true;
  return vm.Fail(fmt::format("cannot compare {} and {}", TypeName(a), TypeName(b)));
}

bool BuildString(Vm& vm, const Value* parts, uint32_t n, Value* out) {
  WalkBudget budget(vm);
  std::string s;
  for (uint32_t i = 0; i < n; ++i)
    if (!AppendValue(&s, parts[i], /*quoted=*/false, budget)) return false;
  if (!budget.Settle(s.size())) return false;
  *out = vm.NewString(std::move(s));
  return true;
}

bool FailUnsetGlobal(Vm& vm, uint32_t slot) {
  return vm.Fail(fmt::format("'{}' is read before its 'let' has run",
                             vm.program().global_names[slot]));
}

bool FailNoMatch(Vm& vm, const Value& v) {
  std::string text;
  if (!ValueToString(vm, v, /*quoted=*/true, &text)) return false;
  return vm.Fail("no match arm for " + text);
}

bool IndexGet(Vm& vm, const Value& c, const Value& index, Value* out) {
  if (index.type == Type::kRange &&
      (c.type == Type::kArray || c.type == Type::kString || c.type == Type::kTypedArray)) {
    Value args[3] = {c, Value(), Value()};
    if (!RangeBounds(vm, index, &args[1], &args[2])) return false;
    if (c.type == Type::kArray) return ArraySlice(vm, args, 3, out);
    if (c.type == Type::kString) return StringSlice(vm, args, 3, out);
    return VecSlice(vm, args, 3, out);
  }
  switch (c.type) {
    case Type::kArray: {
      if (index.type != Type::kInt) return vm.Fail("array index must be int, got " + TypeName(index));
      size_t i;
      if (!ResolveIndex(vm, index, AsArray(c)->items.size(), &i)) return false;
      *out = AsArray(c)->items[i];
      return true;
    }
    case Type::kMap: {
      if (!ObjMap::ValidKey(index)) return vm.Fail("invalid map key: " + TypeName(index));
      const Value* v = AsMap(c)->Find(index);
      if (v == nullptr) return vm.Fail("key not found: " + ValueToString(index, true));
      *out = *v;
      return true;
    }
    case Type::kString: {
      if (index.type != Type::kInt)
        return vm.Fail("string index must be int, got " + TypeName(index));
      const ObjString* s = AsString(c);
      size_t i;
      if (!ResolveIndex(vm, index, Utf8CharCount(s), &i)) return false;
      size_t at = Utf8ByteOffset(s, i);
      *out = vm.NewString(s->str.substr(at, Utf8CharLen(s->str, at)));
      return true;
    }
    case Type::kTypedArray: {
      if (index.type != Type::kInt)
        return vm.Fail("typed array index must be int, got " + TypeName(index));
      size_t i;
      if (!ResolveIndex(vm, index, AsTypedArray(c)->length, &i)) return false;
      *out = AsTypedArray(c)->Get(i);
      return true;
    }
    case Type::kMatrix: {
      Value args[2] = {c, index};
      return MatrixRow(vm, args, 2, out);
    }
    default:
      return vm.Fail("cannot index " + TypeName(c));
  }
}

bool IndexSet(Vm& vm, const Value& c, const Value& index, const Value& v) {
  switch (c.type) {
    case Type::kArray: {
      if (index.type != Type::kInt) return vm.Fail("array index must be int, got " + TypeName(index));
      size_t i;
      if (!ResolveIndex(vm, index, AsArray(c)->items.size(), &i)) return false;
      AsArray(c)->items[i] = v;
      return true;
    }
    case Type::kMap: {
      if (!ObjMap::ValidKey(index)) return vm.Fail("invalid map key: " + TypeName(index));
      AsMap(c)->Set(index, v);
      vm.Recharge(c.as.o);
      return true;
    }
    case Type::kTypedArray: {
      if (index.type != Type::kInt)
        return vm.Fail("typed array index must be int, got " + TypeName(index));
      size_t i;
      if (!ResolveIndex(vm, index, AsTypedArray(c)->length, &i)) return false;
      return StoreElem(vm, AsTypedArray(c), i, v);
    }
    case Type::kString: return vm.Fail("strings are immutable");
    default: return vm.Fail("cannot assign into " + TypeName(c) + " by index");
  }
}

bool IndexGet2(Vm& vm, const Value& c, const Value& i, const Value& j, Value* out) {
  if (c.type != Type::kMatrix) return vm.Fail("cannot index " + TypeName(c) + " with two indices");
  Value args[3] = {c, i, j};
  return MatrixGet(vm, args, 3, out);
}

bool IndexSet2(Vm& vm, const Value& c, const Value& i, const Value& j, const Value& v) {
  if (c.type != Type::kMatrix) return vm.Fail("cannot index " + TypeName(c) + " with two indices");
  Value args[4] = {c, i, j, v};
  Value ignored;
  return MatrixSet(vm, args, 4, &ignored);
}

bool IterNext(Vm& vm, Value* r, bool* done) {
  const Value& it = r[0];
  if (r[1].type != Type::kInt || r[1].as.i < 0) return vm.Fail("internal: bad iterator state");
  uint64_t state = static_cast<uint64_t>(r[1].as.i);
  *done = false;
  switch (it.type) {
    case Type::kArray: {
      ObjArray* a = AsArray(it);
      if (state >= a->items.size()) break;
      r[2] = a->items[state];
      r[1].as.i = static_cast<int64_t>(state + 1);
      return true;
    }
    case Type::kMap: {
      ObjMap* m = AsMap(it);
      while (state < m->entries.size() && m->entries[state].key.type == Type::kNone) ++state;
      if (state >= m->entries.size()) break;
      r[2] = m->entries[state].key;
      r[1].as.i = static_cast<int64_t>(state + 1);
      return true;
    }
    case Type::kString: {
      const ObjString* s = AsString(it);
      if (state >= s->str.size()) break;
      size_t n = Utf8CharLen(s->str, state);
      r[2] = vm.NewString(s->str.substr(state, n));
      r[1].as.i = static_cast<int64_t>(state + n);
      return true;
    }
    case Type::kRange: {
      ObjRange* rg = AsRange(it);
      if (state >= static_cast<uint64_t>(rg->Length())) break;
      r[2] = Value::Int(static_cast<int64_t>(static_cast<uint64_t>(rg->start) +
                                             state * static_cast<uint64_t>(rg->step)));
      r[1].as.i = static_cast<int64_t>(state + 1);
      return true;
    }
    case Type::kTypedArray: {
      ObjTypedArray* v = AsTypedArray(it);
      if (state >= v->length) break;
      r[2] = v->Get(state);
      r[1].as.i = static_cast<int64_t>(state + 1);
      return true;
    }
    default:
      return vm.Fail(TypeName(it) + " is not iterable");
  }
  *done = true;
  return true;
}

const EnumType* EnumTypeFor(const Program& p, uint32_t id) {
  if (id == 0xFFFF) return OptionType();
  if (id == 0xFFFE) return ResultType();
  return p.enums[id].get();
}

}  // namespace shapex::engine
