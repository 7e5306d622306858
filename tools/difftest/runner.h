// How the differential driver runs one program one way (issue 12, Build 5).
//
//   ProcessRunner runner("/path/to/shapex", std::chrono::seconds(30));
//   RunOutcome local = runner.Run({dir, "p7.shape", source, flags, Mode::kLocal});
//
// Runner is the seam for a faster harness: ProcessRunner starts `shapex run` per program (what a
// user does); an in-process runner that links the engine and the client library can implement
// the same interface later, and the driver does not change.
//
// The three modes and what they mean:
//   kLocal   `shapex run FILE --local`             everything in-process
//   kRing    `shapex run FILE`                     @remote calls over the call ring (default)
//   kSocket  `shapex run FILE --transport=socket`  @remote calls over the socket transport
// Remote modes use whichever supervisor SHAPEX_SOCKET names (PrivateSupervisor sets it).
//
// Thread-safety: ProcessRunner::Run may be called from several threads at once.
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

// Runs argv (argv[0] a path) in `dir` with stdin from /dev/null, capturing stdout and stderr,
// killing it after `timeout`. No shell is involved.
RunOutcome RunProcess(const std::vector<std::string>& argv, const std::string& dir,
                      std::chrono::milliseconds timeout);

}  // namespace shapex::difftest

#endif  // SHAPEX_TOOLS_DIFFTEST_RUNNER_H_
