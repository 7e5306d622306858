// Tests for wire_value.h and type_registry.h: Value -> WireValue -> bytes -> WireValue -> Value
// for every value kind, the send-copy semantics, and every way ToWire/FromWire refuse a value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "shapex/engine/value.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/value_codec.h"
#include "shapex/ipc/wire_value.h"
#include "testing/status_matchers.h"
#include "testing/wire_test_util.h"

namespace shapex::ipc {
namespace {

using ::shapex::ipc::testing::F64Bytes;
using ::shapex::ipc::testing::VmSide;
using ::shapex::ipc::testing::WireTestProgram;
using ::shapex_testing::IsError;

constexpr char kPrelude[] = R"(
type Point { x: number, y: number }
enum Shape { Circle(number), Rect(number, number), Empty }
impl Point { function len(self) { math.sqrt(self.x * self.x + self.y * self.y) } }
function add(a: int, b: int) -> int { a + b }
function make_closure(k) { |x| x + k }
function counter() { var n = 0; |k| { n = n + k; n } }
function apply(f, x) { f(x) }
function point_len(p) { p.len() }
function get_x(p) { p.x }
function is_circle(s) { match s { Shape::Circle(r) => r, _ => -1.0 } }
)";

std::string Source(const std::string& expr) {
  return std::string(kPrelude) + "function v() { " + expr + " }\n";
}

struct KindCase {
  const char* name;
  const char* expr;
  WireKind kind;
};

void PrintTo(const KindCase& c, std::ostream* os) { *os << c.name; }

const KindCase kKindCases[] = {
    {"None", "None", WireKind::kNone},
    {"Bool", "true", WireKind::kBool},
    {"Int", "-7", WireKind::kInt},
    {"IntMin", "-9223372036854775807 - 1", WireKind::kInt},
    {"Number", "3.5", WireKind::kNumber},
    {"NumberSpecial", "[1e300, -0.0, math.nan, math.inf, -math.inf]", WireKind::kArray},
    {"String", R"("a\nb\"c é")", WireKind::kString},
    {"Array", R"([1, "a", 2.0, [], [[None]]])", WireKind::kArray},
    {"Map", R"({"a": 1, 2: "b", true: None, false: [1]})", WireKind::kMap},
    {"EmptyMap", "{}", WireKind::kMap},
    {"Struct", "Point { x: 1.0, y: 2.0 }", WireKind::kStruct},
    {"EnumPayload", "Shape::Rect(1.0, 2.0)", WireKind::kEnum},
    {"EnumUnit", "Shape::Empty", WireKind::kEnum},
    {"Some", "Some(3)", WireKind::kSome},
    {"Ok", R"(Ok("x"))", WireKind::kOk},
    {"Err", R"(Err("bad"))", WireKind::kErr},
    {"Range", "0..5", WireKind::kRange},
    {"RangeStep", "(0..=10).step(2)", WireKind::kRange},
    {"Function", "add", WireKind::kFunction},
    {"Native", "math.sqrt", WireKind::kNative},
    {"Closure", "make_closure(10)", WireKind::kClosure},
    {"VecF64", "Vec::f64([1.0, 2.5])", WireKind::kTypedArray},
    {"VecF32", "Vec::f32([1.5, -2.0])", WireKind::kTypedArray},
    {"VecI64", "Vec::i64([5, -9223372036854775807])", WireKind::kTypedArray},
    {"VecI32", "Vec::i32([1, -2])", WireKind::kTypedArray},
    {"VecI16", "Vec::i16([-3])", WireKind::kTypedArray},
    {"VecI8", "Vec::i8([-4])", WireKind::kTypedArray},
    {"VecU8", "Vec::u8([255, 0])", WireKind::kTypedArray},
    {"VecBool", "Vec::bool([true, false])", WireKind::kTypedArray},
    {"VecEmpty", "Vec::f64(0)", WireKind::kTypedArray},
    {"Matrix", "Matrix::from(2, 2, [1.0, 2.0, 3.0, 4.0])", WireKind::kMatrix},
    {"Nested", R"({"p": [Point { x: 0.5, y: -1.0 }, Some(Shape::Circle(2.0))], "f": [add, 1..3]})",
     WireKind::kMap},
};

class KindRoundTrip : public ::testing::TestWithParam<KindCase> {};

TEST_P(KindRoundTrip, PrintsIdenticallyInASecondVm) {
  const KindCase& c = GetParam();
  WireTestProgram p(Source(c.expr));
  VmSide sender(p), receiver(p);
  ASSERT_OK_AND_ASSIGN(engine::Value original, sender.Call("v"));
  std::string printed = engine::ValueToString(original, /*quoted=*/true);
  ASSERT_OK_AND_ASSIGN(WireValue wire, ToWire(original, p.to_wire()));
  EXPECT_EQ(wire.kind, c.kind);
  std::vector<uint8_t> bytes = EncodeValue(wire);
  ASSERT_OK_AND_ASSIGN(WireValue decoded, DecodeValue(bytes));
  EXPECT_EQ(decoded, wire);
  EXPECT_EQ(EncodeValue(decoded), bytes) << "encoding is deterministic";
  ASSERT_OK_AND_ASSIGN(engine::Value rebuilt, receiver.FromWire(decoded));
  EXPECT_EQ(engine::ValueToString(rebuilt, /*quoted=*/true), printed);
  EXPECT_EQ(engine::TypeName(rebuilt), engine::TypeName(original));
}

INSTANTIATE_TEST_SUITE_P(AllKinds, KindRoundTrip, ::testing::ValuesIn(kKindCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(WireValueTest, ReceivedStructUsesTheProgramsTypeAndMethods) {
  WireTestProgram p(Source("Point { x: 3.0, y: 4.0 }"));
  VmSide a(p), b(p);
  ASSERT_OK_AND_ASSIGN(WireValue w, a.CallToWire("v"));
  ASSERT_OK_AND_ASSIGN(engine::Value point, b.FromWire(w));
  ASSERT_EQ(point.type, engine::Type::kStruct);
  int index = -1;
  for (size_t i = 0; i < p.program().structs.size(); ++i)
    if (p.program().structs[i]->name == "Point") index = static_cast<int>(i);
  ASSERT_GE(index, 0);
  EXPECT_EQ(engine::AsStruct(point)->stype, p.program().structs[index].get());
  EXPECT_EQ(b.types().created_types(), 0u);
  ASSERT_OK_AND_ASSIGN(engine::Value len, b.Call("point_len", {point}));
  EXPECT_EQ(engine::ValueToString(len), "5.0");
}

TEST(WireValueTest, ReceivedEnumMatchesTheProgramsPatterns) {
  WireTestProgram p(Source("Shape::Circle(2.5)"));
  VmSide a(p), b(p);
  ASSERT_OK_AND_ASSIGN(WireValue w, a.CallToWire("v"));
  ASSERT_OK_AND_ASSIGN(engine::Value shape, b.FromWire(w));
  ASSERT_OK_AND_ASSIGN(engine::Value r, b.Call("is_circle", {shape}));
  EXPECT_EQ(engine::ValueToString(r), "2.5");
}

TEST(WireValueTest, ReceivedFunctionAndClosureCanBeCalled) {
  WireTestProgram p(Source("[add, make_closure(10)]"));
  VmSide a(p), b(p);
  ASSERT_OK_AND_ASSIGN(WireValue w, a.CallToWire("v"));
  ASSERT_EQ(w.children.size(), 2u);
  ASSERT_OK_AND_ASSIGN(engine::Value closure, b.FromWire(w.children[1]));
  ASSERT_OK_AND_ASSIGN(engine::Value r, b.Call("apply", {closure, engine::Value::Int(5)}));
  EXPECT_EQ(engine::ValueToString(r), "15");
}

TEST(WireValueTest, ClosureCapturesAreCopiedNotShared) {
  WireTestProgram p(Source("counter()"));
  VmSide a(p), b(p);
  ASSERT_OK_AND_ASSIGN(engine::Value original, a.Call("v"));
  engine::Vm::RootScope roots(a.vm());
  roots.Add(original);
  ASSERT_OK_AND_ASSIGN(WireValue w, ToWire(original, p.to_wire()));
  ASSERT_OK_AND_ASSIGN(engine::Value copy, b.FromWire(w));
  ASSERT_OK_AND_ASSIGN(engine::Value r1, b.Call("apply", {copy, engine::Value::Int(5)}));
  EXPECT_EQ(engine::ValueToString(r1), "5");
  // The sender's counter did not see the remote increment.
  ASSERT_OK_AND_ASSIGN(engine::Value r2, a.Call("apply", {original, engine::Value::Int(1)}));
  EXPECT_EQ(engine::ValueToString(r2), "1");
}

TEST(WireValueTest, SharedSubvaluesAreSentOnceAndStayShared) {
  WireTestProgram p(Source("let a = [1, 2]; [a, a]"));
  VmSide a(p), b(p);
  ASSERT_OK_AND_ASSIGN(WireValue w, a.CallToWire("v"));
  ASSERT_EQ(w.children.size(), 2u);
  EXPECT_EQ(w.children[0].kind, WireKind::kArray);
  ASSERT_EQ(w.children[1].kind, WireKind::kRef);
  EXPECT_EQ(w.children[1].ref(), 1u) << "the outer array is index 0, the shared one 1";
  ASSERT_OK_AND_ASSIGN(WireValue back, DecodeValue(EncodeValue(w)));
  EXPECT_EQ(back, w);
  ASSERT_OK_AND_ASSIGN(engine::Value v, b.FromWire(back));
  engine::ObjArray* outer = engine::AsArray(v);
  EXPECT_EQ(outer->items[0].as.o, outer->items[1].as.o) << "one object on the receiving side";
}

TEST(WireValueTest, CyclesRoundTrip) {
  WireTestProgram p(Source("let a = [1]; a.push(a); a"));
  VmSide a(p), b(p);
  ASSERT_OK_AND_ASSIGN(WireValue w, a.CallToWire("v"));
  ASSERT_EQ(w.children.size(), 2u);
  EXPECT_EQ(w.children[1], WireValue::Ref(0));
  ASSERT_OK_AND_ASSIGN(WireValue back, DecodeValue(EncodeValue(w)));
  ASSERT_OK_AND_ASSIGN(engine::Value v, b.FromWire(back));
  engine::ObjArray* arr = engine::AsArray(v);
  EXPECT_EQ(arr->items[1].as.o, v.as.o);
  EXPECT_EQ(engine::ValueToString(v, true), "[1, [...]]");
}

TEST(WireValueTest, ADagCrossesInLinearSize) {
  WireTestProgram p(Source("var a = [1]; for i in 0..40 { a = [a, a] }; a"));
  VmSide a(p), b(p);
  ASSERT_OK_AND_ASSIGN(WireValue w, a.CallToWire("v"));
  std::vector<uint8_t> bytes = EncodeValue(w);
  EXPECT_LT(bytes.size(), 41u * 8) << "41 arrays of two small entries";
  ASSERT_OK_AND_ASSIGN(WireValue back, DecodeValue(bytes));
  ASSERT_OK_AND_ASSIGN(engine::Value v, b.FromWire(back));
  int depth = 0;
  for (engine::Value cur = v; cur.type == engine::Type::kArray && engine::AsArray(cur)->items.size() == 2;
       cur = engine::AsArray(cur)->items[0]) {
    EXPECT_EQ(engine::AsArray(cur)->items[0].as.o, engine::AsArray(cur)->items[1].as.o);
    ++depth;
  }
  EXPECT_EQ(depth, 40);
}

TEST(WireValueTest, ClosuresSharingAVariableShareItsCell) {
  WireTestProgram p(Source("var n = 0; [|| { n = n + 1; n }, || n]"));
  VmSide a(p), b(p);
  ASSERT_OK_AND_ASSIGN(WireValue w, a.CallToWire("v"));
  ASSERT_EQ(w.children.size(), 2u);
  ASSERT_EQ(w.children[0].kind, WireKind::kClosure);
  ASSERT_EQ(w.children[0].children.size(), 1u);
  EXPECT_EQ(w.children[0].children[0].kind, WireKind::kCell);
  ASSERT_EQ(w.children[1].children.size(), 1u);
  EXPECT_EQ(w.children[1].children[0], WireValue::Ref(2)) << "array 0, closure 1, cell 2";
  ASSERT_OK_AND_ASSIGN(engine::Value v, b.FromWire(w));
  engine::ObjArray* arr = engine::AsArray(v);
  EXPECT_EQ(engine::AsClosure(arr->items[0])->cells[0], engine::AsClosure(arr->items[1])->cells[0]);
}

TEST(WireValueTest, RefsAndCellsOutOfPlaceAreArgumentErrors) {
  WireTestProgram p(Source("1"));
  VmSide b(p);
  EXPECT_THAT(b.FromWire(WireValue::Ref(0)), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(b.FromWire(WireValue::Array({WireValue::Ref(1)})),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(b.FromWire(WireValue::Cell(WireValue::Int(1))), IsError(ErrorKind::kArgumentError));
  // A Ref to a Cell outside a closure's captures.
  WireTestProgram q(Source("var n = 0; || n"));
  VmSide c(q), d(q);
  ASSERT_OK_AND_ASSIGN(WireValue closure, c.CallToWire("v"));
  WireValue pair = WireValue::Array({closure, WireValue::Ref(2)});
  EXPECT_THAT(d.FromWire(pair), IsError(ErrorKind::kArgumentError));
}

TEST(WireValueTest, EncodingAndDecodingPayFuelPerNode) {
  WireTestProgram p(Source("[1, [2, 3], \"x\"]"));
  VmSide a(p);
  ASSERT_OK_AND_ASSIGN(engine::Value v, a.Call("v"));
  ToWireContext ctx = p.to_wire();
  ctx.fuel = &a.vm();
  uint64_t before = a.vm().fuel_left();
  ASSERT_OK(ToWire(v, ctx));
  EXPECT_EQ(before - a.vm().fuel_left(), 6u) << "6 nodes";
  WireTestProgram q(Source("1"));
  engine::Vm small(q.program(), engine::Limits{.fuel = 3});
  TypeRegistry types(q.program());
  ProtoIndex protos = MakeProtoIndex(q.blobs().proto_hashes);
  FromWireContext from{&small, &protos, &types, /*charge_fuel=*/true};
  ASSERT_OK_AND_ASSIGN(WireValue w, ToWire(v, p.to_wire()));
  EXPECT_THAT(ipc::FromWire(w, from), IsError(ErrorKind::kResourceExhausted));
}

TEST(WireValueTest, DepthLimitIsExact) {
  // 64 nested arrays are fine; 65 are not.
  WireTestProgram ok(Source("var x = []; for i in 0..63 { x = [x] }; x"));
  VmSide a(ok);
  EXPECT_OK(a.CallToWire("v"));
  WireTestProgram deep(Source("var x = []; for i in 0..64 { x = [x] }; x"));
  VmSide b(deep);
  EXPECT_THAT(b.CallToWire("v"), IsError(ErrorKind::kArgumentError));
}

TEST(WireValueTest, FunctionWithoutHashIsAnArgumentError) {
  WireTestProgram p(Source("add"));
  VmSide a(p);
  ASSERT_OK_AND_ASSIGN(engine::Value f, a.Call("v"));
  EXPECT_THAT(ToWire(f, ToWireContext{&p.program(), {}}), IsError(ErrorKind::kArgumentError));
  WireTestProgram other("function add(a, b) { a + b }");
  EXPECT_THAT(ToWire(f, other.to_wire()), IsError(ErrorKind::kArgumentError));
}

// ---- FromWire refusals ----

class FromWireErrors : public ::testing::Test {
 protected:
  FromWireErrors() : p_(Source("None")), side_(p_) {}
  Status Rebuild(const WireValue& w) { return side_.FromWire(w).error(); }
  SchemaPtr PointSchema() {
    return std::make_shared<WireTypeSchema>(
        WireTypeSchema{WireTypeSchema::Kind::kStruct, "Point", {"x", "y"}, {}});
  }
  SchemaPtr ShapeSchema() {
    return std::make_shared<WireTypeSchema>(WireTypeSchema{
        WireTypeSchema::Kind::kEnum, "Shape", {"Circle", "Rect", "Empty"}, {1, 2, 0}});
  }
  engine::FunctionHash HashOf(const std::string& name) {
    for (size_t i = 0; i < p_.program().protos.size(); ++i)
      if (p_.program().protos[i]->name == name) return p_.blobs().proto_hashes[i];
    ADD_FAILURE() << "no proto " << name;
    return {};
  }

  WireTestProgram p_;
  VmSide side_;
};

TEST_F(FromWireErrors, UnknownFunctionHash) {
  engine::FunctionHash h{};
  h.fill(0xab);
  EXPECT_THAT(Rebuild(WireValue::Function(h)), IsError(ErrorKind::kFunctionNotFound));
  EXPECT_THAT(Rebuild(WireValue::Closure(h, {})), IsError(ErrorKind::kFunctionNotFound));
}

TEST_F(FromWireErrors, ClosureCaptureCountMustMatch) {
  engine::FunctionHash closure = HashOf("<closure>");
  EXPECT_THAT(Rebuild(WireValue::Closure(closure, {})), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Function(closure)), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Closure(HashOf("add"), {})), IsError(ErrorKind::kArgumentError));
}

TEST_F(FromWireErrors, StructAndEnumShapes) {
  EXPECT_THAT(Rebuild(WireValue::Struct(PointSchema(), {WireValue::Number(1)})),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Enum(ShapeSchema(), 3, {})), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Enum(ShapeSchema(), 1, {WireValue::Number(1)})),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Struct(nullptr, {})), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Enum(PointSchema(), 0, {})), IsError(ErrorKind::kArgumentError));
}

TEST_F(FromWireErrors, MapKeys) {
  EXPECT_THAT(Rebuild(WireValue::Map({{WireValue::Number(1.5), WireValue::None()}})),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Map({{WireValue::Int(1), WireValue::None()},
                                      {WireValue::Int(1), WireValue::None()}})),
              IsError(ErrorKind::kArgumentError));
}

TEST_F(FromWireErrors, BuffersAndRanges) {
  EXPECT_THAT(Rebuild(WireValue::TypedArray(engine::ElemKind::kF64, {1, 2, 3})),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::TypedArray(engine::ElemKind::kBool, {2})),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Matrix(2, 2, F64Bytes({1, 2, 3}))),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Matrix(UINT64_MAX, 2, {})), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Range({0, 5, 0, false})), IsError(ErrorKind::kArgumentError));
}

TEST_F(FromWireErrors, NativesSidecarsAndMalformedNodes) {
  EXPECT_THAT(Rebuild(WireValue::Native("math.nope")), IsError(ErrorKind::kMissingModuleFunction));
  EXPECT_THAT(Rebuild(WireValue::SidecarRef({})), IsError(ErrorKind::kProtocolError));
  WireValue bad;
  bad.kind = WireKind::kInt;  // no data
  EXPECT_THAT(Rebuild(bad), IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(Rebuild(WireValue::Array({bad})), IsError(ErrorKind::kArgumentError));
}

TEST_F(FromWireErrors, TooDeep) {
  WireValue v = WireValue::Array({});
  for (int i = 0; i < kMaxWireDepth; ++i) v = WireValue::Array({v});
  EXPECT_THAT(Rebuild(v), IsError(ErrorKind::kArgumentError));
  EXPECT_OK(side_.FromWire(v.children[0]));
}

TEST(WireValueTest, MemoryLimitIsResourceExhausted) {
  WireTestProgram p("function v() { None }");
  VmSide small(p, engine::Limits{.memory = 1 << 16});
  WireValue big = WireValue::TypedArray(engine::ElemKind::kU8, std::vector<uint8_t>(1 << 20));
  EXPECT_THAT(small.FromWire(big), IsError(ErrorKind::kResourceExhausted));
}

// ---- TypeRegistry ----

TEST(TypeRegistryTest, UnknownSchemaCreatesOneTypeWhoseFieldsTheProgramCanRead) {
  WireTestProgram p(Source("None"));
  VmSide side(p);
  auto schema = std::make_shared<WireTypeSchema>(
      WireTypeSchema{WireTypeSchema::Kind::kStruct, "Other", {"z", "x"}, {}});
  WireValue w = WireValue::Struct(schema, {WireValue::Int(1), WireValue::Int(2)});
  ASSERT_OK_AND_ASSIGN(engine::Value v, side.FromWire(w));
  EXPECT_EQ(engine::ValueToString(v), "Other { z: 1, x: 2 }");
  EXPECT_EQ(side.types().created_types(), 1u);
  ASSERT_OK_AND_ASSIGN(const engine::StructType* again, side.types().ResolveStruct(*schema));
  EXPECT_EQ(again, engine::AsStruct(v)->stype);
  ASSERT_OK_AND_ASSIGN(engine::Value x, side.Call("get_x", {v}));
  EXPECT_EQ(engine::ValueToString(x), "2");
}

TEST(TypeRegistryTest, SameNameDifferentFieldsIsADifferentType) {
  WireTestProgram p(Source("None"));
  TypeRegistry types(p.program());
  WireTypeSchema point{WireTypeSchema::Kind::kStruct, "Point", {"x", "y"}, {}};
  WireTypeSchema point3{WireTypeSchema::Kind::kStruct, "Point", {"x", "y", "z"}, {}};
  ASSERT_OK_AND_ASSIGN(const engine::StructType* a, types.ResolveStruct(point));
  ASSERT_OK_AND_ASSIGN(const engine::StructType* b, types.ResolveStruct(point3));
  EXPECT_NE(a, b);
  EXPECT_EQ(types.created_types(), 1u);
}

TEST(TypeRegistryTest, RejectsMalformedSchemas) {
  WireTestProgram p(Source("None"));
  TypeRegistry types(p.program());
  EXPECT_THAT(types.ResolveStruct({WireTypeSchema::Kind::kStruct, "", {}, {}}),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(types.ResolveStruct({WireTypeSchema::Kind::kStruct, "P", {"a", "a"}, {}}),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(types.ResolveEnum({WireTypeSchema::Kind::kEnum, "E", {"A"}, {}}),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(types.ResolveEnum({WireTypeSchema::Kind::kEnum, "E", {"A"}, {1000}}),
              IsError(ErrorKind::kArgumentError));
  EXPECT_THAT(types.ResolveEnum({WireTypeSchema::Kind::kStruct, "E", {"A"}, {}}),
              IsError(ErrorKind::kArgumentError));
}

// ToWireContext::borrow_threshold: large typed arrays and matrices point into the Vm's buffer
// (a view with fd -1 that keeps its owner alive) and encode exactly like copied ones.
TEST(WireValueTest, LargeArraysCanBeBorrowedInsteadOfCopied) {
  WireTestProgram p(Source("[Vec::f64(1000).fill(0.5), Matrix::zeros(10, 10), Vec::i32(3)]"));
  VmSide side(p);
  ASSERT_OK_AND_ASSIGN(engine::Value v, side.Call("v"));
  auto owner = std::make_shared<int>(7);
  ToWireContext borrowing = p.to_wire();
  borrowing.borrow_threshold = 800;
  borrowing.borrow_owner = owner;
  ASSERT_OK_AND_ASSIGN(WireValue borrowed, ToWire(v, borrowing));
  ASSERT_OK_AND_ASSIGN(WireValue copied, ToWire(v, p.to_wire()));
  const WireBuffer& array = borrowed.children[0].buffer();
  ASSERT_NE(array.segment, nullptr);
  EXPECT_EQ(array.segment->fd, -1);
  EXPECT_EQ(array.data().data(), engine::AsTypedArray(engine::AsArray(v)->items[0])->data)
      << "no copy";
  EXPECT_NE(borrowed.children[1].buffer().segment, nullptr);  // 800 bytes: at the threshold
  EXPECT_EQ(borrowed.children[2].buffer().segment, nullptr);  // 12 bytes: copied
  EXPECT_EQ(owner.use_count(), 4) << "ours, the context's, and one per borrowed view";
  EXPECT_EQ(borrowed, copied);
  EXPECT_EQ(EncodeValue(borrowed), EncodeValue(copied));
}

}  // namespace
}  // namespace shapex::ipc
