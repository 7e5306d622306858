#include "shapex/core/errno_status.h"

#include <string.h>

#include <string>

namespace shapex {
namespace {

// strerror_r has a GNU flavour (returns the message) and an XSI one (fills the buffer and returns
// an int); overloads pick whichever the libc declares.
[[maybe_unused]] const char* StrerrorResult(const char* gnu_result, const char*) {
  return gnu_result;
}
[[maybe_unused]] const char* StrerrorResult(int xsi_result, const char* buffer) {
  return xsi_result == 0 ? buffer : "Unknown error";
}

std::string ErrnoMessage(int err) {
  char buffer[256] = {};
  return StrerrorResult(strerror_r(err, buffer, sizeof(buffer)), buffer);
}

}  // namespace

Status ErrnoStatus(std::string_view operation, std::string_view path, int err) {
  std::string message(operation);
  if (!path.empty()) message.append(" ").append(path);
  message.append(": ").append(ErrnoMessage(err));
  return IoError(std::move(message));
}

}  // namespace shapex
