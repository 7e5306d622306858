// How the differential driver runs one program one way (issue 12, Build 5).
//
//   InProcessRunner runner("/path/to/shapex", std::chrono::seconds(30));   // or ProcessRunner
//   RunOutcome local = runner.Run({dir, "p7.shape", source, flags, Mode::kLocal});
//
// Two runners: ProcessRunner starts `shapex run` per program (exactly what a user does);
// InProcessRunner runs the CLI's own `run` code (tools/run_command.h) in this process, writing
// to strings, so the local mode costs no process and the remote modes only their executor. The
// two differ only in what the process adds (argument parsing, the watchdog, exit), so the
// driver uses InProcessRunner for volume and ProcessRunner (`--runner process`) as its check.
//
// The three modes and what they mean:
//   kLocal   `shapex run FILE --local`             everything in-process
//   kRing    `shapex run FILE`                     @remote calls over the call ring (default)
//   kSocket  `shapex run FILE --transport=socket`  @remote calls over the socket transport
// Remote modes use whichever supervisor SHAPEX_SOCKET names (PrivateSupervisor sets it).
//
// Thread-safety: Run (of either runner) may be called from several threads at once.
#ifndef SHAPEX_TOOLS_DIFFTEST_RUNNER_H_
#define SHAPEX_TOOLS_DIFFTEST_RUNNER_H_

#include <chrono>
#include <string>
#include <vector>

namespace shapex::difftest {

enum class Mode { kLocal, kRing, kSocket };
const char* ModeName(Mode mode);  // "local", "ring", "socket"

struct RunRequest {
  std::string dir;                 // working directory; the file is written there
  std::string file;                // file name as given to shapex (relative to dir)
  std::string source;              // its text (what an in-process runner would compile)
  std::vector<std::string> flags;  // extra flags (limits)
  Mode mode = Mode::kLocal;
};

struct RunOutcome {
  int exit_code = -1;  // 128 + signal when killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
  std::string spawn_error;  // the run could not start: a harness failure, not a result

  bool SameAs(const RunOutcome& other) const {
    return exit_code == other.exit_code && timed_out == other.timed_out && out == other.out &&
           err == other.err;
  }
};

class Runner {
 public:
  virtual ~Runner() = default;
  // The file named by request.dir/request.file already holds request.source.
  virtual RunOutcome Run(const RunRequest& request) = 0;
};

class ProcessRunner : public Runner {
 public:
  ProcessRunner(std::string shapex_bin, std::chrono::milliseconds timeout)
      : bin_(std::move(shapex_bin)), timeout_(timeout) {}
  RunOutcome Run(const RunRequest& request) override;

 private:
  std::string bin_;
  std::chrono::milliseconds timeout_;
};

// A run's time limit is the VM's --timeout (unless the program's flags set one), so a run that
// hits it ends with error[Timeout] and is reported as timed out. `shapex_bin` is the binary a
// supervisor would be started from (the driver starts its own first).
class InProcessRunner : public Runner {
 public:
  InProcessRunner(std::string shapex_bin, std::chrono::milliseconds timeout)
      : bin_(std::move(shapex_bin)), timeout_(timeout) {}
  RunOutcome Run(const RunRequest& request) override;

 private:
  std::string bin_;
  std::chrono::milliseconds timeout_;
};

// Runs argv (argv[0] a path) in `dir` with stdin from /dev/null, capturing stdout and stderr,
// killing it after `timeout`. No shell is involved.
RunOutcome RunProcess(const std::vector<std::string>& argv, const std::string& dir,
                      std::chrono::milliseconds timeout);

}  // namespace shapex::difftest

#endif  // SHAPEX_TOOLS_DIFFTEST_RUNNER_H_
