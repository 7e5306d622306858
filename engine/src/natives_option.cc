// Option and Result methods (decisions.md #9). Option is the built-in enum OptionType() for
// Some(x) plus the plain None value; Result is ResultType() with Ok(x) / Err(e).
#include <string>

#include "natives_impl.h"

namespace shapex::engine {
namespace {

// Decodes an Option receiver: *some = false for None, else *payload = x of Some(x).
bool OptionReceiver(Vm& vm, const Value& v, bool* some, Value* payload) {
  if (v.IsNone()) {
    *some = false;
    return true;
  }
  if (v.Is(Type::kEnum) && AsEnum(v)->etype == OptionType() && !AsEnum(v)->payload.empty()) {
    *some = true;
    *payload = AsEnum(v)->payload[0];
    return true;
  }
  return FailType(vm, "option", v);
}

// Decodes a Result receiver: *ok tells Ok from Err, *payload is the wrapped value.
bool ResultReceiver(Vm& vm, const Value& v, bool* ok, Value* payload) {
  if (v.Is(Type::kEnum) && AsEnum(v)->etype == ResultType() && !AsEnum(v)->payload.empty()) {
    *ok = AsEnum(v)->variant == kOkVariant;
    *payload = AsEnum(v)->payload[0];
    return true;
  }
  return FailType(vm, "result", v);
}

}  // namespace

bool OptionUnwrap(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool some{};
  if (!OptionReceiver(vm, args[0], &some, out)) return false;
  return some || vm.Fail("called unwrap on None");
}

bool OptionUnwrapOr(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool some{};
  if (!OptionReceiver(vm, args[0], &some, out)) return false;
  if (!some) *out = args[1];
  return true;
}

bool OptionExpect(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool some{};
  if (!OptionReceiver(vm, args[0], &some, out)) return false;
  return some || FailWithValue(vm, "", args[1]);
}

bool OptionIsSome(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool some{};
  Value payload;
  if (!OptionReceiver(vm, args[0], &some, &payload)) return false;
  *out = Value::Bool(some);
  return true;
}

bool OptionIsNone(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool some{};
  Value payload;
  if (!OptionReceiver(vm, args[0], &some, &payload)) return false;
  *out = Value::Bool(!some);
  return true;
}

bool OptionMap(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool some{};
  Value payload;
  if (!OptionReceiver(vm, args[0], &some, &payload) || !ArgCallable(vm, args[1])) return false;
  if (!some) {
    *out = Value::None();
    return true;
  }
  Value mapped;
  if (!vm.Call(args[1], &payload, 1, &mapped)) return false;
  *out = vm.NewSome(mapped);
  return true;
}

bool ResultUnwrap(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool ok{};
  if (!ResultReceiver(vm, args[0], &ok, out)) return false;
  if (ok) return true;
  return FailWithValue(vm, "called unwrap on Err(", *out, /*quoted=*/true, ")");
}

bool ResultUnwrapOr(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool ok{};
  if (!ResultReceiver(vm, args[0], &ok, out)) return false;
  if (!ok) *out = args[1];
  return true;
}

bool ResultExpect(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool ok{};
  if (!ResultReceiver(vm, args[0], &ok, out)) return false;
  return ok || FailWithValue(vm, "", args[1]);
}

bool ResultIsOk(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool ok{};
  Value payload;
  if (!ResultReceiver(vm, args[0], &ok, &payload)) return false;
  *out = Value::Bool(ok);
  return true;
}

bool ResultIsErr(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool ok{};
  Value payload;
  if (!ResultReceiver(vm, args[0], &ok, &payload)) return false;
  *out = Value::Bool(!ok);
  return true;
}

bool ResultMap(Vm& vm, Value* args, int /*argc*/, Value* out) {
  bool ok{};
  Value payload;
  if (!ResultReceiver(vm, args[0], &ok, &payload) || !ArgCallable(vm, args[1])) return false;
  if (!ok) {
    *out = args[0];  // Err passes through unchanged (enum values are immutable)
    return true;
  }
  Value mapped;
  if (!vm.Call(args[1], &payload, 1, &mapped)) return false;
  *out = vm.NewOk(mapped);
  return true;
}

}  // namespace shapex::engine
