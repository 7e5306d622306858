// Resolver: links every identifier to its declaration (Decl) and marks the variables that
// closures capture, so the compiler can box exactly those in cells. Top-level let/var of the
// script become module globals (visible to every function); names it leaves unresolved are
// top-level functions, natives or errors, which the compiler decides.
#ifndef SHAPEX_ENGINE_RESOLVER_H_
#define SHAPEX_ENGINE_RESOLVER_H_

#include <string>
#include <vector>

#include "ast.h"
#include "parser.h"

namespace shapex::engine {

// Fills Decl links in `module`; returns false with *error on a resolution error.
// `global_names` receives the module globals in slot order.
bool ResolveModule(Module* module, std::vector<std::string>* global_names, SyntaxError* error);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_RESOLVER_H_
