// Templates of the program generator (generator_internal.h): small functions aimed at what a
// remote call copies (aliasing, cycles, arguments, captures and globals changed by the
// callee, functions and closures as arguments, in containers and as results), bounded
// recursion, the deliberate runtime error at the end of some programs, and the limits.
// Each writes its functions to out_ and what main does with them to main_.
#include <string>
#include <vector>

#include "generator_internal.h"

namespace shapex::difftest {
namespace {

// A literal; negative ones parenthesized. (Built by appends: g++ 12 warns falsely, -Wrestrict,
// on `"(" + std::to_string(v)`.)
std::string IntText(int64_t v) {
  if (v >= 0) return std::to_string(v);
  std::string s = "(";
  s += std::to_string(v);
  s += ')';
  return s;
}

}  // namespace

void Generator::AliasingTemplate() {
  features_.push_back("aliasing");
  const std::string f = Fresh("alias");
  const std::string a = Fresh("a");
  const std::string v1 = IntText(rng_.Range(-9, 99)), v2 = IntText(rng_.Range(-9, 99));
  switch (rng_.Below(6)) {
    case 0:  // the same array passed twice
      FunctionHeader(f, {"p", "q"});
      Line(1, "p.push(" + v1 + ")");
      Line(1, "q.push(" + v2 + ")");
      Line(1, "[p.len(), q.len(), p[p.len() - 1]]");
      Line(0, "}");
      main_.push_back("let " + a + " = [" + IntText(rng_.Range(0, 9)) + "]");
      main_.push_back("print(" + f + "(" + a + ", " + a + "))");
      break;
    case 1:  // shared inside an array
      FunctionHeader(f, {"pair"});
      Line(1, "pair[0].push(" + v1 + ")");
      Line(1, "pair[1].len()");
      Line(0, "}");
      main_.push_back("let " + a + " = [" + IntText(rng_.Range(0, 9)) + "]");
      main_.push_back("print(" + f + "([" + a + ", " + a + "]))");
      break;
    case 2:  // the same struct twice
      FunctionHeader(f, {"r1", "r2"});
      Line(1, "r1.id = " + v1);
      Line(1, "r2.tags.push(\"t\")");
      Line(1, "[r1.id, r2.id, r1.tags.len()]");
      Line(0, "}");
      main_.push_back("let " + a + " = Rec { id: 1, name: \"n\", tags: [] }");
      main_.push_back("print(" + f + "(" + a + ", " + a + "))");
      break;
    case 3:  // shared inside a map
      FunctionHeader(f, {"m"});
      Line(1, "m[\"a\"].push(" + v1 + ")");
      Line(1, "m[\"b\"].len()");
      Line(0, "}");
      main_.push_back("let " + a + " = [" + IntText(rng_.Range(0, 9)) + "]");
      main_.push_back("print(" + f + "({\"a\": " + a + ", \"b\": " + a + "}))");
      break;
    case 4:  // sorted through one name, read through the other
      FunctionHeader(f, {"p", "q"});
      Line(1, "p.sort()");
      Line(1, "q[0]");
      Line(0, "}");
      main_.push_back("let " + a + " = [" + v1 + ", " + v2 + ", 5]");
      main_.push_back("print(" + f + "(" + a + ", " + a + "))");
      break;
    default:  // two structs sharing one array
      FunctionHeader(f, {"r1", "r2"});
      Line(1, "r1.tags.push(\"y\")");
      Line(1, "r2.tags.len()");
      Line(0, "}");
      main_.push_back("let " + a + " = [\"x\"]");
      main_.push_back("print(" + f + "(Rec { id: 1, name: \"a\", tags: " + a +
                      " }, Rec { id: 2, name: \"b\", tags: " + a + " }))");
      break;
  }
  main_.push_back("print(" + a + ")");
}

void Generator::CycleTemplate() {
  features_.push_back("cycle");
  const std::string f = Fresh("cyc");
  const std::string c = Fresh("c");
  const bool array = rng_.Percent(50);
  FunctionHeader(f, {"v"});
  Line(1, rng_.Percent(50) ? (array ? "v.len()" : "v.tags.len()") : "str(v).len()");
  Line(0, "}");
  if (array) {
    main_.push_back("let " + c + " = [1, 2]");
    main_.push_back(c + ".push(" + c + ")");
  } else {
    main_.push_back("let " + c + " = Rec::make(1, \"c\")");
    main_.push_back(c + ".tags.push(" + c + ")");
  }
  main_.push_back("print(" + f + "(" + c + "))");
}

void Generator::GlobalsTemplate() {
  features_.push_back("globals");
  const std::string f = Fresh("glob");
  if (options_.mutation && rng_.Percent(50)) {
    FunctionHeader(f, {"d"});
    Line(1, "g_n = (g_n + d) % 1000003");
    Line(1, "g_log.push(f\"" + f + " {d}\")");
    Line(1, "g_m[\"b\"] = d");
    Line(1, "g_arr.push(d)");
    Line(1, "g_n");
    Line(0, "}");
    main_.push_back("print(" + f + "(" + IntText(rng_.Range(-5, 50)) + "))");
  } else {  // the callee reads globals main has just changed
    FunctionHeader(f, {});
    Line(1, "[g_n * 2, g_arr.len(), g_m.len()]");
    Line(0, "}");
    main_.push_back("g_n = " + IntText(rng_.Range(0, 1000)));
    main_.push_back("g_arr.push(" + IntText(rng_.Range(0, 9)) + ")");
    main_.push_back("print(" + f + "())");
  }
  main_.push_back("print(g_n, g_log, g_arr, g_m)");
}

void Generator::HigherOrderTemplate() {
  features_.push_back("higher-order");
  const std::string apply = Fresh("apply");
  const std::string inc = Fresh("inc");
  const std::string k = IntText(rng_.Range(1, 9)), v = IntText(rng_.Range(-20, 50));
  FunctionHeader(inc, {"x"});
  Line(1, "(x + " + k + ") % 1000003");
  Line(0, "}");
  int variant = rng_.Below(6);
  if (!options_.mutation && (variant == 2 || variant == 3)) variant = 0;
  switch (variant) {
    case 0:
      FunctionHeader(apply, {"f", "x"});
      Line(1, "f(f(x) % 1000003) % 1000003");
      Line(0, "}");
      main_.push_back("print(" + apply + "(|x| (x * " + k + ") % 1000003, " + v + "))");
      main_.push_back("print(" + apply + "(" + inc + ", " + v + "))");
      break;
    case 1:  // closures in a container
      FunctionHeader(apply, {"fs", "x"});
      Line(1, "fs.map(|f| f(x))");
      Line(0, "}");
      main_.push_back("print(" + apply + "([|x| x * 2, " + inc + ", |x| x - " + k + "], " + v +
                      "))");
      break;
    case 2: {  // a closure that changes a captured variable
      const std::string cnt = Fresh("cnt"), bump = Fresh("bump");
      FunctionHeader(apply, {"f", "x"});
      Line(1, "f(x) + f(x)");
      Line(0, "}");
      main_.push_back("var " + cnt + " = 0");
      main_.push_back("let " + bump + " = |x| { " + cnt + " += x; " + cnt + " }");
      main_.push_back("print(" + apply + "(" + bump + ", " + v + "))");
      main_.push_back("print(" + cnt + ")");
      break;
    }
    case 3: {  // a closure that changes a captured struct
      const std::string r = Fresh("r");
      FunctionHeader(apply, {"f", "x"});
      Line(1, "f(x)");
      Line(0, "}");
      main_.push_back("let " + r + " = Rec::make(1, \"a\")");
      main_.push_back("print(" + apply + "(|x| { " + r + ".id = x; x + 1 }, " + v + "))");
      main_.push_back("print(" + r + ")");
      break;
    }
    case 4:  // pmap with a remote function and with a closure
      FunctionHeader(apply, {"xs"});
      Line(1, "pmap(xs, " + inc + ")");
      Line(0, "}");
      main_.push_back("print(pmap([1, 2, 3], " + inc + "))");
      main_.push_back("print(pmap([" + v + ", 2], |x| x * " + k + "))");
      main_.push_back("print(" + apply + "([4, 5]))");
      break;
    default:  // a function that maps with the function it is given
      FunctionHeader(apply, {"xs", "f"});
      Line(1, "xs.map(f).filter(|y| y % 2 == 0)");
      Line(0, "}");
      main_.push_back("print(" + apply + "([1, 2, 3, " + v + "], " + inc + "))");
      main_.push_back("print(" + apply + "([5, 6], |x| x + " + k + "))");
      break;
  }
}

void Generator::ClosureFactoryTemplate() {
  features_.push_back("closure-result");
  const std::string make = Fresh("make");
  const std::string c = Fresh("c");
  const std::string a = IntText(rng_.Range(-5, 30));
  switch (rng_.Below(4)) {
    case 0:  // a counter: the closure keeps changing its captured variable
      FunctionHeader(make, {"a"});
      Line(1, "var n = a");
      Line(1, "|x| {");
      Line(2, "n = (n + x) % 1000003");
      Line(2, "n");
      Line(1, "}");
      Line(0, "}");
      main_.push_back("let " + c + " = " + make + "(" + a + ")");
      main_.push_back("print(" + c + "(1), " + c + "(2))");
      main_.push_back("print(" + c + ")");
      break;
    case 1:  // closures in a returned array
      FunctionHeader(make, {"a"});
      Line(1, "[|x| x + a, |x| x * 2, |x| x - a]");
      Line(0, "}");
      main_.push_back("let " + c + " = " + make + "(" + a + ")");
      main_.push_back("print(" + c + "[0](1), " + c + "[1](2), " + c + ".map(|f| f(3)))");
      break;
    case 2:  // a closure in a returned struct
      FunctionHeader(make, {"a"});
      Line(1, "Rec { id: a, name: \"fn\", tags: [|x| x * a] }");
      Line(0, "}");
      main_.push_back("let " + c + " = " + make + "(" + a + ")");
      main_.push_back("print(" + c + ".tags[0](7), " + c + ".id)");
      break;
    default: {  // compose: closures in, closure out
      FunctionHeader(make, {"f", "g"});
      Line(1, "|x| f(g(x))");
      Line(0, "}");
      main_.push_back("let " + c + " = " + make + "(|x| x + " + a + ", |x| x * 3)");
      main_.push_back("print(" + c + "(5), " + c + "(-2))");
      break;
    }
  }
}

void Generator::RecursionTemplate(int depth_arg) {
  features_.push_back("recursion");
  const std::string f = Fresh("rec");
  if (rng_.Percent(70)) {
    FunctionHeader(f, {"n"});
    Line(1, "if n <= 0 { " + IntText(rng_.Range(0, 5)) + " } else { (" + f + "(n - 1) * 2 + n) % 1000003 }");
    Line(0, "}");
  } else {  // mutual recursion through a second function
    const std::string g = Fresh("rec");
    FunctionHeader(f, {"n"});
    Line(1, "if n <= 0 { [] } else { let r = " + g + "(n - 1); r.push(n); r }");
    Line(0, "}");
    FunctionHeader(g, {"n"});
    Line(1, "if n <= 0 { [0] } else { " + f + "(n - 1) }");
    Line(0, "}");
  }
  main_.push_back("print(" + f + "(" + std::to_string(depth_arg) + "))");
}

void Generator::ErrorSection() {
  features_.push_back("error");
  static const std::vector<std::string> kErrors = {
      "x / (x - x)",
      "9223372036854775807 + (math.abs(x) + 1)",
      "(x + 2000000) * 9223372036854775807",
      "[1, 2][math.abs(x) % 3 + 5]",
      "{\"a\": x}[\"zz\"]",
      "Err(f\"bad {x}\").unwrap()",
      "[x].index_of(x + 1).unwrap()",
      "panic(f\"boom {x}\")",
      "assert(x > 10000000, \"x too small\")",
      "(match x + 2000000 { 0 => 1, 1 => 2 })",
      "\"a\" + x",
      "int(\"abc\" + str(x))",
      "2 ** (64 + x % 2)",
      "1 << (70 + math.abs(x) % 3)",
      "x.len()",
      "x(1)",
      "(if x { 1 } else { 2 })",
      "[3, \"a\", x].sort()",
      "Rec::make(x, \"r\").bump(\"s\")",
      "(x % 5 + 1.5).foo",
  };
  const std::string err = rng_.Pick(kErrors);
  const std::string v = IntText(rng_.Range(-9, 40));
  main_.push_back("print(\"before the error\")");
  switch (rng_.Below(6)) {
    case 0: case 1: {  // two remote frames deep
      const std::string fail = Fresh("fail"), outer = Fresh("outer");
      FunctionHeader(fail, {"x"});
      Line(1, "let y = x + 1");
      Line(1, err);
      Line(0, "}");
      FunctionHeader(outer, {"x"});
      Line(1, "let z = " + fail + "(x)");
      Line(1, "z");
      Line(0, "}");
      main_.push_back("print(" + outer + "(" + v + "))");
      break;
    }
    case 2: {  // inside a closure passed to a remote function
      const std::string caller = Fresh("caller");
      FunctionHeader(caller, {"f", "x"});
      Line(1, "[f(x)]");
      Line(0, "}");
      // Parenthesized: a closure body that starts with `{` is a block.
      main_.push_back("print(" + caller + "(|x| (" + err + "), " + v + "))");
      break;
    }
    case 3: {  // unbounded recursion: the default stack limit and a shortened trace
      const std::string deep = Fresh("deep");
      FunctionHeader(deep, {"n"});
      Line(1, deep + "(n + 1) + 1");
      Line(0, "}");
      main_.push_back("print(" + deep + "(" + v + "))");
      break;
    }
    case 4: {  // an annotation that does not match
      const std::string typed = Fresh("typed");
      FunctionHeader(typed, {"a: int", "b: string"});
      Line(1, "a + b.len()");
      Line(0, "}");
      main_.push_back("print(" + typed + "(" + v + ", " +
                      (rng_.Percent(50) ? std::string("7") : std::string("\"s\", 3")) + "))");
      break;
    }
    default:  // in main itself
      main_.push_back("let x = " + v);
      main_.push_back("print(" + err + ")");
      break;
  }
  main_.push_back("print(\"after the error\")");
}

void Generator::LimitSection(std::vector<std::string>* flags) {
  features_.push_back("limits");
  switch (rng_.Below(4)) {
    case 3: {  // a DAG (2^depth leaves, depth + 1 objects) sent, formatted and compared
      flags->push_back("--fuel");
      flags->push_back(std::to_string(rng_.Range(2000, 100000)));
      flags->push_back("--memory");
      flags->push_back("16M");
      const std::string f = Fresh("walk"), d = Fresh("dag"), e = Fresh("dag");
      const std::string depth = std::to_string(rng_.Range(10, 40));
      FunctionHeader(f, {"d", "e"});
      Line(1, rng_.Percent(50) ? "[d == e, d.len()]" : "[str(d).len(), d.len()]");
      Line(0, "}");
      main_.push_back("var " + d + " = [1]");
      main_.push_back("var " + e + " = [1]");
      main_.push_back("for i in 0.." + depth + " { " + d + " = [" + d + ", " + d + "]; " + e +
                      " = [" + e + ", " + e + "] }");
      main_.push_back("print(" + f + "(" + d + ", " + e + "))");
      break;
    }
    case 0: {
      flags->push_back("--fuel");
      flags->push_back(std::to_string(rng_.Range(500, 40000)));
      const std::string f = Fresh("burn");
      FunctionHeader(f, {"n"});
      Line(1, "var s = 0");
      Line(1, "for i in 0..n { s = (s + i * i) % 1000003 }");
      Line(1, "s");
      Line(0, "}");
      main_.push_back("print(" + f + "(" + std::to_string(rng_.Range(10, 5000)) + "))");
      break;
    }
    case 1: {
      const int stack = static_cast<int>(rng_.Range(10, 60));
      flags->push_back("--stack");
      flags->push_back(std::to_string(stack));
      RecursionTemplate(stack + static_cast<int>(rng_.Range(-8, 30)));
      break;
    }
    default: {
      static const std::vector<std::string> kSizes = {"64K", "256K", "1M", "4M"};
      flags->push_back("--memory");
      flags->push_back(rng_.Pick(kSizes));
      const std::string f = Fresh("grow");
      FunctionHeader(f, {"n"});
      Line(1, "var a = []");
      Line(1, "for i in 0..n { a.push(\"x\".repeat(100) + str(i)) }");
      Line(1, "a.len()");
      Line(0, "}");
      main_.push_back("print(" + f + "(" + std::to_string(rng_.Range(100, 30000)) + "))");
      break;
    }
  }
}

}  // namespace shapex::difftest
