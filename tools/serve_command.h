// `shapex serve` (run the per-user supervisor) and `shapex status` (ask it how it is doing).
//
//   shapex serve [--socket PATH] [--pool N] [--sandbox full|none] [--store DIR|none]
//                [--leases-per-executor N] [--daemon]
//   shapex status [--json] [--socket PATH]
//
// `serve --daemon` detaches (new session, stdio to <socket dir>/supervisor.log) and returns once
// the supervisor listens, or prints why it could not start (exit 1). Without --daemon it runs in
// the foreground until SIGTERM/SIGINT. `status` exits 1 with error[IoError] when no supervisor
// runs (it never starts one).
#ifndef SHAPEX_TOOLS_SERVE_COMMAND_H_
#define SHAPEX_TOOLS_SERVE_COMMAND_H_

#include <CLI/CLI.hpp>
#include <string>

namespace shapex {

class ServeCommand {
 public:
  explicit ServeCommand(CLI::App& app);
  bool parsed() const;
  int Run();

 private:
  CLI::App* serve_ = nullptr;
  CLI::App* status_ = nullptr;
  std::string socket_;
  size_t pool_ = 0;
  std::string sandbox_ = "full";
  std::string store_;
  size_t leases_per_executor_ = 1;
  bool daemon_ = false;
  bool json_ = false;
};

}  // namespace shapex

#endif  // SHAPEX_TOOLS_SERVE_COMMAND_H_
