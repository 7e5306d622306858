// A real `shapex serve` for a test: started in a private directory (socket, blob store) with a
// pool of two executors, stopped with SIGTERM (and checked to exit cleanly) after the test.
//
//   class MyTest : public shapex_testing::SupervisorFixture {};
//   TEST_F(MyTest, X) { ASSERT_OK_AND_ASSIGN(Client c, Client::Connect(Options())); ... }
//
// SHAPEX_BIN must name the shapex binary (the test's build defines it).
#ifndef SHAPEX_TESTS_TESTING_SUPERVISOR_FIXTURE_H_
#define SHAPEX_TESTS_TESTING_SUPERVISOR_FIXTURE_H_

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "testing/host_probes.h"

#ifndef SHAPEX_BIN
#error "SHAPEX_BIN must name the shapex binary"
#endif

namespace shapex_testing {

// The integer after the first `"key": ` in `json` (-1 if absent).
inline int64_t JsonInt(const std::string& json, const std::string& key) {
  std::string needle = "\"" + key + "\": ";
  size_t pos = json.find(needle);
  if (pos == std::string::npos) return -1;
  return std::strtoll(json.c_str() + pos + needle.size(), nullptr, 10);
}

// The pool is full and at rest: two idle executors, none starting, leased or exiting.
inline bool PoolSettled(const std::string& j) {
  size_t idle = 0;
  for (size_t pos = 0; (pos = j.find("\"state\": \"idle\"", pos)) != std::string::npos; ++pos) {
    ++idle;
  }
  return idle == 2 && JsonInt(j, "spawning") == 0 && j.find("starting") == std::string::npos &&
         j.find("leased") == std::string::npos && j.find("exiting") == std::string::npos;
}

class SupervisorFixture : public ::testing::Test {
 protected:
  // The binary `shapex serve` runs from.
  virtual const char* ServeBinary() const { return SHAPEX_BIN; }
  // More `serve` arguments (e.g. {"--max-leases-per-client", "2"}).
  virtual std::vector<std::string> ExtraServeArgs() const { return {}; }

  void SetUp() override {
    // `serve` probes the jail at start: a host that refuses user namespaces skips, saying why.
    if (auto why = UserNamespacesUnavailable()) GTEST_SKIP() << *why;
    char pattern[] = "/tmp/shapex-supervisor-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    socket_ = dir_ + "/run/sock";
    StartSupervisor();
  }

  void TearDown() override {
    StopSupervisor();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartSupervisor() {
    supervisor_ = fork();
    ASSERT_GE(supervisor_, 0);
    if (supervisor_ == 0) {
      std::string store = dir_ + "/store";
      std::vector<std::string> args = {ServeBinary(), "serve", "--socket", socket_,
                                       "--store",     store,   "--pool",   "2"};
      for (const std::string& extra : ExtraServeArgs()) args.push_back(extra);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(ServeBinary(), argv.data());
      _exit(127);
    }
    // Ready when it answers.
    for (int i = 0; i < 500; ++i) {
      if (shapex::Client::Connect(Options()).has_value()) return;
      int status = 0;
      if (waitpid(supervisor_, &status, WNOHANG) == supervisor_) {
        supervisor_ = -1;
        GTEST_FAIL() << "shapex serve exited with status " << status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    GTEST_FAIL() << "shapex serve did not come up";
  }

  void StopSupervisor() {
    if (supervisor_ <= 0) return;
    kill(supervisor_, SIGTERM);
    int status = 0;
    ASSERT_EQ(waitpid(supervisor_, &status, 0), supervisor_);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "serve status " << status;
    supervisor_ = -1;
  }

  shapex::ClientOptions Options() const {
    shapex::ClientOptions options;
    options.socket_path = socket_;
    options.start_supervisor = false;
    return options;
  }

  // The status JSON once `pred` holds for it (or the last one after 5 s).
  std::string StatusWhen(shapex::Client& client,
                         const std::function<bool(const std::string&)>& pred) {
    std::string json;
    for (int i = 0; i < 500; ++i) {
      auto status = client.StatusJson();
      if (status.has_value()) {
        json = *status;
        if (pred(json)) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return json;
  }

  // Waits (up to 5 s) until both executors of the pool are idle.
  void WaitForSettledPool() {
    auto client = shapex::Client::Connect(Options());
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    EXPECT_TRUE(PoolSettled(StatusWhen(*client, PoolSettled))) << "the pool did not settle";
  }

  std::string dir_, socket_;
  pid_t supervisor_ = -1;
};

}  // namespace shapex_testing

#endif  // SHAPEX_TESTS_TESTING_SUPERVISOR_FIXTURE_H_
