// POSIX helpers for the blob store. Why the *at() style throughout: the store keeps a descriptor
// for its root and for each shard, so a shard swapped for a symlink can never make the store
// read, evict or delete anything outside its own directory.
#include "blob_store_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>

#include "shapex/core/errno_status.h"

namespace shapex::sandbox::store_fs {
namespace {

constexpr std::string_view kTempPrefix = ".tmp-";

bool AllLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Names in the directory open as `fd`, except "." and "..". Uses a fresh open file description
// so concurrent scans do not share a readdir position.
Result<std::vector<std::string>> ListNames(int fd) {
  int own = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (own < 0) return ErrnoStatus("open directory", ".");
  DIR* dir = fdopendir(own);
  if (dir == nullptr) {
    Status s = ErrnoStatus("fdopendir");
    close(own);
    return s;
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = readdir(dir)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  int err = errno;
  closedir(dir);
  if (err != 0) return ErrnoStatus("readdir", "", err);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

bool IsShardName(std::string_view name) { return name.size() == 2 && AllLowerHex(name); }
bool IsObjectName(std::string_view name) { return name.size() == 62 && AllLowerHex(name); }
bool IsTempName(std::string_view name) { return name.substr(0, kTempPrefix.size()) == kTempPrefix; }

std::string NewTempName() {
  static std::atomic<uint64_t> counter{0};
  uint64_t random = 0;
  if (getrandom(&random, sizeof random, GRND_NONBLOCK) != sizeof random) {
    // No entropy yet: time and a counter still differ between calls; O_EXCL covers the rest.
    random = static_cast<uint64_t>(NowNs()) ^ (counter.fetch_add(1) * 0x9e3779b97f4a7c15ULL);
  }
  return fmt::format("{}{}-{:016x}", kTempPrefix, getpid(), random);
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return InvalidArgument("empty directory path");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", prefix);
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path);
  if (!S_ISDIR(st.st_mode)) return IoError(path + " is not a directory");
  return Status::Ok();
}

Result<ScopedFd> OpenDirPath(const std::string& path) {
  ScopedFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open", path);
  return fd;
}

int OpenSubdir(int parent, const std::string& name, bool create, ScopedFd* out, bool* created) {
  if (created != nullptr) *created = false;
  if (create) {
    if (mkdirat(parent, name.c_str(), 0700) == 0) {
      if (created != nullptr) *created = true;
    } else if (errno != EEXIST) {
      return errno;
    }
  }
  out->reset(openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  return out->valid() ? 0 : errno;
}

Result<std::vector<uint8_t>> ReadAll(int fd, size_t max) {
  std::vector<uint8_t> out;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size > 0 && static_cast<uint64_t>(st.st_size) <= max)
    out.reserve(static_cast<size_t>(st.st_size));
  uint8_t chunk[64 * 1024];
  while (true) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read");
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > max)
      return ProtocolError(fmt::format("file larger than {} bytes", max));
    out.insert(out.end(), chunk, chunk + n);
  }
}

Status WriteTempFile(int dir_fd, const std::string& temp_name, std::span<const uint8_t> bytes) {
  ScopedFd fd(openat(dir_fd, temp_name.c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus("create", temp_name);
  auto fail = [&](std::string_view op) {
    Status s = ErrnoStatus(op, temp_name);
    unlinkat(dir_fd, temp_name.c_str(), 0);  // a half-written temp file is of no use to anyone
    return s;
  };
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return fail("fsync");
  if (close(fd.release()) != 0 && errno != EINTR) return fail("close");
  return Status::Ok();
}

Status SyncDir(int dir_fd, std::string_view what) {
  if (fsync(dir_fd) != 0 && errno != EINVAL) return ErrnoStatus("fsync directory", what);
  return Status::Ok();
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int64_t MtimeNs(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
}

Result<ScanResult> Scan(int root_fd) {
  ScanResult result;
  ASSIGN_OR_RETURN(std::vector<std::string> top, ListNames(root_fd));
  for (const std::string& shard_name : top) {
    if (!IsShardName(shard_name)) {
      ++result.unknown_root_entries;
      continue;
    }
    ScanShard shard;
    shard.name = shard_name;
    int err = OpenSubdir(root_fd, shard_name, /*create=*/false, &shard.fd);
    if (err == ENOENT) continue;
    if (err == ENOTDIR || err == ELOOP) {
      result.bad_shards.push_back(shard_name);
      continue;
    }
    if (err != 0) return ErrnoStatus("open", shard_name, err);
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListNames(shard.fd.get()));
    for (std::string& name : names) {
      ScanItem item;
      item.kind = IsObjectName(name) ? ScanItem::Kind::kObject
                  : IsTempName(name) ? ScanItem::Kind::kTemp
                                     : ScanItem::Kind::kUnknown;
      item.stat_ok = fstatat(shard.fd.get(), name.c_str(), &item.st, AT_SYMLINK_NOFOLLOW) == 0;
      if (!item.stat_ok && errno == ENOENT) continue;  // removed while we looked
      item.name = std::move(name);
      shard.items.push_back(std::move(item));
    }
    result.shards.push_back(std::move(shard));
  }
  return result;
}

}  // namespace shapex::sandbox::store_fs
