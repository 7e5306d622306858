// Format specs of f-string holes, `f"{x:>8.3f}"`: the subset of Python's format-spec
// mini-language that docs/language.md ("Format specs") documents.
//
//   spec  ::= [[fill] align] [sign] ["0"] [width] ["." precision] [type]
//   align ::= "<" | ">" | "^"          sign ::= "+" | "-" | " "
//   type  ::= "d" | "f" | "e" | "x" | "b"
//
// The compiler parses a spec to report a malformed one as a CompileError, and emits it as a
// String constant operand of FORMAT; the verifier parses it again (a blob may come from
// anywhere), and the interpreter applies it with FormatWithSpec. Which values a spec accepts is
// only known at run time ("format spec 'd' needs an Int, got number").
#ifndef SHAPEX_ENGINE_FORMAT_SPEC_H_
#define SHAPEX_ENGINE_FORMAT_SPEC_H_

#include <string>
#include <string_view>

#include "shapex/engine/value.h"

namespace shapex::engine {

class Vm;

inline constexpr int kMaxFormatWidth = 100000;
inline constexpr int kMaxFormatPrecision = 1000;

struct FormatSpec {
  std::string fill = " ";  // one character (UTF-8)
  char align = 0;      // 0 (the value's default), '<', '>', '^', or '=' (after the sign: from "0")
  char sign = 0;       // 0, '+', '-' or ' '
  int width = 0;       // 0: none
  int precision = -1;  // -1: none
  char type = 0;       // 0 (none) or one of d f e x b
};

// Parses `text` (what follows the ':' of the hole). On failure returns false and sets *error to
// why, e.g. "expected digits after '.'".
bool ParseFormatSpec(std::string_view text, FormatSpec* spec, std::string* error);

// FORMAT: *out = `value` formatted by the spec `spec_text` (a String constant that the verifier
// checked parses). Pays fuel and checks memory like other string building. Returns false with
// the Vm's error set (RuntimeError when the spec does not fit the value).
bool FormatWithSpec(Vm& vm, const Value& value, const Value& spec_text, Value* out);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_FORMAT_SPEC_H_
