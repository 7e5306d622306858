// Private to engine/: the C++ functions behind the standard library, the argument-checking
// helpers they share, and the typed-array / matrix arithmetic the interpreter calls for
// elementwise operators.
//
// Every native has the NativeFn signature and is listed once in kNatives (natives_table.cc).
// Conventions (see vm.h for allocation, errors and GC rooting):
//   * `args[0 .. argc)` are all the values passed; for methods args[0] is the receiver, so a
//     method with one declared argument sees argc == 2. The VM has already checked argc
//     against the table's min_args/max_args.
//   * An argument of the wrong kind is an ArgumentError ("expected int, got string"); a
//     well-typed argument that makes the operation fail is a RuntimeError via vm.Fail()
//     ("index out of range").
#ifndef SHAPEX_ENGINE_NATIVES_IMPL_H_
#define SHAPEX_ENGINE_NATIVES_IMPL_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shapex/engine/natives.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"

namespace shapex::engine {

// ---------------- shared helpers (natives_core.cc) ----------------

// ArgumentError "expected <expected>, got <type of got>"; returns false.
bool FailType(Vm& vm, std::string_view expected, const Value& got);
bool ArgInt(Vm& vm, const Value& v, int64_t* out);
bool ArgNumber(Vm& vm, const Value& v, double* out);  // Int or Number
bool ArgBool(Vm& vm, const Value& v, bool* out);
bool ArgString(Vm& vm, const Value& v, const ObjString** out);
bool ArgArray(Vm& vm, const Value& v, ObjArray** out);
bool ArgCallable(Vm& vm, const Value& v);
// An Int index (negative counts from the end) resolved into [0, len), else RuntimeError
// "index out of range".
bool ResolveIndex(Vm& vm, const Value& index, size_t len, size_t* out);
// Slice bounds [start, end) for slice(a, b?): negative values count from the end, a missing
// end means len; anything outside 0 <= a <= b <= len is "index out of range".
bool ResolveSlice(Vm& vm, const Value& start, const Value* end, size_t len, size_t* a, size_t* b);
// Checks that `count` elements of `elem_size` bytes fit the VM's memory limit (ResourceExhausted
// otherwise), without overflowing the multiplication. Use before building big results.
bool CheckAllocArray(Vm& vm, uint64_t count, size_t elem_size);
// Calls `fn(x)` and requires a Bool result (RuntimeError "condition must be bool").
bool CallPredicate(Vm& vm, const Value& fn, const Value& x, bool* result);
// str(x): strings unchanged, everything else in print's form.
bool StrValue(Vm& vm, const Value& v, Value* out);
// RuntimeError "<prefix><v printed><suffix>" (panic, assert, expect, unwrap). The printing is
// paid for like print's: it may fail with ResourceExhausted instead. Returns false.
bool FailWithValue(Vm& vm, std::string_view prefix, const Value& v, bool quoted = false,
                   std::string_view suffix = {});

// ---------------- typed arrays (natives_typed.cc) and matrices (natives_matrix.cc) ---------

// v[i] as a double, for every element kind (bool: 0/1).
double ElemAsDouble(const ObjTypedArray* v, size_t i);

// Stores `x` into v[i] with the element kind's conversion and range checks (RuntimeError
// "expected int, got number", "value 300 out of range for u8", ...). `i` must be < length.
bool StoreElem(Vm& vm, ObjTypedArray* v, size_t i, const Value& x);
// Elementwise `a op b` (op one of + - * /) where a or b is a typed array and the other a typed
// array of the same length or an Int/Number scalar. Result kinds follow decisions.md #17.
bool TypedBinary(Vm& vm, char op, const Value& a, const Value& b, Value* out);
// Elementwise `a op b` where a or b is a Matrix and the other a Matrix of the same shape or a
// scalar.
bool MatrixBinary(Vm& vm, char op, const Value& a, const Value& b, Value* out);

// ---------------- the natives ----------------
// clang-format off

// Globals and Any (natives_core.cc).
bool NativePrint(Vm& vm, Value* args, int argc, Value* out);
bool NativeAssert(Vm& vm, Value* args, int argc, Value* out);
bool NativePanic(Vm& vm, Value* args, int argc, Value* out);
bool NativeStr(Vm& vm, Value* args, int argc, Value* out);
bool NativeInt(Vm& vm, Value* args, int argc, Value* out);
bool NativeNumber(Vm& vm, Value* args, int argc, Value* out);
bool NativeTypeOf(Vm& vm, Value* args, int argc, Value* out);
bool NativeRange(Vm& vm, Value* args, int argc, Value* out);
bool NativePmap(Vm& vm, Value* args, int argc, Value* out);
bool NativeLen(Vm& vm, Value* args, int argc, Value* out);
bool AnyToString(Vm& vm, Value* args, int argc, Value* out);

// String (natives_string.cc).
bool StringLen(Vm& vm, Value* args, int argc, Value* out);
bool StringChars(Vm& vm, Value* args, int argc, Value* out);
bool StringUpper(Vm& vm, Value* args, int argc, Value* out);
bool StringLower(Vm& vm, Value* args, int argc, Value* out);
bool StringTrim(Vm& vm, Value* args, int argc, Value* out);
bool StringSplit(Vm& vm, Value* args, int argc, Value* out);
bool StringContains(Vm& vm, Value* args, int argc, Value* out);
bool StringStartsWith(Vm& vm, Value* args, int argc, Value* out);
bool StringEndsWith(Vm& vm, Value* args, int argc, Value* out);
bool StringReplace(Vm& vm, Value* args, int argc, Value* out);
bool StringFind(Vm& vm, Value* args, int argc, Value* out);
bool StringSlice(Vm& vm, Value* args, int argc, Value* out);
bool StringRepeat(Vm& vm, Value* args, int argc, Value* out);
bool StringToInt(Vm& vm, Value* args, int argc, Value* out);
bool StringToNumber(Vm& vm, Value* args, int argc, Value* out);
// Parsers shared with int()/number(): trimmed input, whole string must parse.
bool ParseInt(std::string_view s, int64_t* out);
bool ParseNumber(std::string_view s, double* out);

// Array (natives_array.cc).
bool ArrayLen(Vm& vm, Value* args, int argc, Value* out);
bool ArrayPush(Vm& vm, Value* args, int argc, Value* out);
bool ArrayPop(Vm& vm, Value* args, int argc, Value* out);
bool ArrayInsert(Vm& vm, Value* args, int argc, Value* out);
bool ArrayRemove(Vm& vm, Value* args, int argc, Value* out);
bool ArrayContains(Vm& vm, Value* args, int argc, Value* out);
bool ArrayIndexOf(Vm& vm, Value* args, int argc, Value* out);
bool ArrayMap(Vm& vm, Value* args, int argc, Value* out);
bool ArrayFilter(Vm& vm, Value* args, int argc, Value* out);
bool ArrayReduce(Vm& vm, Value* args, int argc, Value* out);
bool ArraySort(Vm& vm, Value* args, int argc, Value* out);
bool ArraySortBy(Vm& vm, Value* args, int argc, Value* out);
bool ArrayReverse(Vm& vm, Value* args, int argc, Value* out);
bool ArrayJoin(Vm& vm, Value* args, int argc, Value* out);
bool ArraySlice(Vm& vm, Value* args, int argc, Value* out);
bool ArraySum(Vm& vm, Value* args, int argc, Value* out);
bool ArrayMin(Vm& vm, Value* args, int argc, Value* out);
bool ArrayMax(Vm& vm, Value* args, int argc, Value* out);
bool ArrayAny(Vm& vm, Value* args, int argc, Value* out);
bool ArrayAll(Vm& vm, Value* args, int argc, Value* out);
bool ArrayEnumerate(Vm& vm, Value* args, int argc, Value* out);
bool ArrayZip(Vm& vm, Value* args, int argc, Value* out);

// HashMap (natives_map.cc).
bool MapLen(Vm& vm, Value* args, int argc, Value* out);
bool MapGet(Vm& vm, Value* args, int argc, Value* out);
bool MapHas(Vm& vm, Value* args, int argc, Value* out);
bool MapSet(Vm& vm, Value* args, int argc, Value* out);
bool MapRemove(Vm& vm, Value* args, int argc, Value* out);
bool MapKeys(Vm& vm, Value* args, int argc, Value* out);
bool MapValues(Vm& vm, Value* args, int argc, Value* out);
bool MapItems(Vm& vm, Value* args, int argc, Value* out);
// RuntimeError "invalid map key" unless ValidKey(key).
bool CheckMapKey(Vm& vm, const Value& key);

// Option and Result (natives_option.cc).
bool OptionUnwrap(Vm& vm, Value* args, int argc, Value* out);
bool OptionUnwrapOr(Vm& vm, Value* args, int argc, Value* out);
bool OptionExpect(Vm& vm, Value* args, int argc, Value* out);
bool OptionIsSome(Vm& vm, Value* args, int argc, Value* out);
bool OptionIsNone(Vm& vm, Value* args, int argc, Value* out);
bool OptionMap(Vm& vm, Value* args, int argc, Value* out);
bool ResultUnwrap(Vm& vm, Value* args, int argc, Value* out);
bool ResultUnwrapOr(Vm& vm, Value* args, int argc, Value* out);
bool ResultExpect(Vm& vm, Value* args, int argc, Value* out);
bool ResultIsOk(Vm& vm, Value* args, int argc, Value* out);
bool ResultIsErr(Vm& vm, Value* args, int argc, Value* out);
bool ResultMap(Vm& vm, Value* args, int argc, Value* out);

// Typed arrays: constructors Vec::f64(..) etc. and methods (natives_typed.cc).
bool VecNewF64(Vm& vm, Value* args, int argc, Value* out);
bool VecNewF32(Vm& vm, Value* args, int argc, Value* out);
bool VecNewI64(Vm& vm, Value* args, int argc, Value* out);
bool VecNewI32(Vm& vm, Value* args, int argc, Value* out);
bool VecNewI16(Vm& vm, Value* args, int argc, Value* out);
bool VecNewI8(Vm& vm, Value* args, int argc, Value* out);
bool VecNewU8(Vm& vm, Value* args, int argc, Value* out);
bool VecNewBool(Vm& vm, Value* args, int argc, Value* out);
bool VecLen(Vm& vm, Value* args, int argc, Value* out);
bool VecSum(Vm& vm, Value* args, int argc, Value* out);
bool VecDot(Vm& vm, Value* args, int argc, Value* out);
bool VecMean(Vm& vm, Value* args, int argc, Value* out);
bool VecMin(Vm& vm, Value* args, int argc, Value* out);
bool VecMax(Vm& vm, Value* args, int argc, Value* out);
bool VecMap(Vm& vm, Value* args, int argc, Value* out);
bool VecFill(Vm& vm, Value* args, int argc, Value* out);
bool VecSlice(Vm& vm, Value* args, int argc, Value* out);
bool VecToArray(Vm& vm, Value* args, int argc, Value* out);

// Matrix statics and methods (natives_matrix.cc).
bool MatrixZeros(Vm& vm, Value* args, int argc, Value* out);
bool MatrixFrom(Vm& vm, Value* args, int argc, Value* out);
bool MatrixIdentity(Vm& vm, Value* args, int argc, Value* out);
bool MatrixRows(Vm& vm, Value* args, int argc, Value* out);
bool MatrixCols(Vm& vm, Value* args, int argc, Value* out);
bool MatrixGet(Vm& vm, Value* args, int argc, Value* out);
bool MatrixSet(Vm& vm, Value* args, int argc, Value* out);
bool MatrixRow(Vm& vm, Value* args, int argc, Value* out);
bool MatrixTranspose(Vm& vm, Value* args, int argc, Value* out);
bool MatrixMatmul(Vm& vm, Value* args, int argc, Value* out);
bool MatrixSum(Vm& vm, Value* args, int argc, Value* out);

// Range methods (natives_core.cc, next to the range() global).
bool RangeStep(Vm& vm, Value* args, int argc, Value* out);
bool RangeLen(Vm& vm, Value* args, int argc, Value* out);
bool RangeContains(Vm& vm, Value* args, int argc, Value* out);
bool RangeToArray(Vm& vm, Value* args, int argc, Value* out);

// math (natives_math.cc).
bool MathSqrt(Vm& vm, Value* args, int argc, Value* out);
bool MathSin(Vm& vm, Value* args, int argc, Value* out);
bool MathCos(Vm& vm, Value* args, int argc, Value* out);
bool MathTan(Vm& vm, Value* args, int argc, Value* out);
bool MathExp(Vm& vm, Value* args, int argc, Value* out);
bool MathLog(Vm& vm, Value* args, int argc, Value* out);
bool MathPow(Vm& vm, Value* args, int argc, Value* out);
bool MathFloor(Vm& vm, Value* args, int argc, Value* out);
bool MathCeil(Vm& vm, Value* args, int argc, Value* out);
bool MathRound(Vm& vm, Value* args, int argc, Value* out);
bool MathAbs(Vm& vm, Value* args, int argc, Value* out);
bool MathMin(Vm& vm, Value* args, int argc, Value* out);
bool MathMax(Vm& vm, Value* args, int argc, Value* out);
bool MathIsNan(Vm& vm, Value* args, int argc, Value* out);

// clang-format on

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_NATIVES_IMPL_H_
