// BlobStore: the write protocol, verified reads, LRU eviction and maintenance. The object file
// format lives in blob_store_format.cc, the POSIX plumbing in blob_store_fs.cc; the design
// (and the argument for crash and concurrency safety) is in docs/blob-format.md.
#include "shapex/sandbox/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "blob_store_format.h"
#include "blob_store_fs.h"
#include "shapex/core/errno_status.h"
#include "shapex/core/log.h"
#include "shapex/core/scoped_fd.h"

namespace shapex::sandbox {
namespace {

using engine::FunctionBlob;
using engine::FunctionHash;
using store_fs::ScanItem;
using store_fs::ScanResult;

// Get refreshes an object's mtime (its recency stamp) only when it is older than this, so a hot
// object costs no metadata write per read. LRU order is therefore exact to within a minute.
constexpr int64_t kRecencyGranularityNs = int64_t{60} * 1000000000;

// Where eviction triggered by Put stops: 7/8 of the bound, so that the Puts right after do not
// each rescan the directory. An explicit Gc stops at the bound itself.
uint64_t LowWater(uint64_t max_bytes) { return max_bytes - max_bytes / 8; }

struct ObjectPath {
  std::string shard;  // first two hex digits
  std::string name;   // the other 62
};

ObjectPath PathOf(const FunctionHash& hash) {
  std::string hex = engine::HashToHex(hash);
  return {hex.substr(0, 2), hex.substr(2)};
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The result of opening and fully verifying one object file.
struct Examined {
  enum class Outcome { kAbsent, kOk, kCorrupt };
  Outcome outcome = Outcome::kAbsent;
  std::string reason;                 // kCorrupt: what is wrong
  std::vector<FunctionBlob> members;  // kOk: the verified contents
  ScopedFd fd;                        // kOk, and kCorrupt when it could be opened
  bool have_stat = false;
  struct stat st {};
};

Examined Corrupt(Examined ex, std::string reason) {
  ex.outcome = Examined::Outcome::kCorrupt;
  ex.reason = std::move(reason);
  return ex;
}

// Opens `name` in `shard_fd` without following a symlink (O_NONBLOCK so a FIFO cannot block
// us), and verifies it as the object for `hash`. An error only for failures that say nothing
// about this file (out of descriptors or memory); anything else wrong with it is kCorrupt.
Result<Examined> Examine(int shard_fd, const std::string& name, const FunctionHash& hash) {
  Examined ex;
  ex.fd.reset(openat(shard_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!ex.fd) {
    int err = errno;
    if (err == ENOENT) return ex;
    // Remember what is there, so that deleting it cannot hit a good object renamed over it.
    ex.have_stat = fstatat(shard_fd, name.c_str(), &ex.st, AT_SYMLINK_NOFOLLOW) == 0;
    if (err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR)
      return ErrnoStatus("open", name, err);
    if (err == ELOOP) return Corrupt(std::move(ex), "a symlink");
    return Corrupt(std::move(ex), ErrnoStatus("cannot open", "", err).message());
  }
  if (fstat(ex.fd.get(), &ex.st) != 0) return Corrupt(std::move(ex), "fstat failed");
  ex.have_stat = true;
  if (!S_ISREG(ex.st.st_mode)) return Corrupt(std::move(ex), "not a regular file");
  if (static_cast<uint64_t>(ex.st.st_size) > kMaxObjectFileBytes)
    return Corrupt(std::move(ex), "larger than the 64 MiB object limit");
  Result<std::vector<uint8_t>> bytes = store_fs::ReadAll(ex.fd.get(), kMaxObjectFileBytes);
  if (!bytes.has_value()) return Corrupt(std::move(ex), bytes.error().message());
  Result<std::vector<FunctionBlob>> members = VerifyObject(*bytes, hash);
  if (!members.has_value()) return Corrupt(std::move(ex), members.error().message());
  ex.outcome = Examined::Outcome::kOk;
  ex.members = std::move(members).value();
  return ex;
}

enum class Removal { kRemoved, kAlreadyGone, kReplaced, kFailed };

// Deletes `name` from `shard_fd` unless it has been replaced since we examined it (`seen`), so
// a good object another process renamed over a bad or evicted one survives.
Removal RemoveIfUnchanged(int shard_fd, const std::string& name, const struct stat* seen) {
  struct stat now;
  if (fstatat(shard_fd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? Removal::kAlreadyGone : Removal::kFailed;
  if (seen != nullptr && !SameFile(now, *seen)) return Removal::kReplaced;
  int flags = S_ISDIR(now.st_mode) ? AT_REMOVEDIR : 0;
  if (unlinkat(shard_fd, name.c_str(), flags) == 0) return Removal::kRemoved;
  return errno == ENOENT ? Removal::kAlreadyGone : Removal::kFailed;
}

// The debug name stored for `hash` in an object file, "" when unreadable. Checks the file's
// checksum but recomputes no hash: for listings only, never for serving.
std::string ReadDebugName(int shard_fd, const std::string& name, const FunctionHash& hash) {
  ScopedFd fd(openat(shard_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return "";
  Result<std::vector<uint8_t>> bytes = store_fs::ReadAll(fd.get(), kMaxObjectFileBytes);
  if (!bytes.has_value()) return "";
  Result<std::vector<FunctionBlob>> members = ParseObject(*bytes);
  if (!members.has_value()) return "";
  for (const FunctionBlob& m : *members)
    if (m.hash == hash) return m.debug.name;
  return "";
}

// One object file on disk: a recursion group's members are hard links to the same inode.
struct Inode {
  int64_t mtime_ns = 0;
  uint64_t size = 0;
  ino_t ino = 0;
  std::vector<std::pair<int, const ScanItem*>> names;  // shard fd, entry
};

std::vector<Inode> ObjectInodes(const ScanResult& scan) {
  std::map<std::pair<dev_t, ino_t>, Inode> by_inode;
  for (const store_fs::ScanShard& shard : scan.shards) {
    for (const ScanItem& item : shard.items) {
      if (item.kind != ScanItem::Kind::kObject || !item.stat_ok || !S_ISREG(item.st.st_mode))
        continue;
      Inode& inode = by_inode[{item.st.st_dev, item.st.st_ino}];
      inode.mtime_ns = store_fs::MtimeNs(item.st);
      inode.size = static_cast<uint64_t>(item.st.st_size);
      inode.ino = item.st.st_ino;
      inode.names.emplace_back(shard.fd.get(), &item);
    }
  }
  std::vector<Inode> out;
  for (auto& [key, inode] : by_inode) out.push_back(std::move(inode));
  return out;
}

uint64_t TotalBytes(const std::vector<Inode>& inodes) {
  uint64_t total = 0;
  for (const Inode& inode : inodes) total += inode.size;
  return total;
}

bool HashOfEntry(const std::string& shard, const std::string& name, FunctionHash* out) {
  return engine::HashFromHex(shard + name, out);
}

}  // namespace

struct BlobStore::State {
  BlobStoreOptions options;
  ScopedFd root;
  std::atomic<uint64_t> hits{0}, misses{0}, corrupt_deleted{0}, puts{0}, evictions{0};
  // Object bytes as of the last scan plus what this object wrote since; Put compares it with
  // max_bytes. Other processes' writes are not in it: the bound is approximate by design.
  std::atomic<uint64_t> bytes_estimate{0};

  std::string PathFor(const std::string& shard, const std::string& name = "") const {
    return name.empty() ? options.dir + "/" + shard : options.dir + "/" + shard + "/" + name;
  }

  void DropCorrupt(int shard_fd, const std::string& shard, const std::string& name,
                   const Examined& ex, CorruptObject* report) {
    report->reason = ex.reason;
    report->removed =
        RemoveIfUnchanged(shard_fd, name, ex.have_stat ? &ex.st : nullptr) != Removal::kFailed;
    if (report->removed) corrupt_deleted.fetch_add(1, std::memory_order_relaxed);
    SHAPEX_LOG(WARN, "blob store: corrupt object {} ({}){}", PathFor(shard, name), ex.reason,
               report->removed ? ", deleted" : ", could not delete it");
  }

  // Refreshes the recency stamp of an open object unless it is fresh enough already.
  static void Touch(int fd, const struct stat& st) {
    if (store_fs::NowNs() - store_fs::MtimeNs(st) < kRecencyGranularityNs) return;
    const timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    futimens(fd, times);  // best effort: a read-only store still serves
  }

  uint64_t RemoveStaleTemps(const ScanResult& scan) const {
    int64_t cutoff = store_fs::NowNs() - int64_t{options.stale_temp_age.count()} * 1000000000;
    uint64_t removed = 0;
    for (const store_fs::ScanShard& shard : scan.shards) {
      for (const ScanItem& item : shard.items) {
        if (item.kind != ScanItem::Kind::kTemp || !item.stat_ok) continue;
        if (store_fs::MtimeNs(item.st) > cutoff) continue;  // maybe a write in progress
        if (RemoveIfUnchanged(shard.fd.get(), item.name, &item.st) == Removal::kRemoved) ++removed;
      }
    }
    return removed;
  }

  // True when every name already holds a regular file; refreshes their recency.
  bool AllPresent(const std::vector<ObjectPath>& paths) const {
    std::vector<ScopedFd> shards(paths.size());
    for (size_t k = 0; k < paths.size(); ++k) {
      struct stat st;
      if (store_fs::OpenSubdir(root.get(), paths[k].shard, false, &shards[k]) != 0) return false;
      if (fstatat(shards[k].get(), paths[k].name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(st.st_mode))
        return false;
    }
    const timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    for (size_t k = 0; k < paths.size(); ++k)
      utimensat(shards[k].get(), paths[k].name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return true;
  }

  Status WriteObject(std::span<const FunctionBlob> members);
  Result<GcReport> GcTo(uint64_t target);
};

// Writes one object (a single function or one whole group) under every member's name: one
// temp file, hard-linked to a temp name in each member's shard (a full copy where links are
// not possible), each renamed into place, then the shard directories fsynced. Every final name
// only ever refers to a complete, fsynced file.
Status BlobStore::State::WriteObject(std::span<const FunctionBlob> members) {
  std::vector<ObjectPath> paths;
  for (const FunctionBlob& blob : members) paths.push_back(PathOf(blob.hash));
  if (AllPresent(paths)) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, EncodeObject(members));

  struct Pending {
    ScopedFd shard;
    std::string temp;
  };
  std::vector<Pending> pending(paths.size());
  auto cleanup = [&pending] {
    for (Pending& p : pending)
      if (p.shard && !p.temp.empty()) unlinkat(p.shard.get(), p.temp.c_str(), 0);
  };
  bool new_shard = false;
  for (size_t k = 0; k < paths.size(); ++k) {
    bool created = false;
    int err = store_fs::OpenSubdir(root.get(), paths[k].shard, true, &pending[k].shard, &created);
    if (err != 0) {
      cleanup();
      return ErrnoStatus("open shard", PathFor(paths[k].shard), err);
    }
    new_shard |= created;
    std::string temp = store_fs::NewTempName();
    bool linked = k > 0 && linkat(pending[0].shard.get(), pending[0].temp.c_str(),
                                  pending[k].shard.get(), temp.c_str(), 0) == 0;
    if (!linked) {
      Status written = store_fs::WriteTempFile(pending[k].shard.get(), temp, bytes);
      if (!written.ok()) {
        cleanup();
        return written.WithContext("blob store " + PathFor(paths[k].shard));
      }
    }
    pending[k].temp = std::move(temp);
  }
  if (new_shard) {
    Status synced = store_fs::SyncDir(root.get(), options.dir);
    if (!synced.ok()) {
      cleanup();
      return synced;
    }
  }
  for (size_t k = 0; k < paths.size(); ++k) {
    if (renameat(pending[k].shard.get(), pending[k].temp.c_str(), pending[k].shard.get(),
                 paths[k].name.c_str()) != 0) {
      Status s = ErrnoStatus("rename into", PathFor(paths[k].shard, paths[k].name));
      cleanup();
      return s;
    }
    pending[k].temp.clear();
  }
  std::set<std::string> synced;
  for (size_t k = 0; k < paths.size(); ++k) {
    if (!synced.insert(paths[k].shard).second) continue;
    RETURN_IF_ERROR(store_fs::SyncDir(pending[k].shard.get(), PathFor(paths[k].shard)));
  }
  puts.fetch_add(paths.size(), std::memory_order_relaxed);
  uint64_t now = bytes_estimate.fetch_add(bytes.size()) + bytes.size();
  if (now > options.max_bytes) {
    Result<GcReport> gc = GcTo(LowWater(options.max_bytes));
    if (!gc.has_value()) SHAPEX_LOG(WARN, "blob store: eviction failed: {}", gc.error().ToString());
  }
  return Status::Ok();
}

Result<GcReport> BlobStore::State::GcTo(uint64_t target) {
  ASSIGN_OR_RETURN(ScanResult scan, store_fs::Scan(root.get()));
  GcReport report;
  report.stale_temps_removed = RemoveStaleTemps(scan);
  std::vector<Inode> inodes = ObjectInodes(scan);
  std::sort(inodes.begin(), inodes.end(), [](const Inode& a, const Inode& b) {
    return std::pair(a.mtime_ns, a.ino) < std::pair(b.mtime_ns, b.ino);
  });
  uint64_t total = TotalBytes(inodes);
  for (const Inode& inode : inodes) {
    if (total <= target) break;
    for (const auto& [shard_fd, item] : inode.names) {
      // Skip a name that was replaced after the scan: that object was just written.
      if (RemoveIfUnchanged(shard_fd, item->name, &item->st) != Removal::kRemoved) continue;
      ++report.evicted_objects;
    }
    total -= inode.size;
    report.evicted_bytes += inode.size;
  }
  report.bytes_after = total;
  bytes_estimate.store(total);
  evictions.fetch_add(report.evicted_objects, std::memory_order_relaxed);
  return report;
}

std::string BlobStore::DefaultDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/shapex/blobs";
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') return std::string(home) + "/.cache/shapex/blobs";
  return "";
}

Result<BlobStore> BlobStore::Open(BlobStoreOptions options) {
  if (options.dir.empty()) options.dir = DefaultDir();
  if (options.dir.empty())
    return InvalidArgument("no blob store directory (set XDG_CACHE_HOME or HOME, or pass one)");
  RETURN_IF_ERROR(store_fs::MakeDirs(options.dir, 0700));
  auto state = std::make_unique<State>();
  ASSIGN_OR_RETURN(state->root, store_fs::OpenDirPath(options.dir));
  state->options = std::move(options);
  ASSIGN_OR_RETURN(ScanResult scan, store_fs::Scan(state->root.get()));
  state->bytes_estimate.store(TotalBytes(ObjectInodes(scan)));
  return BlobStore(std::move(state));
}

BlobStore::BlobStore(std::unique_ptr<State> state) : state_(std::move(state)) {}
BlobStore::BlobStore(BlobStore&&) noexcept = default;
BlobStore& BlobStore::operator=(BlobStore&&) noexcept = default;
BlobStore::~BlobStore() = default;

const std::string& BlobStore::dir() const { return state_->options.dir; }
uint64_t BlobStore::max_bytes() const { return state_->options.max_bytes; }

Status BlobStore::Put(const FunctionBlob& blob) {
  if (!blob.group.empty())
    return InvalidArgument(engine::HashToHex(blob.hash) +
                           " is a recursion-group member: store it with PutBlobs and its group");
  return PutBlobs(std::span(&blob, 1));
}

Status BlobStore::PutBlobs(std::span<const FunctionBlob> blobs) {
  RETURN_IF_ERROR(engine::VerifyBlobHashes(blobs));
  std::unordered_map<std::string, const FunctionBlob*> by_hash;
  for (const FunctionBlob& blob : blobs) by_hash.emplace(engine::HashToHex(blob.hash), &blob);
  std::set<std::string> stored;
  for (const FunctionBlob& blob : blobs) {
    if (stored.count(engine::HashToHex(blob.hash))) continue;
    std::vector<FunctionBlob> members;
    if (blob.group.empty()) {
      members.push_back(blob);
    } else {
      for (const FunctionHash& h : blob.group) members.push_back(*by_hash.at(engine::HashToHex(h)));
    }
    RETURN_IF_ERROR(state_->WriteObject(members));
    for (const FunctionBlob& m : members) stored.insert(engine::HashToHex(m.hash));
  }
  return Status::Ok();
}

Result<std::optional<FunctionBlob>> BlobStore::Get(const FunctionHash& hash) {
  State& s = *state_;
  ObjectPath path = PathOf(hash);
  ScopedFd shard;
  int err = store_fs::OpenSubdir(s.root.get(), path.shard, false, &shard);
  if (err == ENOENT || err == ENOTDIR || err == ELOOP) {
    s.misses.fetch_add(1, std::memory_order_relaxed);
    return std::optional<FunctionBlob>();
  }
  if (err != 0) return ErrnoStatus("open", s.PathFor(path.shard), err);
  ASSIGN_OR_RETURN(Examined ex, Examine(shard.get(), path.name, hash));
  if (ex.outcome != Examined::Outcome::kOk) {
    if (ex.outcome == Examined::Outcome::kCorrupt) {
      CorruptObject report;
      s.DropCorrupt(shard.get(), path.shard, path.name, ex, &report);
    }
    s.misses.fetch_add(1, std::memory_order_relaxed);
    return std::optional<FunctionBlob>();
  }
  State::Touch(ex.fd.get(), ex.st);
  s.hits.fetch_add(1, std::memory_order_relaxed);
  for (FunctionBlob& member : ex.members)
    if (member.hash == hash) return std::optional<FunctionBlob>(std::move(member));
  return InternalError("verified object lacks its own hash");  // VerifyObject rules this out
}

bool BlobStore::Contains(const FunctionHash& hash) const {
  ObjectPath path = PathOf(hash);
  ScopedFd shard;
  if (store_fs::OpenSubdir(state_->root.get(), path.shard, false, &shard) != 0) return false;
  struct stat st;
  if (fstatat(shard.get(), path.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  return S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) >= kObjectHeaderSize;
}

std::vector<FunctionHash> BlobStore::FilterKnown(std::span<const FunctionHash> offered) const {
  std::vector<FunctionHash> known;
  for (const FunctionHash& hash : offered)
    if (Contains(hash)) known.push_back(hash);
  return known;
}

Result<BlobStoreStats> BlobStore::Stats() const {
  const State& s = *state_;
  ASSIGN_OR_RETURN(ScanResult scan, store_fs::Scan(s.root.get()));
  BlobStoreStats stats;
  stats.dir = s.options.dir;
  stats.max_bytes = s.options.max_bytes;
  std::vector<Inode> inodes = ObjectInodes(scan);
  for (const Inode& inode : inodes) stats.objects += inode.names.size();
  stats.bytes = TotalBytes(inodes);
  for (const store_fs::ScanShard& shard : scan.shards)
    for (const ScanItem& item : shard.items) stats.temp_files += item.kind == ScanItem::Kind::kTemp;
  stats.hits = s.hits.load();
  stats.misses = s.misses.load();
  stats.corrupt_deleted = s.corrupt_deleted.load();
  stats.puts = s.puts.load();
  stats.evictions = s.evictions.load();
  return stats;
}

Result<std::vector<BlobStoreEntry>> BlobStore::List(ListDetail detail) const {
  ASSIGN_OR_RETURN(ScanResult scan, store_fs::Scan(state_->root.get()));
  std::vector<BlobStoreEntry> entries;
  for (const store_fs::ScanShard& shard : scan.shards) {
    for (const ScanItem& item : shard.items) {
      if (item.kind != ScanItem::Kind::kObject || !item.stat_ok || !S_ISREG(item.st.st_mode))
        continue;
      BlobStoreEntry entry;
      if (!HashOfEntry(shard.name, item.name, &entry.hash)) continue;
      entry.bytes = static_cast<uint64_t>(item.st.st_size);
      entry.last_used_ns = store_fs::MtimeNs(item.st);
      if (detail == ListDetail::kWithNames)
        entry.name = ReadDebugName(shard.fd.get(), item.name, entry.hash);
      entries.push_back(std::move(entry));
    }
  }
  return entries;
}

Result<VerifyReport> BlobStore::VerifyAll() {
  State& s = *state_;
  ASSIGN_OR_RETURN(ScanResult scan, store_fs::Scan(s.root.get()));
  VerifyReport report;
  report.unknown_entries = scan.unknown_root_entries + scan.bad_shards.size();
  report.stale_temps_removed = s.RemoveStaleTemps(scan);
  // A group's members share one inode: verify the file once, then only check each name.
  std::map<std::pair<dev_t, ino_t>, std::vector<FunctionHash>> verified;
  for (const store_fs::ScanShard& shard : scan.shards) {
    for (const ScanItem& item : shard.items) {
      if (item.kind == ScanItem::Kind::kUnknown) ++report.unknown_entries;
      if (item.kind != ScanItem::Kind::kObject) continue;
      FunctionHash hash;
      if (!HashOfEntry(shard.name, item.name, &hash)) continue;
      ++report.checked;
      auto known = verified.find({item.st.st_dev, item.st.st_ino});
      if (item.stat_ok && S_ISREG(item.st.st_mode) && known != verified.end() &&
          std::find(known->second.begin(), known->second.end(), hash) != known->second.end()) {
        ++report.ok;
        continue;
      }
      ASSIGN_OR_RETURN(Examined ex, Examine(shard.fd.get(), item.name, hash));
      if (ex.outcome == Examined::Outcome::kAbsent) {
        --report.checked;  // evicted or cleared while we looked
      } else if (ex.outcome == Examined::Outcome::kOk) {
        ++report.ok;
        std::vector<FunctionHash>& members = verified[{ex.st.st_dev, ex.st.st_ino}];
        for (const FunctionBlob& m : ex.members) members.push_back(m.hash);
      } else {
        CorruptObject corrupt;
        corrupt.hash = hash;
        s.DropCorrupt(shard.fd.get(), shard.name, item.name, ex, &corrupt);
        report.corrupt.push_back(std::move(corrupt));
      }
    }
  }
  return report;
}

Result<GcReport> BlobStore::Gc() { return state_->GcTo(state_->options.max_bytes); }

Result<uint64_t> BlobStore::Clear() {
  State& s = *state_;
  ASSIGN_OR_RETURN(ScanResult scan, store_fs::Scan(s.root.get()));
  s.RemoveStaleTemps(scan);
  uint64_t removed = 0;
  for (const store_fs::ScanShard& shard : scan.shards) {
    for (const ScanItem& item : shard.items) {
      if (item.kind != ScanItem::Kind::kObject) continue;
      if (RemoveIfUnchanged(shard.fd.get(), item.name, nullptr) == Removal::kRemoved) ++removed;
    }
  }
  s.bytes_estimate.store(0);
  return removed;
}

}  // namespace shapex::sandbox
