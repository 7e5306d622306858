#include "private_supervisor.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>

#include "runner.h"

namespace shapex::difftest {

bool PrivateSupervisor::Start(std::string* error) {
  char pattern[] = "/tmp/shapex-difftest-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    *error = "mkdtemp failed";
    return false;
  }
  dir_ = pattern;
  setenv("SHAPEX_SOCKET", (dir_ + "/run/sock").c_str(), 1);
  setenv("XDG_CACHE_HOME", (dir_ + "/cache").c_str(), 1);
  setenv("XDG_STATE_HOME", (dir_ + "/state").c_str(), 1);
  // An idle exit as the backstop should the driver die without stopping it.
  RunOutcome r = RunProcess({bin_, "serve", "--daemon", "--pool", std::to_string(pool_),
                             "--idle-exit", "300"},
                            "", std::chrono::seconds(30));
  if (!r.spawn_error.empty() || r.timed_out || r.exit_code != 0) {
    *error = "shapex serve --daemon failed (exit " + std::to_string(r.exit_code) + "): " +
             r.spawn_error + r.err;
    return false;
  }
  return true;
}

void PrivateSupervisor::Stop() {
  if (dir_.empty()) return;
  RunProcess({bin_, "stop"}, "", std::chrono::seconds(30));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  dir_.clear();
}

}  // namespace shapex::difftest
