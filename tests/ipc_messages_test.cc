// Tests for messages.h: every WireMessage alternative round-trips byte-exactly, and malformed
// messages (wrong version, tags, field counts, blobs, kinds, truncation) are ProtocolErrors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <msgpack.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "shapex/ipc/messages.h"
#include "shapex/ipc/remote_call.h"
#include "testing/status_matchers.h"
#include "testing/wire_test_util.h"

namespace shapex::ipc {
namespace {

using ::shapex::ipc::testing::WireTestProgram;
using ::shapex_testing::IsError;
using ::testing::HasSubstr;

using MsgPacker = msgpack::packer<msgpack::sbuffer>;

std::vector<uint8_t> Pack(const std::function<void(MsgPacker&)>& body) {
  msgpack::sbuffer buf;
  MsgPacker pk(buf);
  body(pk);
  return std::vector<uint8_t>(buf.data(), buf.data() + buf.size());
}

engine::FunctionHash Hash(uint8_t fill) {
  engine::FunctionHash h;
  h.fill(fill);
  return h;
}

// A request with every optional field present, built from a real program.
RemoteCallRequest FullRequest() {
  WireTestProgram p(R"(
    type Point { x: number, y: number }
    impl Point { function len(self) { math.sqrt(self.x * self.x + self.y * self.y) } }
    function norm(p: Point) -> number { p.len() }
  )");
  auto point = std::make_shared<WireTypeSchema>(
      WireTypeSchema{WireTypeSchema::Kind::kStruct, "Point", {"x", "y"}, {}});
  auto r =
      BuildCallRequest(p.program(), p.blobs(), "norm",
                       {WireValue::Struct(point, {WireValue::Number(3), WireValue::Number(4)})});
  EXPECT_TRUE(r.has_value()) << r.error();
  r->captures = std::vector<WireValue>{
      WireValue::Struct(point, {WireValue::Int(1), WireValue::Int(2)}), WireValue::String("c")};
  return *r;
}

// A batch with every field present: code, impls, limits, globals, roots, items of several
// values (one sharing its schema with a global), a fuel budget.
RemoteCallBatch FullBatch() {
  RemoteCallBatch b;
  b.call = FullRequest();
  std::vector<WireValue> first = std::move(b.call.arguments);
  b.call.arguments.clear();
  b.call.captures.reset();
  b.call.globals = {{"scale", WireValue::Number(2.5)}, {"origin", first[0]}};
  b.call.roots = {Hash(9)};
  b.items = {first, {WireValue::Int(2), WireValue::String("two")}, {}};
  b.fuel_budget = 123456;
  return b;
}

RemoteCallBatchResponse FullBatchResponse() {
  RemoteCallBatchResponse b;
  RemoteCallResponse printed = RemoteCallResponse::Success(WireValue::Int(1));
  printed.output = "one\n";
  printed.fuel_used = 17;
  b.results.push_back(printed);
  b.results.push_back(RemoteCallResponse::Success(WireValue::Array({WireValue::None()})));
  RemoteCallResponse failed = RemoteCallResponse::Failure(
      ErrorKind::kRuntimeError, "division by zero",
      {{"helper", "prog.shape", 2}, {"main", "prog.shape", 7}});
  failed.fuel_used = 3;
  b.results.push_back(failed);
  b.cpu_ns = 98765;
  return b;
}

std::vector<WireMessage> AllMessages() {
  std::vector<engine::TraceFrame> trace = {{"helper", "prog.shape", 2}, {"main", "prog.shape", 7}};
  return {
      BlobNegotiationRequest{{Hash(1), Hash(2)}},
      BlobNegotiationResponse{{Hash(2)}},
      BlobNegotiationResponse{{}},
      FullRequest(),
      RemoteCallRequest{"bare", std::nullopt, std::nullopt, {}, std::nullopt, std::nullopt, {}, std::nullopt, {}},
      RemoteCallResponse::Success(WireValue::Array({WireValue::Int(42), WireValue::None()})),
      RemoteCallResponse::Failure(ErrorKind::kRuntimeError, "division by zero", trace),
      Sidecar{7, SidecarKind::kMatrix, std::vector<uint8_t>(16, 0), nullptr},
      FullBatch(),
      RemoteCallBatch{},
      FullBatchResponse(),
      RemoteCallBatchResponse{},
  };
}

TEST(MessagesTest, EveryMessageRoundTripsByteExactly) {
  for (const WireMessage& m : AllMessages()) {
    SCOPED_TRACE(m.index());
    std::vector<uint8_t> bytes = EncodeMessage(m);
    ASSERT_OK_AND_ASSIGN(WireMessage back, DecodeMessage(bytes));
    EXPECT_EQ(back.index(), m.index());
    EXPECT_EQ(EncodeMessage(back), bytes);
  }
}

TEST(MessagesTest, RequestFieldsSurvive) {
  RemoteCallRequest r = FullRequest();
  ASSERT_OK_AND_ASSIGN(WireMessage m, DecodeMessage(EncodeMessage(r)));
  const auto& got = std::get<RemoteCallRequest>(m);
  EXPECT_EQ(got.function_name, "norm");
  EXPECT_EQ(got.function_id, r.function_id);
  EXPECT_EQ(got.function_hash, r.function_hash);
  EXPECT_EQ(got.arguments, r.arguments);
  EXPECT_EQ(got.captures, r.captures);
  ASSERT_TRUE(got.blobs.has_value());
  ASSERT_EQ(got.blobs->size(), r.blobs->size());
  for (size_t i = 0; i < got.blobs->size(); ++i)
    EXPECT_EQ(engine::EncodeBlob((*got.blobs)[i]), engine::EncodeBlob((*r.blobs)[i]));
  ASSERT_EQ(got.impls.size(), 1u) << "Point.len travels as an impl entry";
  EXPECT_EQ(got.impls[0].method, "len");
  EXPECT_EQ(got.impls[0].function, r.impls[0].function);
  EXPECT_EQ(got.impls[0].type_schema, r.impls[0].type_schema);
}

TEST(MessagesTest, BatchFieldsSurvive) {
  RemoteCallBatch b = FullBatch();
  ASSERT_OK_AND_ASSIGN(WireMessage m, DecodeMessage(EncodeMessage(b)));
  const auto& got = std::get<RemoteCallBatch>(m);
  EXPECT_EQ(got.call.function_name, "norm");
  EXPECT_EQ(got.call.function_hash, b.call.function_hash);
  EXPECT_EQ(got.call.globals, b.call.globals);
  EXPECT_EQ(got.call.roots, b.call.roots);
  EXPECT_EQ(got.call.limits, b.call.limits);
  EXPECT_EQ(got.call.impls.size(), 1u);
  ASSERT_TRUE(got.call.blobs.has_value());
  EXPECT_EQ(got.call.blobs->size(), b.call.blobs->size());
  EXPECT_TRUE(got.call.arguments.empty());
  EXPECT_FALSE(got.call.captures.has_value());
  EXPECT_EQ(got.items, b.items);
  EXPECT_EQ(got.fuel_budget, 123456u);
  RemoteCallBatch bare;
  ASSERT_OK_AND_ASSIGN(m, DecodeMessage(EncodeMessage(bare)));
  EXPECT_FALSE(std::get<RemoteCallBatch>(m).fuel_budget.has_value());
  EXPECT_FALSE(std::get<RemoteCallBatch>(m).call.blobs.has_value());
}

TEST(MessagesTest, BatchResponseKeepsEachResult) {
  RemoteCallBatchResponse b = FullBatchResponse();
  ASSERT_OK_AND_ASSIGN(WireMessage m, DecodeMessage(EncodeMessage(b)));
  const auto& got = std::get<RemoteCallBatchResponse>(m);
  ASSERT_EQ(got.results.size(), 3u);
  EXPECT_EQ(got.results[0].value(), WireValue::Int(1));
  EXPECT_EQ(got.results[0].output, "one\n");
  EXPECT_EQ(got.results[0].fuel_used, 17u);
  EXPECT_EQ(got.results[1].value(), WireValue::Array({WireValue::None()}));
  EXPECT_EQ(got.results[1].output, "");
  EXPECT_FALSE(got.results[1].fuel_used.has_value());
  ASSERT_FALSE(got.results[2].ok());
  EXPECT_EQ(got.results[2].error().kind, ErrorKind::kRuntimeError);
  EXPECT_EQ(got.results[2].error().message, "division by zero");
  ASSERT_EQ(got.results[2].error().trace.size(), 2u);
  EXPECT_EQ(got.results[2].error().trace[1].function, "main");
  EXPECT_EQ(got.results[2].fuel_used, 3u);
  EXPECT_EQ(got.cpu_ns, 98765u);
}

// Malformed batches and batch answers are ProtocolErrors: a field missing or extra, an item
// that is not an array of values, a result of the wrong shape or an unknown error kind.
TEST(MessagesTest, MalformedBatchesAreProtocolErrors) {
  auto batch = [&](uint32_t fields, bool item_not_array) {
    return Pack([&](MsgPacker& pk) {
      pk.pack_array(2 + fields);
      pk.pack_uint32(kWireProtocolVersion);
      pk.pack_uint64(6);
      pk.pack_str(1);
      pk.pack_str_body("f", 1);
      pk.pack_nil();                 // function_id
      pk.pack_nil();                 // function_hash
      pk.pack_array(0);              // schemas
      pk.pack_nil();                 // blobs
      pk.pack_array(0);              // impls
      pk.pack_nil();                 // limits
      pk.pack_array(0);              // globals
      pk.pack_array(0);              // roots
      pk.pack_array(1);              // items
      if (item_not_array) {
        pk.pack_uint8(1);
      } else {
        pk.pack_array(0);
      }
      for (uint32_t i = 10; i < fields; ++i) pk.pack_nil();  // the fuel budget, and more
    });
  };
  ASSERT_TRUE(DecodeMessage(batch(11, false)).has_value());
  EXPECT_THAT(DecodeMessage(batch(10, false)), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeMessage(batch(12, false)), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeMessage(batch(11, true)), IsError(ErrorKind::kProtocolError));
  auto response = [&](auto result) {
    return Pack([&](MsgPacker& pk) {
      pk.pack_array(5);
      pk.pack_uint32(kWireProtocolVersion);
      pk.pack_uint64(7);
      pk.pack_array(0);  // schemas
      pk.pack_array(1);
      result(pk);
      pk.pack_uint64(1000);  // cpu_ns
    });
  };
  EXPECT_TRUE(DecodeMessage(response([](MsgPacker& pk) {
                pk.pack_array(4);
                pk.pack_uint8(0);
                pk.pack_nil();
                pk.pack_str(0);
                pk.pack_nil();
              })).has_value());
  EXPECT_THAT(DecodeMessage(response([](MsgPacker& pk) {
                pk.pack_array(3);  // [0, value, output]: fuel_used missing
                pk.pack_uint8(0);
                pk.pack_nil();
                pk.pack_str(0);
              })),
              IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeMessage(response([](MsgPacker& pk) {
                pk.pack_array(6);
                pk.pack_uint8(1);
                pk.pack_str(5);
                pk.pack_str_body("Bogus", 5);
                pk.pack_str(0);
                pk.pack_array(0);
                pk.pack_str(0);
                pk.pack_nil();
              })),
              IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeMessage(response([](MsgPacker& pk) {
                pk.pack_array(4);
                pk.pack_uint8(2);  // neither value nor error
                pk.pack_nil();
                pk.pack_str(0);
                pk.pack_nil();
              })),
              IsError(ErrorKind::kProtocolError));
}

TEST(MessagesTest, ErrorResponseKeepsKindMessageAndTrace) {
  for (ErrorKind kind :
       {ErrorKind::kFunctionNotFound, ErrorKind::kArgumentError, ErrorKind::kRuntimeError,
        ErrorKind::kMissingModuleFunction, ErrorKind::kTimeout, ErrorKind::kResourceExhausted,
        ErrorKind::kExecutorCrashed, ErrorKind::kCancelled, ErrorKind::kProtocolError,
        ErrorKind::kSandboxError}) {
    RemoteCallResponse r = RemoteCallResponse::Failure(kind, "msg", {{"f", "a.shape", 3}});
    ASSERT_OK_AND_ASSIGN(WireMessage m, DecodeMessage(EncodeMessage(r)));
    const auto& got = std::get<RemoteCallResponse>(m);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().kind, kind);
    EXPECT_EQ(got.error().message, "msg");
    ASSERT_EQ(got.error().trace.size(), 1u);
    EXPECT_EQ(got.error().trace[0].function, "f");
    EXPECT_EQ(got.error().trace[0].file, "a.shape");
    EXPECT_EQ(got.error().trace[0].line, 3u);
    EXPECT_THAT(got.status(), IsError(kind));
  }
  EXPECT_EQ(RemoteCallResponse::Failure(ErrorKind::kOk, "x").error().kind, ErrorKind::kInternal);
}

TEST(MessagesTest, TruncatedMessagesAreProtocolErrors) {
  for (const WireMessage& m : AllMessages()) {
    std::vector<uint8_t> bytes = EncodeMessage(m);
    for (size_t n = 0; n < bytes.size(); ++n)
      ASSERT_THAT(DecodeMessage(std::span<const uint8_t>(bytes.data(), n)),
                  IsError(ErrorKind::kProtocolError))
          << "message " << m.index() << " cut to " << n << " bytes";
  }
}

TEST(MessagesTest, CorruptedBlobIsAProtocolError) {
  RemoteCallRequest r = FullRequest();
  std::vector<uint8_t> blob = engine::EncodeBlob((*r.blobs)[0]);
  std::vector<uint8_t> bytes = EncodeMessage(r);
  auto at = std::search(bytes.begin(), bytes.end(), blob.begin(), blob.end());
  ASSERT_NE(at, bytes.end());
  *at ^= 0xff;  // the blob's magic
  auto d = DecodeMessage(bytes);
  ASSERT_THAT(d, IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(d.error().message(), HasSubstr("blob 1"));
}

struct BadMessage {
  const char* name;
  std::function<void(MsgPacker&)> body;
  const char* message;
};

void PrintTo(const BadMessage& c, std::ostream* os) { *os << c.name; }

const BadMessage kBadMessages[] = {
    {"NotAnArray", [](MsgPacker& pk) { pk.pack(1); }, "message"},
    {"Version",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{2, 1});
     },
     "version"},
    {"UnknownTag",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{1, 9});
     },
     "unknown message tag"},
    {"NegotiationFields",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{1, 1});
     },
     "fields"},
    {"ShortHash",
     [](MsgPacker& pk) {
       pk.pack_array(3);
       pk.pack(1);
       pk.pack(1);
       pk.pack_array(1);
       pk.pack_bin(3);
       pk.pack_bin_body("abc", 3);
     },
     "32 bytes"},
    {"CallFields",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{1, 3, 0});
     },
     "fields"},
    {"CallNameNotString",
     [](MsgPacker& pk) {
       pk.pack_array(11);
       pk.pack(1);
       pk.pack(3);
       for (int i = 0; i < 9; ++i) pk.pack_nil();
     },
     "function name"},
    {"ResponseKind",
     [](MsgPacker& pk) {
       pk.pack_array(6);
       pk.pack(1);
       pk.pack(4);
       pk.pack(1);
       pk.pack(std::string("Nope"));
       pk.pack(std::string("m"));
       pk.pack_array(0);
     },
     "unknown error kind"},
    {"ResponseOkKind",
     [](MsgPacker& pk) {
       pk.pack_array(6);
       pk.pack(1);
       pk.pack(4);
       pk.pack(1);
       pk.pack(std::string("Ok"));
       pk.pack(std::string("m"));
       pk.pack_array(0);
     },
     "unknown error kind"},
    {"ResponseResultKind",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{1, 4, 2});
     },
     "larger"},
    {"TraceFrame",
     [](MsgPacker& pk) {
       pk.pack_array(6);
       pk.pack(1);
       pk.pack(4);
       pk.pack(1);
       pk.pack(std::string("RuntimeError"));
       pk.pack(std::string("m"));
       pk.pack_array(1);
       pk.pack(std::vector<int>{1, 2});
     },
     "trace frame"},
    {"SidecarKind",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{1, 5, 0, 3, 0});
     },
     "sidecar kind"},
};

class BadMessageTest : public ::testing::TestWithParam<BadMessage> {};

TEST_P(BadMessageTest, IsAProtocolError) {
  auto r = DecodeMessage(Pack(GetParam().body));
  ASSERT_THAT(r, IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(r.error().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(MessagesCorruption, BadMessageTest, ::testing::ValuesIn(kBadMessages),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(MessagesTest, DeeplyNestedArgumentIsAProtocolError) {
  RemoteCallRequest r;
  r.function_name = "f";
  WireValue v = WireValue::Array({});
  for (int i = 1; i < kMaxWireDepth; ++i) v = WireValue::Array({v});
  r.arguments = {v};
  EXPECT_OK(DecodeMessage(EncodeMessage(r)));
  r.arguments = {WireValue::Array({v})};
  EXPECT_THAT(DecodeMessage(EncodeMessage(r)), IsError(ErrorKind::kProtocolError));
}

// The fuzzer's seed corpus (tests/fuzz/message_decode/): real encoded messages of every kind.
// Always checks that each decodes and re-encodes to the same bytes; with
// SHAPEX_WRITE_FUZZ_CORPUS=<dir> in the environment it also writes them there.
TEST(MessageCorpus, SeedMessagesRoundTrip) {
  WireTestProgram p(R"(
    type Point { x: number, y: number }
    enum Shape { Circle(number), Empty }
    impl Point { function len(self) { math.sqrt(self.x * self.x + self.y * self.y) } }
    function add(a: int, b: int) -> int { a + b }
    function norm(p: Point) -> number { p.len() }
    function make_adder(k) { |x| x + k }
    function shared() {
      var n = 0
      let a = [1, 2]
      let c = [a, a]
      c.push(c)
      [c, || { n = n + 1 }, || n]
    }
    function all() {
      [None, true, -7, 2.5, "s", {"k": [1], 2: false}, Point { x: 1.0, y: 2.0 }, Shape::Circle(1.0),
       Shape::Empty, Some(1), Ok(2), Err("e"), (0..=9).step(3), add, math.sqrt, make_adder(3),
       Vec::i16([1, -1]), Vec::bool([true]), Matrix::zeros(2, 3)]
    }
  )");
  testing::VmSide vm(p);
  std::vector<std::pair<std::string, WireMessage>> corpus;
  auto request = [&](const std::string& name, std::vector<WireValue> args) {
    auto r = BuildCallRequest(p.program(), p.blobs(), name, std::move(args));
    EXPECT_TRUE(r.has_value()) << r.error();
    return r ? *r : RemoteCallRequest{};
  };
  ASSERT_OK_AND_ASSIGN(WireValue all, vm.CallToWire("all"));
  ASSERT_OK_AND_ASSIGN(WireValue adder, vm.CallToWire("make_adder", {engine::Value::Int(3)}));
  RemoteCallRequest add = request("add", {WireValue::Int(10), WireValue::Int(32)});
  corpus.push_back({"negotiation_empty", BlobNegotiationRequest{}});
  corpus.push_back({"negotiation", BlobNegotiationRequest{OfferedHashes(add)}});
  corpus.push_back({"negotiation_reply", BlobNegotiationResponse{OfferedHashes(add)}});
  corpus.push_back({"call_add", add});
  corpus.push_back({"call_add_stripped", BuildCallRequestNegotiated(add, OfferedHashes(add))});
  corpus.push_back({"call_norm_struct", request("norm", {all.children[6]})});
  auto closure_call = BuildValueCallRequest(p.blobs(), adder, {WireValue::Int(4)});
  ASSERT_TRUE(closure_call.has_value());
  corpus.push_back({"call_closure", *closure_call});
  RemoteCallRequest every = request("add", all.children);
  every.blobs.reset();
  corpus.push_back({"call_every_kind", every});
  for (size_t i : {1u, 5u, 6u, 7u, 12u, 15u, 16u, 18u}) {
    corpus.push_back({"response_" + std::string(WireKindName(all.children[i].kind)),
                      RemoteCallResponse::Success(all.children[i])});
  }
  corpus.push_back({"response_all", RemoteCallResponse::Success(all)});
  corpus.push_back({"response_error", RemoteCallResponse::Failure(
                                          ErrorKind::kRuntimeError, "division by zero",
                                          {{"helper", "a.shape", 2}, {"main", "a.shape", 9}})});
  corpus.push_back({"sidecar_string", Sidecar{0, SidecarKind::kString, {'a', 'b'}, nullptr}});
  corpus.push_back(
      {"sidecar_typed", Sidecar{1, SidecarKind::kTypedArray, std::vector<uint8_t>(16, 7), nullptr}});
  WireValue ref_arg = WireValue::Array(
      {WireValue::SidecarRef({2, SidecarKind::kMatrix, engine::ElemKind::kF64, 1, 1, 8, 99})});
  corpus.push_back(
      {"call_with_sidecar_ref",
       RemoteCallRequest{"f", 0, std::nullopt, {ref_arg}, std::nullopt, std::nullopt, {},
                         CallLimits{1000, 1 << 20, 50, 2500}, {}}});
  corpus.push_back(
      {"call_with_globals",
       RemoteCallRequest{"g", 1, std::nullopt, {WireValue::Int(1)}, std::nullopt, std::nullopt,
                         {}, std::nullopt,
                         {{"scale", WireValue::Number(2.5)},
                          {"names", WireValue::Array({WireValue::String("a")})}}}});
  RemoteCallResponse printed = RemoteCallResponse::Success(WireValue::Int(3));
  printed.output = "hello\n";
  corpus.push_back({"response_with_output", printed});
  RemoteCallResponse failed_printed =
      RemoteCallResponse::Failure(ErrorKind::kRuntimeError, "boom", {{"f", "a.shape", 1}});
  failed_printed.output = "before the error\n";
  corpus.push_back({"error_with_output", failed_printed});
  // Sharing, cycles and captured variables (Ref, Cell), link roots, fuel used, frames with
  // hash and pc, a marker frame.
  ASSERT_OK_AND_ASSIGN(WireValue shared, vm.CallToWire("shared"));
  RemoteCallRequest with_roots = request("add", {shared, adder});
  with_roots.roots = {p.blobs().proto_hashes[0]};
  corpus.push_back({"call_shared_and_roots", with_roots});
  {
    // pmap's batches: a template (code, globals, roots, limits, budget) and items; answers.
    RemoteCallBatch b;
    b.call = request("norm", {});
    b.call.globals = {{"scale", WireValue::Number(2.5)}};
    b.call.limits = CallLimits{5000, 0, 100, 0};
    b.items = {{all.children[6]}, {all.children[6]}, {WireValue::Int(3)}};
    b.fuel_budget = 5000;
    corpus.push_back({"batch_norm", b});
    b.call.blobs = std::vector<engine::FunctionBlob>{};
    b.call.roots = {p.blobs().proto_hashes[0]};
    b.items = {{shared, adder}, {WireValue::Int(1), WireValue::Int(2)}};
    b.fuel_budget.reset();
    corpus.push_back({"batch_shared_and_roots", b});
    RemoteCallBatchResponse answers;
    for (size_t i : {2u, 5u, 6u}) {
      RemoteCallResponse r = RemoteCallResponse::Success(all.children[i]);
      r.fuel_used = 40 + i;
      answers.results.push_back(r);
    }
    RemoteCallResponse failed = RemoteCallResponse::Failure(
        ErrorKind::kRuntimeError, "two", {{"fail_on", "a.shape", 3}, {"main", "a.shape", 9}});
    failed.output = "item 2\n";
    failed.fuel_used = 12;
    answers.results.push_back(failed);
    answers.cpu_ns = 1500000;
    corpus.push_back({"batch_response", answers});
  }
  RemoteCallResponse used = RemoteCallResponse::Success(shared);
  used.fuel_used = 1234;
  corpus.push_back({"response_shared_fuel_used", used});
  engine::TraceFrame located{"add", "a.shape", 2};
  located.hash = p.blobs().proto_hashes[0];
  located.has_hash = true;
  located.pc = 3;
  engine::TraceFrame marker{"... 40 more frames", "", 0};
  marker.skipped = 40;
  RemoteCallResponse deep =
      RemoteCallResponse::Failure(ErrorKind::kResourceExhausted, "stack depth exceeded",
                                  {located, marker, {"main", "a.shape", 9}});
  deep.fuel_used = 99;
  corpus.push_back({"error_located_frames", deep});
  EXPECT_GE(corpus.size(), 23u);

  const char* dir = std::getenv("SHAPEX_WRITE_FUZZ_CORPUS");
  for (const auto& [name, message] : corpus) {
    std::vector<uint8_t> bytes = EncodeMessage(message);
    ASSERT_OK_AND_ASSIGN(WireMessage back, DecodeMessage(bytes));
    EXPECT_EQ(EncodeMessage(back), bytes) << name;
    if (dir == nullptr) continue;
    std::ofstream out(std::string(dir) + "/" + name + ".msg", std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << "writing " << name;
  }
}

TEST(MessagesTest, GlobalsAndOutputRoundTripAndAreOptionalOnTheWire) {
  RemoteCallRequest call;
  call.function_name = "f";
  std::vector<uint8_t> without = EncodeMessage(call);
  call.globals = {{"limit", WireValue::Int(7)}, {"label", WireValue::String("x")}};
  std::vector<uint8_t> with = EncodeMessage(call);
  EXPECT_GT(with.size(), without.size());
  ASSERT_OK_AND_ASSIGN(WireMessage back, DecodeMessage(with));
  const auto& globals = std::get<RemoteCallRequest>(back).globals;
  ASSERT_EQ(globals.size(), 2u);
  EXPECT_EQ(globals[0].first, "limit");
  EXPECT_EQ(globals[0].second, WireValue::Int(7));
  EXPECT_EQ(globals[1].second, WireValue::String("x"));

  RemoteCallResponse response = RemoteCallResponse::Success(WireValue::Int(1));
  size_t plain = EncodeMessage(response).size();
  response.output = "hi\n";
  EXPECT_EQ(EncodeMessage(response).size(), plain + 1 + 3)
      << "output costs its bytes and a string header only";
  ASSERT_OK_AND_ASSIGN(back, DecodeMessage(EncodeMessage(response)));
  EXPECT_EQ(std::get<RemoteCallResponse>(back).output, "hi\n");
  RemoteCallResponse error = RemoteCallResponse::Failure(ErrorKind::kTimeout, "late");
  error.output = "partial";
  ASSERT_OK_AND_ASSIGN(back, DecodeMessage(EncodeMessage(error)));
  EXPECT_EQ(std::get<RemoteCallResponse>(back).output, "partial");
  EXPECT_EQ(std::get<RemoteCallResponse>(back).error().kind, ErrorKind::kTimeout);
}

// Hand-made encodings the encoder never produces: each is a ProtocolError, never a crash.
TEST(MessagesTest, MalformedGlobalsAndOutputAreProtocolErrors) {
  auto encode = [](auto&& fill) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> pk(buffer);
    fill(pk);
    return std::vector<uint8_t>(buffer.data(), buffer.data() + buffer.size());
  };
  auto call_with = [&](auto&& globals) {
    return encode([&](auto& pk) {
      pk.pack_array(12);
      pk.pack_uint32(kWireProtocolVersion);
      pk.pack_uint64(3);  // Call
      pk.pack(std::string("f"));
      pk.pack_nil();
      pk.pack_nil();
      pk.pack_array(0);  // schemas
      pk.pack_array(0);  // arguments
      pk.pack_nil();
      pk.pack_nil();
      pk.pack_array(0);  // impls
      pk.pack_nil();
      globals(pk);
    });
  };
  EXPECT_THAT(DecodeMessage(call_with([](auto& pk) { pk.pack_array(0); })),
              IsError(ErrorKind::kProtocolError));  // empty list: the field is omitted instead
  EXPECT_THAT(DecodeMessage(call_with([](auto& pk) {
                pk.pack_array(1);
                pk.pack_array(1);
                pk.pack(std::string("g"));
              })),
              IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeMessage(call_with([](auto& pk) {
                pk.pack_array(1);
                pk.pack_array(2);
                pk.pack(7);  // name must be a string
                pk.pack(7);
              })),
              IsError(ErrorKind::kProtocolError));
  // A valid call decodes (so the cases above fail for their globals alone).
  EXPECT_OK(DecodeMessage(call_with([](auto& pk) {
    pk.pack_array(1);
    pk.pack_array(2);
    pk.pack(std::string("g"));
    pk.pack_nil();
  })));
  // An output field that is present but empty: the encoder omits it instead.
  RemoteCallResponse response = RemoteCallResponse::Success(WireValue::Int(1));
  response.output = "x";
  std::vector<uint8_t> bytes = EncodeMessage(response);
  ASSERT_EQ(bytes[bytes.size() - 2], 0xa1);  // fixstr of length 1, then 'x'
  bytes[bytes.size() - 2] = 0xa0;
  bytes.pop_back();
  EXPECT_THAT(DecodeMessage(bytes), IsError(ErrorKind::kProtocolError));
}

}  // namespace
}  // namespace shapex::ipc
