// Expressions (one function per precedence level, LANGUAGE.md "Expressions") and match
// patterns. The file-level grammar is in parser.cc.
#include <cctype>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lexer.h"
#include "parser_impl.h"

namespace shapex::engine::parser_internal {

ExprPtr Parser::ParseStandaloneExpr() {
  SkipNewlines();
  ExprPtr e = ParseExpr();
  SkipNewlines();
  if (!Check(Tok::kEof)) Fail("expected end of f-string expression");
  return e;
}

// ---- expressions ----
ExprPtr Parser::Make(ExprKind k, Pos pos) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  e->pos = pos;
  return e;
}

ExprPtr Parser::Binary(ExprKind k, Tok op, ExprPtr a, ExprPtr b, Pos pos) {
  ExprPtr e = Make(k, pos);
  e->op = op;
  e->a = std::move(a);
  e->b = std::move(b);
  return e;
}

ExprPtr Parser::ParseExpr() {
  DepthGuard guard(this);
  return ParseOr();
}

ExprPtr Parser::ParseOr() {
  ExprPtr left = ParseAnd();
  while (Check(Tok::kOr) || Check(Tok::kPipePipe)) {
    Pos pos = CurPos();
    Advance();
    left = Binary(ExprKind::kOr, Tok::kOr, std::move(left), ParseAnd(), pos);
  }
  return left;
}

ExprPtr Parser::ParseAnd() {
  ExprPtr left = ParseNot();
  while (Check(Tok::kAnd) || Check(Tok::kAmpAmp)) {
    Pos pos = CurPos();
    Advance();
    left = Binary(ExprKind::kAnd, Tok::kAnd, std::move(left), ParseNot(), pos);
  }
  return left;
}

ExprPtr Parser::ParseNot() {
  if (Check(Tok::kNot) || Check(Tok::kBang)) {
    DepthGuard guard(this);
    Pos pos = CurPos();
    Advance();
    ExprPtr e = Make(ExprKind::kUnary, pos);
    e->op = Tok::kNot;
    e->a = ParseNot();
    return e;
  }
  return ParseComparison();
}

ExprPtr Parser::ParseComparison() {
  ExprPtr left = ParseRange();
  while (true) {
    Tok t = Cur().kind;
    if (t != Tok::kEq && t != Tok::kNe && t != Tok::kLt && t != Tok::kLe && t != Tok::kGt &&
        t != Tok::kGe)
      return left;
    Pos pos = CurPos();
    Advance();
    left = Binary(ExprKind::kBinary, t, std::move(left), ParseRange(), pos);
  }
}

ExprPtr Parser::ParseRange() {
  ExprPtr left = ParseBinaryLevel(0);
  if (Check(Tok::kDotDot) || Check(Tok::kDotDotEq)) {
    Pos pos = CurPos();
    bool inclusive = Advance().kind == Tok::kDotDotEq;
    ExprPtr e = Binary(ExprKind::kRange, Tok::kDotDot, std::move(left), ParseBinaryLevel(0),
                       pos);
    e->flag = inclusive;
    return e;
  }
  return left;
}

// Levels: 0 `|`, 1 `^`, 2 `&`, 3 `<< >>`, 4 `+ -`, 5 `* / %`.
bool Parser::AtLevel(int level, Tok t) {
  switch (level) {
    case 0: return t == Tok::kPipe;
    case 1: return t == Tok::kCaret;
    case 2: return t == Tok::kAmp;
    case 3: return t == Tok::kShl || t == Tok::kShr;
    case 4: return t == Tok::kPlus || t == Tok::kMinus;
    default: return t == Tok::kStar || t == Tok::kSlash || t == Tok::kPercent;
  }
}

ExprPtr Parser::ParseBinaryLevel(int level) {
  if (level > 5) return ParsePower();
  ExprPtr left = ParseBinaryLevel(level + 1);
  while (AtLevel(level, Cur().kind)) {
    Pos pos = CurPos();
    Tok op = Advance().kind;
    left = Binary(ExprKind::kBinary, op, std::move(left), ParseBinaryLevel(level + 1), pos);
  }
  return left;
}

ExprPtr Parser::ParsePower() {
  ExprPtr base = ParseUnary();
  if (Check(Tok::kStarStar)) {
    DepthGuard guard(this);
    Pos pos = CurPos();
    Advance();
    return Binary(ExprKind::kBinary, Tok::kStarStar, std::move(base), ParsePower(), pos);
  }
  return base;
}

ExprPtr Parser::ParseUnary() {
  if (Check(Tok::kMinus)) {
    DepthGuard guard(this);
    Pos pos = CurPos();
    Advance();
    ExprPtr operand = ParseUnary();
    if (operand->kind == ExprKind::kInt && !operand->negative_literal) {
      // Fold `-<int literal>` so that -9223372036854775808 is representable.
      operand->negative_literal = true;
      operand->pos = pos;
      return operand;
    }
    ExprPtr e = Make(ExprKind::kUnary, pos);
    e->op = Tok::kMinus;
    e->a = std::move(operand);
    return e;
  }
  if (Check(Tok::kTilde)) {  // bitwise not: same precedence as unary minus
    DepthGuard guard(this);
    Pos pos = CurPos();
    Advance();
    ExprPtr e = Make(ExprKind::kUnary, pos);
    e->op = Tok::kTilde;
    e->a = ParseUnary();
    return e;
  }
  return ParsePostfix(ParsePrimary());
}

std::vector<ExprPtr> Parser::ParseArgs(Tok close, const char* what) {
  std::vector<ExprPtr> args;
  while (!Check(close)) {
    args.push_back(ParseExprNoRestriction());
    if (!Match(Tok::kComma)) break;
  }
  Expect(close, what);
  return args;
}

// Inside brackets a struct literal is unambiguous again.
ExprPtr Parser::ParseExprNoRestriction() {
  bool saved = no_struct_;
  no_struct_ = false;
  ExprPtr e = ParseExpr();
  no_struct_ = saved;
  return e;
}

ExprPtr Parser::ParsePostfix(ExprPtr e) {
  int chain = 0;
  while (true) {
    Pos pos = CurPos();
    if (++chain > kMaxDepth * 4) Fail("expression too long");
    if (Match(Tok::kLParen)) {
      ExprPtr call = Make(ExprKind::kCall, pos);
      call->a = std::move(e);
      call->items = ParseArgs(Tok::kRParen, "')' after arguments");
      e = std::move(call);
    } else if (Match(Tok::kLBracket)) {
      ExprPtr idx = Make(ExprKind::kIndex, pos);
      idx->a = std::move(e);
      idx->items = ParseArgs(Tok::kRBracket, "']' after index");
      if (idx->items.empty() || idx->items.size() > 2) FailAt(toks_[pos_ - 1], "expected one or two indices");
      e = std::move(idx);
    } else if (Match(Tok::kDot)) {
      const Token& name = Cur();
      if (name.kind != Tok::kIdent) Fail("expected field or method name after '.'");
      Advance();
      if (Check(Tok::kLParen)) {
        Advance();
        ExprPtr call = Make(ExprKind::kMethodCall, {name.line, name.col});
        call->a = std::move(e);
        call->name = name.text;
        call->items = ParseArgs(Tok::kRParen, "')' after arguments");
        e = std::move(call);
      } else {
        ExprPtr field = Make(ExprKind::kField, {name.line, name.col});
        field->a = std::move(e);
        field->name = name.text;
        e = std::move(field);
      }
    } else if (Match(Tok::kQuestion)) {
      ExprPtr t = Make(ExprKind::kTry, pos);
      t->a = std::move(e);
      e = std::move(t);
    } else {
      return e;
    }
  }
}

ExprPtr Parser::ParsePrimary() {
  DepthGuard guard(this);
  const Token& t = Cur();
  Pos pos{t.line, t.col};
  switch (t.kind) {
    case Tok::kInt: {
      if (t.int_overflow) Fail("integer literal out of range");
      ExprPtr e = Make(ExprKind::kInt, pos);
      e->int_value = t.int_value;
      Advance();
      return e;
    }
    case Tok::kNumber: {
      ExprPtr e = Make(ExprKind::kNumber, pos);
      e->number_value = t.number_value;
      Advance();
      return e;
    }
    case Tok::kString: {
      ExprPtr e = Make(ExprKind::kString, pos);
      e->name = t.text;
      Advance();
      return e;
    }
    case Tok::kFString: return ParseFString();
    case Tok::kTrue:
    case Tok::kFalse: {
      ExprPtr e = Make(ExprKind::kBool, pos);
      e->flag = t.kind == Tok::kTrue;
      Advance();
      return e;
    }
    case Tok::kNone:
      Advance();
      return Make(ExprKind::kNone, pos);
    case Tok::kSelf:
      Advance();
      return Make(ExprKind::kSelf, pos);
    case Tok::kSome:
    case Tok::kOk:
    case Tok::kErr: {
      ExprKind k = t.kind == Tok::kSome ? ExprKind::kSome
                   : t.kind == Tok::kOk ? ExprKind::kOk
                                        : ExprKind::kErr;
      std::string name = t.text;
      Advance();
      Expect(Tok::kLParen, "'(' after " + name);
      ExprPtr e = Make(k, pos);
      e->a = ParseExprNoRestriction();
      Expect(Tok::kRParen, "')' after " + name + " value");
      return e;
    }
    case Tok::kLParen: {
      Advance();
      SkipNewlines();
      ExprPtr e = ParseExprNoRestriction();
      SkipNewlines();
      Expect(Tok::kRParen, "')' after expression");
      return e;
    }
    case Tok::kLBracket: {
      Advance();
      ExprPtr e = Make(ExprKind::kArray, pos);
      SkipNewlines();
      while (!Check(Tok::kRBracket)) {
        e->items.push_back(ParseExprNoRestriction());
        SkipNewlines();
        if (!Match(Tok::kComma)) break;
        SkipNewlines();
      }
      Expect(Tok::kRBracket, "']' after array elements");
      return e;
    }
    case Tok::kLBrace: return ParseMapLiteral();
    case Tok::kPipe:
    case Tok::kPipePipe: return ParseClosure();
    case Tok::kIf: return ParseIf();
    case Tok::kMatch: return ParseMatch();
    case Tok::kIdent: {
      Advance();
      if (Check(Tok::kColonColon)) {
        Advance();
        ExprPtr e = Make(ExprKind::kPath, pos);
        e->name = t.text;
        e->name2 = Expect(Tok::kIdent, "name after '::'").text;
        return e;
      }
      if (Check(Tok::kLBrace) && !no_struct_ && std::isupper(static_cast<unsigned char>(t.text[0])))
        return ParseStructLiteral(t.text, pos);
      ExprPtr e = Make(ExprKind::kIdent, pos);
      e->name = t.text;
      return e;
    }
    default:
      Fail("expected expression");
  }
}

ExprPtr Parser::ParseFString() {
  const Token& t = Advance();
  ExprPtr e = Make(ExprKind::kFString, {t.line, t.col});
  for (const FStringPart& part : t.parts) {
    e->parts.push_back(part);
    if (!part.is_expr) {
      e->fstring_exprs.push_back(nullptr);
      continue;
    }
    Lexer lexer(part.text, part.line, part.col);
    Parser sub(lexer.Tokenize());
    sub.depth_ = depth_;
    e->fstring_exprs.push_back(sub.ParseStandaloneExpr());
  }
  return e;
}

ExprPtr Parser::ParseMapLiteral() {
  Pos pos = CurPos();
  Advance();
  ExprPtr e = Make(ExprKind::kMap, pos);
  SkipNewlines();
  while (!Check(Tok::kRBrace)) {
    e->items.push_back(ParseExprNoRestriction());
    Expect(Tok::kColon, "':' after map key");
    e->items.push_back(ParseExprNoRestriction());
    SkipNewlines();
    if (!Match(Tok::kComma)) break;
    SkipNewlines();
  }
  Expect(Tok::kRBrace, "'}' after map entries");
  return e;
}

ExprPtr Parser::ParseStructLiteral(const std::string& name, Pos pos) {
  Advance();  // {
  ExprPtr e = Make(ExprKind::kStructLit, pos);
  e->name = name;
  SkipNewlines();
  while (!Check(Tok::kRBrace)) {
    const Token& f = Expect(Tok::kIdent, "field name");
    e->field_names.push_back(f.text);
    e->field_pos.push_back({f.line, f.col});
    if (Match(Tok::kColon)) {
      e->items.push_back(ParseExprNoRestriction());
    } else {  // shorthand `Point { x, y }`
      ExprPtr id = Make(ExprKind::kIdent, {f.line, f.col});
      id->name = f.text;
      e->items.push_back(std::move(id));
    }
    SkipNewlines();
    if (!Match(Tok::kComma)) break;
    SkipNewlines();
  }
  Expect(Tok::kRBrace, "'}' after struct fields");
  return e;
}

ExprPtr Parser::ParseClosure() {
  Pos pos = CurPos();
  auto fn = std::make_unique<FunctionDecl>();
  fn->name = "<closure>";
  fn->is_closure = true;
  fn->pos = pos;
  if (Match(Tok::kPipePipe)) {
    // no parameters
  } else {
    Advance();  // |
    ParseParams(fn.get(), Tok::kPipe, Tok::kPipe);
  }
  if (Match(Tok::kArrow)) fn->return_type = std::make_unique<TypeExpr>(ParseType());
  if (Check(Tok::kLBrace)) {
    fn->body = ParseBlock();
  } else {
    fn->body = std::make_unique<Block>();
    fn->body->pos = CurPos();
    fn->body->value = ParseExpr();
  }
  ExprPtr e = Make(ExprKind::kClosure, pos);
  e->fn = std::move(fn);
  return e;
}

ExprPtr Parser::ParseIf() {
  Pos pos = CurPos();
  Advance();  // if
  ExprPtr e = Make(ExprKind::kIf, pos);
  e->a = ParseCondition();
  if (!Check(Tok::kLBrace)) Fail("expected '{' after if condition");
  e->block = ParseBlock();
  // `else` may start the next line.
  size_t save = pos_;
  SkipNewlines();
  if (Match(Tok::kElse)) {
    if (Check(Tok::kIf)) {
      e->else_expr = ParseIf();
    } else {
      if (!Check(Tok::kLBrace)) Fail("expected '{' after else");
      ExprPtr b = Make(ExprKind::kBlockExpr, CurPos());
      b->block = ParseBlock();
      e->else_expr = std::move(b);
    }
  } else {
    pos_ = save;
  }
  return e;
}

ExprPtr Parser::ParseMatch() {
  Pos pos = CurPos();
  Advance();  // match
  ExprPtr e = Make(ExprKind::kMatch, pos);
  e->a = ParseCondition();
  Expect(Tok::kLBrace, "'{' after match value");
  SkipTerminators();
  while (!Check(Tok::kRBrace)) {
    MatchArm arm;
    arm.pos = CurPos();
    arm.pattern = ParsePattern();
    if (Match(Tok::kIf)) arm.guard = ParseCondition();
    Expect(Tok::kFatArrow, "'=>' after match pattern");
    if (Check(Tok::kLBrace)) {
      ExprPtr b = Make(ExprKind::kBlockExpr, CurPos());
      b->block = ParseBlock();
      arm.body = std::move(b);
    } else {
      arm.body = ParseExprNoRestriction();
    }
    e->arms.push_back(std::move(arm));
    bool sep = Match(Tok::kComma);
    if (Check(Tok::kNewline) || Check(Tok::kSemicolon)) {
      sep = true;
      SkipTerminators();
    }
    if (!sep && !Check(Tok::kRBrace)) Fail("expected ',' or newline after match arm");
  }
  Advance();  // }
  return e;
}

// ---- patterns ----
PatternPtr Parser::ParsePattern() {
  DepthGuard guard(this);
  PatternPtr first = ParseSinglePattern();
  if (!Check(Tok::kPipe)) return first;
  auto alt = std::make_unique<Pattern>();
  alt->kind = PatternKind::kAlt;
  alt->pos = first->pos;
  alt->subs.push_back(std::move(first));
  while (Match(Tok::kPipe)) alt->subs.push_back(ParseSinglePattern());
  return alt;
}

PatternPtr Parser::ParseSinglePattern() {
  DepthGuard guard(this);
  auto p = std::make_unique<Pattern>();
  p->pos = CurPos();
  const Token& t = Cur();
  switch (t.kind) {
    case Tok::kInt: case Tok::kNumber: case Tok::kString: case Tok::kTrue: case Tok::kFalse:
    case Tok::kMinus:
      p->kind = PatternKind::kLiteral;
      p->literal = ParseUnary();
      if (p->literal->kind != ExprKind::kInt && p->literal->kind != ExprKind::kNumber &&
          p->literal->kind != ExprKind::kString && p->literal->kind != ExprKind::kBool &&
          !(p->literal->kind == ExprKind::kUnary && p->literal->a->kind == ExprKind::kNumber))
        throw ParseFailure{{"expected literal pattern", p->pos.line, p->pos.col}};
      return p;
    case Tok::kNone:
      Advance();
      p->kind = PatternKind::kNone;
      return p;
    case Tok::kSome: case Tok::kOk: case Tok::kErr:
      p->kind = t.kind == Tok::kSome ? PatternKind::kSome
                : t.kind == Tok::kOk ? PatternKind::kOk
                                     : PatternKind::kErr;
      Advance();
      Expect(Tok::kLParen, "'(' in pattern");
      p->subs.push_back(ParsePattern());
      Expect(Tok::kRParen, "')' in pattern");
      return p;
    case Tok::kLBracket:
      Advance();
      p->kind = PatternKind::kArray;
      while (!Check(Tok::kRBracket)) {
        p->subs.push_back(ParsePattern());
        if (!Match(Tok::kComma)) break;
      }
      Expect(Tok::kRBracket, "']' after array pattern");
      return p;
    case Tok::kIdent: {
      std::string name = t.text;
      Advance();
      if (name == "_") {
        p->kind = PatternKind::kWildcard;
        return p;
      }
      if (Match(Tok::kColonColon)) {
        p->kind = PatternKind::kVariant;
        p->name2 = name;
        p->name = Expect(Tok::kIdent, "variant name").text;
        if (Match(Tok::kLParen)) {
          while (!Check(Tok::kRParen)) {
            p->subs.push_back(ParsePattern());
            if (!Match(Tok::kComma)) break;
          }
          Expect(Tok::kRParen, "')' after variant pattern");
        }
        return p;
      }
      if (Check(Tok::kLBrace)) {
        Advance();
        p->kind = PatternKind::kStruct;
        p->name = name;
        SkipNewlines();
        while (!Check(Tok::kRBrace)) {
          const Token& f = Expect(Tok::kIdent, "field name in pattern");
          p->field_names.push_back(f.text);
          if (Match(Tok::kColon)) {
            p->subs.push_back(ParsePattern());
          } else {
            auto b = std::make_unique<Pattern>();
            b->kind = PatternKind::kBind;
            b->pos = {f.line, f.col};
            b->name = f.text;
            b->decl = std::make_unique<Decl>();
            b->decl->name = f.text;
            b->decl->pos = b->pos;
            p->subs.push_back(std::move(b));
          }
          SkipNewlines();
          if (!Match(Tok::kComma)) break;
          SkipNewlines();
        }
        Expect(Tok::kRBrace, "'}' after struct pattern");
        return p;
      }
      p->kind = PatternKind::kBind;
      p->name = name;
      p->decl = std::make_unique<Decl>();
      p->decl->name = name;
      p->decl->pos = p->pos;
      return p;
    }
    default:
      Fail("expected pattern");
  }
}

}  // namespace shapex::engine::parser_internal
