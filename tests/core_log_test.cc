#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "shapex/core/log.h"

namespace shapex {
namespace {

using ::testing::IsEmpty;
using ::testing::MatchesRegex;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = GetLogLevel(); }
  void TearDown() override { SetLogLevel(saved_); }

 private:
  LogLevel saved_ = LogLevel::kWarn;
};

TEST_F(LogTest, WritesPrefixedLine) {
  SetLogLevel(LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  SHAPEX_LOG(WARN, "x={} y={}", 3, "four");
  std::string out = ::testing::internal::GetCapturedStderr();
  // The full line, including the trailing newline; the time is local HH:MM:SS.mmm.
  EXPECT_THAT(out, MatchesRegex("\\[W [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
                                "core_log_test\\.cc:[0-9]+\\] x=3 y=four\n"));
}

TEST_F(LogTest, DisabledLevelSkipsFormatting) {
  SetLogLevel(LogLevel::kError);
  int evaluated = 0;
  auto count = [&evaluated] { return ++evaluated; };
  ::testing::internal::CaptureStderr();
  SHAPEX_LOG(DEBUG, "{}", count());
  SHAPEX_LOG(INFO, "{}", count());
  SHAPEX_LOG(WARN, "{}", count());
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), IsEmpty());
  EXPECT_EQ(evaluated, 0);
  EXPECT_FALSE(IsLogEnabled(LogLevel::kWarn));
  EXPECT_TRUE(IsLogEnabled(LogLevel::kError));
}

}  // namespace
}  // namespace shapex
