// `shapex call`: one function, from a file or by content hash from the supervisor's blob store
// (LANGUAGE.md "Running"), its result printed as inside a container, or with --json as one JSON
// object (docs/cli-json.md).
//
//   shapex call [--json] FILE FUNC [ARGS...] [--local] [limits]
//   shapex call [--json] --hash HEX [ARGS...] [limits]
//
//   CallOptions o;  o.run.file = ...; o.run.function = ...; o.json = true;
//   int code = RunCall(o, StdStreams(color));         // an exit code of exit_codes.h
//
// ARGS are Shape literals (checked here, then compiled as part of a generated entry function).
// Without --json: the function's output on stdout as it is produced, then the result on a line
// of its own; an error as `error[Kind]: message` and its trace on stderr. With --json stdout
// is exactly one JSON object, {"output": ..., "result": ...} or {"output": ..., "error": ...},
// stderr stays empty, and the exit code is the same as without it; only usage errors (exit 2)
// remain text on stderr. Remote (the default) and --local give the same bytes.
//
// Thread-safety: one call at a time per process (the --timeout watchdog ends the process).
#ifndef SHAPEX_TOOLS_CALL_COMMAND_H_
#define SHAPEX_TOOLS_CALL_COMMAND_H_

#include <string>

#include "run_command.h"

namespace shapex::cli {

struct CallOptions {
  RunOptions run;    // file, function, args, limits, --local
  std::string hash;  // --hash HEX: call this function of the blob store (no file or function)
  bool json = false;
};

// `call FILE FUNC ARGS...`, or with o.hash set `call --hash HEX ARGS...`.
int RunCall(const CallOptions& o, const Streams& s);

}  // namespace shapex::cli

#endif  // SHAPEX_TOOLS_CALL_COMMAND_H_
