// GoogleTest ports of the seed's (shared/seed/remote.rs.txt) engine-side tests: program hashing,
// minimal blob selection, entry-blob requirement and the per-connection blob cache. The
// message/codec/sidecar half lives in seed_remote_test.cc (ipc). Names follow the seed's
// `test_*` functions in snake_case.
#include <gtest/gtest.h>

#include "shapex/engine/blob.h"
#include "shapex/engine/blob_cache.h"
#include "shapex/engine/compiler.h"

namespace shapex::engine {
namespace {

FunctionHash MkHash(uint8_t seed) {
  FunctionHash h{};
  h.fill(seed);
  return h;
}

FunctionBlob MkBlob(const std::string& name, const FunctionHash& hash) {
  FunctionBlob b;
  b.hash = hash;
  b.debug.name = name;
  b.canonical = {1, 2, 3};
  return b;
}

ProgramBlobs CompileBlobs(const std::string& src) {
  auto program = Compile(src, "seed.shape");
  EXPECT_TRUE(program.has_value());
  auto pb = BuildProgramBlobs(**program);
  EXPECT_TRUE(pb.has_value());
  return std::move(*pb);
}

TEST(SeedRemote, program_hash_deterministic) {
  ProgramBlobs a = CompileBlobs("function f(x) { x * 2 }");
  ProgramBlobs b = CompileBlobs("function f(x) { x * 2 }");
  ASSERT_EQ(a.proto_hashes.size(), b.proto_hashes.size());
  EXPECT_EQ(a.proto_hashes, b.proto_hashes) << "same program should produce the same hashes";
}

TEST(SeedRemote, build_minimal_blobs_rejects_ambiguous_function_name) {
  ProgramBlobs pb = CompileBlobs("function one() { 1 }\nfunction two() { 2 }");
  for (FunctionBlob& b : pb.blobs)
    if (b.debug.name == "one" || b.debug.name == "two") b.debug.name = "dup";
  auto by_name = MinimalBlobs(pb, "dup");
  ASSERT_FALSE(by_name.has_value()) << "name-based selection must reject ambiguous names";
  EXPECT_EQ(by_name.error().kind(), ErrorKind::kFunctionNotFound);
  EXPECT_NE(by_name.error().message().find("ambiguous"), std::string::npos);

  const FunctionBlob* second = nullptr;
  for (const FunctionBlob& b : pb.blobs)
    if (b.debug.name == "dup") second = &b;
  ASSERT_NE(second, nullptr);
  auto by_hash = MinimalBlobsByHash(pb, second->hash);
  ASSERT_TRUE(by_hash.has_value()) << "hash-based selection works with duplicate names";
  ASSERT_EQ(by_hash->blobs.size(), 1u);
  EXPECT_EQ(by_hash->blobs[0].hash, second->hash);
  EXPECT_EQ(by_hash->blobs[0].debug.name, "dup");
}

TEST(SeedRemote, program_from_blobs_by_hash_requires_entry_blob) {
  ProgramBlobs pb = CompileBlobs("function f() { 1 }");
  auto linked = ProgramFromBlobs(MkHash(9), pb.blobs);
  ASSERT_FALSE(linked.has_value()) << "reconstruction must fail when the entry is absent";
  EXPECT_EQ(linked.error().kind(), ErrorKind::kFunctionNotFound);
}

TEST(SeedRemote, blob_cache_insert_and_get) {
  BlobCache cache(10);
  cache.Insert(MkBlob("f1", MkHash(1)));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.Contains(MkHash(1)));
  const FunctionBlob* got = cache.Get(MkHash(1));
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->debug.name, "f1");
}

TEST(SeedRemote, blob_cache_lru_eviction) {
  BlobCache cache(2);
  cache.Insert(MkBlob("f1", MkHash(1)));
  cache.Insert(MkBlob("f2", MkHash(2)));
  EXPECT_EQ(cache.size(), 2u);
  cache.Insert(MkBlob("f3", MkHash(3)));  // evicts h1, the least recently used
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.Contains(MkHash(1))) << "h1 should be evicted";
  EXPECT_TRUE(cache.Contains(MkHash(2)));
  EXPECT_TRUE(cache.Contains(MkHash(3)));
}

TEST(SeedRemote, blob_cache_access_updates_order) {
  BlobCache cache(2);
  cache.Insert(MkBlob("f1", MkHash(1)));
  cache.Insert(MkBlob("f2", MkHash(2)));
  cache.Get(MkHash(1));                   // h1 is now the most recently used
  cache.Insert(MkBlob("f3", MkHash(3)));  // evicts h2
  EXPECT_TRUE(cache.Contains(MkHash(1))) << "h1 was accessed, should not be evicted";
  EXPECT_FALSE(cache.Contains(MkHash(2))) << "h2 should be evicted";
  EXPECT_TRUE(cache.Contains(MkHash(3)));
}

TEST(SeedRemote, blob_cache_filter_known) {
  BlobCache cache(10);
  cache.Insert(MkBlob("f1", MkHash(1)));
  cache.Insert(MkBlob("f3", MkHash(3)));
  std::vector<FunctionHash> offered{MkHash(1), MkHash(2), MkHash(3)};
  std::vector<FunctionHash> known = cache.FilterKnown(offered);
  EXPECT_EQ(known, (std::vector<FunctionHash>{MkHash(1), MkHash(3)}));
}

// Beyond the seed: the byte cap evicts too, and re-inserting a known hash only refreshes it.
TEST(BlobCacheTest, ByteCapEvictsLeastRecentlyUsed) {
  BlobCache cache(100, 3 * (sizeof(FunctionBlob) + 64));
  for (uint8_t i = 1; i <= 5; ++i) {
    FunctionBlob b = MkBlob("f", MkHash(i));
    b.canonical.assign(50, i);
    cache.Insert(b);
  }
  EXPECT_LE(cache.bytes(), 3 * (sizeof(FunctionBlob) + 64));
  EXPECT_FALSE(cache.Contains(MkHash(1)));
  EXPECT_TRUE(cache.Contains(MkHash(5)));
  size_t before = cache.size();
  cache.Insert(MkBlob("f", MkHash(5)));
  EXPECT_EQ(cache.size(), before);
}

}  // namespace
}  // namespace shapex::engine
