// Status: the outcome of an operation that can fail, as an error kind plus a human-readable
// message. shapex never lets exceptions cross module boundaries; functions return a Status (or a
// Result<T>, see result.h) instead.
//
// Usage:
//   Status Open(std::string_view path) {
//     if (path.empty()) return InvalidArgument("empty path");
//     return Status::Ok();
//   }
//   Status s = Open(p);
//   if (!s.ok()) return s.WithContext("loading module");
//
// Guarantees: an OK status is a single null pointer, so creating, copying and returning it never
// allocates. Error state lives on the heap and is deep-copied on copy. Moving leaves the source
// OK. A Status is a value type: distinct objects may be used from different threads, but one
// object must not be mutated concurrently.
#ifndef SHAPEX_CORE_STATUS_H_
#define SHAPEX_CORE_STATUS_H_

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

namespace shapex {

enum class ErrorKind : uint8_t {
  kOk = 0,
  kCompileError,
  kRuntimeError,
  kArgumentError,
  kFunctionNotFound,
  kMissingModuleFunction,
  kResourceExhausted,
  kTimeout,
  kExecutorCrashed,
  kCancelled,
  kSandboxError,
  kProtocolError,
  kIoError,
  kInvalidArgument,
  kInternal,
};

// Returns the kind's name without the `k` prefix, e.g. "RuntimeError". Never empty.
std::string_view ErrorKindName(ErrorKind kind);

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() noexcept = default;
  // An error status. `kind == ErrorKind::kOk` yields an OK status and drops the message.
  Status(ErrorKind kind, std::string message);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&& other) noexcept = default;
  Status& operator=(Status&& other) noexcept = default;
  ~Status() = default;

  static Status Ok() noexcept { return Status(); }

  bool ok() const noexcept { return state_ == nullptr; }
  ErrorKind kind() const noexcept { return state_ ? state_->kind : ErrorKind::kOk; }
  // Empty for an OK status.
  const std::string& message() const noexcept;

  // "OK", or "<KindName>: <message>" (just "<KindName>" when the message is empty).
  std::string ToString() const;

  // Prepends "prefix: " to the message of an error status; no effect on an OK status.
  Status& WithContext(std::string_view prefix) &;
  Status&& WithContext(std::string_view prefix) &&;

  friend bool operator==(const Status& a, const Status& b) noexcept;

 private:
  struct State {
    ErrorKind kind;
    std::string message;
  };
  std::unique_ptr<State> state_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

// One constructor per error kind.
Status CompileError(std::string message);
Status RuntimeError(std::string message);
Status ArgumentError(std::string message);
Status FunctionNotFoundError(std::string message);
Status MissingModuleFunctionError(std::string message);
Status ResourceExhausted(std::string message);
Status TimeoutError(std::string message);
Status ExecutorCrashedError(std::string message);
Status CancelledError(std::string message);
Status SandboxError(std::string message);
Status ProtocolError(std::string message);
Status IoError(std::string message);
Status InvalidArgument(std::string message);
Status InternalError(std::string message);

}  // namespace shapex

#endif  // SHAPEX_CORE_STATUS_H_
