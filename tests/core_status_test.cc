#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <sstream>
#include <utility>

#include "shapex/core/errno_status.h"
#include "shapex/core/status.h"
#include "testing/status_matchers.h"

namespace shapex {
namespace {

using ::shapex_testing::IsError;
using ::shapex_testing::IsOk;
using ::testing::Not;

TEST(StatusTest, DefaultIsOkAndCostsOnePointer) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.kind(), ErrorKind::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.ToString(), "OK");
  EXPECT_EQ(sizeof(Status), sizeof(void*));
  EXPECT_OK(Status::Ok());
}

TEST(StatusTest, ErrorCarriesKindAndMessage) {
  Status status = RuntimeError("division by zero");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.kind(), ErrorKind::kRuntimeError);
  EXPECT_EQ(status.message(), "division by zero");
  EXPECT_EQ(status.ToString(), "RuntimeError: division by zero");
  EXPECT_THAT(status, IsError(ErrorKind::kRuntimeError));
  EXPECT_THAT(status, Not(IsError(ErrorKind::kCompileError)));
  EXPECT_THAT(status, Not(IsOk()));
}

TEST(StatusTest, OkKindWithMessageIsOk) {
  Status status(ErrorKind::kOk, "ignored");
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.message(), "");
}

TEST(StatusTest, CopyIsDeepAndMoveLeavesSourceOk) {
  Status original = IoError("disk");
  Status copy = original;
  copy.WithContext("write");
  EXPECT_EQ(original.message(), "disk");
  EXPECT_EQ(copy.message(), "write: disk");

  Status moved = std::move(original);
  EXPECT_EQ(moved.message(), "disk");
  EXPECT_TRUE(original.ok());  // NOLINT(bugprone-use-after-move): documented guarantee.

  copy = moved;
  EXPECT_EQ(copy, moved);
  copy = Status::Ok();
  EXPECT_TRUE(copy.ok());
}

TEST(StatusTest, WithContextPrependsAndChains) {
  Status status = CompileError("unexpected ')'");
  status.WithContext("line 3").WithContext("main.shape");
  EXPECT_EQ(status.message(), "main.shape: line 3: unexpected ')'");
  EXPECT_EQ(status.kind(), ErrorKind::kCompileError);

  Status ok;
  ok.WithContext("ignored");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.message(), "");

  Status temporary = ProtocolError("bad frame").WithContext("reading");
  EXPECT_EQ(temporary.ToString(), "ProtocolError: reading: bad frame");
}

TEST(StatusTest, HelpersMapToKinds) {
  EXPECT_EQ(CompileError("").kind(), ErrorKind::kCompileError);
  EXPECT_EQ(ArgumentError("").kind(), ErrorKind::kArgumentError);
  EXPECT_EQ(FunctionNotFoundError("").kind(), ErrorKind::kFunctionNotFound);
  EXPECT_EQ(MissingModuleFunctionError("").kind(), ErrorKind::kMissingModuleFunction);
  EXPECT_EQ(ResourceExhausted("").kind(), ErrorKind::kResourceExhausted);
  EXPECT_EQ(TimeoutError("").kind(), ErrorKind::kTimeout);
  EXPECT_EQ(ExecutorCrashedError("").kind(), ErrorKind::kExecutorCrashed);
  EXPECT_EQ(CancelledError("").kind(), ErrorKind::kCancelled);
  EXPECT_EQ(SandboxError("").kind(), ErrorKind::kSandboxError);
  EXPECT_EQ(ProtocolError("").kind(), ErrorKind::kProtocolError);
  EXPECT_EQ(IoError("").kind(), ErrorKind::kIoError);
  EXPECT_EQ(InvalidArgument("").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(InternalError("").kind(), ErrorKind::kInternal);
  EXPECT_EQ(InternalError("").ToString(), "Internal");
}

TEST(StatusTest, ErrorKindNames) {
  const std::pair<ErrorKind, const char*> kNames[] = {
      {ErrorKind::kOk, "Ok"},
      {ErrorKind::kCompileError, "CompileError"},
      {ErrorKind::kRuntimeError, "RuntimeError"},
      {ErrorKind::kArgumentError, "ArgumentError"},
      {ErrorKind::kFunctionNotFound, "FunctionNotFound"},
      {ErrorKind::kMissingModuleFunction, "MissingModuleFunction"},
      {ErrorKind::kResourceExhausted, "ResourceExhausted"},
      {ErrorKind::kTimeout, "Timeout"},
      {ErrorKind::kExecutorCrashed, "ExecutorCrashed"},
      {ErrorKind::kCancelled, "Cancelled"},
      {ErrorKind::kSandboxError, "SandboxError"},
      {ErrorKind::kProtocolError, "ProtocolError"},
      {ErrorKind::kIoError, "IoError"},
      {ErrorKind::kInvalidArgument, "InvalidArgument"},
      {ErrorKind::kInternal, "Internal"},
  };
  for (const auto& [kind, name] : kNames) EXPECT_EQ(ErrorKindName(kind), name);
  EXPECT_EQ(ErrorKindName(static_cast<ErrorKind>(200)), "Unknown");
}

TEST(StatusTest, StreamsAsToString) {
  std::ostringstream out;
  out << TimeoutError("5s");
  EXPECT_EQ(out.str(), "Timeout: 5s");
}

TEST(ErrnoStatusTest, IncludesOperationPathAndStrerror) {
  Status status = ErrnoStatus("open", "/no/such", ENOENT);
  EXPECT_THAT(status, IsError(ErrorKind::kIoError));
  EXPECT_EQ(status.message(), "open /no/such: No such file or directory");
  EXPECT_EQ(ErrnoStatus("pipe2", {}, EMFILE).message(), "pipe2: Too many open files");
}

TEST(ErrnoStatusTest, DefaultsToErrno) {
  errno = EACCES;
  EXPECT_EQ(ErrnoStatus("mkdir", "/x").message(), "mkdir /x: Permission denied");
}

}  // namespace
}  // namespace shapex
