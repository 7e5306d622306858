// gMock matchers and assertion macros for shapex::Status and shapex::Result<T>.
//
// Usage:
//   EXPECT_OK(DoThing());                                  // Status or Result<T>
//   ASSERT_OK(result);
//   using ::shapex_testing::IsError;
//   EXPECT_THAT(Parse("x"), IsError(ErrorKind::kCompileError));
//   EXPECT_THAT(status, Not(IsOk()));
//
// On failure gtest prints the full status ("RuntimeError: message") or the held value.
#ifndef SHAPEX_TESTS_TESTING_STATUS_MATCHERS_H_
#define SHAPEX_TESTS_TESTING_STATUS_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "shapex/core/result.h"
#include "shapex/core/status.h"

namespace shapex {

// gtest value printers, found by ADL.
inline void PrintTo(const Status& status, std::ostream* os) { *os << status.ToString(); }
template <class T>
void PrintTo(const Result<T>& result, std::ostream* os) {
  if (result.has_value()) {
    *os << "value " << ::testing::PrintToString(*result);
  } else {
    *os << result.error().ToString();
  }
}

}  // namespace shapex

// A top-level namespace (as absl_testing does) so that an unqualified `testing::` inside
// namespace shapex keeps meaning gtest's.
namespace shapex_testing {

// The value printers above already show the status, so the matchers add no explanation.
MATCHER(IsOk, negation ? "is not OK" : "is OK") { return ::shapex::internal::StatusOf(arg).ok(); }

MATCHER_P(IsError, kind,
          std::string(negation ? "is not an error of kind " : "is an error of kind ") +
              std::string(::shapex::ErrorKindName(kind))) {
  const ::shapex::Status& status = ::shapex::internal::StatusOf(arg);
  return !status.ok() && status.kind() == kind;
}

}  // namespace shapex_testing

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::shapex_testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::shapex_testing::IsOk())

// Evaluates a Result; on error fails the test (and returns), else moves the value into `lhs`,
// which may be a declaration: ASSERT_OK_AND_ASSIGN(auto conn, Connection::Connect(...)).
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  SHAPEX_ASSERT_OK_AND_ASSIGN_(SHAPEX_INTERNAL_CONCAT(assert_result_, __COUNTER__), lhs, rexpr)
#define SHAPEX_ASSERT_OK_AND_ASSIGN_(tmp, lhs, rexpr)     \
  auto tmp = (rexpr);                                     \
  ASSERT_TRUE(tmp.has_value()) << tmp.error().ToString(); \
  lhs = std::move(*tmp)

#endif  // SHAPEX_TESTS_TESTING_STATUS_MATCHERS_H_
