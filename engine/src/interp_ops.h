// Slow paths of the interpreter's instructions: everything beyond the Int/Number fast paths
// that interpreter.cc inlines. Each returns false with the VM's error set.
#ifndef SHAPEX_ENGINE_INTERP_OPS_H_
#define SHAPEX_ENGINE_INTERP_OPS_H_

#include "format_spec.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"

namespace shapex::engine {

// op: + - * / % and 'p' (**), '&', '|', '^', 'l' (<<), 'r' (>>).
bool ArithSlow(Vm& vm, char op, const Value& a, const Value& b, Value* out);
bool CompareOrFail(Vm& vm, const Value& a, const Value& b, int* cmp);
// `a == b` (EQ, NE, TEQ): same-type scalars, identical objects and different types (other than
// Int and Number) inline (what EqualAt answers for them, at no fuel), anything else a walk paid
// for by the VM's fuel.
inline bool EqualOrFail(Vm& vm, const Value& a, const Value& b, bool* equal) {
  if (a.type == b.type) {
    switch (a.type) {
      case Type::kInt: *equal = a.as.i == b.as.i; return true;
      case Type::kNumber: *equal = a.as.n == b.as.n; return true;  // NaN != NaN
      case Type::kNone: *equal = true; return true;
      case Type::kBool: *equal = a.as.b == b.as.b; return true;
      default:
        if (a.IsObject() && a.as.o == b.as.o) {
          *equal = true;
          return true;
        }
        break;
    }
  } else if (!(a.IsNumeric() && b.IsNumeric())) {  // e.g. `node == None`
    *equal = false;
    return true;
  }
  return ValuesEqual(vm, a, b, equal);
}
// BUILDSTR: parts[0 .. n) printed one after another into a new String (f-strings).
bool BuildString(Vm& vm, const Value* parts, uint32_t n, Value* out);
// GETGLOBAL of a global whose let/var has not run: RuntimeError "'y' is read before its 'let'
// has run". Returns false.
bool FailUnsetGlobal(Vm& vm, uint32_t slot);
// NOMATCH: RuntimeError "no match arm for <v>" (or ResourceExhausted printing v). Returns false.
bool FailNoMatch(Vm& vm, const Value& v);
bool IndexGet(Vm& vm, const Value& container, const Value& index, Value* out);
bool IndexSet(Vm& vm, const Value& container, const Value& index, const Value& v);
bool IndexGet2(Vm& vm, const Value& container, const Value& i, const Value& j, Value* out);
bool IndexSet2(Vm& vm, const Value& container, const Value& i, const Value& j, const Value& v);
// r[0] = iterable, r[1] = Int state, r[2] receives the element. *done when exhausted.
bool IterNext(Vm& vm, Value* r, bool* done);
// 0xFFFF = Option, 0xFFFE = Result, else program.enums[id] (verified in range).
const EnumType* EnumTypeFor(const Program& p, uint32_t id);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_INTERP_OPS_H_
