// BlobStore: the persistent, verified, content-addressed store of function blobs on disk. A
// supervisor keeps every blob a client sent here, so after a restart it still knows them and
// negotiation does not ask for them again. Layout and format: docs/blob-format.md, "On-disk
// blob store".
//
// Usage:
//   ASSIGN_OR_RETURN(BlobStore store, BlobStore::Open({.dir = BlobStore::DefaultDir()}));
//   RETURN_IF_ERROR(store.PutBlobs(received));           // verified before it is written
//   std::vector<FunctionHash> known = store.FilterKnown(offered);   // negotiation: cheap
//   ASSIGN_OR_RETURN(std::optional<FunctionBlob> blob, store.Get(hash));
//   if (!blob) { /* absent, evicted or found corrupt: ask the peer for it */ }
//
// Guarantees:
// - Nothing is written unverified: Put/PutBlobs recompute every hash first (a recursion group
//   only as a whole, since its members' hashes derive from the group digest).
// - Get never returns bytes it has not just verified: the object file's checksum is checked and
//   every hash recomputed on every read. A corrupt object is deleted, counted in
//   corrupt_deleted, logged, and reported as absent (std::nullopt). Contains and FilterKnown
//   only stat the file (no read), so a "known" answer is a hint: a later Get can still miss
//   (eviction, corruption, another process's Clear), and callers must then re-request the blob.
// - Durability: when Put returns OK the object is on disk (temp file fsynced, renamed into
//   place, directory fsynced). A crash at any point leaves either no object or a complete one;
//   leftover temp files are ignored by readers and removed by VerifyAll/Gc/Clear once older
//   than `stale_temp_age`.
// - Concurrency: any number of BlobStore objects, in any number of threads and processes, may
//   use one directory at once. Objects appear only by atomic rename of a complete file, so
//   readers see all or nothing; two writers of one hash write equivalent objects and either
//   may win. Nothing is locked. The size bound is enforced by the process whose Put crosses it
//   (and by Gc); with several writers the directory can exceed it briefly.
// - Untrusted disk: sizes are bounded (kMaxObjectFileBytes), symlinks are never followed below
//   the root directory, and garbage, truncated files, directories or FIFOs where an object
//   should be, and foreign names never crash the store nor get served.
// - Thread-safety: every method may be called concurrently on one BlobStore. Movable (a moved-
//   from store may only be destroyed or assigned to).
#ifndef SHAPEX_SANDBOX_BLOB_STORE_H_
#define SHAPEX_SANDBOX_BLOB_STORE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/blob.h"

namespace shapex::sandbox {

struct BlobStoreOptions {
  std::string dir;  // empty: BlobStore::DefaultDir()
  // Bound on the bytes of object files; Put evicts least-recently-used objects past it (an
  // object larger than the bound is evicted right after it is written).
  uint64_t max_bytes = uint64_t{512} << 20;
  // Temp files older than this are a crashed writer's leftovers and may be removed. Younger
  // ones may belong to a write in progress in another process and are left alone.
  std::chrono::seconds stale_temp_age{600};
};

// What is on disk now (objects, bytes, temp_files: one directory scan), plus the counters of
// this BlobStore object since Open (they are not shared between processes).
struct BlobStoreStats {
  std::string dir;
  uint64_t max_bytes = 0;
  uint64_t objects = 0;     // function hashes present
  uint64_t bytes = 0;       // object files, each counted once (a group's members share one)
  uint64_t temp_files = 0;  // writes in progress or crashed leftovers
  uint64_t hits = 0;        // Get found a verified blob
  uint64_t misses = 0;      // Get found nothing servable (absent or corrupt)
  uint64_t corrupt_deleted = 0;
  uint64_t puts = 0;       // objects written
  uint64_t evictions = 0;  // function hashes evicted by Gc (explicit or from Put)
};

struct BlobStoreEntry {
  engine::FunctionHash hash{};
  uint64_t bytes = 0;        // size of its object file (shared by a group's members)
  int64_t last_used_ns = 0;  // recency stamp (file mtime), ns since the Unix epoch
  std::string name;          // debug name (ListDetail::kWithNames only; "" if unknown)
};

enum class ListDetail { kStatOnly, kWithNames };

struct CorruptObject {
  engine::FunctionHash hash{};
  std::string reason;
  bool removed = false;  // false if it could not be deleted (e.g. a non-empty directory)
};

struct VerifyReport {
  uint64_t checked = 0;  // function hashes examined
  uint64_t ok = 0;
  std::vector<CorruptObject> corrupt;
  uint64_t stale_temps_removed = 0;
  uint64_t unknown_entries = 0;  // names that are neither objects nor temp files: left alone
};

struct GcReport {
  uint64_t evicted_objects = 0;  // function hashes
  uint64_t evicted_bytes = 0;
  uint64_t bytes_after = 0;
  uint64_t stale_temps_removed = 0;
};

class BlobStore {
 public:
  // $XDG_CACHE_HOME/shapex/blobs when XDG_CACHE_HOME is an absolute path, else
  // $HOME/.cache/shapex/blobs; "" when neither variable is usable.
  static std::string DefaultDir();

  // Creates the directory (mode 0700 for what it creates) and opens it. InvalidArgument for an
  // empty dir (and no default), IoError when it cannot be created or opened.
  static Result<BlobStore> Open(BlobStoreOptions options);

  BlobStore(BlobStore&&) noexcept;
  BlobStore& operator=(BlobStore&&) noexcept;
  ~BlobStore();

  // Stores one function that is not part of a recursion group (InvalidArgument for a group
  // member: use PutBlobs with all its siblings). ProtocolError if its hash does not verify.
  Status Put(const engine::FunctionBlob& blob);
  // Stores every blob; recursion groups must be complete in `blobs`. Verifies all of them
  // before writing any. Known objects are only refreshed (recency), not rewritten.
  Status PutBlobs(std::span<const engine::FunctionBlob> blobs);

  // The verified blob, std::nullopt when absent or corrupt (a corrupt object is deleted). An
  // error only when the store itself cannot be read (e.g. EACCES, EMFILE). Refreshes recency.
  Result<std::optional<engine::FunctionBlob>> Get(const engine::FunctionHash& hash);

  // Whether an object file is present (one stat; nothing is read or verified; see above).
  bool Contains(const engine::FunctionHash& hash) const;
  // The subset of `offered` that Contains, in offered order.
  std::vector<engine::FunctionHash> FilterKnown(
      std::span<const engine::FunctionHash> offered) const;

  Result<BlobStoreStats> Stats() const;
  // Every object, sorted by hash. kWithNames reads each file for its debug name (checksum
  // checked, hashes not recomputed, nothing deleted, recency untouched).
  Result<std::vector<BlobStoreEntry>> List(ListDetail detail = ListDetail::kStatOnly) const;
  // Fully verifies every object without refreshing recency; deletes corrupt ones and stale
  // temp files.
  Result<VerifyReport> VerifyAll();
  // Evicts least-recently-used objects until the object bytes are at most max_bytes (a
  // recursion group is one object and goes as a whole); removes stale temp files.
  Result<GcReport> Gc();
  // Removes every object and stale temp file; returns how many function hashes it removed.
  Result<uint64_t> Clear();

  const std::string& dir() const;
  uint64_t max_bytes() const;

 private:
  struct State;
  explicit BlobStore(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_BLOB_STORE_H_
