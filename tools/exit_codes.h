// The shapex CLI's exit codes, a contract of LANGUAGE.md ("Running") that users' scripts rely on.
#ifndef SHAPEX_TOOLS_EXIT_CODES_H_
#define SHAPEX_TOOLS_EXIT_CODES_H_

#include <string_view>

#include "shapex/core/status.h"

namespace shapex {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;  // a runtime-side error: any kind but CompileError
inline constexpr int kExitUsage = 2;    // usage or I/O error
inline constexpr int kExitCompile = 65;

// The error kind users see: only LANGUAGE.md's kinds reach them. Failures of the machinery
// itself (I/O, misuse of an internal interface, internal errors) are reported as SandboxError.
inline std::string_view UserKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kIoError:
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kInternal:
      return "SandboxError";
    default:
      return ErrorKindName(kind);
  }
}

}  // namespace shapex

#endif  // SHAPEX_TOOLS_EXIT_CODES_H_
