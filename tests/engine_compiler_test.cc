// Compiler front to back: diagnostics format (LANGUAGE.md "Errors"), limits that keep hostile
// input from exhausting the compiler, and properties the VM relies on (output verifies).
#include <string>

#include <gtest/gtest.h>

#include "shapex/engine/compiler.h"
#include "shapex/engine/verifier.h"

namespace shapex::engine {
namespace {

Diagnostic CompileFails(const std::string& src) {
  Diagnostic d;
  auto p = Compile(src, "prog.shape", &d);
  EXPECT_FALSE(p.has_value()) << src;
  if (!p.has_value()) {
    EXPECT_EQ(p.error().kind(), ErrorKind::kCompileError);
  }
  return d;
}

TEST(CompilerDiagnosticTest, MatchesTheLanguageSpecLayout) {
  std::string src = "function add(a, b) { a + b }\nfunction main() {\n    add(1, 2\n}\n";
  Diagnostic d = CompileFails(src);
  EXPECT_EQ(d.message, "expected ')' after arguments");
  EXPECT_EQ(d.line, 3);
  EXPECT_EQ(d.col, 13);
  EXPECT_EQ(FormatDiagnosticLocation(d, src),
            " --> prog.shape:3:13\n"
            "  |\n"
            "3 |     add(1, 2\n"
            "  |             ^\n");
}

TEST(CompilerDiagnosticTest, NamesWhatWasExpected) {
  EXPECT_EQ(CompileFails("let x = ").message, "expected expression");
  EXPECT_EQ(CompileFails("print(y)").message, "undefined variable 'y'");
  EXPECT_EQ(CompileFails("let x = 1\nx = 2").message, "cannot assign to immutable variable 'x'");
  EXPECT_EQ(CompileFails("let x = 9223372036854775808").message, "integer literal out of range");
  EXPECT_EQ(CompileFails("@fast\nfunction f() { 1 }").message, "unknown annotation '@fast'");
  EXPECT_EQ(CompileFails("let s = \"abc").message, "unterminated string");
  EXPECT_EQ(CompileFails("break").message, "break outside of loop");
}

TEST(CompilerDiagnosticTest, MinInt64LiteralIsAllowedWhenNegated) {
  auto p = Compile("let x = -9223372036854775808", "prog.shape");
  EXPECT_TRUE(p.has_value());
}

TEST(CompilerLimitsTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '(');
  Diagnostic d = CompileFails("let x = " + deep + "1");
  EXPECT_NE(d.message.find("nested too deeply"), std::string::npos) << d.message;
  std::string brackets;
  for (int i = 0; i < 50000; ++i) brackets += "[";
  CompileFails("let y = " + brackets);
}

TEST(CompilerLimitsTest, TooManyRegistersIsReported) {
  std::string src = "function f() {\n";
  for (int i = 0; i < 300; ++i) src += "  let v" + std::to_string(i) + " = " + std::to_string(i) + "\n";
  src += "  v0\n}\n";
  Diagnostic d = CompileFails(src);
  EXPECT_NE(d.message.find("too complex"), std::string::npos) << d.message;
}

TEST(CompilerOutputTest, LargeLiteralsAndManyConstantsVerify) {
  std::string src = "let xs = [";
  for (int i = 0; i < 1000; ++i) src += std::to_string(i * 100000) + ", ";
  src += "1]\nlet m = {";
  for (int i = 0; i < 300; ++i) src += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
  src += "\"end\": 0}\nprint(xs.len(), m.len())\n";
  auto p = Compile(src, "prog.shape");
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_TRUE(Verify(**p).ok());
}

}  // namespace
}  // namespace shapex::engine
