#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "shapex/core/result.h"
#include "testing/status_matchers.h"

namespace shapex {
namespace {

using ::shapex_testing::IsError;
using ::shapex_testing::IsOk;
using ::testing::Not;

Result<int> ParseDigit(char c) {
  if (c < '0' || c > '9') return InvalidArgument(std::string("not a digit: ") + c);
  return c - '0';
}

Status CheckPositive(int n) { return n > 0 ? Status::Ok() : ArgumentError("not positive"); }

Result<int> SumDigits(const std::string& s) {
  int sum = 0;
  for (char c : s) {
    ASSIGN_OR_RETURN(int digit, ParseDigit(c));
    sum += digit;
  }
  RETURN_IF_ERROR(CheckPositive(sum));
  return sum;
}

Status ParseTwice(char a, char b, int* out) {
  ASSIGN_OR_RETURN(auto first, ParseDigit(a));  // Two expansions on adjacent lines: unique temps.
  ASSIGN_OR_RETURN(*out, ParseDigit(b));
  *out += first;
  return Status::Ok();
}

Status ForwardResultError(char c) {
  RETURN_IF_ERROR(ParseDigit(c));  // RETURN_IF_ERROR also accepts a Result.
  return Status::Ok();
}

TEST(ResultTest, HoldsValue) {
  Result<int> result = 7;
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(static_cast<bool>(result));
  EXPECT_EQ(result.value(), 7);
  EXPECT_EQ(*result, 7);
  EXPECT_TRUE(result.error().ok());
  EXPECT_EQ(result.value_or(3), 7);
  EXPECT_OK(result);
}

TEST(ResultTest, HoldsError) {
  Result<int> result = RuntimeError("boom");
  EXPECT_FALSE(result.has_value());
  EXPECT_FALSE(static_cast<bool>(result));
  EXPECT_EQ(result.error().ToString(), "RuntimeError: boom");
  EXPECT_EQ(result.value_or(3), 3);
  EXPECT_THAT(result, IsError(ErrorKind::kRuntimeError));
  EXPECT_THAT(result, Not(IsOk()));
}

TEST(ResultTest, ArrowAndMoveOnlyValues) {
  Result<std::string> text = std::string("hello");
  EXPECT_EQ(text->size(), 5u);

  Result<std::unique_ptr<int>> owned = std::make_unique<int>(42);
  ASSERT_OK(owned);
  std::unique_ptr<int> taken = std::move(owned).value();
  EXPECT_EQ(*taken, 42);
}

TEST(ResultTest, ConvertingAndBraceConstruction) {
  Result<std::string> from_literal = "abc";
  EXPECT_EQ(*from_literal, "abc");
  Result<std::vector<int>> from_braces = {{1, 2, 3}};
  EXPECT_EQ(from_braces->size(), 3u);
  static_assert(!std::is_convertible_v<Result<int>, Result<bool>>);
}

TEST(ResultTest, ValueOnErrorAborts) {
  Result<int> result = IoError("gone");
  EXPECT_DEATH((void)result.value(), "IoError: gone");
}

TEST(ResultMacrosTest, AssignOrReturnPropagatesValueAndError) {
  EXPECT_EQ(SumDigits("123").value(), 6);
  Result<int> bad = SumDigits("1x3");
  EXPECT_THAT(bad, IsError(ErrorKind::kInvalidArgument));
  EXPECT_EQ(bad.error().message(), "not a digit: x");
}

TEST(ResultMacrosTest, ReturnIfErrorPropagatesStatus) {
  EXPECT_THAT(SumDigits("000"), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(SumDigits(""), IsError(ErrorKind::kArgumentError));
}

TEST(ResultMacrosTest, ReturnIfErrorAcceptsResult) {
  EXPECT_OK(ForwardResultError('4'));
  EXPECT_THAT(ForwardResultError('z'), IsError(ErrorKind::kInvalidArgument));
}

TEST(ResultMacrosTest, AssignToExistingLvalue) {
  int out = 0;
  EXPECT_OK(ParseTwice('2', '5', &out));
  EXPECT_EQ(out, 7);
  EXPECT_THAT(ParseTwice('2', '?', &out), IsError(ErrorKind::kInvalidArgument));
}

TEST(ResultMacrosTest, ReturnIfErrorEvaluatesOnceAndKeepsLvalues) {
  int calls = 0;
  auto counted = [&calls] {
    ++calls;
    return Status::Ok();
  };
  Status member = CompileError("kept");
  auto run = [&]() -> Status {
    RETURN_IF_ERROR(counted());
    RETURN_IF_ERROR(member);  // An lvalue must be copied, not moved from.
    return Status::Ok();
  };
  EXPECT_THAT(run(), IsError(ErrorKind::kCompileError));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(member.message(), "kept");
}

}  // namespace
}  // namespace shapex
