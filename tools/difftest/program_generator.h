// A generator of random, valid, terminating Shape programs for differential testing
// (issue 12, Build 5; the habit of CSmith and Wasmtime's differential fuzzing).
//
//   GeneratedProgram p = GenerateProgram(seed);
//   write p.source to a file, run `shapex run FILE <p.flags...>` locally and remotely, compare.
//
// Guarantees:
// - Deterministic per seed and options: the same seed gives the same bytes on every host (the
//   generator uses its own SplitMix64, never std:: distributions, whose output may differ
//   between standard libraries).
// - Valid: every program compiles (`shapex check`). A compile error in a generated program is a
//   generator bug; the driver counts them.
// - Terminating: loops have literal trip counts (at most 6, nested at most twice), recursion
//   is bounded by a literal argument, and each function has a static cost budget that limits
//   how much work the calls it makes (directly, in loops, in closures) can do.
// - Ints never overflow by accident: every Int expression carries an interval, and a value that
//   could leave [-1000002, 1000002] is reduced with `% 1000003` before it is stored, passed or
//   returned, or before an operation that could overflow. Overflow, division by zero and the
//   other runtime errors are generated on purpose, by the error section of some programs.
//
// What a program looks like: a struct `Rec` and an enum `Sh` with impl methods, a few globals,
// several top-level functions, and `main`, which calls each function and prints the results
// (and the arguments and globals the calls may have changed). With `remote` set, every
// top-level function except `main` is marked `@remote`. Impl methods cannot be `@remote` (the
// annotation is for top-level functions): they travel as code with whatever calls them, so a
// method called from a remote function runs in the executor, and one called from `main` runs
// in the caller.
//
// Thread-safety: GenerateProgram is a pure function of its arguments.
#ifndef SHAPEX_TOOLS_DIFFTEST_PROGRAM_GENERATOR_H_
#define SHAPEX_TOOLS_DIFFTEST_PROGRAM_GENERATOR_H_

#include <cstdint>
#include <string>
#include <vector>

namespace shapex::difftest {

// Bumped whenever a seed may produce a different program: seed ranges run under one version add
// up across sessions; under different versions they do not.
constexpr int kGeneratorVersion = 2;

struct GeneratorOptions {
  bool remote = true;               // mark every top-level function except main @remote
  int min_functions = 3;            // top-level functions besides main
  int max_functions = 8;
  int limit_percent = 15;           // programs run with small --fuel/--memory/--stack
  int error_percent = 30;           // programs that end in a deliberate runtime error
  // false: no statement changes a value its caller can see (arguments, globals, captured
  // variables, shared containers). A diagnostic knob: it hides the send-copy difference so
  // that other causes show; the default, and the ctest, keep mutation.
  bool mutation = true;
};

struct GeneratedProgram {
  uint64_t seed = 0;
  std::string source;
  std::vector<std::string> flags;     // extra `shapex run` flags (limits), may be empty
  std::vector<std::string> features;  // what the program exercises, for summaries
};

GeneratedProgram GenerateProgram(uint64_t seed, const GeneratorOptions& options = {});

}  // namespace shapex::difftest

#endif  // SHAPEX_TOOLS_DIFFTEST_PROGRAM_GENERATOR_H_
