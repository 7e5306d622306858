#include "shapex/engine/blob_cache.h"

namespace shapex::engine {
namespace {
size_t BlobBytes(const FunctionBlob& b) {
  size_t n = sizeof(FunctionBlob) + b.canonical.size() + b.group.size() * sizeof(FunctionHash) +
             b.debug.name.size() + b.debug.source_file.size() + b.debug.lines.size() * 4;
  for (const auto& p : b.debug.param_names) n += p.size();
  return n;
}
}  // namespace

BlobCache::BlobCache(size_t max_entries, size_t max_bytes)
    : max_entries_(max_entries == 0 ? 1 : max_entries), max_bytes_(max_bytes) {}

void BlobCache::Touch(Entry& e) { order_.splice(order_.end(), order_, e.order); }

void BlobCache::EvictOne() {
  auto it = entries_.find(order_.front());
  bytes_ -= it->second.bytes;
  entries_.erase(it);
  order_.pop_front();
}

void BlobCache::Insert(const FunctionBlob& blob) {
  auto it = entries_.find(blob.hash);
  if (it != entries_.end()) {
    Touch(it->second);
    return;
  }
  size_t size = BlobBytes(blob);
  while (!entries_.empty() && (entries_.size() >= max_entries_ || bytes_ + size > max_bytes_))
    EvictOne();
  order_.push_back(blob.hash);
  entries_.emplace(blob.hash, Entry{blob, size, std::prev(order_.end())});
  bytes_ += size;
}

void BlobCache::InsertBlobs(const std::vector<FunctionBlob>& blobs) {
  for (const FunctionBlob& b : blobs) Insert(b);
}

const FunctionBlob* BlobCache::Get(const FunctionHash& hash) {
  auto it = entries_.find(hash);
  if (it == entries_.end()) return nullptr;
  Touch(it->second);
  return &it->second.blob;
}

bool BlobCache::Contains(const FunctionHash& hash) const { return entries_.count(hash) != 0; }

std::vector<FunctionHash> BlobCache::FilterKnown(std::span<const FunctionHash> offered) const {
  std::vector<FunctionHash> out;
  for (const FunctionHash& h : offered)
    if (Contains(h)) out.push_back(h);
  return out;
}

std::vector<FunctionHash> BlobCache::KnownHashes() const {
  return std::vector<FunctionHash>(order_.begin(), order_.end());
}

}  // namespace shapex::engine
