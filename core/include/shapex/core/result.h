// Result<T>: either a value of type T or a non-OK Status. Its API mirrors std::expected<T, Status>
// (has_value, value, error, operator*, operator->, value_or) so a later switch is mechanical.
//
// Usage:
//   Result<int> ParsePort(std::string_view s) {
//     if (s.empty()) return InvalidArgument("empty port");
//     return 8080;
//   }
//   Status Run() {
//     ASSIGN_OR_RETURN(int port, ParsePort(arg));   // returns the error on failure
//     RETURN_IF_ERROR(Listen(port));                // works with Status or Result
//     return Status::Ok();
//   }
//
// Guarantees: a Result never holds an OK Status (constructing one from Status::Ok() is a bug: it
// asserts in debug builds and becomes an Internal error otherwise). value() on an error aborts the
// process with the error printed; operator* and operator-> are unchecked, like std::expected.
// error() on a Result holding a value returns an OK Status. Thread-safety is that of T.
#ifndef SHAPEX_CORE_RESULT_H_
#define SHAPEX_CORE_RESULT_H_

#include <cassert>
#include <concepts>
#include <type_traits>
#include <utility>
#include <variant>

#include "shapex/core/status.h"

namespace shapex {

template <class T>
class Result;

namespace internal {
// Prints `status` to stderr and aborts. Called when value() is used on an error Result.
[[noreturn]] void DieOnBadResultAccess(const Status& status);

template <class T>
inline constexpr bool kIsResult = false;
template <class T>
inline constexpr bool kIsResult<Result<T>> = true;

// U can initialise the value of a Result<T> (a Status or another Result never can).
template <class U, class T>
concept ValueSourceFor = std::constructible_from<T, U> && !kIsResult<std::remove_cvref_t<U>> &&
                         !std::is_same_v<std::remove_cvref_t<U>, Status>;
}  // namespace internal

template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>, "use Status directly");

 public:
  using value_type = T;

  // From anything T can be constructed from; implicit when U converts implicitly to T.
  template <internal::ValueSourceFor<T> U = T>
  explicit(!std::is_convertible_v<U, T>) Result(U&& value)
      : data_(std::in_place_index<0>, std::forward<U>(value)) {}

  // Implicit from an error Status.
  Result(Status status) : data_(std::in_place_index<1>, std::move(status)) {
    assert(!std::get<1>(data_).ok() && "Result constructed from an OK Status");
    if (std::get<1>(data_).ok()) std::get<1>(data_) = InternalError("Result built from OK Status");
  }

  bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    CheckHasValue();
    return *std::get_if<0>(&data_);
  }
  const T& value() const& {
    CheckHasValue();
    return *std::get_if<0>(&data_);
  }
  T&& value() && {
    CheckHasValue();
    return std::move(*std::get_if<0>(&data_));
  }

  const Status& error() const noexcept {
    static const Status kOk;
    const Status* status = std::get_if<1>(&data_);
    return status ? *status : kOk;
  }

  T& operator*() & noexcept { return *Get(); }
  const T& operator*() const& noexcept { return *Get(); }
  T&& operator*() && noexcept { return std::move(*Get()); }
  T* operator->() noexcept { return Get(); }
  const T* operator->() const noexcept { return Get(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? *Get() : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
  T value_or(U&& fallback) && {
    return has_value() ? std::move(*Get()) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void CheckHasValue() const {
    if (!has_value()) internal::DieOnBadResultAccess(error());
  }
  T* Get() noexcept {
    assert(has_value());
    return std::get_if<0>(&data_);
  }
  const T* Get() const noexcept {
    assert(has_value());
    return std::get_if<0>(&data_);
  }

  std::variant<T, Status> data_;
};

namespace internal {
// Uniform access to the Status of a Status or Result expression, for the macros below.
inline const Status& StatusOf(const Status& status) { return status; }
template <class T>
const Status& StatusOf(const Result<T>& result) {
  return result.error();
}
inline Status TakeStatus(Status&& status) { return std::move(status); }
inline Status TakeStatus(const Status& status) { return status; }
template <class T>
Status TakeStatus(const Result<T>& result) {
  return result.error();
}
}  // namespace internal

}  // namespace shapex

#define SHAPEX_INTERNAL_CONCAT_(a, b) a##b
#define SHAPEX_INTERNAL_CONCAT(a, b) SHAPEX_INTERNAL_CONCAT_(a, b)

// Evaluates `expr` (a Status or a Result<T>) once; if it is an error, returns its Status from the
// enclosing function, which must return Status or some Result<U>.
#define RETURN_IF_ERROR(expr)                                                        \
  do {                                                                               \
    auto&& shapex_return_if_error_ = (expr);                                         \
    if (!::shapex::internal::StatusOf(shapex_return_if_error_).ok()) {               \
      return ::shapex::internal::TakeStatus(                                         \
          std::forward<decltype(shapex_return_if_error_)>(shapex_return_if_error_)); \
    }                                                                                \
  } while (false)

// Evaluates `rexpr` (a Result<T>); on error returns its Status from the enclosing function,
// otherwise moves the value into `lhs`, which may be a declaration (`auto x`, `std::string y`) or
// an existing lvalue. Expands to several statements: do not use as the body of an unbraced `if`.
// A `lhs` with a top-level comma (`std::pair<int, int> p`) does not work: use `auto`.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  SHAPEX_INTERNAL_ASSIGN_OR_RETURN(SHAPEX_INTERNAL_CONCAT(shapex_result_, __COUNTER__), lhs, rexpr)

#define SHAPEX_INTERNAL_ASSIGN_OR_RETURN(tmp, lhs, rexpr)           \
  auto tmp = (rexpr);                                               \
  if (!tmp.has_value()) return ::shapex::internal::TakeStatus(tmp); \
  lhs = std::move(tmp).value()

#endif  // SHAPEX_CORE_RESULT_H_
