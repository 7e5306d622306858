// ErrnoStatus: the one place where a failed system call's errno becomes a Status.
//
// Usage:
//   int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
//   if (fd < 0) return ErrnoStatus("open", path);   // IoError "open /x/y: No such file or
//   directory"
//
// Guarantees: always returns a non-OK Status of kind kIoError whose message is
// "<operation> <path>: <strerror(err)>" ("<operation>: <strerror(err)>" when path is empty).
// `err` defaults to errno as read at the call site. Thread-safe (uses strerror_r).
#ifndef SHAPEX_CORE_ERRNO_STATUS_H_
#define SHAPEX_CORE_ERRNO_STATUS_H_

#include <cerrno>
#include <string_view>

#include "shapex/core/status.h"

namespace shapex {

Status ErrnoStatus(std::string_view operation, std::string_view path = {}, int err = errno);

}  // namespace shapex

#endif  // SHAPEX_CORE_ERRNO_STATUS_H_
