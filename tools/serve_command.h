// `shapex serve` (run the per-user supervisor), `shapex status` (ask it how it is doing) and
// `shapex stop` (stop it and wait for it to exit).
//
//   shapex serve [--socket PATH] [--pool N] [--sandbox full|none] [--store DIR|none]
//                [--leases-per-executor N] [--max-leases-per-client N] [--lease-wait S]
//                [--idle-exit S] [--cgroups auto|off] [--executor-memory BYTES]
//                [--executor-pids N] [--executor-cpus CPUS] [--daemon]
//   shapex status [--json] [--socket PATH]
//   shapex stop [--socket PATH]
//
// `serve --daemon` detaches: a new session, stdin and stdout on /dev/null, every inherited
// descriptor above 2 closed, stderr appended to $XDG_STATE_HOME/shapex/supervisor.log
// (default ~/.local/state/shapex/; size-bounded, SIGHUP reopens it), process name `shapex`;
// it returns 0 once the supervisor listens, or prints why it could not start (exit 1). Without
// --daemon it runs in the foreground (logging to stderr) until SIGTERM/SIGINT or `stop`.
// `--idle-exit S`: exit after S seconds with no client and no lease (0 = never); the default
// is $SHAPEX_IDLE_EXIT if set, else 600 with --daemon and 0 in the foreground.
// A second `serve` on a socket that a supervisor already serves fails with SandboxError.
// `status` exits 1 with error[SandboxError] when no supervisor runs (it never starts one).
// `stop` with no supervisor running prints nothing and exits 0.
#ifndef SHAPEX_TOOLS_SERVE_COMMAND_H_
#define SHAPEX_TOOLS_SERVE_COMMAND_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace shapex {
namespace cli {
struct Streams;
}

class ServeCommand {
 public:
  explicit ServeCommand(CLI::App& app);
  bool parsed() const;
  // Errors are reported on `s` (run_command.h).
  int Run(const cli::Streams& s);

 private:
  int RunStatus(const cli::Streams& s);
  int RunStop(const cli::Streams& s);

  CLI::App* serve_ = nullptr;
  CLI::App* status_ = nullptr;
  CLI::App* stop_ = nullptr;
  std::string socket_;
  size_t pool_ = 0;
  std::string sandbox_ = "full";
  std::string store_;
  size_t leases_per_executor_ = 1;
  size_t max_leases_per_client_ = 0;
  double lease_wait_ = 30;
  std::optional<double> idle_exit_;
  std::string cgroups_ = "auto";
  uint64_t executor_memory_ = uint64_t{2} << 30;
  uint64_t executor_pids_ = 32;
  double executor_cpus_ = 0;
  bool daemon_ = false;
  bool json_ = false;
};

}  // namespace shapex

#endif  // SHAPEX_TOOLS_SERVE_COMMAND_H_
