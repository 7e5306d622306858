#include "store_worker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "shapex/core/errno_status.h"

namespace shapex::sandbox {

Result<std::unique_ptr<StoreWorker>> StoreWorker::Start(BlobStore store) {
  ScopedFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) return ErrnoStatus("eventfd");
  return std::unique_ptr<StoreWorker>(new StoreWorker(std::move(store), std::move(fd)));
}

StoreWorker::StoreWorker(BlobStore store, ScopedFd event_fd)
    : store_(std::move(store)), event_fd_(std::move(event_fd)) {
  thread_ = std::thread([this] { Main(); });
}

StoreWorker::~StoreWorker() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;  // the jobs already posted still run (e.g. blobs learned just before exit)
  }
  cv_.notify_one();
  thread_.join();
}

void StoreWorker::Post(Job job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

size_t StoreWorker::pending() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

std::optional<BlobStoreStats> StoreWorker::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void StoreWorker::RunCompleted() {
  uint64_t count = 0;
  (void)!::read(event_fd_.get(), &count, sizeof count);
  std::deque<Completion> done;
  {
    std::lock_guard lock(mu_);
    done.swap(done_);
  }
  for (Completion& c : done) {
    if (c) c();
  }
}

void StoreWorker::Main() {
  using Clock = std::chrono::steady_clock;
  constexpr auto kMinRefresh = std::chrono::seconds(1);
  constexpr int kRefreshCostFactor = 10;  // a scan takes at most 1/10 of the worker's time
  bool stats_stale = true;
  Clock::time_point next_refresh{};  // the first snapshot is taken at once
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      auto has_work = [&] { return quit_ || !jobs_.empty(); };
      while (!has_work()) {
        if (!stats_stale) {
          cv_.wait(lock, has_work);
        } else if (Clock::now() < next_refresh) {
          cv_.wait_until(lock, next_refresh, has_work);
        } else {
          lock.unlock();
          const auto start = Clock::now();
          Result<BlobStoreStats> st = store_.Stats();  // idle: refresh the snapshot
          const auto took = Clock::now() - start;
          lock.lock();
          if (st.has_value()) stats_ = *st;
          stats_stale = false;
          next_refresh = Clock::now() + std::max<Clock::duration>(kMinRefresh, took * kRefreshCostFactor);
        }
      }
      if (jobs_.empty()) return;  // quit_ with nothing left to do
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Completion completion = job(store_);
    stats_stale = true;
    {
      std::lock_guard lock(mu_);
      done_.push_back(std::move(completion));
    }
    uint64_t one = 1;
    (void)!::write(event_fd_.get(), &one, sizeof one);
  }
}

}  // namespace shapex::sandbox
