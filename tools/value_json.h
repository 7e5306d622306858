// The JSON form of a Shape value, for `shapex call --json` (docs/cli-json.md "Values" is the
// specification; keep the two in step).
//
//   ValueJsonOptions options;
//   options.hash_of = [&](const engine::Proto& p) { return hashes.Of(p); };   // optional
//   Json json;
//   if (!ValueToJson(vm, result, options, &json)) report(vm.last_error());
//
// In short: None is null, Bool and String are themselves, an Int within ±2^53 and a finite
// Number are JSON numbers (a Number always has a fraction or exponent: 2.0), an Array is an
// array, and a HashMap whose keys are all strings (none starting with '$') is an object in
// insertion order. Everything else is a tagged object whose first member's name starts with
// '$': {"$int": "9007199254740993"}, {"$number": "NaN"}, {"$map": [[1, "a"], ...]},
// {"$struct": "Point", "x": 1.0, ...}, {"$enum": "Option", "variant": "Some", "payload": [3]},
// {"$range": "0..5", ...}, {"$function": "add", "hash": "..."}, {"$closure": ...},
// {"$native": "math.sqrt"}, {"$vec": "f64", "data": [...]}, {"$matrix": [2, 2], "data": ...},
// {"$ref": "/0"} for a container met again inside itself (a cycle; the value is an RFC 6901
// JSON Pointer into the converted value), {"$truncated": "array"} past kMaxJsonDepth.
// Sharing without a cycle is written out in full at each place, as printing does.
//
// The walk pays like printing (engine::WalkBudget): one unit of fuel per element visited, and
// the tree it builds counts against the memory limit as it grows (at an estimate of what the
// tree holds, kJsonNodeBytes per value plus the bytes of its strings), so a DAG whose expansion
// is exponential stops with ResourceExhausted (or Timeout) instead of exhausting the process.
//
// Thread-safety: as the Vm the value belongs to.
#ifndef SHAPEX_TOOLS_VALUE_JSON_H_
#define SHAPEX_TOOLS_VALUE_JSON_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "json_output.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"

namespace shapex::cli {

// Ints with a magnitude up to this are JSON numbers; beyond it a double (what most JSON readers
// turn a number into) could not hold them exactly.
inline constexpr int64_t kMaxExactJsonInt = int64_t{1} << 53;
// Containers nested deeper than this become {"$truncated": TYPE} (printing shows "[...]"
// past 64 levels too); it bounds the native stack of the walk and of the dump.
inline constexpr size_t kMaxJsonDepth = 64;
// What one converted value is taken to hold, for the memory check (a json node, its share of
// its container, allocation overhead).
inline constexpr size_t kJsonNodeBytes = 48;

struct ValueJsonOptions {
  // The content hash of a compiled function's code (the "hash" of functions and closures);
  // unset, or nullopt for a proto it does not know: "hash": null.
  std::function<std::optional<engine::FunctionHash>(const engine::Proto&)> hash_of;
};

// Converts `v`, paid for by `budget`: false when the budget refused (*out is then partial).
// On success, *built (if given) is the estimated size of the tree for WalkBudget::Settle.
bool ValueToJson(const engine::Value& v, engine::WalkBudget& budget,
                 const ValueJsonOptions& options, Json* out, size_t* built = nullptr);
// One paid and settled conversion for `vm`: false with the Vm's error set.
bool ValueToJson(engine::Vm& vm, const engine::Value& v, const ValueJsonOptions& options,
                 Json* out);

// The content hashes of `program`'s functions, computed on first use (BuildProgramBlobs):
// what ValueJsonOptions::hash_of wants for the values of a program's Vm.
class ProgramHashes {
 public:
  explicit ProgramHashes(const engine::Program& program) : program_(program) {}
  std::optional<engine::FunctionHash> Of(const engine::Proto& proto);

 private:
  const engine::Program& program_;
  bool built_ = false;
  std::vector<engine::FunctionHash> hashes_;  // by proto index; empty if building failed
};

}  // namespace shapex::cli

#endif  // SHAPEX_TOOLS_VALUE_JSON_H_
