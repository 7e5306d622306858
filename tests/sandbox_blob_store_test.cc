// BlobStore: round trips, restart, negotiation filter, recursion groups, corruption of every
// kind (bit flips, truncation, garbage, non-files, symlinks), temp leftovers, LRU eviction,
// concurrent writers (threads and processes) and crash safety under SIGKILL. Real files under a
// fresh mkdtemp directory per test; no timed assertions.
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
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
using engine::FunctionHash;
using ::shapex_testing::IsError;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Every blob of a compiled program (fails the test on a compile error).
std::vector<FunctionBlob> BlobsOf(const std::string& source) {
  engine::Diagnostic diag;
  auto program = engine::Compile(source, "store_test.shape", &diag);
  EXPECT_TRUE(program.has_value()) << diag.message;
  if (!program.has_value()) return {};
  auto blobs = engine::BuildProgramBlobs(**program);
  EXPECT_TRUE(blobs.has_value()) << blobs.error().ToString();
  return blobs.has_value() ? blobs->blobs : std::vector<FunctionBlob>{};
}

// `n` distinct single functions (no recursion groups).
std::vector<FunctionBlob> SingleBlobs(int n, int salt = 0) {
  std::string source;
  for (int i = 0; i < n; ++i)
    source += fmt::format("function f{}_{}(x) {{ x * {} + {} }}\n", salt, i, i, salt);
  std::vector<FunctionBlob> out;
  for (FunctionBlob& b : BlobsOf(source))
    if (b.group.empty() && b.debug.name.starts_with("f")) out.push_back(std::move(b));
  EXPECT_EQ(out.size(), static_cast<size_t>(n));
  return out;
}

// The two members of the even/odd recursion group.
std::vector<FunctionBlob> GroupBlobs() {
  std::vector<FunctionBlob> out;
  for (FunctionBlob& b : BlobsOf("function even(n) { if n == 0 { true } else { odd(n - 1) } }\n"
                                 "function odd(n) { if n == 0 { false } else { even(n - 1) } }\n"))
    if (!b.group.empty()) out.push_back(std::move(b));
  EXPECT_EQ(out.size(), 2u);
  return out;
}

void ExpectSameBlob(const FunctionBlob& a, const FunctionBlob& b) {
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.canonical, b.canonical);
  EXPECT_EQ(a.group, b.group);
  EXPECT_EQ(a.debug.name, b.debug.name);
  EXPECT_EQ(a.debug.lines, b.debug.lines);
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

void MakeParent(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  ASSERT_FALSE(ec) << ec.message();
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

void SetAge(const std::string& path, int seconds_ago) {
  timespec times[2];
  clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= seconds_ago;
  times[1] = times[0];
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);  // corrupt objects are logged at WARN; tests make many
    char templ[] = "/tmp/shapex-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    root_ = templ;
    dir_ = root_ + "/cache/blobs";  // Open must create the missing levels
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  BlobStore MustOpen(uint64_t max_bytes = uint64_t{512} << 20, int stale_seconds = 600) {
    Result<BlobStore> store =
        BlobStore::Open({.dir = dir_,
                         .max_bytes = max_bytes,
                         .stale_temp_age = std::chrono::seconds(stale_seconds)});
    EXPECT_OK(store);
    if (!store.has_value()) std::abort();
    return std::move(store).value();
  }

  std::string PathOf(const FunctionHash& h) const {
    std::string hex = engine::HashToHex(h);
    return dir_ + "/" + hex.substr(0, 2) + "/" + hex.substr(2);
  }

  std::string root_, dir_;
};

TEST_F(BlobStoreTest, PutGetRoundTrip) {
  BlobStore store = MustOpen();
  std::vector<FunctionBlob> blobs = SingleBlobs(5);
  for (const FunctionBlob& b : blobs) ASSERT_OK(store.Put(b));
  for (const FunctionBlob& b : blobs) {
    auto got = store.Get(b.hash);
    ASSERT_OK(got);
    ASSERT_TRUE(got->has_value());
    ExpectSameBlob(**got, b);
  }
  auto stats = store.Stats();
  ASSERT_OK(stats);
  EXPECT_EQ(stats->objects, 5u);
  EXPECT_EQ(stats->puts, 5u);
  EXPECT_EQ(stats->hits, 5u);
  EXPECT_EQ(stats->misses, 0u);
  EXPECT_GT(stats->bytes, 0u);
  EXPECT_EQ(stats->dir, dir_);
}

TEST_F(BlobStoreTest, OpenCreatesPrivateDirectories) {
  BlobStore store = MustOpen();
  struct stat st;
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(BlobStoreTest, UnknownHashIsAMiss) {
  BlobStore store = MustOpen();
  FunctionHash unknown{};
  unknown[0] = 0xab;
  auto got = store.Get(unknown);
  ASSERT_OK(got);
  EXPECT_FALSE(got->has_value());
  EXPECT_FALSE(store.Contains(unknown));
  EXPECT_EQ(store.Stats()->misses, 1u);
}

TEST_F(BlobStoreTest, RestartStillKnowsBlobsAndFilterKnownKeepsOrder) {
  std::vector<FunctionBlob> blobs = SingleBlobs(4);
  {
    BlobStore first = MustOpen();
    ASSERT_OK(first.Put(blobs[1]));
    ASSERT_OK(first.Put(blobs[3]));
  }
  BlobStore second = MustOpen();
  std::vector<FunctionHash> offered = {blobs[3].hash, blobs[0].hash, blobs[1].hash, blobs[2].hash};
  EXPECT_THAT(second.FilterKnown(offered), ElementsAre(blobs[3].hash, blobs[1].hash));
  auto got = second.Get(blobs[3].hash);
  ASSERT_OK(got);
  ASSERT_TRUE(got->has_value());
  ExpectSameBlob(**got, blobs[3]);
}

TEST_F(BlobStoreTest, PutRefusesBlobsThatDoNotVerify) {
  BlobStore store = MustOpen();
  FunctionBlob bad = SingleBlobs(1)[0];
  bad.canonical.back() ^= 1;
  EXPECT_THAT(store.Put(bad), IsError(ErrorKind::kProtocolError));
  EXPECT_FALSE(store.Contains(bad.hash));
  EXPECT_EQ(store.Stats()->objects, 0u);
}

TEST_F(BlobStoreTest, GroupMembersNeedTheirSiblings) {
  BlobStore store = MustOpen();
  std::vector<FunctionBlob> group = GroupBlobs();
  EXPECT_THAT(store.Put(group[0]), IsError(ErrorKind::kInvalidArgument));
  EXPECT_THAT(store.PutBlobs(std::span(&group[0], 1)), IsError(ErrorKind::kProtocolError));
  EXPECT_EQ(store.Stats()->objects, 0u);
}

TEST_F(BlobStoreTest, GroupIsOneObjectUnderEveryMemberHash) {
  BlobStore store = MustOpen();
  std::vector<FunctionBlob> group = GroupBlobs();
  ASSERT_OK(store.PutBlobs(group));
  std::vector<FunctionBlob> fetched;
  for (const FunctionBlob& b : group) {
    auto got = store.Get(b.hash);
    ASSERT_OK(got);
    ASSERT_TRUE(got->has_value());
    ExpectSameBlob(**got, b);
    fetched.push_back(**got);
  }
  struct stat a, b;
  ASSERT_EQ(stat(PathOf(group[0].hash).c_str(), &a), 0);
  ASSERT_EQ(stat(PathOf(group[1].hash).c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // hard links: one file, counted once
  auto stats = store.Stats();
  EXPECT_EQ(stats->objects, 2u);
  EXPECT_EQ(stats->bytes, static_cast<uint64_t>(a.st_size));
  // What the store returns links and runs.
  auto linked = engine::ProgramFromBlobs(group[0].hash, fetched);
  EXPECT_OK(linked);
  auto report = store.VerifyAll();
  ASSERT_OK(report);
  EXPECT_EQ(report->checked, 2u);
  EXPECT_EQ(report->ok, 2u);
}

TEST_F(BlobStoreTest, GroupMemberVerifiesAloneAfterItsSiblingIsGone) {
  BlobStore store = MustOpen();
  std::vector<FunctionBlob> group = GroupBlobs();
  ASSERT_OK(store.PutBlobs(group));
  ASSERT_EQ(unlink(PathOf(group[0].hash).c_str()), 0);
  auto got = store.Get(group[1].hash);
  ASSERT_OK(got);
  ASSERT_TRUE(got->has_value());
  ExpectSameBlob(**got, group[1]);
  // PutBlobs restores the missing name.
  ASSERT_OK(store.PutBlobs(group));
  EXPECT_TRUE(store.Contains(group[0].hash));
}

// Any single flipped bit anywhere in an object file (header, checksum, canonical bytes or
// debug info) is detected, the file deleted, and nothing served.
TEST_F(BlobStoreTest, EveryBitFlipIsDetected) {
  BlobStore store = MustOpen();
  FunctionBlob blob = SingleBlobs(1)[0];
  ASSERT_OK(store.Put(blob));
  std::string path = PathOf(blob.hash);
  std::vector<uint8_t> good = ReadBytes(path);
  ASSERT_GT(good.size(), 48u);
  std::mt19937 rng(42);
  uint64_t flips = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<uint8_t> bad = good;
    bad[i] ^= static_cast<uint8_t>(1u << (rng() % 8));
    WriteBytes(path, bad);
    auto got = store.Get(blob.hash);
    ASSERT_OK(got);
    EXPECT_FALSE(got->has_value()) << "flip at byte " << i << " was served";
    EXPECT_FALSE(Exists(path)) << "flip at byte " << i << " was not deleted";
    ++flips;
  }
  EXPECT_EQ(store.Stats()->corrupt_deleted, flips);
  ASSERT_OK(store.Put(blob));  // and it can be stored again
  EXPECT_TRUE(store.Get(blob.hash)->has_value());
}

TEST_F(BlobStoreTest, BitFlipFoundByVerifyAll) {
  std::vector<FunctionBlob> blobs = SingleBlobs(3);
  BlobStore store = MustOpen();
  for (const FunctionBlob& b : blobs) ASSERT_OK(store.Put(b));
  std::string path = PathOf(blobs[1].hash);
  std::vector<uint8_t> bytes = ReadBytes(path);
  bytes[bytes.size() / 2] ^= 0x10;
  WriteBytes(path, bytes);
  auto report = store.VerifyAll();
  ASSERT_OK(report);
  EXPECT_EQ(report->checked, 3u);
  EXPECT_EQ(report->ok, 2u);
  ASSERT_EQ(report->corrupt.size(), 1u);
  EXPECT_EQ(report->corrupt[0].hash, blobs[1].hash);
  EXPECT_TRUE(report->corrupt[0].removed);
  EXPECT_FALSE(Exists(path));
  EXPECT_TRUE(store.VerifyAll()->corrupt.empty());
}

TEST_F(BlobStoreTest, TruncatedFilesAreDeleted) {
  BlobStore store = MustOpen();
  FunctionBlob blob = SingleBlobs(1)[0];
  ASSERT_OK(store.Put(blob));
  std::string path = PathOf(blob.hash);
  std::vector<uint8_t> good = ReadBytes(path);
  for (size_t len :
       {size_t{0}, size_t{1}, size_t{47}, size_t{48}, good.size() / 2, good.size() - 1}) {
    WriteBytes(path, std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(len)));
    auto got = store.Get(blob.hash);
    ASSERT_OK(got);
    EXPECT_FALSE(got->has_value()) << "truncated to " << len;
    EXPECT_FALSE(Exists(path));
  }
}

TEST_F(BlobStoreTest, GarbageAndMisfiledObjectsAreNeverServed) {
  BlobStore store = MustOpen();
  std::vector<FunctionBlob> blobs = SingleBlobs(2);
  ASSERT_OK(store.Put(blobs[0]));
  // Garbage under a valid name: Contains (a stat) says yes, Get verifies and says no.
  FunctionHash target = blobs[1].hash;
  MakeParent(PathOf(target));
  std::vector<uint8_t> garbage(300);
  std::mt19937 rng(7);
  for (uint8_t& b : garbage) b = static_cast<uint8_t>(rng());
  WriteBytes(PathOf(target), garbage);
  EXPECT_TRUE(store.Contains(target));
  EXPECT_FALSE(store.Get(target)->has_value());
  EXPECT_FALSE(store.Contains(target));
  // A valid object filed under another function's hash.
  WriteBytes(PathOf(target), ReadBytes(PathOf(blobs[0].hash)));
  EXPECT_FALSE(store.Get(target)->has_value());
  EXPECT_FALSE(Exists(PathOf(target)));
  EXPECT_TRUE(store.Get(blobs[0].hash)->has_value());
}

TEST_F(BlobStoreTest, OversizedFileIsRejectedWithoutReadingIt) {
  BlobStore store = MustOpen();
  FunctionBlob blob = SingleBlobs(1)[0];
  ASSERT_OK(store.Put(blob));
  ASSERT_EQ(truncate(PathOf(blob.hash).c_str(), off_t{65} << 20), 0);  // sparse
  EXPECT_FALSE(store.Get(blob.hash)->has_value());
  EXPECT_FALSE(Exists(PathOf(blob.hash)));
}

TEST_F(BlobStoreTest, NonFilesWhereObjectsShouldBe) {
  BlobStore store = MustOpen();
  std::vector<FunctionBlob> blobs = SingleBlobs(4);
  ASSERT_OK(store.Put(blobs[0]));
  std::string real = PathOf(blobs[0].hash);
  for (size_t i = 1; i < 4; ++i) MakeParent(PathOf(blobs[i].hash));
  // A directory, a symlink to a valid object, a FIFO (which must not block the reader).
  ASSERT_EQ(mkdir(PathOf(blobs[1].hash).c_str(), 0700), 0);
  ASSERT_EQ(symlink(real.c_str(), PathOf(blobs[2].hash).c_str()), 0);
  ASSERT_EQ(mkfifo(PathOf(blobs[3].hash).c_str(), 0600), 0);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_FALSE(store.Contains(blobs[i].hash)) << i;
    auto got = store.Get(blobs[i].hash);
    ASSERT_OK(got);
    EXPECT_FALSE(got->has_value()) << i;
    EXPECT_FALSE(Exists(PathOf(blobs[i].hash))) << i;
  }
  EXPECT_TRUE(Exists(real));  // the symlink's target survives
  EXPECT_TRUE(store.Get(blobs[0].hash)->has_value());
}

TEST_F(BlobStoreTest, SymlinkedShardIsNeverFollowed) {
  std::vector<FunctionBlob> blobs = SingleBlobs(1);
  std::string elsewhere = root_ + "/elsewhere";
  {
    // A valid store elsewhere, then its shard symlinked into ours.
    Result<BlobStore> other = BlobStore::Open({.dir = elsewhere});
    ASSERT_OK(other);
    ASSERT_OK(other->Put(blobs[0]));
  }
  BlobStore store = MustOpen();
  std::string shard = engine::HashToHex(blobs[0].hash).substr(0, 2);
  ASSERT_EQ(symlink((elsewhere + "/" + shard).c_str(), (dir_ + "/" + shard).c_str()), 0);
  EXPECT_FALSE(store.Contains(blobs[0].hash));
  EXPECT_FALSE(store.Get(blobs[0].hash)->has_value());
  EXPECT_OK(store.VerifyAll());
  EXPECT_OK(store.Clear());
  EXPECT_OK(store.Gc());
  std::string hex = engine::HashToHex(blobs[0].hash);
  EXPECT_TRUE(Exists(elsewhere + "/" + shard + "/" + hex.substr(2)));
}

TEST_F(BlobStoreTest, ForeignNamesAreIgnoredAndLeftAlone) {
  BlobStore store = MustOpen();
  FunctionBlob blob = SingleBlobs(1)[0];
  ASSERT_OK(store.Put(blob));
  std::string shard = dir_ + "/" + engine::HashToHex(blob.hash).substr(0, 2);
  std::vector<std::string> foreign = {dir_ + "/README", shard + "/notes.txt",
                                      shard + "/" + std::string(62, 'A')};
  for (const std::string& path : foreign) WriteBytes(path, {'h', 'i'});
  ASSERT_EQ(mkdir((dir_ + "/zz").c_str(), 0700), 0);
  auto list = store.List();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].hash, blob.hash);
  auto report = store.VerifyAll();
  ASSERT_OK(report);
  EXPECT_EQ(report->checked, 1u);
  EXPECT_EQ(report->unknown_entries, 4u);
  EXPECT_OK(store.Gc());
  EXPECT_OK(store.Clear());
  for (const std::string& path : foreign) EXPECT_TRUE(Exists(path)) << path;
}

TEST_F(BlobStoreTest, TempLeftoversAreIgnoredThenCleaned) {
  BlobStore store = MustOpen();
  FunctionBlob blob = SingleBlobs(1)[0];
  ASSERT_OK(store.Put(blob));
  std::string shard = dir_ + "/" + engine::HashToHex(blob.hash).substr(0, 2);
  std::string young = shard + "/.tmp-1-0000000000000001";
  std::string old = shard + "/.tmp-1-0000000000000002";
  std::vector<uint8_t> partial = ReadBytes(PathOf(blob.hash));
  partial.resize(partial.size() / 2);
  WriteBytes(young, partial);
  WriteBytes(old, partial);
  SetAge(old, 3600);
  auto list = store.List();
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), 1u);
  EXPECT_EQ(store.Stats()->temp_files, 2u);
  auto report = store.VerifyAll();
  ASSERT_OK(report);
  EXPECT_TRUE(report->corrupt.empty());
  EXPECT_EQ(report->stale_temps_removed, 1u);
  EXPECT_TRUE(Exists(young));  // may be another process's write in progress
  EXPECT_FALSE(Exists(old));
  SetAge(young, 3600);
  auto gc = store.Gc();
  ASSERT_OK(gc);
  EXPECT_EQ(gc->stale_temps_removed, 1u);
  EXPECT_FALSE(Exists(young));
  EXPECT_TRUE(store.Get(blob.hash)->has_value());
}

TEST_F(BlobStoreTest, GcEvictsLeastRecentlyUsedFirst) {
  std::vector<FunctionBlob> blobs = SingleBlobs(3);
  {
    BlobStore store = MustOpen();
    for (const FunctionBlob& b : blobs) ASSERT_OK(store.Put(b));
  }
  SetAge(PathOf(blobs[0].hash), 3 * 3600);  // oldest...
  SetAge(PathOf(blobs[1].hash), 2 * 3600);
  SetAge(PathOf(blobs[2].hash), 1 * 3600);  // ...newest
  uint64_t size0 = ReadBytes(PathOf(blobs[0].hash)).size();
  uint64_t size2 = ReadBytes(PathOf(blobs[2].hash)).size();
  BlobStore store = MustOpen(size0 + size2);
  ASSERT_TRUE(store.Get(blobs[0].hash)->has_value());  // now the most recently used
  auto gc = store.Gc();
  ASSERT_OK(gc);
  EXPECT_EQ(gc->evicted_objects, 1u);
  EXPECT_EQ(gc->bytes_after, size0 + size2);
  EXPECT_TRUE(store.Contains(blobs[0].hash));
  EXPECT_FALSE(store.Contains(blobs[1].hash));
  EXPECT_TRUE(store.Contains(blobs[2].hash));
  EXPECT_EQ(store.Stats()->evictions, 1u);
}

TEST_F(BlobStoreTest, PutKeepsTheStoreNearItsBound) {
  std::vector<FunctionBlob> blobs = SingleBlobs(20);
  uint64_t one;
  {
    BlobStore probe = MustOpen();
    ASSERT_OK(probe.Put(blobs[0]));
    one = probe.Stats()->bytes;
    ASSERT_OK(probe.Clear());
  }
  BlobStore store = MustOpen(one * 5);
  for (const FunctionBlob& b : blobs) ASSERT_OK(store.Put(b));
  auto stats = store.Stats();
  ASSERT_OK(stats);
  EXPECT_LE(stats->bytes, one * 5 + one);  // blobs differ by a few bytes in size
  EXPECT_GT(stats->evictions, 0u);
  EXPECT_TRUE(store.Contains(blobs.back().hash));  // the newest survives
}

TEST_F(BlobStoreTest, ListAndClear) {
  BlobStore store = MustOpen();
  std::vector<FunctionBlob> blobs = SingleBlobs(3);
  std::vector<FunctionBlob> group = GroupBlobs();
  ASSERT_OK(store.PutBlobs(blobs));
  ASSERT_OK(store.PutBlobs(group));
  auto list = store.List(ListDetail::kWithNames);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 5u);
  EXPECT_TRUE(std::is_sorted(list->begin(), list->end(),
                             [](const auto& a, const auto& b) { return a.hash < b.hash; }));
  std::vector<std::string> names;
  for (const BlobStoreEntry& e : *list) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names, ElementsAre("even", "f0_0", "f0_1", "f0_2", "odd"));
  auto removed = store.Clear();
  ASSERT_OK(removed);
  EXPECT_EQ(*removed, 5u);
  EXPECT_THAT(*store.List(), IsEmpty());
  EXPECT_EQ(store.Stats()->bytes, 0u);
}

TEST_F(BlobStoreTest, DefaultDirFollowsXdgThenHome) {
  std::string saved_xdg = getenv("XDG_CACHE_HOME") ? getenv("XDG_CACHE_HOME") : "";
  std::string saved_home = getenv("HOME") ? getenv("HOME") : "";
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(BlobStore::DefaultDir(), "/xdg/shapex/blobs");
  setenv("XDG_CACHE_HOME", "relative/ignored", 1);
  EXPECT_EQ(BlobStore::DefaultDir(), "/home/u/.cache/shapex/blobs");
  unsetenv("XDG_CACHE_HOME");
  unsetenv("HOME");
  EXPECT_EQ(BlobStore::DefaultDir(), "");
  EXPECT_THAT(BlobStore::Open({}), IsError(ErrorKind::kInvalidArgument));
  if (!saved_xdg.empty()) setenv("XDG_CACHE_HOME", saved_xdg.c_str(), 1);
  if (!saved_home.empty()) setenv("HOME", saved_home.c_str(), 1);
}

TEST_F(BlobStoreTest, OpenFailsWhenTheDirectoryIsAFile) {
  WriteBytes(root_ + "/file", {'x'});
  EXPECT_THAT(BlobStore::Open({.dir = root_ + "/file"}), IsError(ErrorKind::kIoError));
  EXPECT_THAT(BlobStore::Open({.dir = root_ + "/file/below"}), IsError(ErrorKind::kIoError));
}

TEST(VerifyBlobHashesTest, ChecksSinglesGroupsAndConflicts) {
  std::vector<FunctionBlob> singles = SingleBlobs(2);
  std::vector<FunctionBlob> group = GroupBlobs();
  EXPECT_OK(engine::VerifyBlobHashes(singles));
  EXPECT_OK(engine::VerifyBlobHashes(group));
  EXPECT_THAT(engine::VerifyBlobHashes(std::span(&group[1], 1)),
              IsError(ErrorKind::kProtocolError));
  std::vector<FunctionBlob> tampered = group;
  tampered[0].canonical[tampered[0].canonical.size() - 1] ^= 1;
  EXPECT_THAT(engine::VerifyBlobHashes(tampered), IsError(ErrorKind::kProtocolError));
  std::vector<FunctionBlob> conflict = {singles[0], singles[0]};
  conflict[1].canonical.push_back(0);
  EXPECT_THAT(engine::VerifyBlobHashes(conflict), IsError(ErrorKind::kProtocolError));
}

}  // namespace
}  // namespace shapex::sandbox
