#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "shapex/core/scoped_fd.h"

namespace shapex {
namespace {

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

bool IsClosed(int fd) {
  errno = 0;
  return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

int OpenDevNull() {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  return fd;
}

TEST(ScopedFdTest, DefaultIsInvalid) {
  ScopedFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
  EXPECT_EQ(ScopedFd(-5).get(), -1);
}

TEST(ScopedFdTest, DestructorCloses) {
  int raw = OpenDevNull();
  {
    ScopedFd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_TRUE(IsClosed(raw));
}

TEST(ScopedFdTest, ReleaseDoesNotClose) {
  int raw = OpenDevNull();
  {
    ScopedFd fd(raw);
    EXPECT_EQ(fd.release(), raw);
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_TRUE(IsOpen(raw));
  close(raw);
}

TEST(ScopedFdTest, ResetClosesOldAndOwnsNew) {
  int first = OpenDevNull();
  int second = OpenDevNull();
  ScopedFd fd(first);
  fd.reset(second);
  EXPECT_TRUE(IsClosed(first));
  EXPECT_EQ(fd.get(), second);
  fd.reset(second);  // Resetting to the owned descriptor must not close it.
  EXPECT_TRUE(IsOpen(second));
  fd.reset();
  EXPECT_TRUE(IsClosed(second));
  EXPECT_FALSE(fd.valid());
}

TEST(ScopedFdTest, MoveTransfersOwnership) {
  int first = OpenDevNull();
  int second = OpenDevNull();
  ScopedFd a(first);
  ScopedFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): documented guarantee.
  EXPECT_EQ(b.get(), first);

  ScopedFd c(second);
  c = std::move(b);
  EXPECT_TRUE(IsClosed(second));
  EXPECT_EQ(c.get(), first);
  EXPECT_TRUE(IsOpen(first));
  static_assert(!std::is_copy_constructible_v<ScopedFd>);
  static_assert(!std::is_copy_assignable_v<ScopedFd>);
}

TEST(ScopedFdTest, ClosePreservesErrno) {
  ScopedFd fd(OpenDevNull());
  errno = ENOSPC;
  fd.reset();
  EXPECT_EQ(errno, ENOSPC);
}

}  // namespace
}  // namespace shapex
