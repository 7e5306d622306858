// Internals of the program generator (program_generator.h): the static types it tracks, the
// scope of variables, and the Generator class whose expression half lives in
// expression_generator.cc and whose statement/program half lives in program_generator.cc.
#ifndef SHAPEX_TOOLS_DIFFTEST_GENERATOR_INTERNAL_H_
#define SHAPEX_TOOLS_DIFFTEST_GENERATOR_INTERNAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "program_generator.h"

namespace shapex::difftest {

// SplitMix64: tiny, fast, and the same sequence everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  int Below(int n) { return static_cast<int>(Next() % static_cast<uint64_t>(n)); }
  // Uniform in [lo, hi].
  int64_t Range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Percent(int p) { return Below(100) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Below(static_cast<int>(v.size())))];
  }

 private:
  uint64_t state_;
};

// The static types the generator keeps track of (the language is dynamically typed; these are
// what the generator knows a value to be).
enum class Ty {
  kInt,     // i64, in the interval its Expr carries
  kNum,     // f64
  kBool,
  kStr,
  kArrInt,  // Array of Int
  kArrStr,  // Array of String
  kMap,     // HashMap String -> Int
  kRec,     // struct Rec { id: int, name: string, tags: array (of String) }
  kSh,      // enum Sh { Empty, One(int), Two(int, string) }
  kOpt,     // Option<int>
  kRes,     // Result<int, string>
  kFn,      // function or closure Int -> Int
  kArrFn,   // Array of kFn
};
constexpr int kTyCount = 13;

const char* AnnotationName(Ty t);

// Ints stored anywhere stay within [-kFitBound, kFitBound]; `% kFitModulus` brings them back.
constexpr int64_t kFitModulus = 1000003;
constexpr int64_t kFitBound = kFitModulus - 1;
// An operation whose result could leave this range reduces its operands first.
constexpr int64_t kSafeBound = 1000000000000000LL;  // 1e15

struct Expr {
  std::string text;
  int64_t lo = 0;  // Int only: the value's interval
  int64_t hi = 0;
};

struct Var {
  std::string name;
  Ty ty;
  bool assignable;  // `var`, not a loop counter
  int64_t lo = -kFitBound;
  int64_t hi = kFitBound;
};

struct Function {
  std::string name;
  std::vector<Ty> params;
  Ty ret;
  int64_t cost = 0;     // estimated work of one call
  bool mutates = false; // may change its arguments' contents or globals
};

class Generator {
 public:
  Generator(uint64_t seed, const GeneratorOptions& options) : rng_(seed), options_(options) {}
  GeneratedProgram Generate(uint64_t seed);

  // ---- expressions (expression_generator.cc) ----
  Expr Gen(Ty t, int depth);
  Expr Int(int depth);
  Expr Fit(const Expr& e);
  Expr IntLiteral();
  std::string Num(int depth);
  std::string Bool(int depth);
  std::string Str(int depth);
  std::string StrLiteral();
  std::string ShortStr();
  std::string ArrInt(int depth);
  std::string ArrStr(int depth);
  std::string Map(int depth);
  std::string Rec(int depth);
  std::string Sh(int depth);
  std::string Opt(int depth);
  std::string Res(int depth);
  std::string Fn(int depth);
  std::string ArrFn(int depth);
  std::string Closure(int depth);
  std::string MatchInt(int depth);
  std::string KeyLiteral();

  // A call to a function already declared that returns `t`, or "" if none fits the budget.
  std::string Call(Ty t, int depth);
  // Name of a visible variable of type t (or "" if none); `assignable` restricts to `var`s.
  const Var* PickVar(Ty t, bool assignable = false);

  // ---- statements and program (program_generator.cc) ----
  void Statements(int count, int indent);
  void Statement(int indent);
  void Line(int indent, const std::string& text);
  std::string Fresh(const char* prefix);
  void PushScope() { scopes_.emplace_back(); }
  void PopScope() { scopes_.pop_back(); }
  void Declare(const Var& v) { scopes_.back().push_back(v); }
  void FunctionHeader(const std::string& name, const std::vector<std::string>& params);
  void GenericFunction();
  void MainCallsOf(const Function& f);

  // ---- templates (program_templates.cc): functions aimed at the remote boundary, the
  // deliberate error and the limits. Each writes its functions to out_ and what main does
  // with them to main_.
  void AliasingTemplate();
  void CycleTemplate();
  void GlobalsTemplate();
  void HigherOrderTemplate();
  void ClosureFactoryTemplate();
  void RecursionTemplate(int depth_arg);
  void ErrorSection();
  void LimitSection(std::vector<std::string>* flags);

  Rng rng_;
  GeneratorOptions options_;
  std::string out_;
  std::vector<std::vector<Var>> scopes_;
  std::vector<Function> functions_;  // callable so far (declared earlier)
  std::vector<std::string> features_;
  std::vector<std::string> main_;  // main's body lines (indent 1), filled by the templates
  bool mutates_ = false;           // the function being generated mutates something
  int next_name_ = 0;

  // Context of the code being generated.
  bool in_function_ = false;
  Ty ret_ty_ = Ty::kInt;
  int loop_depth_ = 0;
  int no_mutation_ = 0;   // > 0: iterating a container; nothing may grow or reorder one
  int64_t multiplier_ = 1;  // how often the current code runs per call of its function
  int64_t cost_ = 0;        // estimated cost of the function being generated
  int64_t budget_ = 4000;
};

}  // namespace shapex::difftest

#endif  // SHAPEX_TOOLS_DIFFTEST_GENERATOR_INTERNAL_H_
