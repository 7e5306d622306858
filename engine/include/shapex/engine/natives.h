// Natives: the standard library, written in C++ and listed in ONE registration table
// (engine/src/natives_table.cc). Each native has a qualified name, which is also how blobs
// name it:
//
//   global functions   "print", "len", "str", ...
//   module members     "math.sqrt", ...
//   static functions   "Vec.f64", "Matrix.zeros", ...      (called as Vec::f64(..))
//   methods            "Array.push", "String.len", "Map.get", "Option.unwrap", "Result.map",
//                      "Range.step", "Vec.sum" (typed arrays), "Matrix.rows",
//                      "Any.to_string" (every value)
//
// A method receives its receiver as args[0]; min_args/max_args count the arguments *after* the
// receiver. max_args = -1 means variadic. See vm.h for the rules natives follow (errors,
// allocation, GC rooting).
#ifndef SHAPEX_ENGINE_NATIVES_H_
#define SHAPEX_ENGINE_NATIVES_H_

#include <span>
#include <string_view>

#include "shapex/engine/value.h"

namespace shapex::engine {

class Vm;

using NativeFn = bool (*)(Vm& vm, Value* args, int argc, Value* out);

struct NativeDef {
  const char* name;  // qualified name
  NativeFn fn;
  int min_args;
  int max_args;  // -1: variadic
  bool method;   // true: args[0] is the receiver
};

// Adds natives for this process, e.g. the `test.*` natives of the test-only executor binary
// (tests/testing/test_natives.h); never used by the shipped binaries. Only before anything has
// looked a native up (compiling, linking or running code): false (and nothing added) after.
// Names must not collide with the standard library's. `defs` must outlive the process.
bool RegisterExtraNatives(std::span<const NativeDef> defs);

// Looks up a native by qualified name; nullptr if there is none.
const NativeDef* FindNative(std::string_view qualified_name);
// Looks up the method `name` for a receiver value (type namespace first, then "Any").
const NativeDef* FindMethod(const Value& receiver, std::string_view name);
// The namespace used for a receiver's methods: "Array", "String", "Option", ...
std::string_view MethodNamespace(const Value& receiver);
// The whole table (for listing and tests).
const NativeDef* AllNatives(size_t* count);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_NATIVES_H_
