// Global natives (print, assert, str, int, ...), Any.to_string, and the argument helpers every
// native file shares.
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "natives_impl.h"

namespace shapex::engine {

// ---------------- shared helpers ----------------

bool FailType(Vm& vm, std::string_view expected, const Value& got) {
  return vm.FailKind(ErrorKind::kArgumentError,
                     fmt::format("expected {}, got {}", expected, TypeName(got)));
}

bool ArgInt(Vm& vm, const Value& v, int64_t* out) {
  if (!v.IsInt()) return FailType(vm, "int", v);
  *out = v.as.i;
  return true;
}

bool ArgNumber(Vm& vm, const Value& v, double* out) {
  if (!v.IsNumeric()) return FailType(vm, "number", v);
  *out = v.AsDouble();
  return true;
}

bool ArgBool(Vm& vm, const Value& v, bool* out) {
  if (!v.IsBool()) return FailType(vm, "bool", v);
  *out = v.as.b;
  return true;
}

bool ArgString(Vm& vm, const Value& v, const ObjString** out) {
  if (!v.Is(Type::kString)) return FailType(vm, "string", v);
  *out = AsString(v);
  return true;
}

bool ArgArray(Vm& vm, const Value& v, ObjArray** out) {
  if (!v.Is(Type::kArray)) return FailType(vm, "array", v);
  *out = AsArray(v);
  return true;
}

bool ArgCallable(Vm& vm, const Value& v) { return IsCallable(v) || FailType(vm, "function", v); }

bool ResolveIndex(Vm& vm, const Value& index, size_t len, size_t* out) {
  int64_t i{};
  if (!ArgInt(vm, index, &i)) return false;
  auto n = static_cast<int64_t>(len);
  if (i < 0) i += n;
  if (i < 0 || i >= n) return vm.Fail("index out of range");
  *out = static_cast<size_t>(i);
  return true;
}

bool ResolveSlice(Vm& vm, const Value& start, const Value* end, size_t len, size_t* a, size_t* b) {
  auto n = static_cast<int64_t>(len);
  int64_t lo{};
  int64_t hi = n;
  if (!ArgInt(vm, start, &lo)) return false;
  if (end != nullptr && !ArgInt(vm, *end, &hi)) return false;
  if (lo < 0) lo += n;
  if (hi < 0) hi += n;
  if (lo < 0 || hi > n || lo > hi) return vm.Fail("index out of range");
  *a = static_cast<size_t>(lo);
  *b = static_cast<size_t>(hi);
  return true;
}

bool CheckAllocArray(Vm& vm, uint64_t count, size_t elem_size) {
  // Saturate instead of overflowing; half of the address space is beyond any memory limit
  // and still leaves the VM room to add its current heap size without wrapping.
  constexpr uint64_t kCap = std::numeric_limits<size_t>::max() / 2;
  uint64_t bytes{};
  if (__builtin_mul_overflow(count, static_cast<uint64_t>(elem_size), &bytes) || bytes > kCap)
    bytes = kCap;
  return vm.CheckAlloc(static_cast<size_t>(bytes));
}

bool CallPredicate(Vm& vm, const Value& fn, const Value& x, bool* result) {
  // Copy the argument: `x` may live in a container the callback mutates.
  Value arg = x;
  Value r;
  if (!vm.Call(fn, &arg, 1, &r)) return false;
  if (!r.IsBool()) return vm.Fail("condition must be bool");
  *result = r.as.b;
  return true;
}

bool StrValue(Vm& vm, const Value& v, Value* out) {
  if (v.Is(Type::kString)) {
    *out = v;
    return true;
  }
  std::string text;
  if (!ValueToString(vm, v, /*quoted=*/false, &text)) return false;
  *out = vm.NewString(std::move(text));
  return true;
}

bool FailWithValue(Vm& vm, std::string_view prefix, const Value& v, bool quoted,
                   std::string_view suffix) {
  std::string text;
  if (!ValueToString(vm, v, quoted, &text)) return false;
  return vm.Fail(fmt::format("{}{}{}", prefix, text, suffix));
}

// ---------------- globals ----------------

bool NativePrint(Vm& vm, Value* args, int argc, Value* out) {
  // One budget for the whole line: it is the one string this call builds.
  WalkBudget budget(vm);
  std::string line;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) line.push_back(' ');
    if (!AppendValue(&line, args[i], /*quoted=*/false, budget)) return false;
  }
  line.push_back('\n');
  if (!budget.Settle(line.size())) return false;
  vm.Print(line);
  *out = Value::None();
  return true;
}

bool NativeAssert(Vm& vm, Value* args, int argc, Value* out) {
  bool ok{};
  if (!ArgBool(vm, args[0], &ok)) return false;
  if (!ok) {
    if (argc < 2) return vm.Fail("assertion failed");
    return FailWithValue(vm, "assertion failed: ", args[1]);
  }
  *out = Value::None();
  return true;
}

bool NativePanic(Vm& vm, Value* args, int /*argc*/, Value* /*out*/) {
  return FailWithValue(vm, "", args[0]);
}

bool NativeStr(Vm& vm, Value* args, int /*argc*/, Value* out) { return StrValue(vm, args[0], out); }

bool NativeInt(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const Value& x = args[0];
  switch (x.type) {
    case Type::kInt:
      *out = x;
      return true;
    case Type::kBool:
      *out = Value::Int(x.as.b ? 1 : 0);
      return true;
    case Type::kNumber: {
      double d = std::trunc(x.as.n);
      // 2^63 is exactly representable; every finite double in [-2^63, 2^63) converts.
      if (!std::isfinite(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return vm.Fail("cannot convert");
      *out = Value::Int(static_cast<int64_t>(d));
      return true;
    }
    case Type::kString: {
      int64_t i{};
      const std::string& s = AsString(x)->str;
      if (!ParseInt(s, &i)) return vm.Fail(fmt::format("cannot parse '{}' as int", s));
      *out = Value::Int(i);
      return true;
    }
    default:
      return FailType(vm, "int, number, string or bool", x);
  }
}

bool NativeNumber(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const Value& x = args[0];
  switch (x.type) {
    case Type::kInt:
      *out = Value::Number(static_cast<double>(x.as.i));
      return true;
    case Type::kNumber:
      *out = x;
      return true;
    case Type::kBool:
      *out = Value::Number(x.as.b ? 1.0 : 0.0);
      return true;
    case Type::kString: {
      double d{};
      const std::string& s = AsString(x)->str;
      if (!ParseNumber(s, &d)) return vm.Fail(fmt::format("cannot parse '{}' as number", s));
      *out = Value::Number(d);
      return true;
    }
    default:
      return FailType(vm, "int, number, string or bool", x);
  }
}

bool NativeTypeOf(Vm& vm, Value* args, int /*argc*/, Value* out) {
  *out = vm.NewString(TypeName(args[0]));
  return true;
}

bool NativeRange(Vm& vm, Value* args, int /*argc*/, Value* out) {
  int64_t a{}, b{};
  if (!ArgInt(vm, args[0], &a) || !ArgInt(vm, args[1], &b)) return false;
  *out = vm.NewRange(a, b, 1, /*inclusive=*/false);
  return true;
}

bool NativePmap(Vm& vm, Value* args, int /*argc*/, Value* out) {
  // An ordered map; with a RemoteMapHandler installed, calls of a remote f go out as one batch
  // that the embedder spreads over executors (Vm::MapCalls).
  if (!ArgCallable(vm, args[1])) return false;
  Value arr = args[0];
  if (args[0].Is(Type::kRange)) {
    if (!RangeToArray(vm, args, 1, &arr)) return false;
  } else if (!args[0].Is(Type::kArray)) {
    return FailType(vm, "array", args[0]);
  }
  Vm::RootScope roots(vm);
  roots.Add(arr);
  // A copy: f may change the array while it runs (locally, one call at a time).
  std::vector<Value> items = AsArray(arr)->items;
  for (const Value& v : items) roots.Add(v);
  return vm.MapCalls(args[1], items, out);
}

bool NativeLen(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const Value& x = args[0];
  switch (x.type) {
    case Type::kString:
      *out = Value::Int(static_cast<int64_t>(AsString(x)->str.size()));
      return true;
    case Type::kArray:
      *out = Value::Int(static_cast<int64_t>(AsArray(x)->items.size()));
      return true;
    case Type::kMap:
      *out = Value::Int(static_cast<int64_t>(AsMap(x)->count));
      return true;
    case Type::kTypedArray:
      *out = Value::Int(static_cast<int64_t>(AsTypedArray(x)->length));
      return true;
    case Type::kRange:
      *out = Value::Int(AsRange(x)->Length());
      return true;
    default:
      return FailType(vm, "string, array, map, Vec or range", x);
  }
}

bool AnyToString(Vm& vm, Value* args, int /*argc*/, Value* out) {
  return StrValue(vm, args[0], out);
}

// ---------------- Range methods ----------------

namespace {

bool RangeReceiver(Vm& vm, Value* args, ObjRange** r) {
  if (!args[0].Is(Type::kRange)) return FailType(vm, "range", args[0]);
  *r = AsRange(args[0]);
  return true;
}

}  // namespace

bool RangeStep(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjRange* r = nullptr;
  int64_t step{};
  if (!RangeReceiver(vm, args, &r) || !ArgInt(vm, args[1], &step)) return false;
  if (step <= 0) return vm.Fail("invalid step");
  *out = vm.NewRange(r->start, r->end, step, r->inclusive);
  return true;
}

bool RangeLen(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjRange* r = nullptr;
  if (!RangeReceiver(vm, args, &r)) return false;
  *out = Value::Int(r->Length());
  return true;
}

bool RangeContains(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjRange* r = nullptr;
  if (!RangeReceiver(vm, args, &r)) return false;
  const Value& x = args[1];
  if (!x.IsNumeric()) return FailType(vm, "int", x);
  // An integral Number counts (1.0 == 1); any other Number is never in an Int range.
  int64_t v{};
  if (x.IsInt()) {
    v = x.as.i;
  } else if (std::trunc(x.as.n) == x.as.n && x.as.n >= -9223372036854775808.0 &&
             x.as.n < 9223372036854775808.0) {
    v = static_cast<int64_t>(x.as.n);
  } else {
    *out = Value::Bool(false);
    return true;
  }
  bool inside = v >= r->start && (r->inclusive ? v <= r->end : v < r->end) && r->step > 0 &&
                (static_cast<uint64_t>(v) - static_cast<uint64_t>(r->start)) %
                        static_cast<uint64_t>(r->step) ==
                    0;
  *out = Value::Bool(inside);
  return true;
}

bool RangeToArray(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjRange* r = nullptr;
  if (!RangeReceiver(vm, args, &r)) return false;
  int64_t n = r->Length();
  if (!CheckAllocArray(vm, static_cast<uint64_t>(n), sizeof(Value))) return false;
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(n));
  // Step in unsigned arithmetic: the last increment may pass INT64_MAX without UB.
  uint64_t x = static_cast<uint64_t>(r->start);
  for (int64_t i = 0; i < n; ++i, x += static_cast<uint64_t>(r->step))
    items.push_back(Value::Int(static_cast<int64_t>(x)));
  *out = vm.NewArray(std::move(items));
  return true;
}

}  // namespace shapex::engine
