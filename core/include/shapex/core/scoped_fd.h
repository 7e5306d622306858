// ScopedFd: sole owner of a POSIX file descriptor. Pass descriptors around as ScopedFd, never as
// raw ints, so ownership is visible in signatures and nothing leaks on error paths.
//
// Usage:
//   ScopedFd fd(open(path, O_RDONLY | O_CLOEXEC));
//   if (!fd) return ErrnoStatus("open", path);
//   read(fd.get(), ...);
//   int raw = fd.release();   // hand ownership elsewhere; fd no longer closes it
//
// Guarantees: move-only; the destructor and reset() close the owned descriptor exactly once.
// close() is never retried on EINTR: on Linux the descriptor is released even then, and a retry
// could close a descriptor another thread just received. Closing preserves errno. A negative value
// means "no descriptor". Not thread-safe: one object must not be used concurrently.
#ifndef SHAPEX_CORE_SCOPED_FD_H_
#define SHAPEX_CORE_SCOPED_FD_H_

namespace shapex {

class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) noexcept : fd_(fd < 0 ? -1 : fd) {}
  ~ScopedFd() { reset(); }

  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives up ownership without closing; returns the descriptor (or -1).
  [[nodiscard]] int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the owned descriptor (unless it equals `fd`) and takes ownership of `fd`.
  void reset(int fd = -1) noexcept;

 private:
  int fd_;
};

}  // namespace shapex

#endif  // SHAPEX_CORE_SCOPED_FD_H_
