// THE registration table of the standard library: every native, once, with its qualified name
// (which is also how blobs name it), argument bounds and method flag. Lookups go through hash
// indexes built on first use (function-local statics: thread-safe initialisation, immutable
// afterwards, so any number of VMs on any threads may share them).
#include <cassert>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "natives_impl.h"
#include "shapex/engine/natives.h"
#include "shapex/engine/program.h"

namespace shapex::engine {
namespace {

constexpr int kVariadic = -1;
constexpr bool kMethod = true;
constexpr bool kFree = false;  // global, module member or static function

// clang-format off
const NativeDef kNatives[] = {
    // ---- globals ----
    {"print", NativePrint, 0, kVariadic, kFree},
    {"assert", NativeAssert, 1, 2, kFree},
    {"panic", NativePanic, 1, 1, kFree},
    {"str", NativeStr, 1, 1, kFree},
    {"int", NativeInt, 1, 1, kFree},
    {"number", NativeNumber, 1, 1, kFree},
    {"type_of", NativeTypeOf, 1, 1, kFree},
    {"range", NativeRange, 2, 2, kFree},
    {"pmap", NativePmap, 2, 2, kFree},
    {"len", NativeLen, 1, 1, kFree},
    // ---- every value ----
    {"Any.to_string", AnyToString, 0, 0, kMethod},
    // ---- String ----
    {"String.len", StringLen, 0, 0, kMethod},
    {"String.chars", StringChars, 0, 0, kMethod},
    {"String.upper", StringUpper, 0, 0, kMethod},
    {"String.lower", StringLower, 0, 0, kMethod},
    {"String.trim", StringTrim, 0, 0, kMethod},
    {"String.split", StringSplit, 0, 1, kMethod},
    {"String.contains", StringContains, 1, 1, kMethod},
    {"String.starts_with", StringStartsWith, 1, 1, kMethod},
    {"String.ends_with", StringEndsWith, 1, 1, kMethod},
    {"String.replace", StringReplace, 2, 2, kMethod},
    {"String.find", StringFind, 1, 1, kMethod},
    {"String.slice", StringSlice, 1, 2, kMethod},
    {"String.repeat", StringRepeat, 1, 1, kMethod},
    {"String.to_int", StringToInt, 0, 0, kMethod},
    {"String.to_number", StringToNumber, 0, 0, kMethod},
    // ---- Array ----
    {"Array.len", ArrayLen, 0, 0, kMethod},
    {"Array.push", ArrayPush, 1, 1, kMethod},
    {"Array.pop", ArrayPop, 0, 0, kMethod},
    {"Array.insert", ArrayInsert, 2, 2, kMethod},
    {"Array.remove", ArrayRemove, 1, 1, kMethod},
    {"Array.contains", ArrayContains, 1, 1, kMethod},
    {"Array.index_of", ArrayIndexOf, 1, 1, kMethod},
    {"Array.map", ArrayMap, 1, 1, kMethod},
    {"Array.filter", ArrayFilter, 1, 1, kMethod},
    {"Array.reduce", ArrayReduce, 1, 2, kMethod},
    {"Array.sort", ArraySort, 0, 0, kMethod},
    {"Array.sort_by", ArraySortBy, 1, 1, kMethod},
    {"Array.reverse", ArrayReverse, 0, 0, kMethod},
    {"Array.join", ArrayJoin, 0, 1, kMethod},
    {"Array.slice", ArraySlice, 1, 2, kMethod},
    {"Array.sum", ArraySum, 0, 0, kMethod},
    {"Array.min", ArrayMin, 0, 0, kMethod},
    {"Array.max", ArrayMax, 0, 0, kMethod},
    {"Array.any", ArrayAny, 1, 1, kMethod},
    {"Array.all", ArrayAll, 1, 1, kMethod},
    {"Array.enumerate", ArrayEnumerate, 0, 0, kMethod},
    {"Array.zip", ArrayZip, 1, 1, kMethod},
    // ---- HashMap ----
    {"Map.len", MapLen, 0, 0, kMethod},
    {"Map.get", MapGet, 1, 1, kMethod},
    {"Map.has", MapHas, 1, 1, kMethod},
    {"Map.set", MapSet, 2, 2, kMethod},
    {"Map.remove", MapRemove, 1, 1, kMethod},
    {"Map.keys", MapKeys, 0, 0, kMethod},
    {"Map.values", MapValues, 0, 0, kMethod},
    {"Map.items", MapItems, 0, 0, kMethod},
    // ---- Option / Result ----
    {"Option.unwrap", OptionUnwrap, 0, 0, kMethod},
    {"Option.unwrap_or", OptionUnwrapOr, 1, 1, kMethod},
    {"Option.expect", OptionExpect, 1, 1, kMethod},
    {"Option.is_some", OptionIsSome, 0, 0, kMethod},
    {"Option.is_none", OptionIsNone, 0, 0, kMethod},
    {"Option.map", OptionMap, 1, 1, kMethod},
    {"Result.unwrap", ResultUnwrap, 0, 0, kMethod},
    {"Result.unwrap_or", ResultUnwrapOr, 1, 1, kMethod},
    {"Result.expect", ResultExpect, 1, 1, kMethod},
    {"Result.is_ok", ResultIsOk, 0, 0, kMethod},
    {"Result.is_err", ResultIsErr, 0, 0, kMethod},
    {"Result.map", ResultMap, 1, 1, kMethod},
    // ---- Range ----
    {"Range.step", RangeStep, 1, 1, kMethod},
    {"Range.len", RangeLen, 0, 0, kMethod},
    {"Range.contains", RangeContains, 1, 1, kMethod},
    {"Range.to_array", RangeToArray, 0, 0, kMethod},
    // ---- typed arrays: constructors Vec::f64(n | array) ... ----
    {"Vec.f64", VecNewF64, 1, 1, kFree},
    {"Vec.f32", VecNewF32, 1, 1, kFree},
    {"Vec.i64", VecNewI64, 1, 1, kFree},
    {"Vec.i32", VecNewI32, 1, 1, kFree},
    {"Vec.i16", VecNewI16, 1, 1, kFree},
    {"Vec.i8", VecNewI8, 1, 1, kFree},
    {"Vec.u8", VecNewU8, 1, 1, kFree},
    {"Vec.bool", VecNewBool, 1, 1, kFree},
    // ---- typed arrays: methods ----
    {"Vec.len", VecLen, 0, 0, kMethod},
    {"Vec.sum", VecSum, 0, 0, kMethod},
    {"Vec.dot", VecDot, 1, 1, kMethod},
    {"Vec.mean", VecMean, 0, 0, kMethod},
    {"Vec.min", VecMin, 0, 0, kMethod},
    {"Vec.max", VecMax, 0, 0, kMethod},
    {"Vec.map", VecMap, 1, 1, kMethod},
    {"Vec.fill", VecFill, 1, 1, kMethod},
    {"Vec.slice", VecSlice, 1, 2, kMethod},
    {"Vec.to_array", VecToArray, 0, 0, kMethod},
    // ---- Matrix ----
    {"Matrix.zeros", MatrixZeros, 2, 2, kFree},
    {"Matrix.from", MatrixFrom, 3, 3, kFree},
    {"Matrix.identity", MatrixIdentity, 1, 1, kFree},
    {"Matrix.rows", MatrixRows, 0, 0, kMethod},
    {"Matrix.cols", MatrixCols, 0, 0, kMethod},
    {"Matrix.get", MatrixGet, 2, 2, kMethod},
    {"Matrix.set", MatrixSet, 3, 3, kMethod},
    {"Matrix.row", MatrixRow, 1, 1, kMethod},
    {"Matrix.transpose", MatrixTranspose, 0, 0, kMethod},
    {"Matrix.matmul", MatrixMatmul, 1, 1, kMethod},
    {"Matrix.sum", MatrixSum, 0, 0, kMethod},
    // ---- math ----
    {"math.sqrt", MathSqrt, 1, 1, kFree},
    {"math.sin", MathSin, 1, 1, kFree},
    {"math.cos", MathCos, 1, 1, kFree},
    {"math.tan", MathTan, 1, 1, kFree},
    {"math.exp", MathExp, 1, 1, kFree},
    {"math.log", MathLog, 1, 1, kFree},
    {"math.pow", MathPow, 2, 2, kFree},
    {"math.floor", MathFloor, 1, 1, kFree},
    {"math.ceil", MathCeil, 1, 1, kFree},
    {"math.round", MathRound, 1, 1, kFree},
    {"math.abs", MathAbs, 1, 1, kFree},
    {"math.min", MathMin, 2, 2, kFree},
    {"math.max", MathMax, 2, 2, kFree},
    {"math.is_nan", MathIsNan, 1, 1, kFree},
};
// clang-format on

constexpr size_t kNumNatives = sizeof(kNatives) / sizeof(kNatives[0]);

struct Indexes {
  std::unordered_map<std::string_view, const NativeDef*> all;
  std::unordered_map<std::string_view, const NativeDef*> methods;  // method entries only
};

// Natives added by RegisterExtraNatives before the indexes were built (test binaries only).
std::vector<NativeDef>& ExtraNatives() {
  static auto* extra = new std::vector<NativeDef>;
  return *extra;
}
bool indexes_built = false;

const Indexes& GetIndexes() {
  static const Indexes* indexes = [] {
    auto* ix = new Indexes;  // never destroyed: lookups may run during static destruction
    ix->all.reserve(kNumNatives + ExtraNatives().size());
    indexes_built = true;
    for (const NativeDef& def : ExtraNatives()) {
      ix->all.emplace(def.name, &def);
      if (def.method) ix->methods.emplace(def.name, &def);
    }
    for (const NativeDef& def : kNatives) {
      bool inserted = ix->all.emplace(def.name, &def).second;
      assert(inserted && "duplicate native name in kNatives");
      (void)inserted;
      if (def.method) ix->methods.emplace(def.name, &def);
    }
    return ix;
  }();
  return *indexes;
}

const NativeDef* FindQualifiedMethod(std::string_view ns, std::string_view name) {
  // Build "<ns>.<name>" on the stack: method lookup must not allocate. Every qualified name
  // in the table is far shorter than the buffer, so a longer key cannot match anyway.
  char key[128];
  size_t len = ns.size() + 1 + name.size();
  if (ns.empty() || len > sizeof(key)) return nullptr;
  std::memcpy(key, ns.data(), ns.size());
  key[ns.size()] = '.';
  std::memcpy(key + ns.size() + 1, name.data(), name.size());
  const auto& methods = GetIndexes().methods;
  auto it = methods.find(std::string_view(key, len));
  return it == methods.end() ? nullptr : it->second;
}

}  // namespace

bool RegisterExtraNatives(std::span<const NativeDef> defs) {
  if (indexes_built) return false;
  for (const NativeDef& def : defs) ExtraNatives().push_back(def);
  return true;
}

const NativeDef* FindNative(std::string_view qualified_name) {
  const auto& all = GetIndexes().all;
  auto it = all.find(qualified_name);
  return it == all.end() ? nullptr : it->second;
}

std::string_view MethodNamespace(const Value& receiver) {
  switch (receiver.type) {
    case Type::kNone:  // the Option None
      return "Option";
    case Type::kString:
      return "String";
    case Type::kArray:
      return "Array";
    case Type::kMap:
      return "Map";
    case Type::kRange:
      return "Range";
    case Type::kTypedArray:
      return "Vec";
    case Type::kMatrix:
      return "Matrix";
    case Type::kEnum: {
      const EnumType* t = AsEnum(receiver)->etype;
      if (t == OptionType()) return "Option";
      if (t == ResultType()) return "Result";
      return "";
    }
    default:
      return "";
  }
}

const NativeDef* FindMethod(const Value& receiver, std::string_view name) {
  if (const NativeDef* def = FindQualifiedMethod(MethodNamespace(receiver), name)) return def;
  return FindQualifiedMethod("Any", name);
}

const NativeDef* AllNatives(size_t* count) {
  *count = kNumNatives;
  return kNatives;
}

}  // namespace shapex::engine
