// Parser: hand-written recursive descent with one function per precedence level (LANGUAGE.md
// "Expressions"). Produces a Module or the first error with its position.
#ifndef SHAPEX_ENGINE_PARSER_H_
#define SHAPEX_ENGINE_PARSER_H_

#include <string>
#include <string_view>
#include <vector>

#include "ast.h"
#include "lexer.h"

namespace shapex::engine {

struct SyntaxError {
  std::string message;
  int line = 0, col = 0;
};

// Parses a whole file. On failure returns false and fills *error.
bool ParseModule(std::string_view source, Module* module, SyntaxError* error);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_PARSER_H_
