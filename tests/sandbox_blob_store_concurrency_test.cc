// BlobStore under concurrency and crashes: several processes (and threads) writing, reading,
// evicting and clearing one directory at once; writers killed with SIGKILL at random moments.
// Afterwards every object present must verify. Random timing, but no timed assertions.
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shapex/core/log.h"
#include "shapex/engine/compiler.h"
#include "shapex/sandbox/blob_store.h"
#include "testing/status_matchers.h"

namespace shapex::sandbox {
namespace {

using engine::FunctionBlob;

// What one PutBlobs call stores: a single function, or one whole recursion group.
using Unit = std::vector<FunctionBlob>;

// Singles f0..f{n-1} plus `groups` mutually recursive pairs a_i/b_i.
std::vector<Unit> MakeUnits(int singles, int groups) {
  std::string source;
  for (int i = 0; i < singles; ++i)
    source += fmt::format("function f{}(x) {{ x * {} + 1 }}\n", i, i);
  for (int i = 0; i < groups; ++i) {
    source += fmt::format("function a{0}(n) {{ if n == 0 {{ {0} }} else {{ b{0}(n - 1) }} }}\n", i);
    source += fmt::format("function b{0}(n) {{ if n == 0 {{ 0 }} else {{ a{0}(n - 1) }} }}\n", i);
  }
  engine::Diagnostic diag;
  auto program = engine::Compile(source, "concurrency.shape", &diag);
  EXPECT_TRUE(program.has_value()) << diag.message;
  auto blobs = engine::BuildProgramBlobs(**program);
  EXPECT_TRUE(blobs.has_value());
  std::vector<Unit> units;
  std::vector<engine::FunctionHash> seen_groups;
  for (const FunctionBlob& b : blobs->blobs) {
    if (b.debug.name.empty() || b.debug.name.starts_with("<")) continue;
    if (b.group.empty()) {
      units.push_back({b});
      continue;
    }
    if (std::find(seen_groups.begin(), seen_groups.end(), b.group[0]) != seen_groups.end())
      continue;
    seen_groups.push_back(b.group[0]);
    Unit unit;
    for (const engine::FunctionHash& h : b.group)
      for (const FunctionBlob& m : blobs->blobs)
        if (m.hash == h) unit.push_back(m);
    units.push_back(std::move(unit));
  }
  EXPECT_EQ(units.size(), static_cast<size_t>(singles + groups));
  return units;
}

size_t CountHashes(const std::vector<Unit>& units) {
  size_t n = 0;
  for (const Unit& u : units) n += u.size();
  return n;
}

class BlobStoreConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);
    char templ[] = "/tmp/shapex-store-conc-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Every object verifies, none is corrupt, leftover temp files are cleaned; returns how many
  // function hashes are present and adds the temp files it removed to *temps.
  size_t ExpectAllObjectsVerify(uint64_t* temps = nullptr) {
    Result<BlobStore> store =
        BlobStore::Open({.dir = dir_, .stale_temp_age = std::chrono::seconds(0)});
    EXPECT_OK(store);
    if (!store.has_value()) return 0;
    auto report = store->VerifyAll();
    EXPECT_OK(report);
    if (!report.has_value()) return 0;
    for (const CorruptObject& c : report->corrupt)
      ADD_FAILURE() << "corrupt " << engine::HashToHex(c.hash) << ": " << c.reason;
    EXPECT_EQ(report->ok, report->checked);
    if (temps != nullptr) *temps += report->stale_temps_removed;
    auto list = store->List();
    EXPECT_OK(list);
    for (const BlobStoreEntry& e : *list) {
      auto got = store->Get(e.hash);
      EXPECT_OK(got);
      EXPECT_TRUE(got.has_value() && got->has_value()) << engine::HashToHex(e.hash);
    }
    EXPECT_EQ(store->Stats()->temp_files, 0u);
    return list->size();
  }

  std::string dir_;
};

// Child body for the multi-process writer test: exit status 0 when every call succeeded.
[[noreturn]] void WriterChild(const std::string& dir, const std::vector<Unit>& units, int id,
                              int go_fd) {
  char go;
  if (read(go_fd, &go, 1) < 0) _exit(3);  // EOF when the parent closes its end: start together
  Result<BlobStore> store = BlobStore::Open({.dir = dir});
  if (!store.has_value()) _exit(2);
  std::mt19937 rng(static_cast<unsigned>(id));
  std::vector<size_t> order(units.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (int round = 0; round < 6; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      if (!store->PutBlobs(units[i]).ok()) _exit(1);
      auto got = store->Get(units[order[rng() % order.size()]][0].hash);
      if (!got.has_value()) _exit(1);
    }
    if (id == 0 && round < 5 && !store->Clear().has_value()) _exit(1);  // races everyone
  }
  for (const Unit& unit : units)  // a last pass so that everything is present at the end
    if (!store->PutBlobs(unit).ok()) _exit(1);
  _exit(0);
}

TEST_F(BlobStoreConcurrencyTest, ConcurrentWriterProcesses) {
  std::vector<Unit> units = MakeUnits(30, 5);
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> children;
  for (int id = 0; id < 4; ++id) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(go[1]);
      WriterChild(dir_, units, id, go[0]);
    }
    children.push_back(pid);
  }
  close(go[0]);
  close(go[1]);  // all children start at once
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  EXPECT_EQ(ExpectAllObjectsVerify(), CountHashes(units));
}

TEST_F(BlobStoreConcurrencyTest, ConcurrentThreadsShareOneStore) {
  std::vector<Unit> units = MakeUnits(20, 3);
  Result<BlobStore> store = BlobStore::Open({.dir = dir_});
  ASSERT_OK(store);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 100; ++i) {
        const Unit& unit = units[rng() % units.size()];
        if (!store->PutBlobs(unit).ok()) ++failures;
        auto got = store->Get(unit.back().hash);
        if (!got.has_value() || !got->has_value()) ++failures;
        if (t == 0 && i % 25 == 24 && !store->Gc().has_value()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ExpectAllObjectsVerify();
  EXPECT_EQ(store->Stats()->corrupt_deleted, 0u);
}

// A writer that never stops: stores, reads and (with a small bound) evicts in a loop, so a
// SIGKILL lands in the middle of a write, a rename, an eviction or a directory fsync.
[[noreturn]] void EndlessWriter(const std::string& dir, const std::vector<Unit>& units,
                                unsigned seed, int ready_fd) {
  Result<BlobStore> store = BlobStore::Open({.dir = dir, .max_bytes = 4096});
  if (!store.has_value()) _exit(2);
  std::mt19937 rng(seed);
  bool told = false;
  while (true) {
    const Unit& unit = units[rng() % units.size()];
    if (!store->PutBlobs(unit).ok()) _exit(1);
    if (!told) {
      told = write(ready_fd, "r", 1) == 1;
      if (!told) _exit(3);
    }
    (void)store->Get(units[rng() % units.size()][0].hash);
    if (rng() % 16 == 0) (void)store->Clear();
  }
}

TEST_F(BlobStoreConcurrencyTest, SigkillMidWriteLeavesOnlyVerifiableObjects) {
  std::vector<Unit> units = MakeUnits(40, 6);
  std::mt19937 rng(1234);
  uint64_t leftovers = 0, present = 0;
  for (int round = 0; round < 12; ++round) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    std::vector<pid_t> writers;
    for (int w = 0; w < 2; ++w) {  // two writers on one directory, killed together
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        close(ready[0]);
        EndlessWriter(dir_, units, static_cast<unsigned>(round * 2 + w), ready[1]);
      }
      writers.push_back(pid);
    }
    close(ready[1]);
    char byte;
    for (size_t w = 0; w < writers.size(); ++w) ASSERT_EQ(read(ready[0], &byte, 1), 1);
    close(ready[0]);
    usleep(static_cast<useconds_t>(rng() % 30000));  // a random moment, not a deadline
    for (pid_t pid : writers) kill(pid, SIGKILL);
    for (pid_t pid : writers) {
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
          << "writer ended on its own, status " << status;
    }
    present += ExpectAllObjectsVerify(&leftovers);
    if (HasFailure()) break;
  }
  // Informational: how often a kill landed between creating a temp file and renaming it.
  RecordProperty("temp_files_left_by_kills", static_cast<int>(leftovers));
  std::printf("kills left %llu temp files; %llu objects verified afterwards\n",
              static_cast<unsigned long long>(leftovers), static_cast<unsigned long long>(present));
}

}  // namespace
}  // namespace shapex::sandbox
