// Lexer: turns Shape source into tokens, deciding where statements end.
//
// Newlines are significant: a NEWLINE token is emitted at the end of a line unless the line
// ends with an operator, `,`, `(`, `[` or `{`, or the innermost open bracket is `(` or `[`
// (inside a `{` block newlines separate statements again, so a closure body inside call
// arguments still works). Consecutive newlines collapse into one token.
#ifndef SHAPEX_ENGINE_LEXER_H_
#define SHAPEX_ENGINE_LEXER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shapex::engine {

#define SHAPEX_TOKENS(X)                                                                      \
  X(kEof, "end of file") X(kNewline, "newline") X(kError, "error")                           \
  X(kIdent, "identifier") X(kInt, "integer") X(kNumber, "number") X(kString, "string")       \
  X(kFString, "f-string") X(kLParen, "'('") X(kRParen, "')'") X(kLBracket, "'['")           \
  X(kRBracket, "']'") X(kLBrace, "'{'") X(kRBrace, "'}'") X(kComma, "','")                  \
  X(kSemicolon, "';'") X(kColon, "':'") X(kColonColon, "'::'") X(kDot, "'.'")               \
  X(kDotDot, "'..'") X(kDotDotEq, "'..='") X(kArrow, "'->'") X(kFatArrow, "'=>'")           \
  X(kQuestion, "'?'") X(kAt, "'@'") X(kPlus, "'+'") X(kMinus, "'-'") X(kStar, "'*'")        \
  X(kSlash, "'/'") X(kPercent, "'%'") X(kStarStar, "'**'") X(kAssign, "'='")                \
  X(kPlusAssign, "'+='") X(kMinusAssign, "'-='") X(kStarAssign, "'*='")                     \
  X(kSlashAssign, "'/='") X(kPercentAssign, "'%='") X(kEq, "'=='") X(kNe, "'!='")           \
  X(kLt, "'<'") X(kLe, "'<='") X(kGt, "'>'") X(kGe, "'>='") X(kAmp, "'&'") X(kPipe, "'|'")  \
  X(kCaret, "'^'") X(kShl, "'<<'") X(kShr, "'>>'") X(kBang, "'!'") X(kAmpAmp, "'&&'")       \
  X(kPipePipe, "'||'") X(kLet, "'let'") X(kVar, "'var'") X(kFunction, "'function'")         \
  X(kReturn, "'return'") X(kIf, "'if'") X(kElse, "'else'") X(kWhile, "'while'")             \
  X(kFor, "'for'") X(kIn, "'in'") X(kBreak, "'break'") X(kContinue, "'continue'")           \
  X(kMatch, "'match'") X(kType, "'type'") X(kEnum, "'enum'") X(kImpl, "'impl'")             \
  X(kTrue, "'true'") X(kFalse, "'false'") X(kNone, "'None'") X(kSome, "'Some'")             \
  X(kOk, "'Ok'") X(kErr, "'Err'") X(kAnd, "'and'") X(kOr, "'or'") X(kNot, "'not'")          \
  X(kSelf, "'self'") X(kTilde, "'~'")

enum class Tok : uint8_t {
#define SHAPEX_TOK_ENUM(name, text) name,
  SHAPEX_TOKENS(SHAPEX_TOK_ENUM)
#undef SHAPEX_TOK_ENUM
};
const char* TokName(Tok t);

// One piece of an f-string: literal text or the source of an embedded expression.
struct FStringPart {
  bool is_expr;
  std::string text;  // literal text (escapes decoded) or expression source
  int line, col;     // where `text` starts in the file
  std::string spec;  // an expression's format spec (after ':'; checked by the lexer), or empty
};

struct Token {
  Tok kind = Tok::kEof;
  int line = 1, col = 1;
  std::string_view lexeme;  // points into the source
  std::string text;         // decoded string literal, identifier, or error message
  uint64_t int_value = 0;   // magnitude of an integer literal (may exceed INT64_MAX)
  bool int_overflow = false;
  double number_value = 0;
  std::vector<FStringPart> parts;  // kFString
};

class Lexer {
 public:
  // `line`/`col` give the position of source[0] (for f-string sub-expressions).
  explicit Lexer(std::string_view source, int line = 1, int col = 1);
  // Tokenizes everything; the last token is kEof. A kError token carries its message in text.
  std::vector<Token> Tokenize();

 private:
  Token Next();
  Token Make(Tok kind, size_t start, int line, int col);
  Token Error(std::string msg, int line, int col);
  Token LexNumber(size_t start, int line, int col);
  Token LexString(size_t start, int line, int col);
  Token LexFString(size_t start, int line, int col);
  Token LexIdent(size_t start, int line, int col);
  bool SkipSpaceAndComments(std::string* error, int* err_line, int* err_col);
  bool DecodeEscape(std::string* out, std::string* error);
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0';
  }
  char Advance();

  std::string_view src_;
  size_t pos_ = 0;
  int line_, col_;
};

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_LEXER_H_
