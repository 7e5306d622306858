#include "shapex/core/status.h"

#include <ostream>
#include <utility>

namespace shapex {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk:
      return "Ok";
    case ErrorKind::kCompileError:
      return "CompileError";
    case ErrorKind::kRuntimeError:
      return "RuntimeError";
    case ErrorKind::kArgumentError:
      return "ArgumentError";
    case ErrorKind::kFunctionNotFound:
      return "FunctionNotFound";
    case ErrorKind::kMissingModuleFunction:
      return "MissingModuleFunction";
    case ErrorKind::kResourceExhausted:
      return "ResourceExhausted";
    case ErrorKind::kTimeout:
      return "Timeout";
    case ErrorKind::kExecutorCrashed:
      return "ExecutorCrashed";
    case ErrorKind::kCancelled:
      return "Cancelled";
    case ErrorKind::kSandboxError:
      return "SandboxError";
    case ErrorKind::kProtocolError:
      return "ProtocolError";
    case ErrorKind::kIoError:
      return "IoError";
    case ErrorKind::kInvalidArgument:
      return "InvalidArgument";
    case ErrorKind::kInternal:
      return "Internal";
  }
  // Reachable only through a cast from an out-of-range integer (e.g. a corrupt wire value).
  return "Unknown";
}

Status::Status(ErrorKind kind, std::string message) {
  if (kind != ErrorKind::kOk) state_.reset(new State{kind, std::move(message)});
}

Status::Status(const Status& other)
    : state_(other.state_ ? std::make_unique<State>(*other.state_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) state_ = other.state_ ? std::make_unique<State>(*other.state_) : nullptr;
  return *this;
}

const std::string& Status::message() const noexcept {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(ErrorKindName(state_->kind));
  if (!state_->message.empty()) {
    out += ": ";
    out += state_->message;
  }
  return out;
}

Status& Status::WithContext(std::string_view prefix) & {
  if (state_) {
    std::string message;
    message.reserve(prefix.size() + 2 + state_->message.size());
    message.append(prefix).append(": ").append(state_->message);
    state_->message = std::move(message);
  }
  return *this;
}

Status&& Status::WithContext(std::string_view prefix) && { return std::move(WithContext(prefix)); }

bool operator==(const Status& a, const Status& b) noexcept {
  return a.kind() == b.kind() && a.message() == b.message();
}

std::ostream& operator<<(std::ostream& os, const Status& status) { return os << status.ToString(); }

Status CompileError(std::string m) { return {ErrorKind::kCompileError, std::move(m)}; }
Status RuntimeError(std::string m) { return {ErrorKind::kRuntimeError, std::move(m)}; }
Status ArgumentError(std::string m) { return {ErrorKind::kArgumentError, std::move(m)}; }
Status FunctionNotFoundError(std::string m) { return {ErrorKind::kFunctionNotFound, std::move(m)}; }
Status MissingModuleFunctionError(std::string m) {
  return {ErrorKind::kMissingModuleFunction, std::move(m)};
}
Status ResourceExhausted(std::string m) { return {ErrorKind::kResourceExhausted, std::move(m)}; }
Status TimeoutError(std::string m) { return {ErrorKind::kTimeout, std::move(m)}; }
Status ExecutorCrashedError(std::string m) { return {ErrorKind::kExecutorCrashed, std::move(m)}; }
Status CancelledError(std::string m) { return {ErrorKind::kCancelled, std::move(m)}; }
Status SandboxError(std::string m) { return {ErrorKind::kSandboxError, std::move(m)}; }
Status ProtocolError(std::string m) { return {ErrorKind::kProtocolError, std::move(m)}; }
Status IoError(std::string m) { return {ErrorKind::kIoError, std::move(m)}; }
Status InvalidArgument(std::string m) { return {ErrorKind::kInvalidArgument, std::move(m)}; }
Status InternalError(std::string m) { return {ErrorKind::kInternal, std::move(m)}; }

}  // namespace shapex
