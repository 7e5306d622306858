// The supervisor's blob-store thread: every access to the persistent BlobStore (look-ups for
// the hashes a lease offers, reading and verifying blobs to preload, writing what executors
// learned, the store's statistics) runs here, off the event loop, because its cost is set by a
// peer (how many hashes, how many bytes) and by the disk (fsync).
//
//   StoreWorker worker(std::move(store));
//   worker.Post([hashes](BlobStore& s) {             // on the worker thread
//     auto blobs = ...s.Get(...)...;
//     return [blobs] { ... };                        // on the loop thread, from RunCompleted()
//   });
//   // the loop watches worker.event_fd() and calls RunCompleted() when it is readable.
//
// Jobs run in order, one at a time. The destructor lets the posted jobs finish (writes of learned
// blobs must not be lost at exit) and joins the thread; completions not yet run are dropped.
// Stats() is a snapshot (a scan of the whole store, so it is not taken per status request),
// refreshed when the worker is idle after jobs changed the store, at most once per
// max(1 s, 10 x the last scan's duration): the scan's cost grows with the store, and refreshing
// after every job made the worker's CPU grow with (jobs x objects), about half a core after
// 60,000 objects in a long differential run. The snapshot may be that much behind.
#ifndef SHAPEX_SANDBOX_SRC_STORE_WORKER_H_
#define SHAPEX_SANDBOX_SRC_STORE_WORKER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/sandbox/blob_store.h"

namespace shapex::sandbox {

class StoreWorker {
 public:
  using Completion = std::function<void()>;
  using Job = std::function<Completion(BlobStore&)>;

  static Result<std::unique_ptr<StoreWorker>> Start(BlobStore store);
  ~StoreWorker();

  void Post(Job job);
  // Runs the completions of finished jobs (loop thread) and clears the event fd.
  void RunCompleted();
  int event_fd() const { return event_fd_.get(); }
  std::optional<BlobStoreStats> Stats() const;
  size_t pending() const;

 private:
  StoreWorker(BlobStore store, ScopedFd event_fd);
  void Main();

  BlobStore store_;
  ScopedFd event_fd_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::deque<Completion> done_;
  std::optional<BlobStoreStats> stats_;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SRC_STORE_WORKER_H_
