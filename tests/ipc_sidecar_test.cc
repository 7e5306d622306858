// Tests for sidecar.h: what is extracted and where, ids, strict reassembly, and the whole trip
// through Sidecar messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shapex/ipc/messages.h"
#include "shapex/ipc/sidecar.h"
#include "shapex/ipc/value_codec.h"
#include "testing/status_matchers.h"
#include "testing/wire_test_util.h"

namespace shapex::ipc {
namespace {

using ::shapex::ipc::testing::F64Bytes;
using ::shapex::ipc::testing::VmSide;
using ::shapex::ipc::testing::WireTestProgram;
using ::shapex_testing::IsError;
using ::testing::HasSubstr;

constexpr size_t kSmall = 16;  // threshold used by most tests

WireValue BigString() { return WireValue::String(std::string(kSmall, 's')); }
WireValue BigVec() {
  return WireValue::TypedArray(engine::ElemKind::kI32, std::vector<uint8_t>(kSmall, 1));
}
WireValue BigMatrix() { return WireValue::Matrix(1, 2, F64Bytes({1.0, 2.0})); }

SchemaPtr Holder() {
  return std::make_shared<WireTypeSchema>(
      WireTypeSchema{WireTypeSchema::Kind::kStruct, "Holder", {"a"}, {}});
}

SchemaPtr Wrap() {
  return std::make_shared<WireTypeSchema>(
      WireTypeSchema{WireTypeSchema::Kind::kEnum, "Wrap", {"W"}, {1}});
}

TEST(SidecarTest, SmallValuesStayInline) {
  WireValue v = WireValue::Array({WireValue::String(std::string(kSmall - 1, 'x')),
                                  WireValue::TypedArray(engine::ElemKind::kU8, {1, 2})});
  WireValue before = v;
  EXPECT_TRUE(ExtractSidecars(&v, kSmall).empty());
  EXPECT_EQ(v, before);
}

TEST(SidecarTest, ExtractsAtEveryDepthButNotMapKeys) {
  engine::FunctionHash h{};
  std::vector<WireValue> args = {
      BigString(),
      WireValue::Array({WireValue::Int(1), BigVec()}),
      WireValue::Map({{BigString(), BigMatrix()}}),
      WireValue::Struct(Holder(), {BigString()}),
      WireValue::Enum(Wrap(), 0, {BigVec()}),
      WireValue::Some(WireValue::Ok(BigString())),
      WireValue::Closure(h, {BigMatrix()}),
  };
  std::vector<WireValue> original = args;
  std::vector<Sidecar> sidecars = ExtractSidecars(&args, kSmall);
  ASSERT_EQ(sidecars.size(), 7u);
  for (uint32_t i = 0; i < sidecars.size(); ++i) EXPECT_EQ(sidecars[i].id, i) << "depth-first ids";
  EXPECT_EQ(args[0].kind, WireKind::kSidecarRef);
  EXPECT_EQ(args[1].children[1].kind, WireKind::kSidecarRef);
  EXPECT_EQ(args[2].children[0].kind, WireKind::kString) << "map keys stay inline";
  EXPECT_EQ(args[2].children[1].kind, WireKind::kSidecarRef);
  EXPECT_EQ(args[3].children[0].kind, WireKind::kSidecarRef);
  EXPECT_EQ(args[4].children[0].kind, WireKind::kSidecarRef);
  EXPECT_EQ(args[5].children[0].children[0].kind, WireKind::kSidecarRef);
  EXPECT_EQ(args[6].children[0].kind, WireKind::kSidecarRef);

  const WireSidecarRef& vec = args[1].children[1].sidecar();
  EXPECT_EQ(vec.kind, SidecarKind::kTypedArray);
  EXPECT_EQ(vec.elem, engine::ElemKind::kI32);
  EXPECT_EQ(vec.length, kSmall);
  EXPECT_EQ(vec.checksum, SidecarChecksum(sidecars[vec.id].bytes));
  const WireSidecarRef& m = args[2].children[1].sidecar();
  EXPECT_EQ(m.kind, SidecarKind::kMatrix);
  EXPECT_EQ(m.rows, 1u);
  EXPECT_EQ(m.cols, 2u);

  ASSERT_OK(ReassembleSidecars(&args, std::move(sidecars)));
  EXPECT_EQ(args, original);
}

class ReassemblyErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    value_ = WireValue::Array({BigVec(), BigString()});
    sidecars_ = ExtractSidecars(&value_, kSmall);
    ASSERT_EQ(sidecars_.size(), 2u);
  }
  Status Reassemble() { return ReassembleSidecars(&value_, sidecars_); }

  WireValue value_;
  std::vector<Sidecar> sidecars_;
};

TEST_F(ReassemblyErrors, IntactSetWorks) { EXPECT_OK(Reassemble()); }

TEST_F(ReassemblyErrors, MissingSidecar) {
  sidecars_.pop_back();
  EXPECT_THAT(Reassemble(), IsError(ErrorKind::kProtocolError));
}

TEST_F(ReassemblyErrors, WrongKind) {
  sidecars_[0].kind = SidecarKind::kString;
  EXPECT_THAT(Reassemble(), IsError(ErrorKind::kProtocolError));
}

TEST_F(ReassemblyErrors, WrongLength) {
  sidecars_[1].bytes.push_back('s');
  EXPECT_THAT(Reassemble(), IsError(ErrorKind::kProtocolError));
}

TEST_F(ReassemblyErrors, BadChecksum) {
  sidecars_[0].bytes[3] ^= 0x40;
  Status s = Reassemble();
  EXPECT_THAT(s, IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(s.message(), HasSubstr("checksum"));
}

TEST_F(ReassemblyErrors, DuplicateIds) {
  sidecars_.push_back(sidecars_[0]);
  EXPECT_THAT(Reassemble(), IsError(ErrorKind::kProtocolError));
}

TEST_F(ReassemblyErrors, UnusedSidecar) {
  sidecars_.push_back(Sidecar{9, SidecarKind::kString, {1}, nullptr});
  EXPECT_THAT(Reassemble(), IsError(ErrorKind::kProtocolError));
}

TEST_F(ReassemblyErrors, ReferencedTwice) {
  value_.children.push_back(value_.children[0]);
  EXPECT_THAT(Reassemble(), IsError(ErrorKind::kProtocolError));
}

TEST_F(ReassemblyErrors, ShapeInconsistentWithBytes) {
  WireSidecarRef ref = value_.children[0].sidecar();
  ref.elem = engine::ElemKind::kF64;  // 16 bytes of i32 are 2 f64: fine; 12 would not be
  sidecars_[0].bytes.resize(12);
  ref.length = 12;
  ref.checksum = SidecarChecksum(sidecars_[0].bytes);
  value_.children[0] = WireValue::SidecarRef(ref);
  EXPECT_THAT(Reassemble(), IsError(ErrorKind::kProtocolError));
}

// Value in one Vm -> args with sidecars -> Call + Sidecar messages -> reassembled -> second Vm.
TEST(SidecarTest, LargeValuesTravelThroughSidecarMessages) {
  WireTestProgram p(R"(
    function big() {
      var v = Vec::f64(262144)
      for i in 0..262144 { v[i] = i * 0.5 }
      [v, Matrix::zeros(400, 400), "x".repeat(1 << 20), 7]
    }
  )");
  VmSide sender(p), receiver(p);
  ASSERT_OK_AND_ASSIGN(engine::Value original, sender.Call("big"));
  std::string printed = engine::ValueToString(original, true);
  ASSERT_OK_AND_ASSIGN(WireValue w, ToWire(original, p.to_wire()));

  RemoteCallRequest request;
  request.function_name = "f";
  request.arguments = {w};
  std::vector<Sidecar> sidecars = ExtractSidecars(&request.arguments);
  ASSERT_EQ(sidecars.size(), 3u);
  std::vector<uint8_t> call_bytes = EncodeMessage(request);
  EXPECT_LT(call_bytes.size(), 1024u) << "the call itself stays small";

  std::vector<Sidecar> received;
  for (const Sidecar& s : sidecars) {
    ASSERT_OK_AND_ASSIGN(WireMessage m, DecodeMessage(EncodeMessage(s)));
    ASSERT_TRUE(std::holds_alternative<Sidecar>(m));
    received.push_back(std::get<Sidecar>(std::move(m)));
  }
  ASSERT_OK_AND_ASSIGN(WireMessage m, DecodeMessage(call_bytes));
  RemoteCallRequest got = std::get<RemoteCallRequest>(std::move(m));
  ASSERT_OK(ReassembleSidecars(&got.arguments, std::move(received)));
  ASSERT_EQ(got.arguments.size(), 1u);
  EXPECT_EQ(got.arguments[0], w);
  ASSERT_OK_AND_ASSIGN(engine::Value rebuilt, receiver.FromWire(got.arguments[0]));
  EXPECT_EQ(engine::ValueToString(rebuilt, true), printed);
}

}  // namespace
}  // namespace shapex::ipc
