// `shapex run` as a library: what the CLI does with a program's source, writing to streams of
// the caller's choosing. The CLI (shapex_main.cc) gives it stdout and stderr; the differential
// driver's in-process runner (tools/difftest/runner.h) gives it strings, so both run the very
// same code from compiling to the last line of a trace.
//
//   RunOptions o;                       // limits, --local, transport, as the CLI's flags set them
//   if (Status s = ParseLimitFlags({"--fuel", "5000"}, &o); !s.ok()) ...;
//   std::string out, err;
//   int code = RunSource(o, source, StringStreams(&out, &err));   // an exit code of exit_codes.h
//
// Thread-safety: RunSource may run on several threads at once with different streams (each call
// has its own Vm and its own connection to the supervisor).
#ifndef SHAPEX_TOOLS_RUN_COMMAND_H_
#define SHAPEX_TOOLS_RUN_COMMAND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shapex/client/client.h"
#include "shapex/client/remote_calls.h"
#include "shapex/core/status.h"
#include "shapex/engine/program.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/remote_call.h"

namespace CLI {
class App;
}

namespace shapex::cli {

// The default wall-clock limit of a call that enters a @remote function (seconds; LANGUAGE.md
// "Running", docs/language.md): an endless remote call cannot hold an executor forever.
inline constexpr double kDefaultRemoteTimeout = 300;

// Where a command's output goes. `err` is called with whole lines of an error report; the
// standard streams flush stdout before it, so the two interleave as the program produced them.
struct Streams {
  std::function<void(std::string_view)> out;
  std::function<void(std::string_view)> err;
};
Streams StdStreams();
Streams StringStreams(std::string* out, std::string* err);

// The options of `run` and `call` (set by AddLimitFlags or ParseLimitFlags).
struct RunOptions {
  std::string file;
  std::string function;
  std::vector<std::string> args;
  bool local = false;
  std::string transport = "ring";
  std::string socket;
  std::string shapex_binary;  // the binary a started supervisor runs; empty: this process's
  uint64_t fuel = 0;
  size_t memory = size_t{1} << 30;
  double timeout = 0;  // seconds of wall clock; 0 = none
  uint32_t stack = 10000;
  double remote_timeout = kDefaultRemoteTimeout;  // per call into a @remote function; 0 = none

  // The wall-clock limit of one call that enters a @remote function (or of the function `call`
  // runs): the tighter of --timeout and --remote-timeout; 0 = none.
  double CallLimit() const;
  engine::Limits Limits() const;
  ipc::CallLimits RemoteLimits() const;
  // How remote calls reach the supervisor. A call gets 2 s beyond its limit (the executor
  // enforces the limit itself) before its executor is killed.
  ClientOptions Client() const;
  // The options of the RemoteCalls that `run` and `call` route calls through: executors, or
  // the executor's code in this process with --local (same copies, limits and traces).
  RemoteCallsOptions CallsOptions() const;
};

// The flags `run` and `call` share: --local, --transport, --socket and the limits.
void AddLimitFlags(CLI::App* cmd, RunOptions* o);
// Those flags alone, parsed from a list (InvalidArgument names a flag CLI11 refused).
Status ParseLimitFlags(const std::vector<std::string>& flags, RunOptions* o);

// `error[Kind]: message`.
void PrintError(const Streams& s, std::string_view kind, std::string_view message);
// Runtime failures: the kind, then the Shape frames innermost first. Returns kExitRuntime.
int ReportRuntimeError(const Streams& s, const Status& status,
                       const std::vector<engine::TraceFrame>& trace, const std::string& file);
// Compiles and verifies; on failure reports the diagnostic and returns nullptr.
std::unique_ptr<engine::Program> CompileChecked(const Streams& s, const std::string& source,
                                                const std::string& file);

// `shapex run` after reading the file: compiles `source` (named o.file in diagnostics and
// traces), runs its top-level code and main(o.args), @remote calls going where `o` says.
// Returns the exit code. --timeout is enforced by the VM; the CLI adds a watchdog as backstop.
int RunSource(const RunOptions& o, const std::string& source, const Streams& s);

// The frames of the generated entry points of `call`, which are never shown in a trace.
inline constexpr const char* kCallEntry = "__shapex_call_entry";
inline constexpr const char* kArgsEntry = "__shapex_call_args";

}  // namespace shapex::cli

#endif  // SHAPEX_TOOLS_RUN_COMMAND_H_
