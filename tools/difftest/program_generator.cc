// The statement and program half of the generator (program_generator.h): declarations,
// generic random functions, the templates that target the remote boundary (aliasing, cycles,
// mutation of arguments, captures and globals, closures passed and returned), the error
// section, limits, and main.
#include "program_generator.h"

#include <string>
#include <vector>

#include "generator_internal.h"

namespace shapex::difftest {
namespace {

// Types and methods every program declares. Impl methods are never @remote (the annotation
// is for top-level functions); they travel with the code that calls them.
constexpr const char* kPrelude = R"(type Rec { id: int, name: string, tags: array }
enum Sh { Empty, One(int), Two(int, string) }
impl Rec {
    function make(id, name) { Rec { id: id, name: name, tags: [] } }
    function label(self) { f"{self.name}#{self.id}" }
    function bump(self, d) {
        self.id = (self.id + d) % 1000003
        self.id
    }
}
impl Sh {
    function weight(self) {
        match self {
            Sh::Empty => 0,
            Sh::One(a) => a,
            Sh::Two(a, b) => (a + b.len()) % 1000003,
        }
    }
}
)";

constexpr int64_t kFunctionBudget = 4000;
constexpr int64_t kMainBudget = 60000;
constexpr int kMaxLoopDepth = 2;

// Parameter and result types of generic functions, weighted toward what the boundary copies.
const std::vector<Ty> kParamTypes = {Ty::kInt, Ty::kInt,  Ty::kInt,   Ty::kNum, Ty::kBool,
                                     Ty::kStr, Ty::kStr,  Ty::kArrInt, Ty::kArrInt,
                                     Ty::kArrStr, Ty::kMap, Ty::kRec,  Ty::kRec, Ty::kSh,
                                     Ty::kOpt, Ty::kRes,  Ty::kFn,    Ty::kFn,  Ty::kArrFn};

}  // namespace

std::string Generator::Fresh(const char* prefix) {
  return prefix + std::to_string(next_name_++);
}

void Generator::Line(int indent, const std::string& text) {
  out_.append(static_cast<size_t>(indent) * 4, ' ');
  out_ += text;
  out_ += '\n';
}

void Generator::Statements(int count, int indent) {
  for (int i = 0; i < count; ++i) Statement(indent);
}

void Generator::Statement(int indent) {
  const bool can_mutate = no_mutation_ == 0;
  switch (rng_.Below(20)) {
    case 0: case 1: case 2: case 3: {  // a new variable
      Ty t = rng_.Pick(kParamTypes);
      bool mut = rng_.Percent(40);
      Expr e = Gen(t, 0);
      std::string name = Fresh("v");
      Line(indent, std::string(mut ? "var " : "let ") + name + " = " + e.text);
      Var v{name, t, mut};
      if (t == Ty::kInt && !mut) {
        v.lo = e.lo;
        v.hi = e.hi;
      }
      Declare(v);
      return;
    }
    case 4: case 5: {
      Ty t = static_cast<Ty>(rng_.Below(kTyCount));
      std::string e = Gen(t, 0).text;
      if (rng_.Percent(30)) e += ", " + Gen(Ty::kInt, 1).text;
      Line(indent, "print(" + e + ")");
      return;
    }
    case 6: {  // assignment to a `var`
      Ty t = rng_.Pick(kParamTypes);
      const Var* v = PickVar(t, /*assignable=*/true);
      if (v == nullptr) return Statement(indent);
      if (t == Ty::kInt) {
        if (rng_.Percent(50)) {
          const char* ops[] = {" += ", " -= ", " *= "};
          Expr e = Fit(Int(1));
          if (e.lo < -1000 || e.hi > 1000) e = {"(" + e.text + " % 1000)", -999, 999};
          Line(indent, v->name + ops[rng_.Below(3)] + e.text);
          Line(indent, v->name + " %= " + std::to_string(kFitModulus));
        } else {
          Line(indent, v->name + " = " + Fit(Int(0)).text);
        }
      } else if (t == Ty::kStr && loop_depth_ > 0) {
        Line(indent, v->name + " += " + ShortStr());
      } else if (loop_depth_ == 0 || (t != Ty::kStr && t != Ty::kArrStr)) {
        Line(indent, v->name + " = " + Gen(t, 0).text);
      }
      return;
    }
    case 7: case 8: {  // if / else
      Line(indent, "if " + Bool(0) + " {");
      PushScope();
      Statements(1 + rng_.Below(2), indent + 1);
      PopScope();
      if (rng_.Percent(50)) {
        Line(indent, "} else {");
        PushScope();
        Statements(1 + rng_.Below(2), indent + 1);
        PopScope();
      }
      Line(indent, "}");
      return;
    }
    case 9: case 10: {  // counted loops
      if (loop_depth_ >= kMaxLoopDepth) return Statement(indent);
      int n = 1 + rng_.Below(6);
      int64_t saved = multiplier_;
      multiplier_ *= n;
      ++loop_depth_;
      PushScope();
      if (rng_.Percent(60)) {
        std::string i = Fresh("i");
        Line(indent, "for " + i + " in 0.." + std::to_string(n) + " {");
        Declare({i, Ty::kInt, false, 0, n - 1});
      } else {
        std::string w = Fresh("w");
        Line(indent, "var " + w + " = 0");
        Line(indent, "while " + w + " < " + std::to_string(n) + " {");
        Line(indent + 1, w + " += 1");
        Declare({w, Ty::kInt, false, 1, n});
      }
      Statements(1 + rng_.Below(3), indent + 1);
      PopScope();
      --loop_depth_;
      multiplier_ = saved;
      Line(indent, "}");
      return;
    }
    case 11: {  // iterate a container: nothing may grow it meanwhile
      if (loop_depth_ >= kMaxLoopDepth) return Statement(indent);
      int64_t saved = multiplier_;
      multiplier_ *= 20;
      ++loop_depth_;
      ++no_mutation_;
      PushScope();
      std::string x = Fresh("x");
      switch (rng_.Below(4)) {
        case 0:
          Line(indent, "for " + x + " in " + ArrInt(0) + " {");
          Declare({x, Ty::kInt, false});
          break;
        case 1:
          Line(indent, "for " + x + " in " + Str(1) + " {");
          Declare({x, Ty::kStr, false});
          break;
        case 2:
          Line(indent, "for " + x + " in " + Map(0) + " {");
          Declare({x, Ty::kStr, false});
          break;
        default: {
          std::string k = Fresh("k");
          Line(indent, "for (" + k + ", " + x + ") in " + Map(0) + ".items() {");
          Declare({k, Ty::kStr, false});
          Declare({x, Ty::kInt, false});
        }
      }
      Statements(1 + rng_.Below(2), indent + 1);
      PopScope();
      --no_mutation_;
      --loop_depth_;
      multiplier_ = saved;
      Line(indent, "}");
      return;
    }
    case 12: case 13: case 14: {  // mutate a container, a struct or a global
      if (!can_mutate || !options_.mutation) return Statement(indent);
      mutates_ = true;
      switch (rng_.Below(7)) {
        case 0: case 1: {
          const Var* a = PickVar(Ty::kArrInt);
          if (a == nullptr) break;
          Line(indent, a->name + ".push(" + Fit(Int(1)).text + ")");
          return;
        }
        case 2: {
          const Var* a = PickVar(Ty::kArrInt);
          if (a == nullptr) break;
          Line(indent, "if " + a->name + ".len() > 0 { " + a->name +
                           (rng_.Percent(50) ? ".pop()" : ".remove(0)") + " }");
          return;
        }
        case 3: {
          const Var* m = PickVar(Ty::kMap);
          if (m == nullptr) break;
          if (rng_.Percent(50)) {
            Line(indent, m->name + "[" + KeyLiteral() + "] = " + Fit(Int(1)).text);
          } else {
            Line(indent, m->name + ".set(" + KeyLiteral() + ", " + Fit(Int(1)).text + ")");
          }
          return;
        }
        case 4: {
          const Var* r = PickVar(Ty::kRec);
          if (r == nullptr) break;
          if (rng_.Percent(50)) {
            Line(indent, r->name + ".id = " + Fit(Int(1)).text);
          } else {
            Line(indent, r->name + ".tags.push(" + ShortStr() + ")");
          }
          return;
        }
        case 5: {
          const Var* s = PickVar(Ty::kArrStr);
          if (s == nullptr) break;
          Line(indent, s->name + ".push(" + ShortStr() + ")");
          return;
        }
        default:
          break;
      }
      Line(indent, "g_n = " + Fit({"(g_n + " + Fit(Int(1)).text + ")", -2 * kFitBound, 2 * kFitBound}).text);
      if (rng_.Percent(50)) Line(indent, "g_log.push(" + ShortStr() + ")");
      return;
    }
    case 15: {  // break / continue / early return
      if (loop_depth_ > 0 && rng_.Percent(60)) {
        Line(indent, "if " + Bool(1) + " { " + (rng_.Percent(50) ? "break" : "continue") + " }");
      } else if (in_function_) {
        Line(indent, "if " + Bool(1) + " { return " + Gen(ret_ty_, 1).text + " }");
      }
      return;
    }
    case 16: {  // `?` on a Result or an Option
      if (!in_function_ || (ret_ty_ != Ty::kRes && ret_ty_ != Ty::kOpt)) {
        return Statement(indent);
      }
      std::string v = Fresh("u");
      Line(indent, "let " + v + " = " + (ret_ty_ == Ty::kRes ? Res(1) : Opt(1)) + "?");
      Declare({v, Ty::kInt, false, -1000000000, 1000000000});
      return;
    }
    case 17: {  // a call for its effects
      Ty t = rng_.Pick(kParamTypes);
      std::string call = Call(t, 0);
      if (!call.empty()) Line(indent, call);
      return;
    }
    default: {
      Ty t = static_cast<Ty>(rng_.Below(kTyCount));
      Line(indent, "print(str(" + Gen(t, 0).text + ").len())");
      return;
    }
  }
  // A mutation statement found no variable of its type.
  Line(indent, "print(" + Str(1) + ")");
}

void Generator::FunctionHeader(const std::string& name, const std::vector<std::string>& params) {
  if (options_.remote) Line(0, "@remote");
  std::string text = "function " + name + "(";
  for (size_t i = 0; i < params.size(); ++i) text += (i ? ", " : "") + params[i];
  Line(0, text + ") {");
}

void Generator::GenericFunction() {
  Function f;
  f.name = Fresh("f");
  for (int n = rng_.Below(4); n > 0; --n) f.params.push_back(rng_.Pick(kParamTypes));
  f.ret = rng_.Percent(15) ? (rng_.Percent(50) ? Ty::kBool : Ty::kNum) : rng_.Pick(kParamTypes);
  const bool annotate = rng_.Percent(30);
  PushScope();
  std::vector<std::string> params;
  for (Ty t : f.params) {
    std::string p = Fresh("p");
    Declare({p, t, false});
    params.push_back(annotate ? p + ": " + AnnotationName(t) : p);
  }
  if (options_.remote) Line(0, "@remote");
  std::string header = "function " + f.name + "(";
  for (size_t i = 0; i < params.size(); ++i) header += (i ? ", " : "") + params[i];
  header += ")";
  if (annotate && rng_.Percent(50)) header += std::string(" -> ") + AnnotationName(f.ret);
  Line(0, header + " {");
  in_function_ = true;
  ret_ty_ = f.ret;
  cost_ = 0;
  budget_ = kFunctionBudget;
  multiplier_ = 1;
  mutates_ = false;
  loop_depth_ = 0;
  no_mutation_ = 0;
  Statements(1 + rng_.Below(5), 1);
  std::string result = Gen(f.ret, 0).text;
  if (result.front() == '{') result = "(" + result + ")";
  Line(1, result);
  Line(0, "}");
  PopScope();
  in_function_ = false;
  f.cost = cost_ + 20;
  f.mutates = mutates_;
  functions_.push_back(f);
}

// main calls f once or twice; containers passed by name are printed afterwards (send-copy:
// what a remote callee changes in them stays there), sometimes the same one twice (aliasing).
void Generator::MainCallsOf(const Function& f) {
  for (int calls = 1 + rng_.Below(2); calls > 0; --calls) {
    if (cost_ + f.cost > budget_) return;
    cost_ += f.cost;
    std::vector<std::string> args, shown;
    for (size_t i = 0; i < f.params.size(); ++i) {
      Ty t = f.params[i];
      const bool container = t == Ty::kArrInt || t == Ty::kArrStr || t == Ty::kMap ||
                             t == Ty::kRec;
      if (container && i > 0 && f.params[i - 1] == t && !shown.empty() && rng_.Percent(40)) {
        args.push_back(shown.back());  // the same container twice
        continue;
      }
      if (container && rng_.Percent(60)) {
        std::string a = Fresh("a");
        Line(1, "let " + a + " = " + Gen(t, 1).text);
        Declare({a, t, false});
        args.push_back(a);
        shown.push_back(a);
        continue;
      }
      args.push_back(Gen(t, 1).text);
    }
    std::string call = f.name + "(";
    for (size_t i = 0; i < args.size(); ++i) call += (i ? ", " : "") + args[i];
    call += ")";
    if (rng_.Percent(25)) {
      std::string r = Fresh("r");
      Line(1, "let " + r + " = " + call);
      Declare({r, f.ret, false});
      Line(1, "print(" + r + ")");
    } else {
      Line(1, "print(" + call + ")");
    }
    for (const std::string& a : shown) Line(1, "print(" + a + ")");
  }
}

GeneratedProgram Generator::Generate(uint64_t seed) {
  GeneratedProgram program;
  program.seed = seed;
  out_ = kPrelude;
  PushScope();  // globals
  Line(0, "var g_n = " + std::to_string(rng_.Range(0, 100)));
  Line(0, "let g_log = []");
  Line(0, "let g_arr = [" + std::to_string(rng_.Range(0, 9)) + ", " + std::to_string(rng_.Range(0, 9)) + "]");
  Line(0, "let g_m = {\"a\": " + std::to_string(rng_.Range(0, 9)) + "}");
  Declare({"g_n", Ty::kInt, options_.mutation});
  Declare({"g_log", Ty::kArrStr, false});
  Declare({"g_arr", Ty::kArrInt, false});
  Declare({"g_m", Ty::kMap, false});
  if (rng_.Percent(30)) {
    Line(0, "let g_f = |x| (x * 3 + g_n) % 1000003");
    Declare({"g_f", Ty::kFn, false});
    features_.push_back("global-closure");
  }
  if (rng_.Percent(options_.limit_percent)) LimitSection(&program.flags);
  const int n = options_.min_functions +
                rng_.Below(options_.max_functions - options_.min_functions + 1);
  for (int i = 0; i < n; ++i) {
    switch (rng_.Below(20)) {
      case 0: case 1:
        if (options_.mutation) AliasingTemplate(); else GenericFunction();
        break;
      case 2: if (rng_.Percent(40)) CycleTemplate(); else GlobalsTemplate(); break;
      case 3: GlobalsTemplate(); break;
      case 4: case 5: HigherOrderTemplate(); break;
      case 6: case 7: ClosureFactoryTemplate(); break;
      case 8: RecursionTemplate(static_cast<int>(rng_.Range(0, 20))); break;
      default: GenericFunction(); break;
    }
  }
  std::vector<std::string> error_main;
  if (rng_.Percent(options_.error_percent)) {
    std::vector<std::string> saved = std::move(main_);
    main_.clear();
    ErrorSection();
    error_main = std::move(main_);
    main_ = std::move(saved);
  }
  // main: a few statements of its own, the generic functions' calls, the templates' lines,
  // then the deliberate error (if any) with a line after it that must not print.
  Line(0, "function main() {");
  PushScope();
  cost_ = 0;
  budget_ = kMainBudget;
  multiplier_ = 1;
  loop_depth_ = 0;
  no_mutation_ = 0;
  Statements(rng_.Below(3), 1);
  for (const Function& f : functions_) MainCallsOf(f);
  for (const std::string& l : main_) Line(1, l);
  Line(1, "print(g_n, g_log, g_arr, g_m)");
  for (const std::string& l : error_main) Line(1, l);
  PopScope();
  Line(0, "}");
  PopScope();
  std::string header = "// shapex_difftest seed " + std::to_string(seed) + " (generator v" +
                       std::to_string(kGeneratorVersion) + ")\n";
  if (!program.flags.empty()) {
    header += "// flags:";
    for (const std::string& f : program.flags) header += " " + f;
    header += "\n";
  }
  program.source = header + out_;
  program.features = std::move(features_);
  return program;
}

GeneratedProgram GenerateProgram(uint64_t seed, const GeneratorOptions& options) {
  Generator generator(seed, options);
  return generator.Generate(seed);
}

}  // namespace shapex::difftest
