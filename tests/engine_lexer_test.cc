// Lexer: where statements end (LANGUAGE.md "Lexical"), literals, escapes and f-string parts.
#include <gtest/gtest.h>

#include "lexer.h"

namespace shapex::engine {
namespace {

std::vector<Tok> Kinds(std::string_view src) {
  std::vector<Tok> out;
  for (const Token& t : Lexer(src).Tokenize()) out.push_back(t.kind);
  return out;
}

TEST(LexerTest, NewlineEndsAStatementUnlessTheLineContinues) {
  EXPECT_EQ(Kinds("a\nb"), (std::vector<Tok>{Tok::kIdent, Tok::kNewline, Tok::kIdent, Tok::kEof}));
  EXPECT_EQ(Kinds("a +\nb"), (std::vector<Tok>{Tok::kIdent, Tok::kPlus, Tok::kIdent, Tok::kEof}));
  EXPECT_EQ(Kinds("f(a,\nb)"), (std::vector<Tok>{Tok::kIdent, Tok::kLParen, Tok::kIdent, Tok::kComma,
                                                Tok::kIdent, Tok::kRParen, Tok::kEof}));
  // Inside parentheses newlines never end a statement; inside braces they do again.
  EXPECT_EQ(Kinds("(a\n)"), (std::vector<Tok>{Tok::kLParen, Tok::kIdent, Tok::kRParen, Tok::kEof}));
  EXPECT_EQ(Kinds("f(|x| {\na\nb\n})"),
            (std::vector<Tok>{Tok::kIdent, Tok::kLParen, Tok::kPipe, Tok::kIdent, Tok::kPipe,
                              Tok::kLBrace, Tok::kIdent, Tok::kNewline, Tok::kIdent, Tok::kNewline,
                              Tok::kRBrace, Tok::kRParen, Tok::kEof}));
  // Blank lines and comments collapse into one newline.
  EXPECT_EQ(Kinds("a\n\n// c\n/* d\n */\nb"),
            (std::vector<Tok>{Tok::kIdent, Tok::kNewline, Tok::kIdent, Tok::kEof}));
}

TEST(LexerTest, NumberLiterals) {
  auto toks = Lexer("42 1_000_000 0xff 0b1010 3.14 1e9 2.5e-3 18446744073709551616").Tokenize();
  ASSERT_EQ(toks.size(), 9u);
  EXPECT_EQ(toks[0].int_value, 42u);
  EXPECT_EQ(toks[1].int_value, 1000000u);
  EXPECT_EQ(toks[2].int_value, 255u);
  EXPECT_EQ(toks[3].int_value, 10u);
  EXPECT_EQ(toks[4].kind, Tok::kNumber);
  EXPECT_DOUBLE_EQ(toks[4].number_value, 3.14);
  EXPECT_DOUBLE_EQ(toks[5].number_value, 1e9);
  EXPECT_DOUBLE_EQ(toks[6].number_value, 2.5e-3);
  EXPECT_TRUE(toks[7].int_overflow);
  // `10.step` is an Int followed by a method call, not a malformed Number.
  EXPECT_EQ(Kinds("10.step"), (std::vector<Tok>{Tok::kInt, Tok::kDot, Tok::kIdent, Tok::kEof}));
}

TEST(LexerTest, StringEscapes) {
  auto toks = Lexer(R"("a\n\t\r\\\"\0\u{1F600}")").Tokenize();
  ASSERT_EQ(toks[0].kind, Tok::kString);
  EXPECT_EQ(toks[0].text, std::string("a\n\t\r\\\"") + std::string(1, '\0') + "\xF0\x9F\x98\x80");
  auto bad = Lexer(R"("\q")").Tokenize();
  EXPECT_EQ(bad[0].kind, Tok::kError);
  EXPECT_EQ(Lexer("\"abc").Tokenize()[0].text, "unterminated string");
  EXPECT_EQ(Lexer("/* never closed").Tokenize()[0].text, "unterminated block comment");
}

TEST(LexerTest, FStringParts) {
  auto toks = Lexer(R"(f"x = {x + 1} {{literal}} {"s"}")").Tokenize();
  ASSERT_EQ(toks[0].kind, Tok::kFString);
  const auto& parts = toks[0].parts;
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_FALSE(parts[0].is_expr);
  EXPECT_EQ(parts[0].text, "x = ");
  EXPECT_TRUE(parts[1].is_expr);
  EXPECT_EQ(parts[1].text, "x + 1");
  EXPECT_EQ(parts[2].text, " {literal} ");
  EXPECT_EQ(parts[3].text, "\"s\"");
  EXPECT_EQ(Lexer(R"(f"{}")").Tokenize()[0].kind, Tok::kError);
}

// The spec starts at the first ':' at the hole's top level: not in (), [], {}, a string or '::'.
TEST(LexerTest, FStringFormatSpecs) {
  auto toks = Lexer(R"(f"{x:>8.3f}|{E::A:^5}|{m["a:b"]}|{ {1: 2}[1] :x}|{(|v: int| v)(1)}")")
                  .Tokenize();
  ASSERT_EQ(toks[0].kind, Tok::kFString);
  std::vector<std::pair<std::string, std::string>> holes;
  for (const auto& p : toks[0].parts)
    if (p.is_expr) holes.emplace_back(p.text, p.spec);
  EXPECT_EQ(holes, (std::vector<std::pair<std::string, std::string>>{{"x", ">8.3f"},
                                                                     {"E::A", "^5"},
                                                                     {"m[\"a:b\"]", ""},
                                                                     {" {1: 2}[1] ", "x"},
                                                                     {"(|v: int| v)(1)", ""}}));
  Token bad = Lexer(R"(f"{x:.q}")").Tokenize()[0];
  EXPECT_EQ(bad.kind, Tok::kError);
  EXPECT_EQ(bad.text, "invalid format spec '.q': expected digits after '.'");
  EXPECT_EQ(bad.col, 6);
  EXPECT_EQ(Lexer(R"(f"{:d}")").Tokenize()[0].kind, Tok::kError);  // empty expression
}

TEST(LexerTest, Tilde) {
  EXPECT_EQ(Kinds("~a"), (std::vector<Tok>{Tok::kTilde, Tok::kIdent, Tok::kEof}));
  EXPECT_EQ(Kinds("a = ~\nb"),
            (std::vector<Tok>{Tok::kIdent, Tok::kAssign, Tok::kTilde, Tok::kIdent, Tok::kEof}));
}

}  // namespace
}  // namespace shapex::engine
