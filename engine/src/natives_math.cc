// Module `math` (decisions.md #19). Functions take Int or Number; most return Number. The
// constants math.pi/e/inf/nan are folded by the compiler and have no native.
#include <algorithm>
#include <cmath>
#include <limits>

#include "natives_impl.h"

namespace shapex::engine {
namespace {

// f(x) for one numeric argument, always a Number (sqrt(-1) is nan, as IEEE says).
bool Unary(Vm& vm, const Value* args, double (*f)(double), Value* out) {
  double x{};
  if (!ArgNumber(vm, args[0], &x)) return false;
  *out = Value::Number(f(x));
  return true;
}

// min/max of two numbers: Int when both are Int, else Number.
bool Pick(Vm& vm, const Value* args, bool want_min, Value* out) {
  double x{}, y{};
  if (!ArgNumber(vm, args[0], &x) || !ArgNumber(vm, args[1], &y)) return false;
  if (args[0].IsInt() && args[1].IsInt()) {
    int64_t a = args[0].as.i, b = args[1].as.i;
    *out = Value::Int(want_min ? std::min(a, b) : std::max(a, b));
    return true;
  }
  // std::fmin/fmax ignore a single NaN, which hides errors; propagate it instead.
  if (std::isnan(x) || std::isnan(y)) {
    *out = Value::Number(std::numeric_limits<double>::quiet_NaN());
  } else {
    *out = Value::Number(want_min ? std::min(x, y) : std::max(x, y));
  }
  return true;
}

}  // namespace

bool MathSqrt(Vm& vm, Value* args, int, Value* out) {
  return Unary(
      vm, args, [](double x) { return std::sqrt(x); }, out);
}
bool MathSin(Vm& vm, Value* args, int, Value* out) {
  return Unary(
      vm, args, [](double x) { return std::sin(x); }, out);
}
bool MathCos(Vm& vm, Value* args, int, Value* out) {
  return Unary(
      vm, args, [](double x) { return std::cos(x); }, out);
}
bool MathTan(Vm& vm, Value* args, int, Value* out) {
  return Unary(
      vm, args, [](double x) { return std::tan(x); }, out);
}
bool MathExp(Vm& vm, Value* args, int, Value* out) {
  return Unary(
      vm, args, [](double x) { return std::exp(x); }, out);
}
bool MathLog(Vm& vm, Value* args, int, Value* out) {
  return Unary(
      vm, args, [](double x) { return std::log(x); }, out);
}
bool MathFloor(Vm& vm, Value* args, int, Value* out) {
  return Unary(
      vm, args, [](double x) { return std::floor(x); }, out);
}
bool MathCeil(Vm& vm, Value* args, int, Value* out) {
  return Unary(
      vm, args, [](double x) { return std::ceil(x); }, out);
}
bool MathRound(Vm& vm, Value* args, int, Value* out) {
  // std::round rounds half away from zero: round(2.5) == 3.0, round(-2.5) == -3.0.
  return Unary(
      vm, args, [](double x) { return std::round(x); }, out);
}

bool MathPow(Vm& vm, Value* args, int, Value* out) {
  double x{}, y{};
  if (!ArgNumber(vm, args[0], &x) || !ArgNumber(vm, args[1], &y)) return false;
  *out = Value::Number(std::pow(x, y));
  return true;
}

bool MathAbs(Vm& vm, Value* args, int, Value* out) {
  const Value& x = args[0];
  if (x.IsInt()) {
    if (x.as.i == std::numeric_limits<int64_t>::min()) return vm.Fail("integer overflow");
    *out = Value::Int(x.as.i < 0 ? -x.as.i : x.as.i);
    return true;
  }
  return Unary(
      vm, args, [](double v) { return std::fabs(v); }, out);
}

bool MathMin(Vm& vm, Value* args, int, Value* out) {
  return Pick(vm, args, /*want_min=*/true, out);
}
bool MathMax(Vm& vm, Value* args, int, Value* out) {
  return Pick(vm, args, /*want_min=*/false, out);
}

bool MathIsNan(Vm& vm, Value* args, int, Value* out) {
  double x{};
  if (!ArgNumber(vm, args[0], &x)) return false;
  *out = Value::Bool(std::isnan(x));
  return true;
}

}  // namespace shapex::engine
