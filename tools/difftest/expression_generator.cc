// The expression half of the generator: one function per static type (generator_internal.h).
// Every expression is printed on one line; `if` and `match` are parenthesized so they can sit
// anywhere an operand can.
#include <algorithm>
#include <string>
#include <vector>

#include "generator_internal.h"

namespace shapex::difftest {
namespace {

constexpr int kMaxDepth = 3;
// What calling a function value costs (a closure's body is generated with this budget).
constexpr int64_t kClosureBudget = 150;
constexpr int64_t kFnValueCallCost = 200;
// How often a closure passed to map/filter/reduce/any/all is assumed to run.
constexpr int64_t kElementsAssumed = 20;

std::string Paren(const std::string& s) { return "(" + s + ")"; }

int64_t Clamp(__int128 v) {
  if (v > INT64_MAX) return INT64_MAX;
  if (v < INT64_MIN) return INT64_MIN;
  return static_cast<int64_t>(v);
}

int64_t MaxAbs(const Expr& e) {
  __int128 a = e.lo < 0 ? -static_cast<__int128>(e.lo) : e.lo;
  __int128 b = e.hi < 0 ? -static_cast<__int128>(e.hi) : e.hi;
  return Clamp(std::max(a, b));
}

bool Within(__int128 lo, __int128 hi, int64_t bound) { return lo >= -bound && hi <= bound; }

}  // namespace

const char* AnnotationName(Ty t) {
  switch (t) {
    case Ty::kInt: return "int";
    case Ty::kNum: return "number";
    case Ty::kBool: return "bool";
    case Ty::kStr: return "string";
    case Ty::kArrInt:
    case Ty::kArrStr:
    case Ty::kArrFn: return "array";
    case Ty::kMap: return "map";
    case Ty::kRec: return "Rec";
    case Ty::kSh: return "Sh";
    case Ty::kOpt: return "Option<int>";
    case Ty::kRes: return "Result<int, string>";
    case Ty::kFn: return "function";
  }
  return "any";
}

const Var* Generator::PickVar(Ty t, bool assignable) {
  std::vector<const Var*> found;
  for (const auto& scope : scopes_) {
    for (const Var& v : scope) {
      if (v.ty == t && (!assignable || v.assignable)) found.push_back(&v);
    }
  }
  return found.empty() ? nullptr : rng_.Pick(found);
}

Expr Generator::Fit(const Expr& e) {
  if (e.lo >= -kFitBound && e.hi <= kFitBound) return e;
  return {Paren(e.text + " % " + std::to_string(kFitModulus)), -kFitBound, kFitBound};
}

Expr Generator::IntLiteral() {
  int64_t v;
  switch (rng_.Below(10)) {
    case 0: v = rng_.Range(0, 1000000); break;
    case 1: v = -rng_.Range(1, 100); break;
    default: v = rng_.Range(0, 30); break;
  }
  std::string text = v < 0 ? Paren(std::to_string(v)) : std::to_string(v);
  return {text, v, v};
}

Expr Generator::Gen(Ty t, int depth) {
  switch (t) {
    case Ty::kInt: return Fit(Int(depth));
    case Ty::kNum: return {Num(depth)};
    case Ty::kBool: return {Bool(depth)};
    case Ty::kStr: return {Str(depth)};
    case Ty::kArrInt: return {ArrInt(depth)};
    case Ty::kArrStr: return {ArrStr(depth)};
    case Ty::kMap: return {Map(depth)};
    case Ty::kRec: return {Rec(depth)};
    case Ty::kSh: return {Sh(depth)};
    case Ty::kOpt: return {Opt(depth)};
    case Ty::kRes: return {Res(depth)};
    case Ty::kFn: return {Fn(depth)};
    case Ty::kArrFn: return {ArrFn(depth)};
  }
  return {"None"};
}

std::string Generator::Call(Ty t, int depth) {
  std::vector<const Function*> fits;
  for (const Function& f : functions_) {
    if (f.ret != t) continue;
    if (no_mutation_ > 0 && f.mutates) continue;
    if (cost_ + f.cost * multiplier_ > budget_) continue;
    fits.push_back(&f);
  }
  if (fits.empty()) return "";
  const Function& f = *rng_.Pick(fits);
  cost_ += f.cost * multiplier_;
  mutates_ |= f.mutates;
  std::string text = f.name + "(";
  for (size_t i = 0; i < f.params.size(); ++i) {
    if (i > 0) text += ", ";
    text += Gen(f.params[i], depth + 1).text;
  }
  return text + ")";
}

// ---------------- Int ----------------

namespace {

// The interval of `a op b`, or false when op is not + - *.
bool ArithInterval(char op, const Expr& a, const Expr& b, __int128* lo, __int128* hi) {
  __int128 al = a.lo, ah = a.hi, bl = b.lo, bh = b.hi;
  switch (op) {
    case '+': *lo = al + bl; *hi = ah + bh; return true;
    case '-': *lo = al - bh; *hi = ah - bl; return true;
    case '*': {
      __int128 c[4] = {al * bl, al * bh, ah * bl, ah * bh};
      *lo = *std::min_element(c, c + 4);
      *hi = *std::max_element(c, c + 4);
      return true;
    }
  }
  return false;
}

}  // namespace

Expr Generator::Int(int depth) {
  if (depth >= kMaxDepth || rng_.Percent(25)) {
    const Var* v = rng_.Percent(60) ? PickVar(Ty::kInt) : nullptr;
    if (v != nullptr) return {v->name, v->lo, v->hi};
    return IntLiteral();
  }
  switch (rng_.Below(22)) {
    case 0: case 1: case 2: case 3: {  // + - *
      char op = "+-*"[rng_.Below(3)];
      Expr a = Int(depth + 1), b = Int(depth + 1);
      __int128 lo, hi;
      ArithInterval(op, a, b, &lo, &hi);
      if (!Within(lo, hi, kSafeBound)) {
        a = Fit(a);
        b = Fit(b);
        ArithInterval(op, a, b, &lo, &hi);
      }
      return {Paren(a.text + " " + op + " " + b.text), Clamp(lo), Clamp(hi)};
    }
    case 4: {  // / or % with a divisor that cannot be zero
      Expr a = Int(depth + 1), d = Int(depth + 1);
      if (d.lo <= 0 && d.hi >= 0) {
        d = {Paren(Fit(d).text + " % 7 + 8"), 2, 14};
      }
      const bool div = rng_.Percent(50);
      int64_t m = div ? MaxAbs(a) : std::min(MaxAbs(a), MaxAbs(d));
      return {Paren(a.text + (div ? " / " : " % ") + d.text), -m, m};
    }
    case 5: return {Paren(Str(depth + 1)) + ".len()", 0, 1000000000};
    case 6: return {Paren(ArrInt(depth + 1)) + ".len()", 0, 1000000000};
    case 7: return {Paren(ArrInt(depth + 1)) + ".sum()", -kSafeBound / 100, kSafeBound / 100};
    case 8: {
      Expr a = Int(depth + 1), b = Int(depth + 1);
      return {"(if " + Bool(depth + 1) + " { " + a.text + " } else { " + b.text + " })",
              std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
    }
    case 9: return {MatchInt(depth), -kFitBound, kFitBound};
    case 10: case 11: {
      std::string call = Call(Ty::kInt, depth);
      if (!call.empty()) return {call, -kFitBound, kFitBound};
      return IntLiteral();
    }
    case 12: {  // call a function value
      if (cost_ + kFnValueCallCost * multiplier_ > budget_) return IntLiteral();
      const Var* f = PickVar(Ty::kFn);
      const Var* fs = PickVar(Ty::kArrFn);
      std::string callee;
      if (f != nullptr && (fs == nullptr || rng_.Percent(60))) {
        callee = f->name;
      } else if (fs != nullptr) {
        callee = fs->name + "[" + std::to_string(rng_.Below(1)) + "]";
      } else {
        return IntLiteral();
      }
      cost_ += kFnValueCallCost * multiplier_;
      return {callee + "(" + Fit(Int(depth + 1)).text + ")", -kFitBound, kFitBound};
    }
    case 13: {
      Expr a = Int(depth + 1);
      switch (rng_.Below(3)) {
        case 0: {
          int64_t m = MaxAbs(a);
          return {"math.abs(" + a.text + ")", 0, m};
        }
        default: {
          Expr b = Int(depth + 1);
          bool max = rng_.Percent(50);
          return {std::string(max ? "math.max(" : "math.min(") + a.text + ", " + b.text + ")",
                  std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
        }
      }
    }
    case 14: {
      Expr d = Fit(Int(depth + 1));
      if (rng_.Percent(50)) {
        return {Paren(Opt(depth + 1)) + ".unwrap_or(" + d.text + ")", -kFitBound, kFitBound};
      }
      return {Paren(Res(depth + 1)) + ".unwrap_or(" + d.text + ")", -kFitBound, kFitBound};
    }
    case 15: {
      if (rng_.Percent(50)) return {Paren(Rec(depth + 1)) + ".id", -kFitBound, kFitBound};
      return {Paren(Map(depth + 1)) + ".get(" + KeyLiteral() + ").unwrap_or(0)", -kFitBound,
              kFitBound};
    }
    case 16: {  // reduce with a closure
      int64_t saved = multiplier_;
      multiplier_ *= kElementsAssumed;
      PushScope();
      std::string acc = Fresh("acc"), x = Fresh("x");
      Declare({acc, Ty::kInt, false});
      Declare({x, Ty::kInt, false});
      std::string body = Fit(Int(depth + 1)).text;
      PopScope();
      multiplier_ = saved;
      return {Paren(ArrInt(depth + 1)) + ".reduce(|" + acc + ", " + x + "| " + body + ", 0)",
              -kFitBound, kFitBound};
    }
    case 17: {  // bit operations
      Expr a = Fit(Int(depth + 1));
      // (No unary `~`: LANGUAGE.md lists it, but the lexer does not accept it yet.)
      switch (rng_.Below(3)) {
        case 0: {
          int k = rng_.Below(12);
          return {Paren(a.text + " << " + std::to_string(k)), -(kFitBound << k), kFitBound << k};
        }
        case 1: return {Paren(a.text + " >> " + std::to_string(rng_.Below(8))), -kFitBound, kFitBound};
        default: {
          Expr b = Fit(Int(depth + 1));
          const char* op = rng_.Percent(33) ? " & " : rng_.Percent(50) ? " | " : " ^ ";
          return {Paren(a.text + op + b.text), -(int64_t{1} << 21), int64_t{1} << 21};
        }
      }
    }
    case 18: {  // small powers
      Expr a = Int(depth + 1);
      if (MaxAbs(a) > 1000) a = {Paren(Fit(a).text + " % 1000"), -999, 999};
      int k = rng_.Below(4);
      int64_t m = 1;
      for (int i = 0; i < k; ++i) m *= std::max<int64_t>(MaxAbs(a), 1);
      return {Paren(a.text + " ** " + std::to_string(k)), -m, m};
    }
    case 19: {  // a guarded element read: needs a variable, evaluated three times
      const Var* arr = PickVar(Ty::kArrInt);
      if (arr == nullptr) return IntLiteral();
      Expr i = Fit(Int(depth + 1));
      return {"(if " + arr->name + ".len() > 0 { " + arr->name + "[" + i.text + " % " +
                  arr->name + ".len()] } else { 0 })",
              -kFitBound, kFitBound};
    }
    case 20: {
      Expr a = Fit(Int(depth + 1));
      return {"int(str(" + a.text + "))", a.lo, a.hi};
    }
    default: {
      if (rng_.Percent(50)) {
        return {Paren(ArrInt(depth + 1)) + ".index_of(" + Fit(Int(depth + 1)).text +
                    ").unwrap_or(-1)",
                -1, 1000000000};
      }
      return {Paren(Sh(depth + 1)) + ".weight()", -kFitBound, kFitBound};
    }
  }
}

std::string Generator::MatchInt(int depth) {
  switch (rng_.Below(5)) {
    case 0: {
      Expr x = Int(depth + 1);
      PushScope();
      std::string n = Fresh("n");
      Declare({n, Ty::kInt, false, x.lo, x.hi});
      std::string neg = Fit(Int(depth + 1)).text;
      PopScope();
      return "(match " + Paren(x.text) + " { 0 => " + Fit(Int(depth + 1)).text + ", 1 | 2 => " +
             Fit(Int(depth + 1)).text + ", " + n + " if " + n + " < 0 => " + neg + ", _ => " +
             Fit(Int(depth + 1)).text + " })";
    }
    case 1: {
      std::string o = Opt(depth + 1);
      PushScope();
      std::string v = Fresh("v");
      Declare({v, Ty::kInt, false});
      std::string some = Fit(Int(depth + 1)).text;
      PopScope();
      return "(match " + Paren(o) + " { Some(" + v + ") => " + some +
             ", None => " + Fit(Int(depth + 1)).text + " })";
    }
    case 2: {
      std::string r = Res(depth + 1);
      PushScope();
      std::string v = Fresh("v");
      Declare({v, Ty::kInt, false});
      std::string ok = Fit(Int(depth + 1)).text;
      PopScope();
      PushScope();
      std::string e = Fresh("e");
      Declare({e, Ty::kStr, false});
      std::string err = Fit(Int(depth + 1)).text;
      PopScope();
      return "(match " + Paren(r) + " { Ok(" + v + ") => " + ok + ", Err(" + e + ") => " + err +
             " })";
    }
    case 3: {
      std::string s = Sh(depth + 1);
      std::string empty = Fit(Int(depth + 1)).text;
      PushScope();
      std::string a = Fresh("p");
      Declare({a, Ty::kInt, false});
      std::string one = Fit(Int(depth + 1)).text;
      std::string b = Fresh("q");
      Declare({b, Ty::kStr, false});
      std::string two = Fit(Int(depth + 1)).text;
      PopScope();
      return "(match " + Paren(s) + " { Sh::Empty => " + empty + ", Sh::One(" + a + ") => " +
             one + ", Sh::Two(" + a + ", " + b + ") => " + two + " })";
    }
    default: {
      const Var* arr = PickVar(Ty::kArrInt);
      std::string scrutinee = arr != nullptr ? arr->name : Paren(ArrInt(depth + 1));
      PushScope();
      std::string a = Fresh("a"), b = Fresh("b");
      Declare({a, Ty::kInt, false});
      std::string one = Fit(Int(depth + 1)).text;
      Declare({b, Ty::kInt, false});
      std::string two = Fit(Int(depth + 1)).text;
      PopScope();
      return "(match " + scrutinee + " { [] => " + Fit(Int(depth + 1)).text + ", [" + a +
             "] => " + one + ", [" + a + ", " + b + "] => " + two + ", _ => " +
             Fit(Int(depth + 1)).text + " })";
    }
  }
}

// ---------------- Number, Bool ----------------

std::string Generator::Num(int depth) {
  static const std::vector<std::string> kLiterals = {
      "1.5", "0.1", "0.2", "10.0", "-2.5e-3", "1e300", "3.14159", "0.0", "-0.0", "2.0", "1e-7"};
  if (depth >= kMaxDepth || rng_.Percent(30)) {
    const Var* v = rng_.Percent(50) ? PickVar(Ty::kNum) : nullptr;
    if (v != nullptr) return v->name;
    return rng_.Pick(kLiterals);
  }
  switch (rng_.Below(9)) {
    case 0: case 1: {
      const char* ops[] = {" + ", " - ", " * ", " / ", " % "};
      return Paren(Num(depth + 1) + ops[rng_.Below(5)] +
                   (rng_.Percent(30) ? Int(depth + 1).text : Num(depth + 1)));
    }
    case 2: return "number(" + Int(depth + 1).text + ")";
    case 3: {
      const char* fns[] = {"sqrt", "floor", "ceil", "round", "abs", "sin", "exp", "log"};
      return std::string("math.") + fns[rng_.Below(8)] + "(" + Num(depth + 1) + ")";
    }
    case 4: return rng_.Percent(50) ? "math.pi" : "math.e";
    case 5: return Paren(Int(depth + 1).text + " ** -" + std::to_string(rng_.Range(1, 3)));
    case 6: return "[" + Num(depth + 1) + ", " + Num(depth + 1) + "].sum()";
    case 7: return "math.pow(" + Num(depth + 1) + ", " + Num(depth + 1) + ")";
    default:
      return "(if " + Bool(depth + 1) + " { " + Num(depth + 1) + " } else { " + Num(depth + 1) +
             " })";
  }
}

std::string Generator::Bool(int depth) {
  if (depth >= kMaxDepth || rng_.Percent(20)) {
    const Var* v = rng_.Percent(50) ? PickVar(Ty::kBool) : nullptr;
    if (v != nullptr) return v->name;
    return rng_.Percent(50) ? "true" : "false";
  }
  switch (rng_.Below(12)) {
    case 0: case 1: {
      const char* ops[] = {" < ", " <= ", " > ", " >= ", " == ", " != "};
      return Paren(Int(depth + 1).text + ops[rng_.Below(6)] + Int(depth + 1).text);
    }
    case 2: {  // structural equality of any two values of one type
      Ty t = static_cast<Ty>(rng_.Below(kTyCount));
      if (t == Ty::kFn || t == Ty::kArrFn) t = Ty::kArrInt;
      return Paren(Gen(t, depth + 1).text + (rng_.Percent(70) ? " == " : " != ") +
                   Gen(t, depth + 1).text);
    }
    // `not` binds looser than comparisons: as an operand it needs its own parentheses.
    case 3: return Paren("not " + Paren(Bool(depth + 1)));
    case 4: return Paren(Bool(depth + 1) + (rng_.Percent(50) ? " and " : " or ") + Bool(depth + 1));
    case 5: {
      const char* m[] = {".contains(", ".starts_with(", ".ends_with("};
      return Paren(Str(depth + 1)) + m[rng_.Below(3)] + StrLiteral() + ")";
    }
    case 6: return Paren(ArrInt(depth + 1)) + ".contains(" + Int(depth + 1).text + ")";
    case 7:
      return rng_.Percent(50) ? Paren(Opt(depth + 1)) + ".is_some()"
                              : Paren(Res(depth + 1)) + ".is_ok()";
    case 8: return Paren(Map(depth + 1)) + ".has(" + KeyLiteral() + ")";
    case 9: {
      int64_t saved = multiplier_;
      multiplier_ *= kElementsAssumed;
      PushScope();
      std::string x = Fresh("x");
      Declare({x, Ty::kInt, false});
      std::string body = Bool(depth + 1);
      PopScope();
      multiplier_ = saved;
      return Paren(ArrInt(depth + 1)) + (rng_.Percent(50) ? ".any(|" : ".all(|") + x + "| " +
             body + ")";
    }
    case 10: return "math.is_nan(" + Num(depth + 1) + ")";
    default: {
      std::string call = Call(Ty::kBool, depth);
      if (!call.empty()) return call;
      return Paren(Str(depth + 1) + " < " + Str(depth + 1));
    }
  }
}

// ---------------- String ----------------

std::string Generator::StrLiteral() {
  static const std::vector<std::string> kLiterals = {
      "\"\"",          "\"a\"",         "\"abc\"",      "\"hello world\"", "\"x,y,z\"",
      "\"h\\u{e9}llo\"", "\"\\u{65e5}\\u{672c}\"", "\"tab\\there\"", "\"quote\\\"d\"",
      "\"back\\\\slash\"", "\"new\\nline\"", "\"\\u{1F600}\"", "\"42\"", "\"-7\"",
      "\" padded \"",  "\"A,B,,C\"",    "\"b\"",        "\"k\"",           "\"1,2,3\""};
  return rng_.Pick(kLiterals);
}

std::string Generator::KeyLiteral() {
  static const std::vector<std::string> kKeys = {"\"a\"", "\"b\"", "\"c\"", "\"d\""};
  return rng_.Pick(kKeys);
}

// A string that does not grow with the program's state (safe to append in a loop).
std::string Generator::ShortStr() {
  switch (rng_.Below(3)) {
    case 0: return StrLiteral();
    case 1: return "str(" + Fit(Int(kMaxDepth - 1)).text + ")";
    default: return "f\"<{" + Fit(Int(kMaxDepth)).text + "}>\"";
  }
}

std::string Generator::Str(int depth) {
  if (depth >= kMaxDepth || rng_.Percent(25)) {
    const Var* v = rng_.Percent(55) ? PickVar(Ty::kStr) : nullptr;
    if (v != nullptr) return v->name;
    return StrLiteral();
  }
  switch (rng_.Below(14)) {
    case 0: case 1: return Paren(Str(depth + 1) + " + " + Str(depth + 1));
    case 2: case 3: {  // f-string: holes hold variables or plain arithmetic on them
      // (No format specs: LANGUAGE.md lists them, but the compiler does not accept them yet.)
      std::string s = "f\"";
      int holes = 1 + rng_.Below(3);
      for (int i = 0; i < holes; ++i) {
        s += rng_.Percent(50) ? "-" : " ";
        const Var* v = PickVar(static_cast<Ty>(rng_.Below(kTyCount)));
        s += "{" + (v != nullptr ? v->name : Int(kMaxDepth).text) + "}";
      }
      return s + (rng_.Percent(30) ? "{{}}\"" : "\"");
    }
    case 4: {
      Ty t = static_cast<Ty>(rng_.Below(kTyCount));
      return "str(" + Gen(t, depth + 1).text + ")";
    }
    case 5: {
      const char* m[] = {".upper()", ".lower()", ".trim()"};
      return Paren(Str(depth + 1)) + m[rng_.Below(3)];
    }
    case 6: return Paren(Str(depth + 1)) + ".replace(" + StrLiteral() + ", " + StrLiteral() + ")";
    case 7:
      return Paren(rng_.Percent(50) ? ArrInt(depth + 1) : ArrStr(depth + 1)) + ".join(" +
             (rng_.Percent(50) ? "\",\"" : "\" \"") + ")";
    case 8: return StrLiteral() + ".repeat(" + std::to_string(rng_.Below(4)) + ")";
    case 9: return "type_of(" + Gen(static_cast<Ty>(rng_.Below(kTyCount)), depth + 1).text + ")";
    case 10: {
      const Var* v = PickVar(Ty::kStr);
      if (v == nullptr) return StrLiteral();
      const std::string& n = v->name;
      return "(if " + n + ".chars().len() > 1 { " + n + ".slice(1, " + n +
             ".chars().len()) } else { " + n + " })";
    }
    case 11: return rng_.Percent(50) ? Paren(Rec(depth + 1)) + ".name" : Paren(Rec(depth + 1)) + ".label()";
    case 12: return Paren(Str(depth + 1)) + ".chars().reverse().join(\"\")";
    default: {
      std::string call = Call(Ty::kStr, depth);
      return call.empty() ? StrLiteral() : call;
    }
  }
}

// ---------------- containers ----------------

std::string Generator::Closure(int depth) {
  // The body is generated with its own small budget: calling a function value costs
  // kFnValueCallCost wherever it happens.
  int64_t saved_cost = cost_, saved_budget = budget_, saved_mult = multiplier_;
  int saved_loops = loop_depth_;
  cost_ = 0;
  budget_ = kClosureBudget;
  multiplier_ = 1;
  loop_depth_ = 0;
  PushScope();
  std::string x = Fresh("x");
  Declare({x, Ty::kInt, false});
  std::string text;
  const Var* counter = PickVar(Ty::kInt, /*assignable=*/true);
  if (counter != nullptr && options_.mutation && rng_.Percent(35)) {
    // Mutates a captured variable: by reference locally, a copy in a remote callee.
    text = "|" + x + "| { " + counter->name + " = " +
           Fit({Paren(counter->name + " + " + x), -2 * kFitBound, 2 * kFitBound}).text + "; " +
           Fit(Int(depth + 1)).text + " }";
  } else {
    text = "|" + x + "| " + Fit(Int(depth + 1)).text;
  }
  PopScope();
  cost_ = saved_cost;
  budget_ = saved_budget;
  multiplier_ = saved_mult;
  loop_depth_ = saved_loops;
  return text;
}

std::string Generator::Fn(int depth) {
  std::vector<std::string> named;
  for (const Function& f : functions_) {
    if (f.params.size() == 1 && f.params[0] == Ty::kInt && f.ret == Ty::kInt &&
        f.cost <= kClosureBudget && !f.mutates) {
      named.push_back(f.name);
    }
  }
  const int pick = rng_.Below(10);
  if (pick < 2) {
    if (const Var* v = PickVar(Ty::kFn)) return v->name;
  }
  if (pick < 4 && !named.empty()) return rng_.Pick(named);
  if (pick < 5 && depth < kMaxDepth) {  // a call's arguments may hold function values in turn
    std::string call = Call(Ty::kFn, depth);
    if (!call.empty()) return call;
  }
  if (pick < 6) {
    if (const Var* v = PickVar(Ty::kArrFn)) return v->name + "[0]";
  }
  return Paren(Closure(depth));
}

std::string Generator::ArrFn(int depth) {
  if (depth < kMaxDepth && rng_.Percent(20)) {
    std::string call = Call(Ty::kArrFn, depth);
    if (!call.empty()) return call;
  }
  if (rng_.Percent(40)) {
    if (const Var* v = PickVar(Ty::kArrFn)) return v->name;
  }
  std::string s = "[" + Fn(depth + 1);
  for (int n = rng_.Below(3); n > 0; --n) s += ", " + Fn(depth + 1);
  return s + "]";
}

std::string Generator::ArrInt(int depth) {
  if (depth >= kMaxDepth || rng_.Percent(25)) {
    const Var* v = rng_.Percent(60) ? PickVar(Ty::kArrInt) : nullptr;
    if (v != nullptr) return v->name;
    std::string s = "[";
    for (int n = rng_.Below(5), i = 0; i < n; ++i) {
      s += (i ? ", " : "") + IntLiteral().text;
    }
    return s + "]";
  }
  switch (rng_.Below(11)) {
    case 0: case 1: {
      std::string s = "[";
      for (int n = rng_.Below(5), i = 0; i < n; ++i) s += (i ? ", " : "") + Fit(Int(depth + 1)).text;
      return s + "]";
    }
    case 2: case 3: {
      std::string arr = ArrInt(depth + 1);
      if (rng_.Percent(30)) {
        if (cost_ + kFnValueCallCost * kElementsAssumed * multiplier_ <= budget_) {
          cost_ += kFnValueCallCost * kElementsAssumed * multiplier_;
          return Paren(arr) + ".map(" + Fn(depth + 1) + ")";
        }
      }
      const bool map = rng_.Percent(50);
      int64_t saved = multiplier_;
      multiplier_ *= kElementsAssumed;
      PushScope();
      std::string x = Fresh("x");
      Declare({x, Ty::kInt, false});
      std::string body = map ? Fit(Int(depth + 1)).text : Bool(depth + 1);
      PopScope();
      multiplier_ = saved;
      return Paren(arr) + (map ? ".map(|" : ".filter(|") + x + "| " + body + ")";
    }
    case 4: return "(0.." + std::to_string(rng_.Below(7)) + ").to_array()";
    case 5: {
      int64_t saved = multiplier_;
      multiplier_ *= kElementsAssumed;
      PushScope();
      std::string s = Fresh("s");
      Declare({s, Ty::kStr, false});
      std::string body = Fit({s + ".len()", 0, 1000000000}).text;
      PopScope();
      multiplier_ = saved;
      return Paren(ArrStr(depth + 1)) + ".map(|" + s + "| " + body + ")";
    }
    case 6: return Paren(Map(depth + 1)) + ".values()";
    case 7: {
      const Var* v = PickVar(Ty::kArrInt);
      if (v == nullptr) return "[]";
      if (!options_.mutation) return v->name;
      return v->name + (rng_.Percent(50) ? ".sort()" : ".reverse()");
    }
    case 8: {
      if (cost_ + kFnValueCallCost * 3 * multiplier_ > budget_) return "[]";
      cost_ += kFnValueCallCost * 3 * multiplier_;
      std::string k = Fit(Int(depth + 1)).text;
      std::string f = Fresh("f");
      return Paren(ArrFn(depth + 1)) + ".map(|" + f + "| " + f + "(" + k + "))";
    }
    case 9: {  // pmap over a few elements (spread over executors when f is remote)
      if (cost_ + kFnValueCallCost * 4 * multiplier_ > budget_) return "[]";
      cost_ += kFnValueCallCost * 4 * multiplier_;
      std::string s = "[";
      for (int n = 1 + rng_.Below(3), i = 0; i < n; ++i) s += (i ? ", " : "") + IntLiteral().text;
      return "pmap(" + s + "], " + Fn(depth + 1) + ")";
    }
    default: {
      std::string call = Call(Ty::kArrInt, depth);
      return call.empty() ? "[]" : call;
    }
  }
}

std::string Generator::ArrStr(int depth) {
  if (depth >= kMaxDepth || rng_.Percent(25)) {
    const Var* v = rng_.Percent(60) ? PickVar(Ty::kArrStr) : nullptr;
    if (v != nullptr) return v->name;
    std::string s = "[";
    for (int n = rng_.Below(4), i = 0; i < n; ++i) s += (i ? ", " : "") + StrLiteral();
    return s + "]";
  }
  switch (rng_.Below(7)) {
    case 0: return Paren(Str(depth + 1)) + ".split(" + (rng_.Percent(70) ? "\",\"" : "") + ")";
    case 1: return Paren(Str(depth + 1)) + ".chars()";
    case 2: return Paren(ArrInt(depth + 1)) + ".map(str)";
    case 3: return Paren(Map(depth + 1)) + ".keys()";
    case 4: {
      int64_t saved = multiplier_;
      multiplier_ *= kElementsAssumed;
      PushScope();
      std::string s = Fresh("s");
      Declare({s, Ty::kStr, false});
      std::string cond = Bool(depth + 1);
      PopScope();
      multiplier_ = saved;
      return Paren(ArrStr(depth + 1)) + ".filter(|" + s + "| " + cond + ")";
    }
    case 5: return Paren(Rec(depth + 1)) + ".tags";
    default: {
      std::string call = Call(Ty::kArrStr, depth);
      return call.empty() ? "[" + Str(depth + 1) + "]" : call;
    }
  }
}

std::string Generator::Map(int depth) {
  if (depth < kMaxDepth && rng_.Percent(20)) {
    std::string call = Call(Ty::kMap, depth);
    if (!call.empty()) return call;
  }
  if (rng_.Percent(45)) {
    if (const Var* v = PickVar(Ty::kMap)) return v->name;
  }
  static const std::vector<std::string> kKeys = {"\"a\"", "\"b\"", "\"c\"", "\"d\""};
  std::string s = "{";
  int n = rng_.Below(5);
  for (int i = 0; i < n; ++i) {
    s += (i ? ", " : "") + kKeys[static_cast<size_t>(i)] + ": " +
         Fit(depth < kMaxDepth ? Int(depth + 1) : IntLiteral()).text;
  }
  return s + "}";
}

std::string Generator::Rec(int depth) {
  if (depth < kMaxDepth && rng_.Percent(15)) {
    std::string call = Call(Ty::kRec, depth);
    if (!call.empty()) return call;
  }
  if (rng_.Percent(45)) {
    if (const Var* v = PickVar(Ty::kRec)) return v->name;
  }
  if (rng_.Percent(30)) return "Rec::make(" + Fit(Int(depth + 1)).text + ", " + Str(depth + 1) + ")";
  return "Rec { id: " + Fit(Int(depth + 1)).text + ", name: " + Str(depth + 1) +
         ", tags: " + ArrStr(depth + 1) + " }";
}

std::string Generator::Sh(int depth) {
  if (depth < kMaxDepth && rng_.Percent(15)) {
    std::string call = Call(Ty::kSh, depth);
    if (!call.empty()) return call;
  }
  if (rng_.Percent(40)) {
    if (const Var* v = PickVar(Ty::kSh)) return v->name;
  }
  switch (rng_.Below(3)) {
    case 0: return "Sh::Empty";
    case 1: return "Sh::One(" + Fit(Int(depth + 1)).text + ")";
    default: return "Sh::Two(" + Fit(Int(depth + 1)).text + ", " + Str(depth + 1) + ")";
  }
}

std::string Generator::Opt(int depth) {
  if (rng_.Percent(30)) {
    if (const Var* v = PickVar(Ty::kOpt)) return v->name;
  }
  if (depth >= kMaxDepth) return rng_.Percent(50) ? "None" : "Some(" + IntLiteral().text + ")";
  switch (rng_.Below(7)) {
    case 0: return "Some(" + Fit(Int(depth + 1)).text + ")";
    case 1: return "None";
    case 2: return Paren(ArrInt(depth + 1)) + ".index_of(" + Int(depth + 1).text + ")";
    case 3: return Paren(Str(depth + 1)) + ".find(" + StrLiteral() + ")";
    case 4: return Paren(Map(depth + 1)) + ".get(" + KeyLiteral() + ")";
    case 5: {
      PushScope();
      std::string x = Fresh("x");
      Declare({x, Ty::kInt, false, -1000000000, 1000000000});
      std::string body = Fit(Int(depth + 1)).text;
      PopScope();
      return Paren(Opt(depth + 1)) + ".map(|" + x + "| " + body + ")";
    }
    default: {
      std::string call = Call(Ty::kOpt, depth);
      return call.empty() ? "None" : call;
    }
  }
}

std::string Generator::Res(int depth) {
  if (rng_.Percent(30)) {
    if (const Var* v = PickVar(Ty::kRes)) return v->name;
  }
  if (depth >= kMaxDepth) return rng_.Percent(50) ? "Err(\"e\")" : "Ok(" + IntLiteral().text + ")";
  switch (rng_.Below(6)) {
    case 0: return "Ok(" + Fit(Int(depth + 1)).text + ")";
    case 1: return "Err(" + Str(depth + 1) + ")";
    case 2: return Paren(Str(depth + 1)) + ".to_int().map(|v| v % " + std::to_string(kFitModulus) + ")";
    case 3: return "str(" + Fit(Int(depth + 1)).text + ").to_int()";
    case 4: {
      PushScope();
      std::string x = Fresh("x");
      Declare({x, Ty::kInt, false});
      std::string body = Fit(Int(depth + 1)).text;
      PopScope();
      return Paren(Res(depth + 1)) + ".map(|" + x + "| " + body + ")";
    }
    default: {
      std::string call = Call(Ty::kRes, depth);
      return call.empty() ? "Err(\"none\")" : call;
    }
  }
}

}  // namespace shapex::difftest
