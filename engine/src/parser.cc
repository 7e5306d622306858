#include "parser.h"

#include <cctype>
#include <cstdint>
#include <utility>

namespace shapex::engine {
namespace {

// Thrown inside the parser only; ParseModule converts it to a SyntaxError.
struct ParseFailure {
  SyntaxError error;
};

constexpr int kMaxDepth = 200;  // nesting limit: keeps the C++ stack bounded on any input

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  void ParseFile(Module* m) {
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

  ExprPtr ParseStandaloneExpr() {
    SkipNewlines();
    ExprPtr e = ParseExpr();
    SkipNewlines();
    if (!Check(Tok::kEof)) Fail("expected end of f-string expression");
    return e;
  }

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
  std::unique_ptr<FunctionDecl> ParseFunction(const std::string& impl_type = "") {
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

  void ParseParams(FunctionDecl* fn, Tok open, Tok close) {
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

  TypeExpr ParseType() {
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
  void CloseAngle() {
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

  StructDecl ParseStruct() {
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

  EnumDecl ParseEnum() {
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

  void ParseImpl(Module* m) {
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
  std::unique_ptr<Block> ParseBlock() {
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

  StmtPtr ParseStatement() {
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

  PatternPtr ParseForPattern() {
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
  PatternPtr ParseBindingName() {
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
  ExprPtr ParseCondition() {
    bool saved = no_struct_;
    no_struct_ = true;
    ExprPtr e = ParseExpr();
    no_struct_ = saved;
    return e;
  }

  // ---- expressions ----
  ExprPtr Make(ExprKind k, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }
  ExprPtr Binary(ExprKind k, Tok op, ExprPtr a, ExprPtr b, Pos pos) {
    ExprPtr e = Make(k, pos);
    e->op = op;
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr ParseExpr() {
    DepthGuard guard(this);
    return ParseOr();
  }
  ExprPtr ParseOr() {
    ExprPtr left = ParseAnd();
    while (Check(Tok::kOr) || Check(Tok::kPipePipe)) {
      Pos pos = CurPos();
      Advance();
      left = Binary(ExprKind::kOr, Tok::kOr, std::move(left), ParseAnd(), pos);
    }
    return left;
  }
  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (Check(Tok::kAnd) || Check(Tok::kAmpAmp)) {
      Pos pos = CurPos();
      Advance();
      left = Binary(ExprKind::kAnd, Tok::kAnd, std::move(left), ParseNot(), pos);
    }
    return left;
  }
  ExprPtr ParseNot() {
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
  ExprPtr ParseComparison() {
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
  ExprPtr ParseRange() {
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
  static bool AtLevel(int level, Tok t) {
    switch (level) {
      case 0: return t == Tok::kPipe;
      case 1: return t == Tok::kCaret;
      case 2: return t == Tok::kAmp;
      case 3: return t == Tok::kShl || t == Tok::kShr;
      case 4: return t == Tok::kPlus || t == Tok::kMinus;
      default: return t == Tok::kStar || t == Tok::kSlash || t == Tok::kPercent;
    }
  }
  ExprPtr ParseBinaryLevel(int level) {
    if (level > 5) return ParsePower();
    ExprPtr left = ParseBinaryLevel(level + 1);
    while (AtLevel(level, Cur().kind)) {
      Pos pos = CurPos();
      Tok op = Advance().kind;
      left = Binary(ExprKind::kBinary, op, std::move(left), ParseBinaryLevel(level + 1), pos);
    }
    return left;
  }
  ExprPtr ParsePower() {
    ExprPtr base = ParseUnary();
    if (Check(Tok::kStarStar)) {
      DepthGuard guard(this);
      Pos pos = CurPos();
      Advance();
      return Binary(ExprKind::kBinary, Tok::kStarStar, std::move(base), ParsePower(), pos);
    }
    return base;
  }
  ExprPtr ParseUnary() {
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
    return ParsePostfix(ParsePrimary());
  }

  std::vector<ExprPtr> ParseArgs(Tok close, const char* what) {
    std::vector<ExprPtr> args;
    while (!Check(close)) {
      args.push_back(ParseExprNoRestriction());
      if (!Match(Tok::kComma)) break;
    }
    Expect(close, what);
    return args;
  }
  // Inside brackets a struct literal is unambiguous again.
  ExprPtr ParseExprNoRestriction() {
    bool saved = no_struct_;
    no_struct_ = false;
    ExprPtr e = ParseExpr();
    no_struct_ = saved;
    return e;
  }

  ExprPtr ParsePostfix(ExprPtr e) {
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

  ExprPtr ParsePrimary() {
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

  ExprPtr ParseFString() {
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

  ExprPtr ParseMapLiteral() {
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

  ExprPtr ParseStructLiteral(const std::string& name, Pos pos) {
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

  ExprPtr ParseClosure() {
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

  ExprPtr ParseIf() {
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

  ExprPtr ParseMatch() {
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
  PatternPtr ParsePattern() {
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

  PatternPtr ParseSinglePattern() {
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

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool no_struct_ = false;
  bool pending_gt_ = false;
};

}  // namespace

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
