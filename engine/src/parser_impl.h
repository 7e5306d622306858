// Private to the parser (parser.cc, parse_expr.cc): the recursive-descent Parser class that
// ParseModule() drives. parser.cc holds the file-level grammar (declarations, statements);
// parse_expr.cc holds expressions and match patterns. Errors are thrown as ParseFailure inside
// the parser and never escape ParseModule().
#ifndef SHAPEX_ENGINE_PARSER_IMPL_H_
#define SHAPEX_ENGINE_PARSER_IMPL_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ast.h"
#include "lexer.h"
#include "parser.h"

namespace shapex::engine::parser_internal {

// Thrown inside the parser only; ParseModule converts it to a SyntaxError.
struct ParseFailure {
  SyntaxError error;
};

constexpr int kMaxDepth = 200;  // nesting limit: keeps the C++ stack bounded on any input

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  void ParseFile(Module* m);
  ExprPtr ParseStandaloneExpr();

 private:
  // ---- token helpers ----
  const Token& Cur() const { return toks_[pos_]; }
  const Token& PeekTok(size_t n = 1) const {
    size_t i = pos_ + n;
    return i < toks_.size() ? toks_[i] : toks_.back();
  }
  bool Check(Tok t) const { return Cur().kind == t; }
  bool Match(Tok t) {
    if (!Check(t)) return false;
    Advance();
    return true;
  }
  const Token& Advance() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  Pos CurPos() const { return {Cur().line, Cur().col}; }
  [[noreturn]] void FailAt(const Token& t, std::string msg) {
    if (t.kind == Tok::kError) throw ParseFailure{{t.text, t.line, t.col}};
    throw ParseFailure{{std::move(msg), t.line, t.col}};
  }
  // Errors at a token that starts a later line point just past the previous token, where the
  // missing piece belongs (`add(1, 2` + newline reports the end of that line).
  [[noreturn]] void Fail(std::string msg) {
    const Token& t = Cur();
    if (t.kind != Tok::kError && pos_ > 0) {
      const Token& prev = toks_[pos_ - 1];
      if (prev.line < t.line && prev.kind != Tok::kNewline)
        throw ParseFailure{{std::move(msg), prev.line,
                            prev.col + static_cast<int>(prev.lexeme.size())}};
    }
    FailAt(t, std::move(msg));
  }
  const Token& Expect(Tok t, const std::string& what) {
    if (!Check(t)) Fail("expected " + what);
    return Advance();
  }
  void SkipNewlines() {
    while (Check(Tok::kNewline)) Advance();
  }
  void SkipTerminators() {
    while (Check(Tok::kNewline) || Check(Tok::kSemicolon)) Advance();
  }
  // After a statement: newline, ';', '}' or end of file.
  bool ExpectTerminator() {
    if (Match(Tok::kSemicolon)) return true;
    if (Check(Tok::kNewline) || Check(Tok::kRBrace) || Check(Tok::kEof)) return false;
    Fail("expected newline or ';' after statement");
  }
  struct DepthGuard {
    Parser* p;
    explicit DepthGuard(Parser* parser) : p(parser) {
      if (++p->depth_ > kMaxDepth) p->Fail("expression nested too deeply");
    }
    ~DepthGuard() { --p->depth_; }
  };

  // ---- declarations ----
  std::unique_ptr<FunctionDecl> ParseFunction(const std::string& impl_type = "");
  void ParseParams(FunctionDecl* fn, Tok open, Tok close);
  TypeExpr ParseType();
  void CloseAngle();
  StructDecl ParseStruct();
  EnumDecl ParseEnum();
  void ParseImpl(Module* m);

  // ---- statements ----
  std::unique_ptr<Block> ParseBlock();
  StmtPtr ParseStatement();
  PatternPtr ParseForPattern();
  PatternPtr ParseBindingName();
  ExprPtr ParseCondition();

  // ---- expressions ----
  ExprPtr Make(ExprKind k, Pos pos);
  ExprPtr Binary(ExprKind k, Tok op, ExprPtr a, ExprPtr b, Pos pos);
  ExprPtr ParseExpr();
  ExprPtr ParseOr();
  ExprPtr ParseAnd();
  ExprPtr ParseNot();
  ExprPtr ParseComparison();
  ExprPtr ParseRange();
  static bool AtLevel(int level, Tok t);
  ExprPtr ParseBinaryLevel(int level);
  ExprPtr ParsePower();
  ExprPtr ParseUnary();
  std::vector<ExprPtr> ParseArgs(Tok close, const char* what);
  ExprPtr ParseExprNoRestriction();
  ExprPtr ParsePostfix(ExprPtr e);
  ExprPtr ParsePrimary();
  ExprPtr ParseFString();
  ExprPtr ParseMapLiteral();
  ExprPtr ParseStructLiteral(const std::string& name, Pos pos);
  ExprPtr ParseClosure();
  ExprPtr ParseIf();
  ExprPtr ParseMatch();

  // ---- patterns ----
  PatternPtr ParsePattern();
  PatternPtr ParseSinglePattern();

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool no_struct_ = false;
  bool pending_gt_ = false;
};

}  // namespace shapex::engine::parser_internal

#endif  // SHAPEX_ENGINE_PARSER_IMPL_H_
