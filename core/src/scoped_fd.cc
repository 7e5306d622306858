#include "shapex/core/scoped_fd.h"

#include <unistd.h>

#include <cassert>
#include <cerrno>

namespace shapex {

void ScopedFd::reset(int fd) noexcept {
  if (fd < 0) fd = -1;
  if (fd_ >= 0 && fd_ != fd) {
    // Close once; EINTR still means the descriptor is gone on Linux. EBADF means someone else
    // closed a descriptor we own, which is a bug in our code.
    // errno is restored so that closing on an error path never hides the error being reported.
    int saved_errno = errno;
    [[maybe_unused]] int rc = ::close(fd_);
    assert(rc == 0 || errno != EBADF);
    errno = saved_errno;
  }
  fd_ = fd;
}

}  // namespace shapex
