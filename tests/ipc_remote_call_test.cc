// Tests for remote_call.h: building requests, negotiation, and ExecuteRemoteCall end to end
// (every request goes through EncodeMessage/DecodeMessage first, as on a real connection),
// including each typed error a hostile or failing request produces.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>
#include <vector>

#include "shapex/engine/blob_cache.h"
#include "shapex/ipc/remote_call.h"
#include "testing/status_matchers.h"
#include "testing/wire_test_util.h"

namespace shapex::ipc {
namespace {

using ::shapex::ipc::testing::VmSide;
using ::shapex::ipc::testing::WireTestProgram;
using ::shapex_testing::IsError;
using ::testing::HasSubstr;

constexpr char kProgram[] = R"(
type Point { x: number, y: number }
impl Point { function len(self) { math.sqrt(self.x * self.x + self.y * self.y) } }
function add(a: int, b: int) -> int { a + b }
function scale(p: Point, k: number) -> Point { Point { x: p.x * k, y: p.y * k } }
function norm(p: Point) -> number { p.len() }
function make_adder(k) { |x| x + k }
function boom(x) { helper(x) }
function helper(x) { x / 0 }
function spin() { var i = 0; while true { i = i + 1 } }
function deep() { var x = []; for i in 0..70 { x = [x] }; x }
function apply(f, x) { f(x) }
function double(x) { x * 2 }
function evens(n) { var out = []; for i in 0..n { if i % 2 == 0 { out.push(i) } }; out }
)";

class RemoteCallTest : public ::testing::Test {
 protected:
  RemoteCallTest() : p_(kProgram) {}

  RemoteCallRequest Request(const std::string& name, std::vector<WireValue> args) {
    auto r = BuildCallRequest(p_.program(), p_.blobs(), name, std::move(args));
    EXPECT_TRUE(r.has_value()) << r.error();
    return r ? *r : RemoteCallRequest{};
  }

  // Sends the request through the codec, runs it, and sends the response back.
  RemoteCallResponse Run(const RemoteCallRequest& request, engine::Limits limits = {},
                         engine::BlobCache* cache = nullptr) {
    auto in = DecodeMessage(EncodeMessage(request));
    EXPECT_TRUE(in.has_value()) << in.error();
    if (!in) return RemoteCallResponse::Failure(ErrorKind::kInternal, "request did not decode");
    RemoteCallResponse response =
        ExecuteRemoteCall(std::get<RemoteCallRequest>(*in), limits, cache);
    auto out = DecodeMessage(EncodeMessage(response));
    EXPECT_TRUE(out.has_value()) << out.error();
    if (!out) return RemoteCallResponse::Failure(ErrorKind::kInternal, "response did not decode");
    return std::get<RemoteCallResponse>(*out);
  }

  SchemaPtr PointSchema() {
    return std::make_shared<WireTypeSchema>(
        WireTypeSchema{WireTypeSchema::Kind::kStruct, "Point", {"x", "y"}, {}});
  }

  WireTestProgram p_;
};

TEST_F(RemoteCallTest, BuildCallRequestCarriesHashIdAndTheMinimalClosure) {
  RemoteCallRequest r = Request("boom", {WireValue::Int(1)});
  int index = p_.program().FindFunction("boom");
  ASSERT_GE(index, 0);
  EXPECT_EQ(r.function_id, static_cast<uint32_t>(index));
  EXPECT_EQ(r.function_hash, p_.blobs().proto_hashes[index]);
  ASSERT_TRUE(r.blobs.has_value());
  std::vector<std::string> names;
  for (const engine::FunctionBlob& b : *r.blobs) names.push_back(b.debug.name);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("boom", "helper"));
}

TEST_F(RemoteCallTest, BuildCallRequestNameErrors) {
  EXPECT_THAT(BuildCallRequest(p_.program(), p_.blobs(), "nope", {}),
              IsError(ErrorKind::kFunctionNotFound));
  WireTestProgram two("function a() { |x| x }\nfunction b() { |y| y + 1 }");
  auto r = BuildCallRequest(two.program(), two.blobs(), "<closure>", {});
  ASSERT_THAT(r, IsError(ErrorKind::kFunctionNotFound));
  EXPECT_THAT(r.error().message(), HasSubstr("ambiguous"));
  EXPECT_OK(BuildCallRequest(p_.program(), p_.blobs(), "Point.len", {}));
}

TEST_F(RemoteCallTest, StructsAndMethodsCrossTheWire) {
  WireValue p = WireValue::Struct(PointSchema(), {WireValue::Number(3), WireValue::Number(4)});
  RemoteCallResponse norm = Run(Request("norm", {p}));
  ASSERT_TRUE(norm.ok()) << norm.status();
  EXPECT_EQ(norm.value(), WireValue::Number(5.0));
  RemoteCallResponse scaled = Run(Request("scale", {p, WireValue::Int(2)}));
  ASSERT_TRUE(scaled.ok()) << scaled.status();
  EXPECT_EQ(scaled.value(),
            WireValue::Struct(PointSchema(), {WireValue::Number(6), WireValue::Number(8)}));
}

TEST_F(RemoteCallTest, ClosureCallSendsCapturesAndReturnedClosureIsUsableLocally) {
  VmSide caller(p_);
  ASSERT_OK_AND_ASSIGN(WireValue adder, caller.CallToWire("make_adder", {engine::Value::Int(10)}));
  ASSERT_EQ(adder.kind, WireKind::kClosure);
  ASSERT_OK_AND_ASSIGN(RemoteCallRequest r,
                       BuildValueCallRequest(p_.blobs(), adder, {WireValue::Int(5)}));
  EXPECT_TRUE(r.captures.has_value());
  RemoteCallResponse got = Run(r);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got.value(), WireValue::Int(15));

  // A closure made remotely names the same content hash as the caller's own prototype.
  RemoteCallResponse made = Run(Request("make_adder", {WireValue::Int(1)}));
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_OK_AND_ASSIGN(engine::Value local, caller.FromWire(made.value()));
  ASSERT_OK_AND_ASSIGN(engine::Value r2, caller.Call("apply", {local, engine::Value::Int(41)}));
  EXPECT_EQ(engine::ValueToString(r2), "42");
}

TEST_F(RemoteCallTest, RuntimeErrorCarriesTheTrace) {
  RemoteCallResponse r = Run(Request("boom", {WireValue::Int(1)}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kRuntimeError);
  EXPECT_THAT(r.error().message, HasSubstr("division by zero"));
  ASSERT_GE(r.error().trace.size(), 2u);
  EXPECT_EQ(r.error().trace[0].function, "helper");
  EXPECT_EQ(r.error().trace[1].function, "boom");
}

TEST_F(RemoteCallTest, AnnotationMismatchIsAnArgumentError) {
  RemoteCallResponse r = Run(Request("add", {WireValue::String("a"), WireValue::Int(1)}));
  EXPECT_THAT(r.status(), IsError(ErrorKind::kArgumentError));
  RemoteCallResponse arity = Run(Request("add", {WireValue::Int(1)}));
  EXPECT_THAT(arity.status(), IsError(ErrorKind::kArgumentError));
}

TEST_F(RemoteCallTest, ArgumentsThatCannotBeRebuiltAreArgumentErrors) {
  RemoteCallResponse sidecar = Run(Request("add", {WireValue::SidecarRef({}), WireValue::Int(1)}));
  EXPECT_THAT(sidecar.status(), IsError(ErrorKind::kArgumentError));
  engine::FunctionHash unknown{};
  RemoteCallResponse fn = Run(Request("apply", {WireValue::Function(unknown), WireValue::Int(1)}));
  EXPECT_THAT(fn.status(), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(fn.error().message, HasSubstr("argument 1"));
  // A function the entry does not reach is not linked on the callee (see docs/wire-protocol.md).
  int index = p_.program().FindFunction("double");
  RemoteCallResponse dbl = Run(
      Request("apply", {WireValue::Function(p_.blobs().proto_hashes[index]), WireValue::Int(1)}));
  EXPECT_THAT(dbl.status(), IsError(ErrorKind::kArgumentError));
}

TEST_F(RemoteCallTest, LimitsBecomeTypedErrors) {
  RemoteCallResponse fuel = Run(Request("spin", {}), engine::Limits{.fuel = 10000});
  EXPECT_THAT(fuel.status(), IsError(ErrorKind::kResourceExhausted));
  RemoteCallResponse timeout = Run(Request("spin", {}), engine::Limits{.timeout = 0.05});
  EXPECT_THAT(timeout.status(), IsError(ErrorKind::kTimeout));
  WireValue big = WireValue::TypedArray(engine::ElemKind::kU8, std::vector<uint8_t>(1 << 20));
  RemoteCallResponse memory =
      Run(Request("apply", {WireValue::Native("len"), big}), engine::Limits{.memory = 1 << 16});
  EXPECT_THAT(memory.status(), IsError(ErrorKind::kResourceExhausted));
}

TEST_F(RemoteCallTest, UnsendableResultIsARuntimeError) {
  RemoteCallResponse r = Run(Request("deep", {}));
  EXPECT_THAT(r.status(), IsError(ErrorKind::kRuntimeError));
  EXPECT_THAT(r.error().message, HasSubstr("nested deeper than 64"));
}

TEST_F(RemoteCallTest, TamperedOrIncompleteBlobsAreRejected) {
  RemoteCallRequest tampered = Request("boom", {WireValue::Int(1)});
  (*tampered.blobs)[0].canonical.back() ^= 1;
  EXPECT_THAT(Run(tampered).status(), IsError(ErrorKind::kProtocolError));

  RemoteCallRequest missing = Request("boom", {WireValue::Int(1)});
  std::erase_if(*missing.blobs, [](const auto& b) { return b.debug.name == "helper"; });
  EXPECT_THAT(Run(missing).status(), IsError(ErrorKind::kProtocolError));

  RemoteCallRequest none = Request("boom", {WireValue::Int(1)});
  none.blobs.reset();
  EXPECT_THAT(Run(none).status(), IsError(ErrorKind::kFunctionNotFound));
}

TEST_F(RemoteCallTest, EntryByNameWhenNoHash) {
  RemoteCallRequest r = Request("add", {WireValue::Int(2), WireValue::Int(3)});
  r.function_hash.reset();
  RemoteCallResponse ok = Run(r);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok.value(), WireValue::Int(5));
  r.function_name = "missing";
  EXPECT_THAT(Run(r).status(), IsError(ErrorKind::kFunctionNotFound));
}

TEST_F(RemoteCallTest, ClosureEntryNeedsCapturesAndPlainEntryRefusesThem) {
  VmSide caller(p_);
  ASSERT_OK_AND_ASSIGN(WireValue adder, caller.CallToWire("make_adder", {engine::Value::Int(1)}));
  ASSERT_OK_AND_ASSIGN(RemoteCallRequest r, BuildValueCallRequest(p_.blobs(), adder, {}));
  r.captures.reset();
  EXPECT_THAT(Run(r).status(), IsError(ErrorKind::kArgumentError));
  RemoteCallRequest plain = Request("double", {WireValue::Int(1)});
  plain.captures = std::vector<WireValue>{};
  EXPECT_THAT(Run(plain).status(), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(BuildValueCallRequest(p_.blobs(), WireValue::Int(1), {}),
              IsError(ErrorKind::kArgumentError));
}

TEST_F(RemoteCallTest, CacheLetsANegotiatedRequestCarryNoCode) {
  engine::BlobCache cache;
  RemoteCallRequest first = Request("evens", {WireValue::Int(5)});
  BlobNegotiationResponse reply =
      HandleNegotiation(cache, BlobNegotiationRequest{OfferedHashes(first)});
  EXPECT_TRUE(reply.known_hashes.empty());
  RemoteCallResponse r1 = Run(first, {}, &cache);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(cache.size(), first.blobs->size());

  RemoteCallRequest second = Request("evens", {WireValue::Int(7)});
  reply = HandleNegotiation(cache, BlobNegotiationRequest{OfferedHashes(second)});
  EXPECT_EQ(reply.known_hashes.size(), second.blobs->size());
  RemoteCallRequest stripped = BuildCallRequestNegotiated(second, reply.known_hashes);
  EXPECT_TRUE(stripped.blobs->empty());
  RemoteCallResponse r2 = Run(stripped, {}, &cache);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2.value(), WireValue::Array({WireValue::Int(0), WireValue::Int(2), WireValue::Int(4),
                                          WireValue::Int(6)}));
  EXPECT_THAT(Run(stripped).status(), IsError(ErrorKind::kFunctionNotFound))
      << "without the cache the stripped request has no code";
}

TEST_F(RemoteCallTest, RejectedBlobsDoNotEnterTheCache) {
  engine::BlobCache cache;
  RemoteCallRequest tampered = Request("boom", {WireValue::Int(1)});
  (*tampered.blobs)[0].canonical.back() ^= 1;
  EXPECT_FALSE(Run(tampered, {}, &cache).ok());
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace shapex::ipc

namespace shapex::ipc {
namespace {

// ExecuteRemoteBatch (pmap's CallBatch): every item is a call of its own, with exactly what
// ExecuteRemoteCall gives the same request with that item's arguments; the batch stops at the
// first failing item, when its fuel budget is used up, and when its answer gets big.
constexpr char kBatchProgram[] = R"(
var seen = []
function note(x) { seen.push(x); print("note", x); seen.len() }
function inv(x) { print("inv", x); 10 / x }
function burn(n) { var i = 0; while i < n { i = i + 1 }; n }
)";

class RemoteBatchTest : public ::testing::Test {
 protected:
  RemoteBatchTest() : p_(kBatchProgram) {}

  RemoteCallBatch Batch(const std::string& name, std::vector<WireValue> items) {
    auto r = BuildCallRequest(p_.program(), p_.blobs(), name, {});
    EXPECT_TRUE(r.has_value()) << r.error();
    RemoteCallBatch b;
    if (r) b.call = *r;
    for (WireValue& v : items) b.items.push_back({std::move(v)});
    return b;
  }

  // Through the codec both ways, as on a connection.
  RemoteCallBatchResponse Run(const RemoteCallBatch& batch, engine::Limits limits = {},
                              size_t max_response_bytes = kBatchResponseBytes) {
    auto in = DecodeMessage(EncodeMessage(batch));
    EXPECT_TRUE(in.has_value()) << in.error();
    if (!in) return {};
    engine::BlobCache cache;
    LinkCache links;
    RemoteCallBatchResponse response = ExecuteRemoteBatch(std::get<RemoteCallBatch>(*in), limits,
                                                          &cache, &links, max_response_bytes);
    auto out = DecodeMessage(EncodeMessage(response));
    EXPECT_TRUE(out.has_value()) << out.error();
    if (!out) return {};
    return std::get<RemoteCallBatchResponse>(*out);
  }

  // The same item as a call of its own.
  RemoteCallResponse Single(const RemoteCallBatch& batch, size_t i, engine::Limits limits = {}) {
    RemoteCallRequest r = batch.call;
    r.arguments = batch.items[i];
    return ExecuteRemoteCall(r, limits);
  }

  WireTestProgram p_;
};

TEST_F(RemoteBatchTest, EachItemIsACallOfItsOwnWithItsOwnCopies) {
  RemoteCallBatch b = Batch("note", {WireValue::Int(1), WireValue::Int(2), WireValue::Int(3)});
  b.call.globals = {{"seen", WireValue::Array({WireValue::Int(0)})}};
  RemoteCallBatchResponse got = Run(b);
  ASSERT_EQ(got.results.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const RemoteCallResponse& r = got.results[i];
    ASSERT_TRUE(r.ok()) << r.status();
    // Each item pushes onto its own copy of `seen` ([0]): never sees the items before it.
    EXPECT_EQ(r.value(), WireValue::Int(2));
    EXPECT_EQ(r.output, fmt::format("note {}\n", i + 1));
    RemoteCallResponse alone = Single(b, i);
    EXPECT_EQ(r.value(), alone.value());
    EXPECT_EQ(r.output, alone.output);
    EXPECT_EQ(r.fuel_used, alone.fuel_used) << "item " << i;
  }
}

TEST_F(RemoteBatchTest, StopsAfterTheFirstFailingItem) {
  RemoteCallBatch b =
      Batch("inv", {WireValue::Int(1), WireValue::Int(2), WireValue::Int(0), WireValue::Int(5)});
  RemoteCallBatchResponse got = Run(b);
  ASSERT_EQ(got.results.size(), 3u) << "item 3 never ran";
  EXPECT_TRUE(got.results[0].ok());
  EXPECT_TRUE(got.results[1].ok());
  const RemoteCallResponse& failed = got.results[2];
  ASSERT_FALSE(failed.ok());
  RemoteCallResponse alone = Single(b, 2);
  EXPECT_EQ(failed.error().kind, alone.error().kind);
  EXPECT_EQ(failed.error().message, alone.error().message);
  EXPECT_EQ(failed.error().trace.size(), alone.error().trace.size());
  ASSERT_FALSE(failed.error().trace.empty());
  EXPECT_TRUE(failed.error().trace[0].has_hash) << "frames carry their code's hash";
  EXPECT_EQ(failed.output, "inv 0\n");
  EXPECT_EQ(failed.fuel_used, alone.fuel_used);
}

TEST_F(RemoteBatchTest, FuelBudgetIsSharedByTheItemsInOrder) {
  RemoteCallBatch b = Batch("burn", {WireValue::Int(100), WireValue::Int(100),
                                     WireValue::Int(100), WireValue::Int(100)});
  RemoteCallResponse one = Single(b, 0);
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(one.fuel_used.has_value());
  uint64_t u = *one.fuel_used;
  // Two items and a half: the third runs with what is left and runs out.
  b.fuel_budget = 2 * u + u / 2;
  RemoteCallBatchResponse got = Run(b);
  ASSERT_EQ(got.results.size(), 3u);
  EXPECT_TRUE(got.results[1].ok());
  ASSERT_FALSE(got.results[2].ok());
  EXPECT_EQ(got.results[2].error().kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(got.results[2].fuel_used, u / 2);
  // Exactly two items' worth: the callee stops before the third (nothing left to give it).
  b.fuel_budget = 2 * u;
  got = Run(b);
  ASSERT_EQ(got.results.size(), 2u);
  EXPECT_TRUE(got.results[0].ok());
  EXPECT_TRUE(got.results[1].ok());
  // A per-call fuel limit still applies to each item on its own.
  b.fuel_budget.reset();
  b.call.limits = CallLimits{u, 0, 0, 0};
  got = Run(b);
  ASSERT_EQ(got.results.size(), 4u);
  for (const RemoteCallResponse& r : got.results) EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(RemoteBatchTest, ABatchThatDoesNotLinkAnswersWithOneError) {
  RemoteCallBatch b = Batch("note", {WireValue::Int(1), WireValue::Int(2)});
  b.call.blobs = std::vector<engine::FunctionBlob>{};  // no code, no cache: nothing to link
  RemoteCallBatchResponse got = Run(b);
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_THAT(got.results[0].status(), IsError(ErrorKind::kFunctionNotFound));
}

TEST_F(RemoteBatchTest, AnAnswerThatGetsBigStopsTheBatchEarly) {
  RemoteCallBatch b = Batch("inv", {WireValue::Int(1), WireValue::Int(2), WireValue::Int(3)});
  RemoteCallBatchResponse got = Run(b, {}, /*max_response_bytes=*/1);
  ASSERT_EQ(got.results.size(), 1u) << "the caller runs the rest";
  EXPECT_TRUE(got.results[0].ok());
  EXPECT_TRUE(Run(RemoteCallBatch{b.call, {}, {}}).results.empty());
}

}  // namespace
}  // namespace shapex::ipc
