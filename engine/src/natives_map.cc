// HashMap methods (decisions.md #8). Keys are Int, String or Bool; anything else is a
// RuntimeError "invalid map key". Every mutation is followed by Vm::Recharge so the heap's
// byte count follows the map's buffers.
#include <string>
#include <vector>

#include "natives_impl.h"

namespace shapex::engine {
namespace {

bool Receiver(Vm& vm, Value* args, ObjMap** m) {
  if (!args[0].Is(Type::kMap)) return FailType(vm, "map", args[0]);
  *m = AsMap(args[0]);
  return true;
}

// Builds an array with one element per live entry, made by `make(key, value)`.
template <class F>
bool CollectEntries(Vm& vm, const ObjMap* m, size_t elem_bytes, F make, Value* out) {
  if (!CheckAllocArray(vm, m->count, elem_bytes)) return false;
  std::vector<Value> items;
  items.reserve(m->count);
  m->ForEach([&](const Value& k, const Value& v) { items.push_back(make(k, v)); });
  *out = vm.NewArray(std::move(items));
  return true;
}

}  // namespace

bool CheckMapKey(Vm& vm, const Value& key) {
  return ObjMap::ValidKey(key) || vm.Fail("invalid map key");
}

bool MapLen(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMap* m = nullptr;
  if (!Receiver(vm, args, &m)) return false;
  *out = Value::Int(static_cast<int64_t>(m->count));
  return true;
}

bool MapGet(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMap* m = nullptr;
  if (!Receiver(vm, args, &m) || !CheckMapKey(vm, args[1])) return false;
  const Value* v = m->Find(args[1]);
  *out = v == nullptr ? Value::None() : vm.NewSome(*v);
  return true;
}

bool MapHas(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMap* m = nullptr;
  if (!Receiver(vm, args, &m) || !CheckMapKey(vm, args[1])) return false;
  *out = Value::Bool(m->Find(args[1]) != nullptr);
  return true;
}

bool MapSet(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMap* m = nullptr;
  if (!Receiver(vm, args, &m) || !CheckMapKey(vm, args[1])) return false;
  m->Set(args[1], args[2]);
  vm.Recharge(m);
  *out = Value::None();
  return true;
}

bool MapRemove(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMap* m = nullptr;
  if (!Receiver(vm, args, &m) || !CheckMapKey(vm, args[1])) return false;
  Value old;
  if (m->Remove(args[1], &old)) {
    vm.Recharge(m);
    *out = vm.NewSome(old);
  } else {
    *out = Value::None();
  }
  return true;
}

bool MapKeys(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMap* m = nullptr;
  if (!Receiver(vm, args, &m)) return false;
  return CollectEntries(
      vm, m, sizeof(Value), [](const Value& k, const Value&) { return k; }, out);
}

bool MapValues(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMap* m = nullptr;
  if (!Receiver(vm, args, &m)) return false;
  return CollectEntries(
      vm, m, sizeof(Value), [](const Value&, const Value& v) { return v; }, out);
}

bool MapItems(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMap* m = nullptr;
  if (!Receiver(vm, args, &m)) return false;
  // No GC can run inside a native outside Vm::Call, so the fresh pair arrays need no rooting.
  return CollectEntries(
      vm, m, sizeof(ObjArray) + 3 * sizeof(Value),
      [&vm](const Value& k, const Value& v) {
        return vm.NewArray({k, v});
      },
      out);
}

}  // namespace shapex::engine
