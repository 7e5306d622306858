// Compiler: Shape source -> Program (parse, resolve, compile to register bytecode).
//
//   Diagnostic diag;
//   Result<std::unique_ptr<Program>> p = Compile(source, "prog.shape", &diag);
//   if (!p) std::cerr << FormatDiagnostic(diag, source);
//
// Compile never crashes or throws on any input: every problem becomes a CompileError with a
// position. The result passes Verify() by construction (tests check this).
#ifndef SHAPEX_ENGINE_COMPILER_H_
#define SHAPEX_ENGINE_COMPILER_H_

#include <memory>
#include <string>
#include <string_view>

#include "shapex/core/result.h"
#include "shapex/engine/program.h"

namespace shapex::engine {

struct Diagnostic {
  std::string message;
  std::string file;
  int line = 0, col = 0;
};

Result<std::unique_ptr<Program>> Compile(std::string_view source, const std::string& file,
                                         Diagnostic* diagnostic = nullptr);

// The LANGUAGE.md compile-error layout (without the leading "error[CompileError]: " line):
//    --> prog.shape:3:14
//     |
//   3 |     add(1, 2
//     |              ^
std::string FormatDiagnosticLocation(const Diagnostic& d, std::string_view source);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_COMPILER_H_
