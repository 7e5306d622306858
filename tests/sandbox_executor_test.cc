// Tests for the executor loop (sandbox/executor.h) driven by the client's ExecutorSession
// (client/executor_session.h), with the executor in a forked child process (not jailed here;
// the jail has its own tests, and sandbox_jailed_executor_test runs both together).
#include "shapex/sandbox/executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/executor_session.h"
#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/shared_memory.h"
#include "shapex/ipc/shared_vec.h"
#include "testing/open_fds.h"
#include "testing/status_matchers.h"
#include "testing/wire_test_util.h"

namespace shapex::sandbox {
namespace {

using ipc::WireValue;
using ipc::testing::WireTestProgram;
using ::shapex_testing::CountOpenFds;
using ::shapex_testing::IsError;
using ::testing::HasSubstr;

constexpr char kProgram[] = R"(
var counter = 0
function add(a: int, b: int) -> int { a + b }
function bump() {
  // Top-level statements do not run on the executor: the caller sends the globals it has set.
  counter = counter + 1
  counter
}
function fail(x) { helper(x) }
function helper(x) { x / 0 }
function spin() { while true {} }
function total(v) { v.sum() }
function slow(n) { var s = 0; for i in 0..n { s = s + i }; s }
function filled(n, k) { Vec::f64(n) + k }
)";

class ExecutorTest : public ::testing::Test {
 protected:
  ExecutorTest() : program_(kProgram) {}

  void SetUp() override {
    fds_before_ = CountOpenFds();
    auto sockets = ipc::UnixSocket::Pair();
    ASSERT_TRUE(sockets.has_value());
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      sockets->first.Close();
      ExecutorOptions options;
      options.limits.fuel = 50'000'000;
      Executor executor(options);
      Status s = executor.ServeConnection(std::move(sockets->second));
      _exit(s.ok() ? 0 : 1);
    }
    sockets->second.Close();
    auto session = ExecutorSession::Connect(std::move(sockets->first));
    ASSERT_TRUE(session.has_value()) << session.error();
    session_.emplace(std::move(*session));
  }

  void TearDown() override {
    if (session_) session_->Close();
    session_.reset();
    int status = 0;
    ASSERT_EQ(waitpid(child_, &status, 0), child_);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "executor status " << status;
    EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak";
  }

  Result<WireValue> Call(const std::string& name, std::vector<WireValue> args = {}) {
    return session_->Call(program_.program(), program_.blobs(), name, std::move(args));
  }

  WireTestProgram program_;
  std::optional<ExecutorSession> session_;
  pid_t child_ = -1;
  size_t fds_before_ = 0;
};

TEST_F(ExecutorTest, AddsAndSendsCodeOnlyOnce) {
  ASSERT_OK_AND_ASSIGN(WireValue v, Call("add", {WireValue::Int(10), WireValue::Int(32)}));
  EXPECT_EQ(v, WireValue::Int(42));
  uint64_t code_after_first = session_->stats().code_bytes_sent;
  EXPECT_GT(code_after_first, 0u);
  EXPECT_EQ(session_->stats().negotiations, 1u);
  ASSERT_OK_AND_ASSIGN(v, Call("add", {WireValue::Int(1), WireValue::Int(2)}));
  EXPECT_EQ(v, WireValue::Int(3));
  EXPECT_EQ(session_->stats().code_bytes_sent, code_after_first) << "no code the second time";
  EXPECT_EQ(session_->stats().negotiations, 1u) << "no negotiation for known code";
}

TEST_F(ExecutorTest, NothingLeaksBetweenCalls) {
  // Each call runs in a fresh VM: the global is the 0 the call sends every time.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto request,
                         ipc::BuildCallRequest(program_.program(), program_.blobs(), "bump", {}));
    request.globals.emplace_back("counter", WireValue::Int(0));
    ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, session_->CallRaw(std::move(request)));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r.value(), WireValue::Int(1)) << "call " << i;
  }
}

TEST_F(ExecutorTest, GlobalNotSentIsUnset) {
  // A global the call does not send had not been initialised in the caller: reading it fails
  // as it would have there.
  ASSERT_OK_AND_ASSIGN(auto request,
                       ipc::BuildCallRequest(program_.program(), program_.blobs(), "bump", {}));
  ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, session_->CallRaw(std::move(request)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kRuntimeError);
  EXPECT_THAT(r.error().message, HasSubstr("'counter' is read before its 'let' has run"));
}

TEST_F(ExecutorTest, ErrorsKeepTheirKindAndTrace) {
  EXPECT_THAT(Call("nope"), IsError(ErrorKind::kFunctionNotFound));
  ASSERT_OK_AND_ASSIGN(auto request,
                       ipc::BuildCallRequest(program_.program(), program_.blobs(), "fail",
                                             {WireValue::Int(1)}));
  ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, session_->CallRaw(std::move(request)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kRuntimeError);
  EXPECT_THAT(r.error().message, HasSubstr("division by zero"));
  ASSERT_GE(r.error().trace.size(), 2u);
  EXPECT_EQ(r.error().trace[0].function, "helper");
  // Limits apply per call: the fuel limit stops a runaway loop, and the executor carries on.
  EXPECT_THAT(Call("spin"), IsError(ErrorKind::kResourceExhausted));
  EXPECT_THAT(Call("add", {WireValue::Int(1)}), IsError(ErrorKind::kArgumentError));
  ASSERT_OK_AND_ASSIGN(WireValue v, Call("add", {WireValue::Int(2), WireValue::Int(2)}));
  EXPECT_EQ(v, WireValue::Int(4));
}

TEST_F(ExecutorTest, PipelinedCallsAreMatchedById) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(auto request,
                         ipc::BuildCallRequest(program_.program(), program_.blobs(), "slow",
                                               {WireValue::Int(1000 * i)}));
    ASSERT_OK_AND_ASSIGN(uint64_t id, session_->Start(std::move(request)));
    ids.push_back(id);
  }
  // Collect in reverse: earlier answers are kept until asked for.
  for (int i = 19; i >= 0; --i) {
    ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, session_->Wait(ids[i]));
    ASSERT_TRUE(r.ok()) << r.status();
    int64_t n = 1000 * i;
    EXPECT_EQ(r.value(), WireValue::Int(n * (n - 1) / 2));
  }
  EXPECT_THAT(session_->Wait(ids[0]), IsError(ErrorKind::kInvalidArgument));
}

TEST_F(ExecutorTest, CancelledCallStillGetsItsAnswer) {
  ASSERT_OK_AND_ASSIGN(auto request, ipc::BuildCallRequest(program_.program(), program_.blobs(),
                                                           "add", {WireValue::Int(5),
                                                                   WireValue::Int(6)}));
  ASSERT_OK_AND_ASSIGN(uint64_t id, session_->Start(std::move(request)));
  ASSERT_OK(session_->Cancel(id));
  ASSERT_OK_AND_ASSIGN(ipc::RemoteCallResponse r, session_->Wait(id));
  EXPECT_TRUE(r.ok());
}

TEST_F(ExecutorTest, LargeArgumentsTravelInReusedSegments) {
  // 2 MiB arguments built in ordinary memory: copied into the session's pooled segments, which
  // are reused call after call; every call must see its own values.
  for (int round = 1; round <= 3; ++round) {
    std::vector<double> values(1 << 18, static_cast<double>(round));
    std::vector<uint8_t> bytes(values.size() * sizeof(double));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    ASSERT_OK_AND_ASSIGN(WireValue sum,
                         Call("total", {WireValue::TypedArray(engine::ElemKind::kF64, bytes)}));
    EXPECT_EQ(sum, WireValue::Number(round * static_cast<double>(values.size()))) << round;
  }
}

TEST_F(ExecutorTest, SharedVecArgumentIsReadInPlace) {
  ASSERT_OK_AND_ASSIGN(auto v, ipc::SharedVec<double>::Create(1 << 18));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.5;
  ASSERT_OK_AND_ASSIGN(WireValue sum, Call("total", {v.ToWire()}));
  EXPECT_EQ(sum, WireValue::Number(0.5 * static_cast<double>(v.size())));
}

// Large results go back sealed; from the second one of a size on, they are written into the
// spare pages the executor prepared after the previous answer. The executor runs on a thread
// here so its statistics can be read.
TEST(ExecutorResultTest, LargeResultsAreSealedAndReuseSparePages) {
  size_t fds_before = CountOpenFds();
  {
    WireTestProgram program(kProgram);
    ASSERT_OK_AND_ASSIGN(auto sockets, ipc::UnixSocket::Pair());
    Executor executor(ExecutorOptions{});
    Status served;
    std::thread server([&, socket = std::move(sockets.second)]() mutable {
      served = executor.ServeConnection(std::move(socket));
    });
    {
      ASSERT_OK_AND_ASSIGN(ExecutorSession session,
                           ExecutorSession::Connect(std::move(sockets.first)));
      const int64_t n = 1 << 18;  // 2 MiB of f64
      for (int round = 1; round <= 3; ++round) {
        ASSERT_OK_AND_ASSIGN(WireValue result,
                             session.Call(program.program(), program.blobs(), "filled",
                                          {WireValue::Int(n), WireValue::Number(round)}));
        const ipc::WireBuffer& buffer = result.buffer();
        ASSERT_NE(buffer.segment, nullptr) << "a 2 MiB result travels in a segment";
        EXPECT_EQ(fcntl(buffer.segment->fd, F_GET_SEALS), ipc::ImmutableSeals());
        std::span<const uint8_t> bytes = buffer.data();
        ASSERT_EQ(bytes.size(), static_cast<size_t>(n) * sizeof(double));
        for (size_t i = 0; i < bytes.size(); i += 4096) {
          double d;
          std::memcpy(&d, bytes.data() + i, sizeof d);
          ASSERT_EQ(d, round) << "round " << round << " byte " << i;
        }
      }
      session.Close();
    }
    server.join();
    EXPECT_OK(served);
    EXPECT_EQ(executor.stats().result_segments, 3u);
    EXPECT_EQ(executor.segment_stats().spare_misses, 1u);
    EXPECT_EQ(executor.segment_stats().spare_hits, 2u);
  }
  EXPECT_EQ(CountOpenFds(), fds_before) << "descriptor leak";
}

}  // namespace
}  // namespace shapex::sandbox
