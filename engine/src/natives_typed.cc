// Typed arrays (Vec<T>, decisions.md #17): element conversion, elementwise arithmetic for the
// interpreter's + - * / operators, the Vec::f64(..) family of constructors and the Vec
// methods.
//
// Integer kinds compute in i64 and are range-checked on store, so `Vec::u8([200]) + 100`
// fails with "value 300 out of range for u8" instead of wrapping. Float kinds compute in
// double (f32 results are rounded on store).
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "natives_impl.h"

namespace shapex::engine {
namespace {

// Inclusive value range of an integer element kind.
void IntLimits(ElemKind k, int64_t* lo, int64_t* hi) {
  switch (k) {
    case ElemKind::kI32:
      *lo = std::numeric_limits<int32_t>::min();
      *hi = std::numeric_limits<int32_t>::max();
      return;
    case ElemKind::kI16:
      *lo = std::numeric_limits<int16_t>::min();
      *hi = std::numeric_limits<int16_t>::max();
      return;
    case ElemKind::kI8:
      *lo = std::numeric_limits<int8_t>::min();
      *hi = std::numeric_limits<int8_t>::max();
      return;
    case ElemKind::kU8:
      *lo = 0;
      *hi = std::numeric_limits<uint8_t>::max();
      return;
    case ElemKind::kBool:
      *lo = 0;
      *hi = 1;
      return;
    default:
      *lo = std::numeric_limits<int64_t>::min();
      *hi = std::numeric_limits<int64_t>::max();
      return;
  }
}

// v[i] as i64, for integer and bool kinds.
int64_t ElemInt(const ObjTypedArray* v, size_t i) {
  switch (v->kind) {
    case ElemKind::kI64:
      return v->As<int64_t>()[i];
    case ElemKind::kI32:
      return v->As<int32_t>()[i];
    case ElemKind::kI16:
      return v->As<int16_t>()[i];
    case ElemKind::kI8:
      return v->As<int8_t>()[i];
    case ElemKind::kU8:
    case ElemKind::kBool:
      return v->As<uint8_t>()[i];
    default:
      return static_cast<int64_t>(ElemAsDouble(v, i));
  }
}

// Writes an already range-checked integer.
void WriteInt(ObjTypedArray* v, size_t i, int64_t x) {
  switch (v->kind) {
    case ElemKind::kI64:
      v->As<int64_t>()[i] = x;
      return;
    case ElemKind::kI32:
      v->As<int32_t>()[i] = static_cast<int32_t>(x);
      return;
    case ElemKind::kI16:
      v->As<int16_t>()[i] = static_cast<int16_t>(x);
      return;
    case ElemKind::kI8:
      v->As<int8_t>()[i] = static_cast<int8_t>(x);
      return;
    default:
      v->As<uint8_t>()[i] = static_cast<uint8_t>(x);
      return;
  }
}

void WriteDouble(ObjTypedArray* v, size_t i, double x) {
  if (v->kind == ElemKind::kF32) {
    v->As<float>()[i] = static_cast<float>(x);
  } else {
    v->As<double>()[i] = x;
  }
}

bool StoreCheckedInt(Vm& vm, ObjTypedArray* v, size_t i, int64_t x) {
  int64_t lo{}, hi{};
  IntLimits(v->kind, &lo, &hi);
  if (x < lo || x > hi)
    return vm.Fail(fmt::format("value {} out of range for {}", x, ElemKindName(v->kind)));
  WriteInt(v, i, x);
  return true;
}

bool IntOp(Vm& vm, char op, int64_t x, int64_t y, int64_t* r) {
  bool overflow = false;
  switch (op) {
    case '+':
      overflow = __builtin_add_overflow(x, y, r);
      break;
    case '-':
      overflow = __builtin_sub_overflow(x, y, r);
      break;
    case '*':
      overflow = __builtin_mul_overflow(x, y, r);
      break;
    default:  // '/': truncating, as for Int
      if (y == 0) return vm.Fail("division by zero");
      overflow = x == std::numeric_limits<int64_t>::min() && y == -1;
      if (!overflow) *r = x / y;
      break;
  }
  return !overflow || vm.Fail("integer overflow");
}

double FloatOp(char op, double x, double y) {
  switch (op) {
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    default:
      return x / y;
  }
}

// The common case, vectorisable: f64 with f64 or with a scalar.
void F64Loop(char op, const double* x, const double* y, double sx, double sy, double* r, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    double a = x != nullptr ? x[i] : sx;
    double b = y != nullptr ? y[i] : sy;
    r[i] = FloatOp(op, a, b);
  }
}

bool Receiver(Vm& vm, Value* args, ObjTypedArray** v) {
  if (!args[0].Is(Type::kTypedArray)) return FailType(vm, "Vec", args[0]);
  *v = AsTypedArray(args[0]);
  return true;
}

bool NewVec(Vm& vm, ElemKind kind, const Value& arg, Value* out) {
  if (arg.IsInt()) {
    if (arg.as.i < 0) return vm.Fail("negative length");
    auto n = static_cast<uint64_t>(arg.as.i);
    return CheckAllocArray(vm, n, ElemSize(kind)) &&
           vm.NewTypedArray(kind, static_cast<size_t>(n), out);
  }
  if (arg.Is(Type::kArray)) {
    const std::vector<Value>& items = AsArray(arg)->items;
    if (!vm.NewTypedArray(kind, items.size(), out)) return false;
    for (size_t i = 0; i < items.size(); ++i)
      if (!StoreElem(vm, AsTypedArray(*out), i, items[i])) return false;
    return true;
  }
  if (arg.Is(Type::kTypedArray)) {  // conversion between kinds, with the usual checks
    const ObjTypedArray* src = AsTypedArray(arg);
    if (!vm.NewTypedArray(kind, src->length, out)) return false;
    for (size_t i = 0; i < src->length; ++i)
      if (!StoreElem(vm, AsTypedArray(*out), i, src->Get(i))) return false;
    return true;
  }
  return FailType(vm, "int or array", arg);
}

bool VecMinMax(Vm& vm, Value* args, bool want_min, Value* out) {
  ObjTypedArray* v = nullptr;
  if (!Receiver(vm, args, &v)) return false;
  if (v->length == 0) return vm.Fail("empty");
  if (ElemIsFloat(v->kind)) {
    double best = ElemAsDouble(v, 0);
    for (size_t i = 0; i < v->length && !std::isnan(best); ++i) {
      double x = ElemAsDouble(v, i);
      if (std::isnan(x) || (want_min ? x < best : x > best)) best = x;  // NaN propagates
    }
    *out = Value::Number(best);
    return true;
  }
  int64_t best = ElemInt(v, 0);
  for (size_t i = 1; i < v->length; ++i) {
    int64_t x = ElemInt(v, i);
    if (want_min ? x < best : x > best) best = x;
  }
  *out = v->kind == ElemKind::kBool ? Value::Bool(best != 0) : Value::Int(best);
  return true;
}

}  // namespace

double ElemAsDouble(const ObjTypedArray* v, size_t i) {
  switch (v->kind) {
    case ElemKind::kF64:
      return v->As<double>()[i];
    case ElemKind::kF32:
      return v->As<float>()[i];
    default:
      return static_cast<double>(ElemInt(v, i));
  }
}

bool StoreElem(Vm& vm, ObjTypedArray* v, size_t i, const Value& x) {
  switch (v->kind) {
    case ElemKind::kF64:
    case ElemKind::kF32:
      if (!x.IsNumeric()) return vm.Fail("expected number, got " + TypeName(x));
      WriteDouble(v, i, x.AsDouble());
      return true;
    case ElemKind::kBool:
      if (!x.IsBool()) return vm.Fail("expected bool, got " + TypeName(x));
      v->As<uint8_t>()[i] = x.as.b ? 1 : 0;
      return true;
    default:
      if (!x.IsInt()) return vm.Fail("expected int, got " + TypeName(x));
      return StoreCheckedInt(vm, v, i, x.as.i);
  }
}

bool TypedBinary(Vm& vm, char op, const Value& a, const Value& b, Value* out) {
  const ObjTypedArray* va = a.Is(Type::kTypedArray) ? AsTypedArray(a) : nullptr;
  const ObjTypedArray* vb = b.Is(Type::kTypedArray) ? AsTypedArray(b) : nullptr;
  bool operands_ok = (va != nullptr || vb != nullptr) &&
                     (va != nullptr ? va->kind != ElemKind::kBool : a.IsNumeric()) &&
                     (vb != nullptr ? vb->kind != ElemKind::kBool : b.IsNumeric()) &&
                     (op == '+' || op == '-' || op == '*' || op == '/');
  if (!operands_ok) {
    return vm.Fail(
        fmt::format("unsupported operand types for {}: {} and {}", op, TypeName(a), TypeName(b)));
  }
  if (va != nullptr && vb != nullptr && va->length != vb->length) return vm.Fail("shape mismatch");
  size_t n = va != nullptr ? va->length : vb->length;

  // Result kind: same kind for same-kind vectors and for a vector with an Int scalar (or a
  // float vector with any scalar); f64 when kinds differ or a Number meets an int vector.
  ElemKind kind{};
  if (va != nullptr && vb != nullptr) {
    kind = va->kind == vb->kind ? va->kind : ElemKind::kF64;
  } else {
    const ObjTypedArray* v = va != nullptr ? va : vb;
    const Value& scalar = va != nullptr ? b : a;
    kind = scalar.IsNumber() && !ElemIsFloat(v->kind) ? ElemKind::kF64 : v->kind;
  }
  Value result;
  if (!vm.NewTypedArray(kind, n, &result)) return false;
  ObjTypedArray* r = AsTypedArray(result);

  if (kind == ElemKind::kF64 && (va == nullptr || va->kind == ElemKind::kF64) &&
      (vb == nullptr || vb->kind == ElemKind::kF64)) {
    F64Loop(op, va != nullptr ? va->As<double>() : nullptr,
            vb != nullptr ? vb->As<double>() : nullptr, a.IsNumeric() ? a.AsDouble() : 0,
            b.IsNumeric() ? b.AsDouble() : 0, r->As<double>(), n);
  } else if (ElemIsFloat(kind)) {
    for (size_t i = 0; i < n; ++i) {
      double x = va != nullptr ? ElemAsDouble(va, i) : a.AsDouble();
      double y = vb != nullptr ? ElemAsDouble(vb, i) : b.AsDouble();
      WriteDouble(r, i, FloatOp(op, x, y));
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      int64_t x = va != nullptr ? ElemInt(va, i) : a.as.i;
      int64_t y = vb != nullptr ? ElemInt(vb, i) : b.as.i;
      int64_t z{};
      if (!IntOp(vm, op, x, y, &z) || !StoreCheckedInt(vm, r, i, z)) return false;
    }
  }
  *out = result;
  return true;
}

// ---------------- constructors ----------------

bool VecNewF64(Vm& vm, Value* args, int, Value* out) {
  return NewVec(vm, ElemKind::kF64, args[0], out);
}
bool VecNewF32(Vm& vm, Value* args, int, Value* out) {
  return NewVec(vm, ElemKind::kF32, args[0], out);
}
bool VecNewI64(Vm& vm, Value* args, int, Value* out) {
  return NewVec(vm, ElemKind::kI64, args[0], out);
}
bool VecNewI32(Vm& vm, Value* args, int, Value* out) {
  return NewVec(vm, ElemKind::kI32, args[0], out);
}
bool VecNewI16(Vm& vm, Value* args, int, Value* out) {
  return NewVec(vm, ElemKind::kI16, args[0], out);
}
bool VecNewI8(Vm& vm, Value* args, int, Value* out) {
  return NewVec(vm, ElemKind::kI8, args[0], out);
}
bool VecNewU8(Vm& vm, Value* args, int, Value* out) {
  return NewVec(vm, ElemKind::kU8, args[0], out);
}
bool VecNewBool(Vm& vm, Value* args, int, Value* out) {
  return NewVec(vm, ElemKind::kBool, args[0], out);
}

// ---------------- methods ----------------

bool VecLen(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjTypedArray* v = nullptr;
  if (!Receiver(vm, args, &v)) return false;
  *out = Value::Int(static_cast<int64_t>(v->length));
  return true;
}

bool VecSum(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjTypedArray* v = nullptr;
  if (!Receiver(vm, args, &v)) return false;
  if (ElemIsFloat(v->kind)) {
    double s = 0;
    for (size_t i = 0; i < v->length; ++i) s += ElemAsDouble(v, i);
    *out = Value::Number(s);
    return true;
  }
  int64_t s = 0;
  for (size_t i = 0; i < v->length; ++i)
    if (__builtin_add_overflow(s, ElemInt(v, i), &s)) return vm.Fail("integer overflow");
  *out = Value::Int(s);
  return true;
}

bool VecDot(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjTypedArray* v = nullptr;
  if (!Receiver(vm, args, &v)) return false;
  if (!args[1].Is(Type::kTypedArray)) return FailType(vm, "Vec", args[1]);
  const ObjTypedArray* w = AsTypedArray(args[1]);
  if (v->length != w->length) return vm.Fail("shape mismatch");
  if (ElemIsFloat(v->kind) || ElemIsFloat(w->kind)) {
    double s = 0;
    for (size_t i = 0; i < v->length; ++i) s += ElemAsDouble(v, i) * ElemAsDouble(w, i);
    *out = Value::Number(s);
    return true;
  }
  int64_t s = 0;
  for (size_t i = 0; i < v->length; ++i) {
    int64_t p{};
    if (__builtin_mul_overflow(ElemInt(v, i), ElemInt(w, i), &p) ||
        __builtin_add_overflow(s, p, &s))
      return vm.Fail("integer overflow");
  }
  *out = Value::Int(s);
  return true;
}

bool VecMean(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjTypedArray* v = nullptr;
  if (!Receiver(vm, args, &v)) return false;
  double s = 0;
  for (size_t i = 0; i < v->length; ++i) s += ElemAsDouble(v, i);
  *out = Value::Number(v->length == 0 ? std::nan("") : s / static_cast<double>(v->length));
  return true;
}

bool VecMin(Vm& vm, Value* args, int /*argc*/, Value* out) {
  return VecMinMax(vm, args, /*want_min=*/true, out);
}

bool VecMax(Vm& vm, Value* args, int /*argc*/, Value* out) {
  return VecMinMax(vm, args, /*want_min=*/false, out);
}

bool VecMap(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjTypedArray* v = nullptr;
  if (!Receiver(vm, args, &v) || !ArgCallable(vm, args[1])) return false;
  Value result;
  if (!vm.NewTypedArray(v->kind, v->length, &result)) return false;
  Vm::RootScope roots(vm);
  roots.Add(result);
  for (size_t i = 0; i < v->length; ++i) {
    Value x = v->Get(i);
    Value y;
    if (!vm.Call(args[1], &x, 1, &y) || !StoreElem(vm, AsTypedArray(result), i, y)) return false;
  }
  *out = result;
  return true;
}

bool VecFill(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjTypedArray* v = nullptr;
  if (!Receiver(vm, args, &v)) return false;
  if (v->length > 0) {
    // Convert (and check) once, then replicate the element's bytes.
    if (!StoreElem(vm, v, 0, args[1])) return false;
    size_t size = ElemSize(v->kind);
    for (size_t i = 1; i < v->length; ++i) std::memcpy(v->data + i * size, v->data, size);
  }
  *out = args[0];
  return true;
}

bool VecSlice(Vm& vm, Value* args, int argc, Value* out) {
  ObjTypedArray* v = nullptr;
  size_t lo{}, hi{};
  if (!Receiver(vm, args, &v) ||
      !ResolveSlice(vm, args[1], argc > 2 ? &args[2] : nullptr, v->length, &lo, &hi))
    return false;
  Value result;
  if (!vm.NewTypedArray(v->kind, hi - lo, &result)) return false;
  size_t size = ElemSize(v->kind);
  if (hi > lo) std::memcpy(AsTypedArray(result)->data, v->data + lo * size, (hi - lo) * size);
  *out = result;
  return true;
}

bool VecToArray(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjTypedArray* v = nullptr;
  if (!Receiver(vm, args, &v) || !CheckAllocArray(vm, v->length, sizeof(Value))) return false;
  std::vector<Value> items;
  items.reserve(v->length);
  for (size_t i = 0; i < v->length; ++i) items.push_back(v->Get(i));
  *out = vm.NewArray(std::move(items));
  return true;
}

}  // namespace shapex::engine
