// Array methods (decisions.md #7).
//
// Callbacks (map, filter, reduce, sort_by, any, all) may run arbitrary code, including code
// that mutates the array being iterated, and may trigger a garbage collection. So loops
// re-read `items.size()` every step, copy each element before passing it, and keep every
// value they created in a rooted container.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "natives_impl.h"

namespace shapex::engine {
namespace {

bool Receiver(Vm& vm, Value* args, ObjArray** a) { return ArgArray(vm, args[0], a); }

// What sort() can order: all numbers (Int and Number mix) or all strings.
enum class SortClass { kNumeric, kString };

bool FailCompare(Vm& vm, const Value& a, const Value& b) {
  return vm.Fail(fmt::format("cannot compare {} and {}", TypeName(a), TypeName(b)));
}

// Checks up front that every key is comparable with every other, so the comparator handed to
// std::stable_sort can never fail or be inconsistent halfway through.
bool ClassifyKeys(Vm& vm, const std::vector<Value>& keys, SortClass* cls) {
  *cls = SortClass::kNumeric;
  if (keys.empty()) return true;
  const Value& first = keys[0];
  if (first.IsNumeric()) {
    *cls = SortClass::kNumeric;
  } else if (first.Is(Type::kString)) {
    *cls = SortClass::kString;
  } else {
    return FailCompare(vm, first, keys.size() > 1 ? keys[1] : first);
  }
  for (const Value& k : keys) {
    bool ok = *cls == SortClass::kNumeric ? k.IsNumeric() : k.Is(Type::kString);
    if (!ok) return FailCompare(vm, first, k);
  }
  return true;
}

// A strict weak order over keys of one class. NaN sorts after every other number (and equal
// to itself), which keeps the order total where plain `<` would not be.
bool KeyLess(SortClass cls, const Value& a, const Value& b) {
  if (cls == SortClass::kString) return AsString(a)->str < AsString(b)->str;
  bool a_nan = a.IsNumber() && std::isnan(a.as.n);
  bool b_nan = b.IsNumber() && std::isnan(b.as.n);
  if (a_nan || b_nan) return !a_nan;
  int r{};
  CompareValues(a, b, &r);
  return r < 0;
}

// Sorting is a walk too: one unit per key classified and per comparison made. The comparator
// handed to std::stable_sort cannot stop it, so the comparisons (at most n log² n for the n
// keys the memory limit allows) are paid for once it is done.
bool PaySort(Vm& vm, size_t keys, uint64_t comparisons) {
  WalkBudget budget(vm);
  return budget.Charge(keys) && budget.Charge(comparisons) && budget.Settle();
}

bool MinMax(Vm& vm, Value* args, bool want_min, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a)) return false;
  if (a->items.empty()) return vm.Fail(want_min ? "min of empty array" : "max of empty array");
  Value best = a->items[0];
  for (size_t i = 1; i < a->items.size(); ++i) {
    const Value& x = a->items[i];
    int r{};
    if (!CompareValues(x, best, &r)) return FailCompare(vm, best, x);
    if (r == (want_min ? -1 : 1)) best = x;  // kUnordered (NaN) never replaces
  }
  *out = best;
  return true;
}

// An empty result array for `n` two-element pair arrays, after checking they fit the limit.
bool NewPairs(Vm& vm, size_t n, Value* out) {
  if (!CheckAllocArray(vm, n, sizeof(ObjArray) + 3 * sizeof(Value))) return false;
  *out = vm.NewArray();
  return true;
}

}  // namespace

bool ArrayLen(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a)) return false;
  *out = Value::Int(static_cast<int64_t>(a->items.size()));
  return true;
}

bool ArrayPush(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a)) return false;
  a->items.push_back(args[1]);
  vm.Recharge(a);
  *out = Value::None();
  return true;
}

bool ArrayPop(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a)) return false;
  if (a->items.empty()) return vm.Fail("pop from empty array");
  *out = a->items.back();
  a->items.pop_back();
  vm.Recharge(a);
  return true;
}

bool ArrayInsert(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  int64_t i{};
  if (!Receiver(vm, args, &a) || !ArgInt(vm, args[1], &i)) return false;
  auto n = static_cast<int64_t>(a->items.size());
  if (i < 0) i += n;
  if (i < 0 || i > n) return vm.Fail("index out of range");
  a->items.insert(a->items.begin() + i, args[2]);
  vm.Recharge(a);
  *out = Value::None();
  return true;
}

bool ArrayRemove(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  size_t i{};
  if (!Receiver(vm, args, &a) || !ResolveIndex(vm, args[1], a->items.size(), &i)) return false;
  *out = a->items[i];
  a->items.erase(a->items.begin() + static_cast<ptrdiff_t>(i));
  vm.Recharge(a);
  return true;
}

// The position of the first item == `needle`, or items.size(). Every item looked at and every
// comparison's walk is paid for. False when the fuel ran out.
bool FindEqual(Vm& vm, const ObjArray* a, const Value& needle, size_t* at) {
  WalkBudget budget(vm);
  size_t i = 0;
  for (; i < a->items.size(); ++i) {
    bool equal = false;
    if (!budget.Charge(1) || !ValuesEqual(a->items[i], needle, budget, &equal)) return false;
    if (equal) break;
  }
  *at = i;
  return budget.Settle();
}

bool ArrayContains(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  size_t at{};
  if (!Receiver(vm, args, &a) || !FindEqual(vm, a, args[1], &at)) return false;
  *out = Value::Bool(at < a->items.size());
  return true;
}

bool ArrayIndexOf(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  size_t at{};
  if (!Receiver(vm, args, &a) || !FindEqual(vm, a, args[1], &at)) return false;
  *out = at < a->items.size() ? vm.NewSome(Value::Int(static_cast<int64_t>(at))) : Value::None();
  return true;
}

bool ArrayMap(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a) || !ArgCallable(vm, args[1])) return false;
  Value result = vm.NewArray();
  Vm::RootScope roots(vm);
  roots.Add(result);
  ObjArray* r = AsArray(result);
  for (size_t i = 0; i < a->items.size(); ++i) {
    Value x = a->items[i];
    Value y;
    if (!vm.Call(args[1], &x, 1, &y)) return false;
    r->items.push_back(y);
    vm.Recharge(r);
  }
  *out = result;
  return true;
}

bool ArrayFilter(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a) || !ArgCallable(vm, args[1])) return false;
  Value result = vm.NewArray();
  Vm::RootScope roots(vm);
  roots.Add(result);
  ObjArray* r = AsArray(result);
  for (size_t i = 0; i < a->items.size(); ++i) {
    Value x = a->items[i];
    bool keep{};
    if (!CallPredicate(vm, args[1], x, &keep)) return false;
    if (keep) {
      r->items.push_back(x);
      vm.Recharge(r);
    }
  }
  *out = result;
  return true;
}

bool ArrayReduce(Vm& vm, Value* args, int argc, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a) || !ArgCallable(vm, args[1])) return false;
  size_t start = 0;
  Value acc;
  if (argc > 2) {
    acc = args[2];
  } else {
    if (a->items.empty()) return vm.Fail("reduce of empty array");
    acc = a->items[0];
    start = 1;
  }
  // The accumulator lives in a rooted one-slot box between callbacks, so a collection during
  // the next call cannot free it (one root for the whole loop, however long the array).
  Value box = vm.NewArray({acc});
  Vm::RootScope roots(vm);
  roots.Add(box);
  ObjArray* slot = AsArray(box);
  for (size_t i = start; i < a->items.size(); ++i) {
    Value call_args[2] = {slot->items[0], a->items[i]};
    if (!vm.Call(args[1], call_args, 2, &slot->items[0])) return false;
  }
  *out = slot->items[0];
  return true;
}

bool ArraySort(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  SortClass cls{};
  if (!Receiver(vm, args, &a) || !ClassifyKeys(vm, a->items, &cls)) return false;
  uint64_t comparisons = 0;
  std::stable_sort(a->items.begin(), a->items.end(), [&](const Value& x, const Value& y) {
    ++comparisons;
    return KeyLess(cls, x, y);
  });
  *out = args[0];
  return PaySort(vm, a->items.size(), comparisons);
}

bool ArraySortBy(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a) || !ArgCallable(vm, args[1])) return false;
  // Phase 1: compute every key (callbacks run here, nowhere else), keeping them rooted.
  Value keys_value = vm.NewArray();
  Vm::RootScope roots(vm);
  roots.Add(keys_value);
  std::vector<Value>& keys = AsArray(keys_value)->items;
  for (size_t i = 0; i < a->items.size(); ++i) {
    Value x = a->items[i];
    Value k;
    if (!vm.Call(args[1], &x, 1, &k)) return false;
    keys.push_back(k);
    vm.Recharge(AsArray(keys_value));
  }
  if (keys.size() != a->items.size()) return vm.Fail("array modified during sort_by");
  // Phase 2: validate, then sort a permutation with a pure comparator.
  SortClass cls{};
  if (!ClassifyKeys(vm, keys, &cls)) return false;
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), size_t{0});
  uint64_t comparisons = 0;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    ++comparisons;
    return KeyLess(cls, keys[x], keys[y]);
  });
  std::vector<Value> sorted;
  sorted.reserve(order.size());
  for (size_t i : order) sorted.push_back(a->items[i]);
  a->items = std::move(sorted);
  vm.Recharge(a);
  *out = args[0];
  return PaySort(vm, keys.size(), comparisons);
}

bool ArrayReverse(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a)) return false;
  std::reverse(a->items.begin(), a->items.end());
  *out = args[0];
  return true;
}

bool ArrayJoin(Vm& vm, Value* args, int argc, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a)) return false;
  std::string_view sep{};
  if (argc > 1) {
    const ObjString* s = nullptr;
    if (!ArgString(vm, args[1], &s)) return false;
    sep = s->str;
  }
  WalkBudget budget(vm);
  if (!budget.Charge(a->items.size())) return false;
  std::string r;
  for (size_t i = 0; i < a->items.size(); ++i) {
    if (i > 0) {
      if (!budget.Grow(r.size() + sep.size())) return false;
      r.append(sep);
    }
    if (!AppendValue(&r, a->items[i], /*quoted=*/false, budget)) return false;
  }
  if (!budget.Settle(r.size())) return false;
  *out = vm.NewString(std::move(r));
  return true;
}

bool ArraySlice(Vm& vm, Value* args, int argc, Value* out) {
  ObjArray* a = nullptr;
  size_t lo{}, hi{};
  if (!Receiver(vm, args, &a) ||
      !ResolveSlice(vm, args[1], argc > 2 ? &args[2] : nullptr, a->items.size(), &lo, &hi))
    return false;
  *out = vm.NewArray(std::vector<Value>(a->items.begin() + static_cast<ptrdiff_t>(lo),
                                        a->items.begin() + static_cast<ptrdiff_t>(hi)));
  return true;
}

bool ArraySum(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a)) return false;
  int64_t isum = 0;
  double dsum = 0;
  bool is_float = false;
  for (const Value& x : a->items) {
    if (!x.IsNumeric()) {
      return vm.Fail(fmt::format("unsupported operand types for +: {} and {}",
                                 is_float ? "number" : "int", TypeName(x)));
    }
    if (!is_float && x.IsInt()) {
      if (__builtin_add_overflow(isum, x.as.i, &isum)) return vm.Fail("integer overflow");
      continue;
    }
    if (!is_float) {
      is_float = true;
      dsum = static_cast<double>(isum);
    }
    dsum += x.AsDouble();
  }
  *out = is_float ? Value::Number(dsum) : Value::Int(isum);
  return true;
}

bool ArrayMin(Vm& vm, Value* args, int /*argc*/, Value* out) {
  return MinMax(vm, args, /*want_min=*/true, out);
}

bool ArrayMax(Vm& vm, Value* args, int /*argc*/, Value* out) {
  return MinMax(vm, args, /*want_min=*/false, out);
}

bool ArrayAny(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a) || !ArgCallable(vm, args[1])) return false;
  for (size_t i = 0; i < a->items.size(); ++i) {
    bool hit{};
    if (!CallPredicate(vm, args[1], a->items[i], &hit)) return false;
    if (hit) {
      *out = Value::Bool(true);
      return true;
    }
  }
  *out = Value::Bool(false);
  return true;
}

bool ArrayAll(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  if (!Receiver(vm, args, &a) || !ArgCallable(vm, args[1])) return false;
  for (size_t i = 0; i < a->items.size(); ++i) {
    bool hit{};
    if (!CallPredicate(vm, args[1], a->items[i], &hit)) return false;
    if (!hit) {
      *out = Value::Bool(false);
      return true;
    }
  }
  *out = Value::Bool(true);
  return true;
}

bool ArrayEnumerate(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray* a = nullptr;
  Value result;
  if (!Receiver(vm, args, &a) || !NewPairs(vm, a->items.size(), &result)) return false;
  ObjArray* r = AsArray(result);
  r->items.reserve(a->items.size());
  for (size_t i = 0; i < a->items.size(); ++i)
    r->items.push_back(vm.NewArray({Value::Int(static_cast<int64_t>(i)), a->items[i]}));
  vm.Recharge(r);
  *out = result;
  return true;
}

bool ArrayZip(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjArray *a, *b;
  if (!Receiver(vm, args, &a) || !ArgArray(vm, args[1], &b)) return false;
  size_t n = std::min(a->items.size(), b->items.size());
  Value result;
  if (!NewPairs(vm, n, &result)) return false;
  ObjArray* r = AsArray(result);
  r->items.reserve(n);
  for (size_t i = 0; i < n; ++i) r->items.push_back(vm.NewArray({a->items[i], b->items[i]}));
  vm.Recharge(r);
  *out = result;
  return true;
}

}  // namespace shapex::engine
