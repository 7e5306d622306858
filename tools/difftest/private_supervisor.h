// A supervisor of the driver's own: a private socket, blob store and state directory (never
// the user's), started with a chosen pool size and stopped when the object goes away.
//
//   PrivateSupervisor sup(shapex_bin, /*pool=*/3);
//   if (!sup.Start(&error)) ...;   // sets SHAPEX_SOCKET, XDG_CACHE_HOME, XDG_STATE_HOME
//   ... children started from now on use it ...
//   sup.Stop();                    // `shapex stop`, then the directory is removed
//
// Start sets the environment of this process (as tests/cli/*.sh and tests/lang_golden_test.cc
// do): call it before starting threads.
#ifndef SHAPEX_TOOLS_DIFFTEST_PRIVATE_SUPERVISOR_H_
#define SHAPEX_TOOLS_DIFFTEST_PRIVATE_SUPERVISOR_H_

#include <string>

namespace shapex::difftest {

class PrivateSupervisor {
 public:
  PrivateSupervisor(std::string shapex_bin, int pool) : bin_(std::move(shapex_bin)), pool_(pool) {}
  ~PrivateSupervisor() { Stop(); }
  PrivateSupervisor(const PrivateSupervisor&) = delete;
  PrivateSupervisor& operator=(const PrivateSupervisor&) = delete;

  bool Start(std::string* error);
  void Stop();
  const std::string& dir() const { return dir_; }

 private:
  std::string bin_;
  int pool_;
  std::string dir_;
};

}  // namespace shapex::difftest

#endif  // SHAPEX_TOOLS_DIFFTEST_PRIVATE_SUPERVISOR_H_
