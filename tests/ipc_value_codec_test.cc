// Tests for value_codec.h: round trips of hand-built values, determinism, schema sharing, and
// the decoder's handling of malformed, truncated, oversized and deeply nested input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <msgpack.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "shapex/ipc/value_codec.h"
#include "testing/status_matchers.h"
#include "testing/wire_test_util.h"

namespace shapex::ipc {
namespace {

using ::shapex::ipc::testing::F64Bytes;
using ::shapex_testing::IsError;
using ::testing::HasSubstr;

using MsgPacker = msgpack::packer<msgpack::sbuffer>;

// Bytes written by `body` with msgpack-c's own packer.
std::vector<uint8_t> Pack(const std::function<void(MsgPacker&)>& body) {
  msgpack::sbuffer buf;
  MsgPacker pk(buf);
  body(pk);
  return std::vector<uint8_t>(buf.data(), buf.data() + buf.size());
}

// A value document [schemas, value] with a Point struct schema and a Shape enum schema.
std::vector<uint8_t> Doc(const std::function<void(MsgPacker&)>& value) {
  return Pack([&](MsgPacker& pk) {
    pk.pack_array(2);
    pk.pack_array(2);
    pk.pack_array(4);
    pk.pack(0);
    pk.pack(std::string("Point"));
    pk.pack(std::vector<std::string>{"x", "y"});
    pk.pack_array(0);
    pk.pack_array(4);
    pk.pack(1);
    pk.pack(std::string("Shape"));
    pk.pack(std::vector<std::string>{"Circle", "Empty"});
    pk.pack(std::vector<uint32_t>{1, 0});
    value(pk);
  });
}

void PackHash(MsgPacker& pk, size_t size) {
  std::string bytes(size, '\x11');
  pk.pack_bin(static_cast<uint32_t>(size));
  pk.pack_bin_body(bytes.data(), static_cast<uint32_t>(size));
}

SchemaPtr Point() {
  return std::make_shared<WireTypeSchema>(
      WireTypeSchema{WireTypeSchema::Kind::kStruct, "Point", {"x", "y"}, {}});
}

SchemaPtr Shape() {
  return std::make_shared<WireTypeSchema>(
      WireTypeSchema{WireTypeSchema::Kind::kEnum, "Shape", {"Circle", "Empty"}, {1, 0}});
}

engine::FunctionHash Hash(uint8_t fill) {
  engine::FunctionHash h;
  h.fill(fill);
  return h;
}

std::vector<WireValue> Samples() {
  WireSidecarRef typed{3, SidecarKind::kTypedArray, engine::ElemKind::kI32, 0, 0, 400, 77};
  WireSidecarRef matrix{4, SidecarKind::kMatrix, engine::ElemKind::kF64, 2, 3, 48, 78};
  WireSidecarRef text{5, SidecarKind::kString, engine::ElemKind::kF64, 0, 0, 9, 79};
  return {
      WireValue::None(),
      WireValue::Bool(false),
      WireValue::Int(INT64_MIN),
      WireValue::Int(INT64_MAX),
      WireValue::Number(-0.0),
      WireValue::Number(2.0),
      WireValue::Number(std::numeric_limits<double>::quiet_NaN()),
      WireValue::String(std::string("nul\0byte", 8)),
      WireValue::Array({WireValue::Int(1), WireValue::Array({})}),
      WireValue::Map({{WireValue::String("a"), WireValue::Int(1)},
                      {WireValue::Int(1), WireValue::None()},
                      {WireValue::Bool(true), WireValue::Number(1)}}),
      WireValue::Struct(Point(), {WireValue::Number(1), WireValue::Number(2)}),
      WireValue::Enum(Shape(), 0, {WireValue::Number(1.5)}),
      WireValue::Enum(Shape(), 1, {}),
      WireValue::Some(WireValue::Int(3)),
      WireValue::Ok(WireValue::String("x")),
      WireValue::Err(WireValue::None()),
      WireValue::Range({-5, 5, 2, true}),
      WireValue::Function(Hash(7)),
      WireValue::Native("math.sqrt"),
      WireValue::Closure(Hash(8), {WireValue::Int(1), WireValue::String("c")}),
      WireValue::TypedArray(engine::ElemKind::kI16, {1, 0, 255, 255}),
      WireValue::TypedArray(engine::ElemKind::kBool, {1, 0}),
      WireValue::Matrix(1, 2, F64Bytes({1.5, -2})),
      WireValue::Matrix(0, 7, {}),
      WireValue::SidecarRef(typed),
      WireValue::SidecarRef(matrix),
      WireValue::SidecarRef(text),
  };
}

TEST(ValueCodecTest, EveryKindRoundTripsAndEncodesDeterministically) {
  for (const WireValue& v : Samples()) {
    SCOPED_TRACE(DescribeWire(v));
    std::vector<uint8_t> bytes = EncodeValue(v);
    ASSERT_OK_AND_ASSIGN(WireValue back, DecodeValue(bytes));
    EXPECT_EQ(back, v);
    EXPECT_EQ(EncodeValue(back), bytes);
  }
  WireValue all = WireValue::Array(Samples());
  ASSERT_OK_AND_ASSIGN(WireValue back, DecodeValue(EncodeValue(all)));
  EXPECT_EQ(back, all);
}

TEST(ValueCodecTest, IntegralNumbersStayNumbers) {
  ASSERT_OK_AND_ASSIGN(WireValue back, DecodeValue(EncodeValue(WireValue::Number(1.0))));
  EXPECT_EQ(back.kind, WireKind::kNumber);
  ASSERT_OK_AND_ASSIGN(back, DecodeValue(EncodeValue(WireValue::Number(-0.0))));
  EXPECT_TRUE(std::signbit(back.as_number()));
}

TEST(ValueCodecTest, SchemasAreSentOncePerDocument) {
  std::vector<WireValue> points;
  for (int i = 0; i < 100; ++i)
    points.push_back(WireValue::Struct(Point(), {WireValue::Int(i), WireValue::Int(i)}));
  std::vector<uint8_t> bytes = EncodeValue(WireValue::Array(points));
  std::string text(bytes.begin(), bytes.end());
  EXPECT_EQ(text.find("Point"), text.rfind("Point")) << "schema name appears once";
  ASSERT_OK_AND_ASSIGN(WireValue back, DecodeValue(bytes));
  ASSERT_EQ(back.children.size(), 100u);
  EXPECT_EQ(back.children[0].type().schema, back.children[99].type().schema)
      << "decoded values share one schema object";
}

TEST(ValueCodecTest, SchemaListRoundTrips) {
  std::vector<WireTypeSchema> schemas = {*Point(), *Shape()};
  ASSERT_OK_AND_ASSIGN(std::vector<WireTypeSchema> back, DecodeSchemas(EncodeSchemas(schemas)));
  EXPECT_EQ(back, schemas);
}

TEST(ValueCodecTest, HandWrittenDocumentDecodes) {
  ASSERT_OK_AND_ASSIGN(WireValue v, DecodeValue(Doc([](MsgPacker& pk) {
                         pk.pack_array(4);
                         pk.pack(3);  // struct
                         pk.pack(0);  // Point
                         pk.pack(1.5);
                         pk.pack_int64(2);
                       })));
  ASSERT_EQ(v.kind, WireKind::kStruct);
  EXPECT_EQ(v.type().schema->name, "Point");
  EXPECT_EQ(v.children[1], WireValue::Int(2));
}

// ---- malformed input ----

TEST(ValueCodecCorruption, EmptyTruncatedAndTrailingBytes) {
  EXPECT_THAT(DecodeValue({}), IsError(ErrorKind::kProtocolError));
  std::vector<uint8_t> bytes = EncodeValue(WireValue::Array(Samples()));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = DecodeValue(std::span<const uint8_t>(bytes.data(), n));
    ASSERT_THAT(r, IsError(ErrorKind::kProtocolError)) << "prefix of " << n << " bytes";
  }
  bytes.push_back(0xc0);
  EXPECT_THAT(DecodeValue(bytes).error().message(), HasSubstr("trailing"));
}

TEST(ValueCodecCorruption, EveryFlippedByteIsHandled) {
  std::vector<uint8_t> bytes = EncodeValue(WireValue::Array(Samples()));
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t x : {0x01, 0x80, 0xff}) {
      std::vector<uint8_t> copy = bytes;
      copy[i] ^= x;
      auto r = DecodeValue(copy);  // must not crash; a success must re-encode stably
      if (r) {
        ASSERT_OK_AND_ASSIGN(WireValue again, DecodeValue(EncodeValue(*r)));
        EXPECT_EQ(EncodeValue(again), EncodeValue(*r));
      } else {
        EXPECT_EQ(r.error().kind(), ErrorKind::kProtocolError);
      }
    }
  }
}

struct BadDoc {
  const char* name;
  std::function<void(MsgPacker&)> value;
  const char* message;  // a substring of the error
};

void PrintTo(const BadDoc& c, std::ostream* os) { *os << c.name; }

const BadDoc kBadDocs[] = {
    {"UnknownTag", [](MsgPacker& pk) { pk.pack(std::vector<int>{99}); }, "unknown value tag"},
    {"EmptyCompound", [](MsgPacker& pk) { pk.pack_array(0); }, "expected 1.."},
    {"TagNotInt", [](MsgPacker& pk) { pk.pack(std::vector<std::string>{"x"}); }, "value tag"},
    {"UintTooBig", [](MsgPacker& pk) { pk.pack_uint64(UINT64_MAX); }, "does not fit"},
    {"BinAsValue", [](MsgPacker& pk) { PackHash(pk, 3); }, "unexpected MessagePack bin"},
    {"MapAsValue", [](MsgPacker& pk) { pk.pack_map(0); }, "unexpected MessagePack map"},
    {"StructSchemaOutOfRange",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{3, 5});
     },
     "out of range"},
    {"StructFieldCount",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{3, 0, 1});
     },
     "1 fields, expected 2"},
    {"StructWithEnumSchema",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{3, 1, 1});
     },
     "not a struct schema"},
    {"EnumVariantOutOfRange",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{4, 1, 2});
     },
     "out of range"},
    {"EnumPayloadCount",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{4, 1, 0});
     },
     "0 payload values, expected 1"},
    {"MapOddCount",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{2, 1});
     },
     "odd"},
    {"MapFloatKey",
     [](MsgPacker& pk) {
       pk.pack_array(3);
       pk.pack(2);
       pk.pack(1.5);
       pk.pack(1);
     },
     "map key"},
    {"MapDuplicateKey",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{2, 1, 0, 1, 0});
     },
     "duplicate"},
    {"SomeArity",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{5, 1, 2});
     },
     "expected 1"},
    {"RangeStepZero",
     [](MsgPacker& pk) {
       pk.pack_array(5);
       pk.pack(8);
       pk.pack(0);
       pk.pack(5);
       pk.pack(0);
       pk.pack(false);
     },
     "step"},
    {"RangeArity",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{8, 0, 5});
     },
     "expected 4"},
    {"ShortHash",
     [](MsgPacker& pk) {
       pk.pack_array(2);
       pk.pack(9);
       PackHash(pk, 31);
     },
     "32 bytes"},
    {"TypedArrayElemKind",
     [](MsgPacker& pk) {
       pk.pack_array(3);
       pk.pack(12);
       pk.pack(8);
       PackHash(pk, 8);
     },
     "element kind"},
    {"TypedArrayPartialElement",
     [](MsgPacker& pk) {
       pk.pack_array(3);
       pk.pack(12);
       pk.pack(0);
       PackHash(pk, 12);
     },
     "whole number"},
    {"TypedArrayBadBool",
     [](MsgPacker& pk) {
       pk.pack_array(3);
       pk.pack(12);
       pk.pack(7);
       PackHash(pk, 2);
     },
     "bool"},
    {"MatrixSize",
     [](MsgPacker& pk) {
       pk.pack_array(4);
       pk.pack(13);
       pk.pack(2);
       pk.pack(2);
       PackHash(pk, 24);
     },
     "does not match"},
    {"MatrixOverflow",
     [](MsgPacker& pk) {
       pk.pack_array(4);
       pk.pack(13);
       pk.pack_uint64(uint64_t{1} << 62);
       pk.pack(4);
       PackHash(pk, 0);
     },
     "does not match"},
    {"SidecarKind",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{14, 0, 3, 0, 0});
     },
     "sidecar kind"},
    {"SidecarTypedLength",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{14, 0, 1, 7, 0, 0});
     },
     "whole number"},
    {"SidecarMatrixShape",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{14, 0, 2, 8, 0, 2, 2});
     },
     "does not match"},
    {"SidecarFieldCount",
     [](MsgPacker& pk) {
       pk.pack(std::vector<int>{14, 0, 0, 8, 0, 1});
     },
     "wrong number"},
    {"Ext",
     [](MsgPacker& pk) {
       pk.pack_ext(1, 1);
       pk.pack_ext_body("x", 1);
     },
     "ext"},
};

class BadDocTest : public ::testing::TestWithParam<BadDoc> {};

TEST_P(BadDocTest, IsAProtocolError) {
  auto r = DecodeValue(Doc(GetParam().value));
  ASSERT_THAT(r, IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(r.error().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(ValueCodecCorruption, BadDocTest, ::testing::ValuesIn(kBadDocs),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ValueCodecCorruption, BadSchemaTables) {
  auto table = [](const std::function<void(MsgPacker&)>& schema) {
    return Pack([&](MsgPacker& pk) {
      pk.pack_array(2);
      pk.pack_array(1);
      schema(pk);
      pk.pack_nil();
    });
  };
  auto schema = [](int kind, std::vector<std::string> names, std::vector<uint32_t> arity) {
    return [=](MsgPacker& pk) {
      pk.pack_array(4);
      pk.pack(kind);
      pk.pack(std::string("T"));
      pk.pack(names);
      pk.pack(arity);
    };
  };
  EXPECT_THAT(DecodeValue(table(schema(2, {}, {}))), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeValue(table(schema(0, {"a", "a"}, {}))), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeValue(table(schema(0, {"a"}, {1}))), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeValue(table(schema(1, {"A", "B"}, {1}))), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeValue(table(schema(1, {"A"}, {256}))), IsError(ErrorKind::kProtocolError));
  EXPECT_OK(DecodeValue(table(schema(1, {"A"}, {255}))));
  EXPECT_THAT(DecodeValue(table([](MsgPacker& pk) { pk.pack(1); })),
              IsError(ErrorKind::kProtocolError));
}

TEST(ValueCodecCorruption, OversizeLengthsFailBeforeAllocating) {
  // Headers that claim huge containers or byte strings in a few bytes of input.
  const std::vector<std::vector<uint8_t>> inputs = {
      {0xdd, 0xff, 0xff, 0xff, 0xff},              // array32 of 2^32-1 entries
      {0x92, 0x90, 0xdd, 0x7f, 0xff, 0xff, 0xff},  // [[], array32 2^31-1]
      {0xdf, 0xff, 0xff, 0xff, 0xff},              // map32
      {0xdb, 0xff, 0xff, 0xff, 0xff, 0x61},        // str32
      {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00},        // bin32
      {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},        // ext32
  };
  for (const auto& in : inputs) {
    auto r = DecodeValue(in);
    EXPECT_THAT(r, IsError(ErrorKind::kProtocolError));
  }
  // Nested containers each claiming as many entries as the input has bytes.
  std::vector<uint8_t> nested;
  for (int i = 0; i < 60; ++i) nested.insert(nested.end(), {0xdc, 0x01, 0x00});  // array16 256
  EXPECT_THAT(DecodeValue(nested), IsError(ErrorKind::kProtocolError));
}

TEST(ValueCodecCorruption, DeepNesting) {
  auto nested_arrays = [](int levels) {
    return Doc([levels](MsgPacker& pk) {
      for (int i = 0; i < levels - 1; ++i) {
        pk.pack_array(2);
        pk.pack(1);
      }
      pk.pack(std::vector<int>{1});
    });
  };
  EXPECT_OK(DecodeValue(nested_arrays(kMaxWireDepth)));
  EXPECT_THAT(DecodeValue(nested_arrays(kMaxWireDepth + 1)), IsError(ErrorKind::kProtocolError));
  // A million nested fixarrays: rejected without recursing.
  std::vector<uint8_t> deep(1000000, 0x91);
  deep.push_back(0xc0);
  EXPECT_THAT(DecodeValue(deep), IsError(ErrorKind::kProtocolError));
}

TEST(ValueCodecCorruption, NotADocument) {
  EXPECT_THAT(DecodeValue(Pack([](MsgPacker& pk) { pk.pack(1); })),
              IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeValue(Pack([](MsgPacker& pk) { pk.pack(std::vector<int>{1}); })),
              IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(DecodeValue(std::vector<uint8_t>{0xc1}), IsError(ErrorKind::kProtocolError));
}

TEST(ValueCodecTest, RefsAndCellsRoundTrip) {
  WireValue v = WireValue::Array({WireValue::Array({WireValue::Int(1)}), WireValue::Ref(1),
                                  WireValue::Ref(0)});
  std::vector<uint8_t> bytes = EncodeValue(v);
  ASSERT_OK_AND_ASSIGN(WireValue back, DecodeValue(bytes));
  EXPECT_EQ(back, v);
  engine::FunctionHash h{};
  h[0] = 7;
  WireValue c = WireValue::Array({WireValue::Closure(h, {WireValue::Cell(WireValue::Int(5))}),
                                  WireValue::Closure(h, {WireValue::Ref(2)})});
  ASSERT_OK_AND_ASSIGN(WireValue cback, DecodeValue(EncodeValue(c)));
  EXPECT_EQ(cback, c);
}

TEST(ValueCodecTest, MalformedRefsAndCellsAreProtocolErrors) {
  // [schemas, [15]] , [15, -1], [15, huge], [16], [16, 1, 2]
  const std::vector<std::vector<uint8_t>> bad = {
      {0x92, 0x90, 0x91, 0x0f},
      {0x92, 0x90, 0x92, 0x0f, 0xff},
      {0x92, 0x90, 0x92, 0x0f, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
      {0x92, 0x90, 0x91, 0x10},
      {0x92, 0x90, 0x93, 0x10, 0x01, 0x02},
  };
  for (const auto& b : bad) EXPECT_THAT(DecodeValue(b), IsError(ErrorKind::kProtocolError));
}

}  // namespace
}  // namespace shapex::ipc
