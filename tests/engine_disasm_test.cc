// Tests for the disassembler: header line, operand layout and comments on real programs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "shapex/engine/compiler.h"
#include "shapex/engine/disasm.h"
#include "shapex/engine/opcodes.h"
#include "shapex/engine/program.h"

namespace shapex::engine {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::unique_ptr<Program> MustCompile(const std::string& source) {
  auto program = Compile(source, "t.shape");
  EXPECT_TRUE(program.has_value()) << program.error().ToString();
  return program.has_value() ? std::move(program).value() : nullptr;
}

const Proto& Named(const Program& p, const std::string& name) {
  for (auto& proto : p.protos)
    if (proto->name == name) return *proto;
  ADD_FAILURE() << "no function " << name;
  return *p.protos[0];
}

TEST(DisasmTest, HeaderAndArithmetic) {
  auto p = MustCompile("function add(a, b) {\n  a + b\n}\n");
  ASSERT_NE(p, nullptr);
  std::string text = Disassemble(*p, Named(*p, "add"));
  EXPECT_THAT(text, StartsWith("function add (params 2, regs 3, constants 0)\n"));
  EXPECT_THAT(text, HasSubstr("    0     2  ADD         2 0 1\n"));
  EXPECT_THAT(text, HasSubstr("    1     2  RET         2\n"));
}

TEST(DisasmTest, CommentsNameConstantsFunctionsNativesAndGlobals) {
  auto p = MustCompile(
      "let limit = 100000\n"
      "function greet(n) { print(\"hi\", n, 2.5, limit) }\n"
      "function main(args) { greet(1) }\n");
  ASSERT_NE(p, nullptr);
  std::string greet = Disassemble(*p, Named(*p, "greet"));
  EXPECT_THAT(greet, ContainsRegex("NATIVE +[0-9]+ 0  ; native print\n"));
  EXPECT_THAT(greet, ContainsRegex("LOADK +[0-9]+ [0-9]+  ; \"hi\"\n"));
  EXPECT_THAT(greet, ContainsRegex("LOADK +[0-9]+ [0-9]+  ; 2.5\n"));
  EXPECT_THAT(greet, ContainsRegex("GETGLOBAL +[0-9]+ 0  ; global limit\n"));
  std::string script = Disassemble(*p, Named(*p, "<script>"));
  EXPECT_THAT(script, ContainsRegex("LOADK +[0-9]+ 0  ; 100000\n"));
  EXPECT_THAT(Disassemble(*p, Named(*p, "main")), ContainsRegex("FUNC +[0-9]+ 0  ; greet\n"));
}

TEST(DisasmTest, ExtraWordsAndJumps) {
  auto p = MustCompile(
      "type Point { x: number, y: number }\n"
      "function f(p, o) {\n"
      "  if p.x > 1.0 { Some(p.y) } else { None }\n"
      "}\n"
      "function g(o) { match o { Some(v) => v, _ => 0 } }\n");
  ASSERT_NE(p, nullptr);
  std::string f = Disassemble(*p, Named(*p, "f"));
  EXPECT_THAT(f, ContainsRegex("GETFIELD +[0-9]+ 0 0  ; \\.x\n"));
  EXPECT_THAT(f, ContainsRegex("GETFIELD +[0-9]+ 0 1  ; \\.y\n"));
  EXPECT_THAT(f, ContainsRegex("NEWENUM +[0-9]+ [0-9]+ 0xffff0000  ; Some\n"));
  EXPECT_THAT(f, ContainsRegex("JMP +-?[0-9]+  ; -> [0-9]+\n"));
  // The extra word is not listed as an instruction of its own: pcs skip it.
  EXPECT_THAT(f, ContainsRegex("    0     3  GETFIELD [^\n]*\n    2 "));
  std::string g = Disassemble(*p, Named(*p, "g"));
  EXPECT_THAT(g, ContainsRegex("MATCHENUM +[0-9]+ [0-9]+ 0xffff0000  ; Some\n"));
}

TEST(DisasmTest, ProgramListsEveryFunction) {
  auto p = MustCompile("function a() { 1 }\nfunction b() { |x| x }\n");
  ASSERT_NE(p, nullptr);
  std::string text = DisassembleProgram(*p);
  EXPECT_THAT(text, HasSubstr("function a (params 0"));
  EXPECT_THAT(text, HasSubstr("function b (params 0"));
  EXPECT_THAT(text, HasSubstr("function <closure> (params 1"));
  EXPECT_THAT(text, HasSubstr("CLOSURE"));
  EXPECT_THAT(text, HasSubstr("function <script> (params 0"));
}

TEST(DisasmTest, UnverifiedGarbageIsListedSafely) {
  auto p = MustCompile("function a() { 1 }\n");
  ASSERT_NE(p, nullptr);
  Proto& a = *p->protos[0];
  a.code = {0xffu, static_cast<uint32_t>(Op::kLOADK) | (7u << 16),
            static_cast<uint32_t>(Op::kGETFIELD)};
  a.lines = {1, 1, 1};
  std::string text = Disassemble(*p, a);
  EXPECT_THAT(text, HasSubstr("???"));
  EXPECT_THAT(text, HasSubstr("LOADK       0 7  ; ?"));
  EXPECT_THAT(text, HasSubstr("<missing extra word>"));
}

}  // namespace
}  // namespace shapex::engine
