// BlobCache: the per-connection cache of function blobs a peer has sent (the seed's
// RemoteBlobCache). Content hashes make stale entries impossible (same hash = same bytes), so
// there is no invalidation, only LRU eviction bounded by an entry count (default 4096, as in
// the seed) and by total bytes.
//
// Insert of a known hash only refreshes it; Get refreshes; Contains and FilterKnown do not.
// Not thread-safe: one cache per connection.
#ifndef SHAPEX_ENGINE_BLOB_CACHE_H_
#define SHAPEX_ENGINE_BLOB_CACHE_H_

#include <cstddef>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "shapex/engine/blob.h"

namespace shapex::engine {

struct FunctionHashHasher {
  size_t operator()(const FunctionHash& h) const {
    size_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | h[i];
    return v;
  }
};

class BlobCache {
 public:
  explicit BlobCache(size_t max_entries = 4096, size_t max_bytes = size_t{256} << 20);

  void Insert(const FunctionBlob& blob);
  void InsertBlobs(const std::vector<FunctionBlob>& blobs);
  const FunctionBlob* Get(const FunctionHash& hash);  // nullptr if absent; refreshes
  bool Contains(const FunctionHash& hash) const;
  // The subset of `offered` that is cached, in offered order.
  std::vector<FunctionHash> FilterKnown(std::span<const FunctionHash> offered) const;
  std::vector<FunctionHash> KnownHashes() const;  // least recently used first
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    FunctionBlob blob;
    size_t bytes;
    std::list<FunctionHash>::iterator order;
  };
  void Touch(Entry& e);
  void EvictOne();

  size_t max_entries_, max_bytes_;
  size_t bytes_ = 0;
  std::list<FunctionHash> order_;  // front = least recently used
  std::unordered_map<FunctionHash, Entry, FunctionHashHasher> entries_;
};

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_BLOB_CACHE_H_
