#include "shapex/ipc/segment_reserve.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "testing/open_fds.h"
#include "testing/status_matchers.h"

namespace shapex::ipc {
namespace {

using ::shapex_testing::CountOpenFds;
using ::shapex_testing::IsError;

constexpr size_t kMiB = size_t{1} << 20;

std::vector<uint8_t> Pattern(size_t size, uint8_t seed) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(seed + i * 7);
  return bytes;
}

size_t FileSize(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  return static_cast<size_t>(st.st_size);
}

class SegmentReserveTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = CountOpenFds(); }
  void TearDown() override { EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak"; }

  // What a receiver sees: the sealed segment mapped read-only, copied out.
  static std::vector<uint8_t> Receive(ScopedFd fd, size_t size) {
    auto mapping = MapSealed(std::move(fd), size);
    EXPECT_OK(mapping);
    if (!mapping.has_value()) return {};
    return std::vector<uint8_t>(mapping->bytes().begin(), mapping->bytes().end());
  }

  size_t fds_before_ = 0;
};

TEST_F(SegmentReserveTest, SmallSegmentsAreMadeFreshAndNotCounted) {
  SegmentReserve reserve;
  std::vector<uint8_t> bytes = Pattern(4096, 1);
  SealedSegment::Piece piece{0, bytes};
  ASSERT_OK_AND_ASSIGN(ScopedFd fd, reserve.WriteSealed(bytes.size(), {&piece, 1}));
  EXPECT_EQ(Receive(std::move(fd), bytes.size()), bytes);
  reserve.Replenish();
  EXPECT_EQ(reserve.stats().spare_hits, 0u);
  EXPECT_EQ(reserve.stats().spare_misses, 0u);
  EXPECT_EQ(reserve.stats().spares_made, 0u);
  EXPECT_EQ(reserve.stats().spare_bytes, 0u);
}

TEST_F(SegmentReserveTest, SecondWriteOfASizeUsesTheSpareAndIsSealedAndExact) {
  SegmentReserve reserve;
  const size_t size = 3 * kMiB + 100;  // not page-aligned: the spare is truncated to it
  std::vector<uint8_t> a = Pattern(kMiB, 3), b = Pattern(kMiB + 5, 9);
  std::vector<SealedSegment::Piece> pieces = {{64, a}, {2 * kMiB, b}};

  ASSERT_OK_AND_ASSIGN(ScopedFd first, reserve.WriteSealed(size, pieces));
  EXPECT_EQ(reserve.stats().spare_misses, 1u);
  reserve.Replenish();
  EXPECT_EQ(reserve.stats().spares_made, 1u);
  EXPECT_EQ(reserve.stats().spare_bytes, 3 * kMiB + 4096);  // rounded up to whole pages

  ASSERT_OK_AND_ASSIGN(ScopedFd second, reserve.WriteSealed(size, pieces));
  EXPECT_EQ(reserve.stats().spare_hits, 1u);
  EXPECT_EQ(reserve.stats().spare_bytes, 0u);
  EXPECT_EQ(FileSize(second.get()), size);
  EXPECT_EQ(fcntl(second.get(), F_GET_SEALS), ImmutableSeals());

  std::vector<uint8_t> expect(size, 0);
  std::memcpy(expect.data() + 64, a.data(), a.size());
  std::memcpy(expect.data() + 2 * kMiB, b.data(), b.size());
  // Nobody can write into a segment that came from a spare, through any path.
  EXPECT_EQ(pwrite(second.get(), "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  void* writable = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, second.get(), 0);
  EXPECT_EQ(writable, MAP_FAILED);
  EXPECT_EQ(Receive(std::move(second), size), expect);
  EXPECT_EQ(Receive(std::move(first), size), expect);
}

TEST_F(SegmentReserveTest, SentSegmentsAreKeptUntilReplenish) {
  SegmentReserve reserve;
  std::vector<uint8_t> bytes = Pattern(2 * kMiB, 5);
  SealedSegment::Piece piece{0, bytes};
  {
    ASSERT_OK_AND_ASSIGN(ScopedFd fd, reserve.WriteSealed(bytes.size(), {&piece, 1}));
  }  // the receiver is done with it
  EXPECT_EQ(reserve.stats().retired_bytes, bytes.size());
  size_t with_retired = CountOpenFds();
  reserve.Replenish();
  EXPECT_EQ(reserve.stats().retired_bytes, 0u);
  // The retired segment's descriptor is gone; the new spare holds one.
  EXPECT_EQ(CountOpenFds(), with_retired);
}

TEST_F(SegmentReserveTest, RetiredBytesAreBounded) {
  SegmentReserveOptions options;
  options.max_retired_bytes = 5 * kMiB;
  SegmentReserve reserve(options);
  std::vector<uint8_t> bytes = Pattern(2 * kMiB, 5);
  SealedSegment::Piece piece{0, bytes};
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(ScopedFd fd, reserve.WriteSealed(bytes.size(), {&piece, 1}));
    EXPECT_LE(reserve.stats().retired_bytes, options.max_retired_bytes);
  }
  EXPECT_EQ(reserve.stats().retired_bytes, 4 * kMiB);
}

TEST_F(SegmentReserveTest, SparesStayWithinTheirBudgetAndRecentSizes) {
  SegmentReserveOptions options;
  options.max_spare_bytes = 6 * kMiB;
  options.max_sizes = 2;
  SegmentReserve reserve(options);
  std::vector<uint8_t> bytes = Pattern(8 * kMiB, 1);
  auto write = [&](size_t size) {
    SealedSegment::Piece piece{0, std::span<const uint8_t>(bytes).first(size)};
    ASSERT_OK_AND_ASSIGN(ScopedFd fd, reserve.WriteSealed(size, {&piece, 1}));
  };
  write(8 * kMiB);  // larger than the whole budget: never gets a spare
  reserve.Replenish();
  EXPECT_EQ(reserve.stats().spares_made, 0u);
  write(2 * kMiB);
  write(3 * kMiB);
  reserve.Replenish();
  EXPECT_EQ(reserve.stats().spares_made, 2u);
  EXPECT_EQ(reserve.stats().spare_bytes, 5 * kMiB);
  write(4 * kMiB);  // a third size: the oldest (2 MiB) is no longer wanted
  reserve.Replenish();
  EXPECT_EQ(reserve.stats().spare_bytes, 3 * kMiB);  // 4 MiB would exceed 6 MiB beside 3 MiB
  EXPECT_LE(reserve.stats().spare_bytes, options.max_spare_bytes);
  write(3 * kMiB);
  EXPECT_EQ(reserve.stats().spare_hits, 1u);
}

TEST_F(SegmentReserveTest, PiecesOutsideTheSegmentAreRefusedWithoutUsingTheSpare) {
  SegmentReserve reserve;
  std::vector<uint8_t> bytes = Pattern(2 * kMiB, 1);
  SealedSegment::Piece good{0, bytes};
  ASSERT_OK_AND_ASSIGN(ScopedFd fd, reserve.WriteSealed(bytes.size(), {&good, 1}));
  reserve.Replenish();
  ASSERT_EQ(reserve.stats().spare_bytes, bytes.size());
  SealedSegment::Piece outside{1, bytes};
  EXPECT_THAT(reserve.WriteSealed(bytes.size(), {&outside, 1}),
              IsError(ErrorKind::kInvalidArgument));
  EXPECT_EQ(reserve.stats().spare_bytes, bytes.size());
  EXPECT_EQ(reserve.stats().spare_hits, 0u);
}

// A spare that cannot be allocated (here: RLIMIT_FSIZE below its size) is counted, and the
// reserve carries on making segments that fit. In a child, since the limit is per process.
TEST_F(SegmentReserveTest, AllocationFailureIsCountedNotFatal) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);
    SegmentReserve reserve;
    std::vector<uint8_t> bytes = Pattern(3 * kMiB, 1);
    SealedSegment::Piece piece{0, bytes};
    if (!reserve.WriteSealed(bytes.size(), {&piece, 1}).has_value()) _exit(10);
    rlimit limit{2 * kMiB, 2 * kMiB};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(11);
    reserve.Replenish();
    if (reserve.stats().spare_failures != 1 || reserve.stats().spare_bytes != 0) _exit(12);
    SealedSegment::Piece small{0, std::span<const uint8_t>(bytes).first(kMiB)};
    if (!reserve.WriteSealed(kMiB, {&small, 1}).has_value()) _exit(13);
    if (reserve.WriteSealed(bytes.size(), {&piece, 1}).has_value()) _exit(14);  // EFBIG
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace shapex::ipc
