#include "lexer.h"

#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include <fmt/format.h>

#include "format_spec.h"

namespace shapex::engine {

const char* TokName(Tok t) {
  static const char* const kNames[] = {
#define SHAPEX_TOK_NAME(name, text) text,
      SHAPEX_TOKENS(SHAPEX_TOK_NAME)
#undef SHAPEX_TOK_NAME
  };
  return kNames[static_cast<int>(t)];
}

namespace {

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }

// Tokens after which a newline does not end the statement.
bool ContinuesLine(Tok t) {
  switch (t) {
    case Tok::kPlus: case Tok::kMinus: case Tok::kStar: case Tok::kSlash: case Tok::kPercent:
    case Tok::kStarStar: case Tok::kAssign: case Tok::kPlusAssign: case Tok::kMinusAssign:
    case Tok::kStarAssign: case Tok::kSlashAssign: case Tok::kPercentAssign: case Tok::kEq:
    case Tok::kNe: case Tok::kLt: case Tok::kLe: case Tok::kGt: case Tok::kGe: case Tok::kAmp:
    case Tok::kPipe: case Tok::kCaret: case Tok::kShl: case Tok::kShr: case Tok::kBang:
    case Tok::kAmpAmp: case Tok::kPipePipe: case Tok::kAnd: case Tok::kOr: case Tok::kNot:
    case Tok::kDot: case Tok::kDotDot: case Tok::kDotDotEq: case Tok::kArrow:
    case Tok::kFatArrow: case Tok::kComma: case Tok::kLParen: case Tok::kLBracket:
    case Tok::kLBrace: case Tok::kColon: case Tok::kColonColon: case Tok::kAt:
    case Tok::kTilde: case Tok::kNewline:
      return true;
    default:
      return false;
  }
}

const std::unordered_map<std::string_view, Tok>& Keywords() {
  static const auto* kMap = new std::unordered_map<std::string_view, Tok>{
      {"let", Tok::kLet},       {"var", Tok::kVar},     {"function", Tok::kFunction},
      {"return", Tok::kReturn}, {"if", Tok::kIf},       {"else", Tok::kElse},
      {"while", Tok::kWhile},   {"for", Tok::kFor},     {"in", Tok::kIn},
      {"break", Tok::kBreak},   {"continue", Tok::kContinue}, {"match", Tok::kMatch},
      {"type", Tok::kType},     {"enum", Tok::kEnum},   {"impl", Tok::kImpl},
      {"true", Tok::kTrue},     {"false", Tok::kFalse}, {"None", Tok::kNone},
      {"Some", Tok::kSome},     {"Ok", Tok::kOk},       {"Err", Tok::kErr},
      {"and", Tok::kAnd},       {"or", Tok::kOr},       {"not", Tok::kNot},
      {"self", Tok::kSelf}};
  return *kMap;
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

Lexer::Lexer(std::string_view source, int line, int col) : src_(source), line_(line), col_(col) {}

char Lexer::Advance() {
  char c = src_[pos_++];
  if (c == '\n') {
    ++line_;
    col_ = 1;
  } else {
    ++col_;
  }
  return c;
}

std::vector<Token> Lexer::Tokenize() {
  std::vector<Token> out;
  std::vector<Tok> brackets;  // open bracket stack
  while (true) {
    // Newlines: decide here whether the line break ends a statement.
    bool saw_newline = false;
    int nl_line = line_, nl_col = col_;
    while (true) {
      std::string error;
      int el = 0, ec = 0;
      if (!SkipSpaceAndComments(&error, &el, &ec)) {
        out.push_back(Error(error, el, ec));
        out.push_back(Make(Tok::kEof, pos_, line_, col_));
        return out;
      }
      if (Peek() == '\n') {
        if (!saw_newline) {
          nl_line = line_;
          nl_col = col_;
        }
        saw_newline = true;
        Advance();
        continue;
      }
      break;
    }
    if (saw_newline && !out.empty()) {
      bool in_parens = !brackets.empty() && brackets.back() != Tok::kLBrace;
      if (!in_parens && !ContinuesLine(out.back().kind)) {
        Token t;
        t.kind = Tok::kNewline;
        t.line = nl_line;
        t.col = nl_col;
        out.push_back(t);
      }
    }
    Token t = Next();
    switch (t.kind) {
      case Tok::kLParen: case Tok::kLBracket: case Tok::kLBrace:
        brackets.push_back(t.kind);
        break;
      case Tok::kRParen: case Tok::kRBracket: case Tok::kRBrace:
        if (!brackets.empty()) brackets.pop_back();
        break;
      default:
        break;
    }
    bool done = t.kind == Tok::kEof || t.kind == Tok::kError;
    out.push_back(std::move(t));
    if (done) {
      if (out.back().kind == Tok::kError) out.push_back(Make(Tok::kEof, pos_, line_, col_));
      return out;
    }
  }
}

bool Lexer::SkipSpaceAndComments(std::string* error, int* err_line, int* err_col) {
  while (pos_ < src_.size()) {
    char c = Peek();
    if (c == ' ' || c == '\t' || c == '\r') {
      Advance();
    } else if (c == '/' && Peek(1) == '/') {
      while (pos_ < src_.size() && Peek() != '\n') Advance();
    } else if (c == '/' && Peek(1) == '*') {
      int sl = line_, sc = col_;
      Advance();
      Advance();
      int depth = 1;
      while (depth > 0) {
        if (pos_ >= src_.size()) {
          *error = "unterminated block comment";
          *err_line = sl;
          *err_col = sc;
          return false;
        }
        if (Peek() == '/' && Peek(1) == '*') {
          Advance();
          Advance();
          ++depth;
        } else if (Peek() == '*' && Peek(1) == '/') {
          Advance();
          Advance();
          --depth;
        } else {
          Advance();
        }
      }
    } else {
      break;
    }
  }
  return true;
}

Token Lexer::Make(Tok kind, size_t start, int line, int col) {
  Token t;
  t.kind = kind;
  t.line = line;
  t.col = col;
  t.lexeme = src_.substr(start, pos_ - start);
  return t;
}

Token Lexer::Error(std::string msg, int line, int col) {
  Token t;
  t.kind = Tok::kError;
  t.line = line;
  t.col = col;
  t.text = std::move(msg);
  return t;
}

Token Lexer::Next() {
  int line = line_, col = col_;
  size_t start = pos_;
  if (pos_ >= src_.size()) return Make(Tok::kEof, start, line, col);
  char c = Peek();
  if (c == 'f' && Peek(1) == '"') return LexFString(start, line, col);
  if (IsIdentStart(c)) return LexIdent(start, line, col);
  if (IsDigit(c)) return LexNumber(start, line, col);
  if (c == '"') return LexString(start, line, col);
  Advance();
  auto two = [&](char next, Tok yes, Tok no) {
    if (Peek() == next) {
      Advance();
      return Make(yes, start, line, col);
    }
    return Make(no, start, line, col);
  };
  switch (c) {
    case '(': return Make(Tok::kLParen, start, line, col);
    case ')': return Make(Tok::kRParen, start, line, col);
    case '[': return Make(Tok::kLBracket, start, line, col);
    case ']': return Make(Tok::kRBracket, start, line, col);
    case '{': return Make(Tok::kLBrace, start, line, col);
    case '}': return Make(Tok::kRBrace, start, line, col);
    case ',': return Make(Tok::kComma, start, line, col);
    case ';': return Make(Tok::kSemicolon, start, line, col);
    case '?': return Make(Tok::kQuestion, start, line, col);
    case '@': return Make(Tok::kAt, start, line, col);
    case '^': return Make(Tok::kCaret, start, line, col);
    case '~': return Make(Tok::kTilde, start, line, col);
    case ':': return two(':', Tok::kColonColon, Tok::kColon);
    case '.':
      if (Peek() == '.') {
        Advance();
        return two('=', Tok::kDotDotEq, Tok::kDotDot);
      }
      return Make(Tok::kDot, start, line, col);
    case '+': return two('=', Tok::kPlusAssign, Tok::kPlus);
    case '-':
      if (Peek() == '>') {
        Advance();
        return Make(Tok::kArrow, start, line, col);
      }
      return two('=', Tok::kMinusAssign, Tok::kMinus);
    case '*':
      if (Peek() == '*') {
        Advance();
        return Make(Tok::kStarStar, start, line, col);
      }
      return two('=', Tok::kStarAssign, Tok::kStar);
    case '/': return two('=', Tok::kSlashAssign, Tok::kSlash);
    case '%': return two('=', Tok::kPercentAssign, Tok::kPercent);
    case '=':
      if (Peek() == '>') {
        Advance();
        return Make(Tok::kFatArrow, start, line, col);
      }
      return two('=', Tok::kEq, Tok::kAssign);
    case '!': return two('=', Tok::kNe, Tok::kBang);
    case '<':
      if (Peek() == '<') {
        Advance();
        return Make(Tok::kShl, start, line, col);
      }
      return two('=', Tok::kLe, Tok::kLt);
    case '>':
      if (Peek() == '>') {
        Advance();
        return Make(Tok::kShr, start, line, col);
      }
      return two('=', Tok::kGe, Tok::kGt);
    case '&': return two('&', Tok::kAmpAmp, Tok::kAmp);
    case '|': return two('|', Tok::kPipePipe, Tok::kPipe);
    default:
      break;
  }
  if (static_cast<unsigned char>(c) >= 0x80) {
    // Skip the rest of a UTF-8 sequence so the message names one character.
    while (pos_ < src_.size() && (static_cast<unsigned char>(Peek()) & 0xC0) == 0x80) Advance();
  }
  return Error(std::string("unexpected character '") +
                   std::string(src_.substr(start, pos_ - start)) + "'",
               line, col);
}

Token Lexer::LexIdent(size_t start, int line, int col) {
  while (IsIdentChar(Peek())) Advance();
  Token t = Make(Tok::kIdent, start, line, col);
  auto it = Keywords().find(t.lexeme);
  if (it != Keywords().end()) t.kind = it->second;
  t.text = std::string(t.lexeme);
  return t;
}

Token Lexer::LexNumber(size_t start, int line, int col) {
  std::string digits;
  int base = 10;
  if (Peek() == '0' && (Peek(1) == 'x' || Peek(1) == 'X' || Peek(1) == 'b' || Peek(1) == 'B')) {
    base = (Peek(1) == 'x' || Peek(1) == 'X') ? 16 : 2;
    Advance();
    Advance();
    while (true) {
      char c = Peek();
      bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                           : (c == '0' || c == '1');
      if (ok) {
        digits.push_back(c);
        Advance();
      } else if (c == '_') {
        Advance();
      } else {
        break;
      }
    }
    if (digits.empty() || IsIdentChar(Peek()))
      return Error(base == 16 ? "invalid hexadecimal literal" : "invalid binary literal", line,
                   col);
  } else {
    bool is_float = false;
    auto take_digits = [&] {
      while (IsDigit(Peek()) || (Peek() == '_' && IsDigit(Peek(1)))) {
        char c = Advance();
        if (c != '_') digits.push_back(c);
      }
    };
    take_digits();
    if (Peek() == '.' && IsDigit(Peek(1))) {
      is_float = true;
      digits.push_back(Advance());
      take_digits();
    }
    if ((Peek() == 'e' || Peek() == 'E') &&
        (IsDigit(Peek(1)) || ((Peek(1) == '+' || Peek(1) == '-') && IsDigit(Peek(2))))) {
      is_float = true;
      digits.push_back(Advance());
      if (Peek() == '+' || Peek() == '-') digits.push_back(Advance());
      take_digits();
    }
    if (IsIdentStart(Peek())) return Error("invalid number literal", line, col);
    if (is_float) {
      Token t = Make(Tok::kNumber, start, line, col);
      t.number_value = std::strtod(digits.c_str(), nullptr);
      return t;
    }
  }
  Token t = Make(Tok::kInt, start, line, col);
  uint64_t v = 0;
  for (char c : digits) {
    uint64_t d = IsDigit(c) ? c - '0' : (std::tolower(c) - 'a' + 10);
    if (v > (UINT64_MAX - d) / base) {
      t.int_overflow = true;
      break;
    }
    v = v * base + d;
  }
  t.int_value = v;
  return t;
}

bool Lexer::DecodeEscape(std::string* out, std::string* error) {
  // pos_ is just past the backslash.
  if (pos_ >= src_.size()) {
    *error = "unterminated string";
    return false;
  }
  char e = Advance();
  switch (e) {
    case 'n': out->push_back('\n'); return true;
    case 't': out->push_back('\t'); return true;
    case 'r': out->push_back('\r'); return true;
    case '\\': out->push_back('\\'); return true;
    case '"': out->push_back('"'); return true;
    case '0': out->push_back('\0'); return true;
    case '{': out->push_back('{'); return true;
    case '}': out->push_back('}'); return true;
    case 'u': {
      if (Peek() != '{') {
        *error = "expected '{' after \\u";
        return false;
      }
      Advance();
      uint32_t cp = 0;
      int n = 0;
      while (std::isxdigit(static_cast<unsigned char>(Peek())) && n < 7) {
        char c = Advance();
        cp = cp * 16 + (IsDigit(c) ? c - '0' : (std::tolower(c) - 'a' + 10));
        ++n;
      }
      if (n == 0 || Peek() != '}') {
        *error = "invalid unicode escape";
        return false;
      }
      Advance();
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *error = "invalid unicode code point in escape";
        return false;
      }
      AppendUtf8(out, cp);
      return true;
    }
    default:
      *error = std::string("unknown escape sequence '\\") + e + "'";
      return false;
  }
}

Token Lexer::LexString(size_t start, int line, int col) {
  Advance();  // opening quote
  std::string value;
  while (true) {
    if (pos_ >= src_.size() || Peek() == '\n') return Error("unterminated string", line, col);
    char c = Advance();
    if (c == '"') break;
    if (c == '\\') {
      std::string error;
      int el = line_, ec = col_ - 1;
      if (!DecodeEscape(&value, &error)) return Error(error, el, ec);
      continue;
    }
    value.push_back(c);
  }
  Token t = Make(Tok::kString, start, line, col);
  t.text = std::move(value);
  return t;
}

Token Lexer::LexFString(size_t start, int line, int col) {
  Advance();  // f
  Advance();  // "
  Token t;
  std::string literal;
  int lit_line = line_, lit_col = col_;
  auto flush = [&] {
    if (!literal.empty()) t.parts.push_back({false, std::move(literal), lit_line, lit_col, {}});
    literal.clear();
  };
  while (true) {
    if (pos_ >= src_.size() || Peek() == '\n') return Error("unterminated string", line, col);
    char c = Peek();
    if (c == '"') {
      Advance();
      break;
    }
    if (c == '\\') {
      Advance();
      std::string error;
      int el = line_, ec = col_ - 1;
      if (!DecodeEscape(&literal, &error)) return Error(error, el, ec);
      continue;
    }
    if (c == '{' && Peek(1) == '{') {
      Advance();
      Advance();
      literal.push_back('{');
      continue;
    }
    if (c == '}' && Peek(1) == '}') {
      Advance();
      Advance();
      literal.push_back('}');
      continue;
    }
    if (c == '}') return Error("single '}' in f-string (use '}}')", line_, col_);
    if (c == '{') {
      flush();
      int brace_line = line_, brace_col = col_;
      Advance();
      int expr_line = line_, expr_col = col_;
      size_t expr_start = pos_;
      int depth = 1;
      int nesting = 0;  // open ( and [ inside the hole
      size_t expr_end = std::string::npos;
      while (true) {
        if (pos_ >= src_.size() || Peek() == '\n')
          return Error("unterminated '{' in f-string", brace_line, brace_col);
        char d = Peek();
        if (d == ':' && Peek(1) == ':') {  // a path, Enum::Variant
          Advance();
          Advance();
          continue;
        }
        if (d == ':' && depth == 1 && nesting == 0) {
          // A format spec: the rest of the hole, up to its '}'.
          expr_end = pos_;
          Advance();
          while (pos_ < src_.size() && Peek() != '}' && Peek() != '\n') Advance();
          if (pos_ >= src_.size() || Peek() == '\n')
            return Error("unterminated '{' in f-string", brace_line, brace_col);
          break;
        }
        if (d == '(' || d == '[') ++nesting;
        if ((d == ')' || d == ']') && nesting > 0) --nesting;
        if (d == '"') {
          // A string literal inside the expression: skip it whole.
          Advance();
          while (pos_ < src_.size() && Peek() != '"' && Peek() != '\n') {
            if (Peek() == '\\') Advance();
            if (pos_ < src_.size()) Advance();
          }
          if (Peek() != '"') return Error("unterminated string", brace_line, brace_col);
          Advance();
          continue;
        }
        if (d == '{') ++depth;
        if (d == '}' && --depth == 0) break;
        Advance();
      }
      if (expr_end == std::string::npos) expr_end = pos_;
      std::string expr(src_.substr(expr_start, expr_end - expr_start));
      std::string spec;
      if (expr_end < pos_) spec = std::string(src_.substr(expr_end + 1, pos_ - expr_end - 1));
      int spec_col = col_ - static_cast<int>(pos_ - expr_end - 1);
      Advance();  // closing }
      if (expr.find_first_not_of(" \t") == std::string::npos)
        return Error("empty expression in f-string", brace_line, brace_col);
      FormatSpec parsed;
      std::string why;
      if (!spec.empty() && !ParseFormatSpec(spec, &parsed, &why))
        return Error(fmt::format("invalid format spec '{}': {}", spec, why), line_, spec_col);
      t.parts.push_back({true, std::move(expr), expr_line, expr_col, std::move(spec)});
      lit_line = line_;
      lit_col = col_;
      continue;
    }
    literal.push_back(Advance());
  }
  flush();
  Token made = Make(Tok::kFString, start, line, col);
  made.parts = std::move(t.parts);
  return made;
}

}  // namespace shapex::engine
