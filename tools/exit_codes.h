// The shapex CLI's exit codes, a contract of LANGUAGE.md ("Running") that users' scripts rely on.
#ifndef SHAPEX_TOOLS_EXIT_CODES_H_
#define SHAPEX_TOOLS_EXIT_CODES_H_

namespace shapex {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;  // a runtime-side error: any kind but CompileError
inline constexpr int kExitUsage = 2;    // usage or I/O error
inline constexpr int kExitCompile = 65;

}  // namespace shapex

#endif  // SHAPEX_TOOLS_EXIT_CODES_H_
