#include "store_worker.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "testing/status_matchers.h"

namespace shapex::sandbox {
namespace {

class StoreWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shapex-store-worker-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<StoreWorker> Start() {
    BlobStoreOptions options;
    options.dir = dir_ + "/store";
    auto store = BlobStore::Open(options);
    EXPECT_TRUE(store.has_value());
    auto worker = StoreWorker::Start(std::move(*store));
    EXPECT_TRUE(worker.has_value());
    return std::move(*worker);
  }

  // Waits (up to 5 s) for the worker's event fd, then runs what finished.
  static void WaitAndRun(StoreWorker& worker) {
    pollfd p{worker.event_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    worker.RunCompleted();
  }

  std::string dir_;
};

TEST_F(StoreWorkerTest, JobsRunOffThisThreadInOrderAndCompletionsOnIt) {
  auto worker = Start();
  const std::thread::id self = std::this_thread::get_id();
  std::vector<int> ran, completed;
  std::atomic<int> off_thread{0};
  for (int i = 0; i < 3; ++i) {
    worker->Post([&, i](BlobStore&) -> StoreWorker::Completion {
      ran.push_back(i);  // jobs run one at a time
      if (std::this_thread::get_id() != self) ++off_thread;
      return [&, i] {
        EXPECT_EQ(std::this_thread::get_id(), self);
        completed.push_back(i);
      };
    });
  }
  for (int tries = 0; tries < 100 && completed.size() < 3; ++tries) WaitAndRun(*worker);
  EXPECT_EQ(completed, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(off_thread.load(), 3);
}

TEST_F(StoreWorkerTest, StatsAreASnapshotTakenOnTheWorker) {
  auto worker = Start();
  for (int i = 0; i < 500 && !worker->Stats().has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(worker->Stats().has_value());
  EXPECT_EQ(worker->Stats()->objects, 0u);
}

TEST_F(StoreWorkerTest, PostedJobsFinishBeforeTheWorkerIsGone) {
  std::atomic<int> done{0};
  {
    auto worker = Start();
    for (int i = 0; i < 3; ++i) {
      worker->Post([&](BlobStore&) -> StoreWorker::Completion {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ++done;
        return nullptr;
      });
    }
  }  // the destructor joins after the posted jobs (e.g. writes of learned blobs)
  EXPECT_EQ(done.load(), 3);
}

}  // namespace
}  // namespace shapex::sandbox
