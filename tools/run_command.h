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

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
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

// `--color=auto|always|never`: whether error headers are coloured.
enum class ColorChoice { kAuto, kAlways, kNever };
// Parses "auto", "always" or "never"; false for anything else.
bool ParseColorChoice(std::string_view text, ColorChoice* out);
// always: yes; never: no; auto: when `fd` is a terminal and NO_COLOR is unset or empty
// (https://no-color.org).
bool UseColor(ColorChoice choice, int fd);

// Where a command's output goes. `err` is called with whole lines of an error report; the
// standard streams flush stdout before it, so the two interleave as the program produced them.
// `color`: the `error[Kind]` / `error` header of a report is bold red (see UseColor).
struct Streams {
  std::function<void(std::string_view)> out;
  std::function<void(std::string_view)> err;
  bool color = false;
};
Streams StdStreams(bool color = false);
Streams StringStreams(std::string* out, std::string* err);

// "error[Kind]", or "error" for an empty kind (usage errors), coloured when s.color.
std::string ErrorHeader(const Streams& s, std::string_view kind);
// Usage problems (exit 2) have no error kind of their own: `error: message`.
void PrintUsageError(const Streams& s, std::string_view message);
// Reads a whole file; false after a usage error naming it.
bool ReadSourceFile(const Streams& s, const std::string& path, std::string* out);

// Enforces --timeout while a command runs in-process: when `seconds` (+ kWatchdogGrace) pass
// before it is destroyed, it calls `expire` on its own thread and, if that returns true, ends
// the process with exit code 1 (the VM has no cancellation hook, and a stuck program must not
// outlive its limit). The VM stops itself with a Timeout (and a trace) at its next
// instruction-slice check; the watchdog is the backstop for a single native call that runs far
// past the deadline. The default `expire` flushes stdout and reports error[Timeout] on `s`.
// `seconds` <= 0: no watchdog.
inline constexpr double kWatchdogGrace = 1.0;
class Watchdog {
 public:
  Watchdog(double seconds, const Streams& s);
  Watchdog(double seconds, std::function<bool()> expire);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};
// The message of a Timeout the watchdog reports.
std::string WatchdogMessage(double seconds);

// The options of `run` and `call` (set by AddLimitFlags or ParseLimitFlags).
struct RunOptions {
  std::string file;
  std::string function;
  std::vector<std::string> args;
  bool local = false;
  std::string transport = "ring";
  std::string socket;
  std::string shapex_binary;  // the binary a started supervisor runs; empty: this process's
  bool progress = true;       // the pmap progress line on a terminal stderr (RemoteCallsOptions)
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
