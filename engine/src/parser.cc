#include "parser.h"

#include <memory>
#include <string>
#include <utility>

#include "parser_impl.h"

namespace shapex::engine {
namespace parser_internal {

void Parser::ParseFile(Module* m) {
  auto script = std::make_unique<FunctionDecl>();
  script->name = "<script>";
  script->body = std::make_unique<Block>();
  while (true) {
    SkipTerminators();
    if (Check(Tok::kEof)) break;
    if (Check(Tok::kAt) || Check(Tok::kFunction)) {
      m->functions.push_back(ParseFunction());
    } else if (Check(Tok::kType)) {
      m->structs.push_back(ParseStruct());
    } else if (Check(Tok::kEnum)) {
      m->enums.push_back(ParseEnum());
    } else if (Check(Tok::kImpl)) {
      ParseImpl(m);
    } else {
      script->body->stmts.push_back(ParseStatement());
      ExpectTerminator();
    }
  }
  m->script = std::move(script);
}

// ---- declarations ----
std::unique_ptr<FunctionDecl> Parser::ParseFunction(const std::string& impl_type) {
  bool remote = false;
  while (Check(Tok::kAt)) {
    Advance();
    const Token& name = Cur();
    if (name.kind != Tok::kIdent) Fail("expected annotation name after '@'");
    if (name.text != "remote") FailAt(name, "unknown annotation '@" + name.text + "'");
    Advance();
    remote = true;
    SkipNewlines();
  }
  auto fn = std::make_unique<FunctionDecl>();
  fn->pos = CurPos();
  Expect(Tok::kFunction, "'function'");
  fn->name = Expect(Tok::kIdent, "function name").text;
  fn->remote = remote;
  fn->impl_type = impl_type;
  ParseParams(fn.get(), Tok::kLParen, Tok::kRParen);
  if (Match(Tok::kArrow)) fn->return_type = std::make_unique<TypeExpr>(ParseType());
  if (!Check(Tok::kLBrace)) Fail("expected '{' before function body");
  fn->body = ParseBlock();
  return fn;
}

void Parser::ParseParams(FunctionDecl* fn, Tok open, Tok close) {
  if (open == Tok::kLParen) Expect(Tok::kLParen, "'(' after function name");
  while (!Check(close)) {
    Param p;
    p.pos = CurPos();
    p.decl = std::make_unique<Decl>();
    p.decl->pos = p.pos;
    p.decl->is_mutable = true;  // parameters can be reassigned
    if (Match(Tok::kSelf)) {
      if (!fn->params.empty()) Fail("'self' must be the first parameter");
      p.decl->name = "self";
      fn->is_method = true;
    } else {
      p.decl->name = Expect(Tok::kIdent, "parameter name").text;
    }
    if (Match(Tok::kColon)) p.type = std::make_unique<TypeExpr>(ParseType());
    if (open == Tok::kLParen && Match(Tok::kAssign)) p.default_value = ParseExpr();
    fn->params.push_back(std::move(p));
    if (!Match(Tok::kComma)) break;
  }
  Expect(close, close == Tok::kRParen ? "')' after parameters" : "'|' after parameters");
}

TypeExpr Parser::ParseType() {
  TypeExpr t;
  t.pos = CurPos();
  if (Match(Tok::kNone)) {
    t.name = "None";
    return t;
  }
  if (Match(Tok::kFunction)) {
    t.name = "function";
    return t;
  }
  t.name = Expect(Tok::kIdent, "type name").text;
  if (Match(Tok::kLt)) {
    DepthGuard guard(this);
    while (true) {
      t.args.push_back(ParseType());
      if (!Match(Tok::kComma)) break;
    }
    CloseAngle();
  }
  return t;
}

// Accepts '>' or the first half of '>>' (nested generic types).
void Parser::CloseAngle() {
  if (pending_gt_) {
    pending_gt_ = false;
    return;
  }
  if (Match(Tok::kGt)) return;
  if (Check(Tok::kShr)) {
    Advance();
    pending_gt_ = true;
    return;
  }
  Fail("expected '>' after type arguments");
}

StructDecl Parser::ParseStruct() {
  StructDecl s;
  s.pos = CurPos();
  Advance();  // type
  s.name = Expect(Tok::kIdent, "type name").text;
  Expect(Tok::kLBrace, "'{' after type name");
  SkipNewlines();
  while (!Check(Tok::kRBrace)) {
    s.fields.push_back(Expect(Tok::kIdent, "field name").text);
    s.field_types.push_back(Match(Tok::kColon) ? ParseType() : TypeExpr{"any", {}, CurPos()});
    if (!Match(Tok::kComma) && !Check(Tok::kNewline)) break;
    SkipNewlines();
  }
  SkipNewlines();
  Expect(Tok::kRBrace, "'}' after fields");
  return s;
}

EnumDecl Parser::ParseEnum() {
  EnumDecl e;
  e.pos = CurPos();
  Advance();  // enum
  e.name = Expect(Tok::kIdent, "enum name").text;
  Expect(Tok::kLBrace, "'{' after enum name");
  SkipNewlines();
  while (!Check(Tok::kRBrace)) {
    e.variants.push_back(Expect(Tok::kIdent, "variant name").text);
    std::vector<TypeExpr> payload;
    if (Match(Tok::kLParen)) {
      while (!Check(Tok::kRParen)) {
        payload.push_back(ParseType());
        if (!Match(Tok::kComma)) break;
      }
      Expect(Tok::kRParen, "')' after variant payload");
    }
    e.payloads.push_back(std::move(payload));
    if (!Match(Tok::kComma) && !Check(Tok::kNewline)) break;
    SkipNewlines();
  }
  SkipNewlines();
  Expect(Tok::kRBrace, "'}' after variants");
  return e;
}

void Parser::ParseImpl(Module* m) {
  Advance();  // impl
  std::string type = Expect(Tok::kIdent, "type name after 'impl'").text;
  Expect(Tok::kLBrace, "'{' after impl type");
  SkipTerminators();
  while (!Check(Tok::kRBrace)) {
    if (!Check(Tok::kFunction) && !Check(Tok::kAt)) Fail("expected 'function' in impl block");
    m->functions.push_back(ParseFunction(type));
    SkipTerminators();
  }
  Advance();
}

// ---- statements ----
std::unique_ptr<Block> Parser::ParseBlock() {
  DepthGuard guard(this);
  auto block = std::make_unique<Block>();
  block->pos = CurPos();
  Expect(Tok::kLBrace, "'{'");
  while (true) {
    SkipTerminators();
    if (Check(Tok::kRBrace)) break;
    if (Check(Tok::kEof)) Fail("expected '}' to close block");
    StmtPtr s = ParseStatement();
    if (s->kind == StmtKind::kExpr) s->explicit_semicolon = ExpectTerminator();
    else ExpectTerminator();
    block->stmts.push_back(std::move(s));
  }
  Advance();  // }
  if (!block->stmts.empty() && block->stmts.back()->kind == StmtKind::kExpr &&
      !block->stmts.back()->explicit_semicolon) {
    block->value = std::move(block->stmts.back()->value);
    block->stmts.pop_back();
  }
  return block;
}

StmtPtr Parser::ParseStatement() {
  auto s = std::make_unique<Stmt>();
  s->pos = CurPos();
  switch (Cur().kind) {
    case Tok::kLet:
    case Tok::kVar: {
      bool is_mutable = Advance().kind == Tok::kVar;
      s->kind = StmtKind::kLet;
      s->decl = std::make_unique<Decl>();
      s->decl->pos = CurPos();
      s->decl->name = Expect(Tok::kIdent, "variable name").text;
      s->decl->is_mutable = is_mutable;
      if (Match(Tok::kColon)) s->type = std::make_unique<TypeExpr>(ParseType());
      Expect(Tok::kAssign, "'=' after variable name");
      s->value = ParseExpr();
      return s;
    }
    case Tok::kReturn:
      Advance();
      s->kind = StmtKind::kReturn;
      if (!Check(Tok::kNewline) && !Check(Tok::kSemicolon) && !Check(Tok::kRBrace) &&
          !Check(Tok::kEof))
        s->value = ParseExpr();
      return s;
    case Tok::kBreak:
      Advance();
      s->kind = StmtKind::kBreak;
      return s;
    case Tok::kContinue:
      Advance();
      s->kind = StmtKind::kContinue;
      return s;
    case Tok::kWhile:
      Advance();
      s->kind = StmtKind::kWhile;
      s->value = ParseCondition();
      s->body = ParseBlock();
      return s;
    case Tok::kFor:
      Advance();
      s->kind = StmtKind::kFor;
      s->pattern = ParseForPattern();
      Expect(Tok::kIn, "'in' after loop variable");
      s->value = ParseCondition();
      s->body = ParseBlock();
      return s;
    case Tok::kFunction:
    case Tok::kAt:
      Fail("functions can only be declared at top level (use a closure)");
    case Tok::kType:
    case Tok::kEnum:
    case Tok::kImpl:
      Fail("type declarations are only allowed at top level");
    default:
      break;
  }
  ExprPtr e = ParseExpr();
  if (Check(Tok::kAssign) || Check(Tok::kPlusAssign) || Check(Tok::kMinusAssign) ||
      Check(Tok::kStarAssign) || Check(Tok::kSlashAssign) || Check(Tok::kPercentAssign)) {
    const Token& op = Advance();
    if (e->kind != ExprKind::kIdent && e->kind != ExprKind::kIndex &&
        e->kind != ExprKind::kField)
      throw ParseFailure{{"invalid assignment target", e->pos.line, e->pos.col}};
    s->kind = StmtKind::kAssign;
    s->op = op.kind;
    s->target = std::move(e);
    s->value = ParseExpr();
    return s;
  }
  s->kind = StmtKind::kExpr;
  s->value = std::move(e);
  return s;
}

PatternPtr Parser::ParseForPattern() {
  auto p = std::make_unique<Pattern>();
  p->pos = CurPos();
  if (Match(Tok::kLParen)) {
    p->kind = PatternKind::kArray;
    while (!Check(Tok::kRParen)) {
      p->subs.push_back(ParseBindingName());
      if (!Match(Tok::kComma)) break;
    }
    Expect(Tok::kRParen, "')' after loop variables");
    return p;
  }
  return ParseBindingName();
}

PatternPtr Parser::ParseBindingName() {
  auto p = std::make_unique<Pattern>();
  p->pos = CurPos();
  const Token& t = Expect(Tok::kIdent, "loop variable name");
  if (t.text == "_") {
    p->kind = PatternKind::kWildcard;
    return p;
  }
  p->kind = PatternKind::kBind;
  p->name = t.text;
  p->decl = std::make_unique<Decl>();
  p->decl->name = t.text;
  p->decl->pos = p->pos;
  return p;
}

// Condition heads of if/while/for/match: a `Name {` there starts the body, not a struct.
ExprPtr Parser::ParseCondition() {
  bool saved = no_struct_;
  no_struct_ = true;
  ExprPtr e = ParseExpr();
  no_struct_ = saved;
  return e;
}

}  // namespace parser_internal

using parser_internal::ParseFailure;
using parser_internal::Parser;

bool ParseModule(std::string_view source, Module* module, SyntaxError* error) {
  Lexer lexer(source);
  Parser parser(lexer.Tokenize());
  try {
    parser.ParseFile(module);
  } catch (ParseFailure& f) {
    *error = std::move(f.error);
    return false;
  }
  return true;
}

}  // namespace shapex::engine
