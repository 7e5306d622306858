// The POSIX seam of the blob store: directory descriptors that never follow symlinks, bounded
// reads, durable temp-file writes, and a scan of the two-level layout. Private to sandbox/.
//
// Helpers that an expected errno should steer (ENOENT = "absent", ELOOP = "a symlink") return
// that errno (0 on success) instead of a Status; everything else returns Status/Result.
// Every descriptor is O_CLOEXEC and owned by a ScopedFd. Thread-safe: no shared state.
#ifndef SHAPEX_SANDBOX_BLOB_STORE_FS_H_
#define SHAPEX_SANDBOX_BLOB_STORE_FS_H_

#include <sys/stat.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"

namespace shapex::sandbox::store_fs {

// Names in the store: shards are 2 lowercase hex digits, objects 62, temp files ".tmp-…".
bool IsShardName(std::string_view name);
bool IsObjectName(std::string_view name);
bool IsTempName(std::string_view name);
// ".tmp-<pid>-<16 random hex digits>"; O_EXCL on creation catches the unlikely collision.
std::string NewTempName();

// mkdir -p with `mode` for the components it creates; the last one must end up a directory.
Status MakeDirs(const std::string& path, mode_t mode);
// Opens a directory by path (symlinks in the user-given path are followed).
Result<ScopedFd> OpenDirPath(const std::string& path);
// Opens `name` inside `parent` as a directory without following a symlink; with `create`,
// makes it (0700) first and sets *created when it did. Returns 0 or the errno.
int OpenSubdir(int parent, const std::string& name, bool create, ScopedFd* out,
               bool* created = nullptr);

// Reads `fd` to EOF. ProtocolError when it holds more than `max` bytes, IoError on failure.
Result<std::vector<uint8_t>> ReadAll(int fd, size_t max);
// Creates `temp_name` in `dir_fd` (O_EXCL, 0600), writes `bytes`, fsyncs, closes.
Status WriteTempFile(int dir_fd, const std::string& temp_name, std::span<const uint8_t> bytes);
Status SyncDir(int dir_fd, std::string_view what);

int64_t NowNs();
int64_t MtimeNs(const struct stat& st);

struct ScanItem {
  enum class Kind { kObject, kTemp, kUnknown };
  std::string name;
  Kind kind = Kind::kUnknown;
  bool stat_ok = false;  // false if the entry vanished or could not be examined
  struct stat st {};
};
struct ScanShard {
  std::string name;
  ScopedFd fd;  // the shard directory itself, for *at() calls that cannot escape it
  std::vector<ScanItem> items;
};
struct ScanResult {
  std::vector<ScanShard> shards;        // sorted by name; items sorted by name
  std::vector<std::string> bad_shards;  // shard-named entries that are not directories
  uint64_t unknown_root_entries = 0;    // anything else at the top level (left alone)
};
// Lists the store without following symlinks. Entries that vanish mid-scan are skipped.
Result<ScanResult> Scan(int root_fd);

}  // namespace shapex::sandbox::store_fs

#endif  // SHAPEX_SANDBOX_BLOB_STORE_FS_H_
