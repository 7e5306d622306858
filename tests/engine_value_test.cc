// Unit tests for value.cc / value_print.cc: printing, the insertion-ordered map, equality,
// hashing and comparison, and what walks of values cost (WalkBudget). Objects are built directly
// on the stack; a Vm is involved only to pay for budgeted walks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "shapex/engine/compiler.h"
#include "shapex/engine/natives.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"

namespace shapex::engine {
namespace {

std::string Print(const Value& v) { return ValueToString(v, /*quoted=*/false); }
std::string Quoted(const Value& v) { return ValueToString(v, /*quoted=*/true); }
std::string Num(double d) { return Print(Value::Number(d)); }

// Owns heap objects for a test; Value::Object() needs stable addresses.
class Objects {
 public:
  template <class T, class... Args>
  T* Make(Args&&... args) {
    auto obj = std::make_unique<T>(std::forward<Args>(args)...);
    T* raw = obj.get();
    owned_.push_back(std::unique_ptr<Obj, void (*)(Obj*)>(
        obj.release(), [](Obj* o) { delete static_cast<T*>(o); }));
    return raw;
  }
  Value Str(std::string s) { return Value::Object(Make<ObjString>(std::move(s))); }
  Value Array(std::vector<Value> items) {
    ObjArray* a = Make<ObjArray>();
    a->items = std::move(items);
    return Value::Object(a);
  }

 private:
  std::vector<std::unique_ptr<Obj, void (*)(Obj*)>> owned_;
};

// ---------------- printing ----------------

TEST(PrintNumberTest, ShortestRoundTripWithPointZero) {
  EXPECT_EQ(Num(10.0), "10.0");
  EXPECT_EQ(Num(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(Num(1e300), "1e+300");
  EXPECT_EQ(Num(1e16), "1e+16");
  EXPECT_EQ(Num(123456.0), "123456.0");
  EXPECT_EQ(Num(1e-7), "1e-07");
  EXPECT_EQ(Num(2.5), "2.5");
  EXPECT_EQ(Num(-3.0), "-3.0");
  EXPECT_EQ(Num(-0.0), "-0.0");
}

TEST(PrintNumberTest, NonFinite) {
  EXPECT_EQ(Num(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(Num(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(Num(std::nan("")), "nan");
  EXPECT_EQ(Num(-std::nan("")), "nan");  // no "-nan"
}

TEST(PrintNumberTest, F32UsesFloatShortestForm) {
  std::string s;
  AppendF32(&s, 0.1f);
  EXPECT_EQ(s, "0.1");
  s.clear();
  AppendF32(&s, 1.0f);
  EXPECT_EQ(s, "1.0");
  s.clear();
  AppendF32(&s, std::nanf(""));
  EXPECT_EQ(s, "nan");
}

TEST(PrintTest, Immediates) {
  EXPECT_EQ(Print(Value::Int(42)), "42");
  EXPECT_EQ(Print(Value::Int(INT64_MIN)), "-9223372036854775808");
  EXPECT_EQ(Print(Value::Bool(true)), "true");
  EXPECT_EQ(Print(Value::Bool(false)), "false");
  EXPECT_EQ(Print(Value::None()), "None");
}

TEST(PrintTest, StringsRawAtTopLevelQuotedInside) {
  Objects o;
  Value s = o.Str("a\"b");
  EXPECT_EQ(Print(s), "a\"b");
  EXPECT_EQ(Quoted(s), "\"a\\\"b\"");
  EXPECT_EQ(Print(o.Array({o.Str("a"), Value::Int(1)})), "[\"a\", 1]");
}

TEST(PrintTest, QuotedEscapes) {
  std::string out;
  AppendQuoted(&out, std::string_view("\n\t\r\\\"\0\x07\x1b\x7f", 9));
  EXPECT_EQ(out, "\"\\n\\t\\r\\\\\\\"\\0\\u{7}\\u{1b}\\u{7f}\"");
  out.clear();
  AppendQuoted(&out, "h\xc3\xa9 \xf0\x9f\x98\x80");  // UTF-8 passes through
  EXPECT_EQ(out, "\"h\xc3\xa9 \xf0\x9f\x98\x80\"");
}

TEST(PrintTest, ArraysAndMaps) {
  Objects o;
  EXPECT_EQ(Print(o.Array({})), "[]");
  EXPECT_EQ(Print(o.Array({Value::Int(1), Value::Number(2.0), o.Array({Value::None()})})),
            "[1, 2.0, [None]]");
  ObjMap* m = o.Make<ObjMap>();
  EXPECT_EQ(Print(Value::Object(m)), "{}");
  m->Set(o.Str("a"), Value::Int(1));
  m->Set(Value::Int(2), o.Str("b"));
  m->Set(Value::Bool(true), Value::Number(0.5));
  EXPECT_EQ(Print(Value::Object(m)), "{\"a\": 1, 2: \"b\", true: 0.5}");
}

TEST(PrintTest, StructsAndEnums) {
  Objects o;
  StructType point;
  point.name = "Point";
  point.field_names = {"x", "y"};
  ObjStruct* p = o.Make<ObjStruct>(&point, 2);
  p->fields = {Value::Number(1.0), Value::Number(2.0)};
  EXPECT_EQ(Print(Value::Object(p)), "Point { x: 1.0, y: 2.0 }");

  StructType empty;
  empty.name = "Empty";
  EXPECT_EQ(Print(Value::Object(o.Make<ObjStruct>(&empty, 0))), "Empty {}");

  EnumType shape;
  shape.name = "Shape";
  shape.variant_names = {"Circle", "Rect", "Dot"};
  shape.variant_arity = {1, 2, 0};
  ObjEnum* circle = o.Make<ObjEnum>(&shape, 0, 1);
  circle->payload = {Value::Number(1.0)};
  ObjEnum* rect = o.Make<ObjEnum>(&shape, 1, 2);
  rect->payload = {Value::Number(1.0), o.Str("w")};
  EXPECT_EQ(Print(Value::Object(circle)), "Shape::Circle(1.0)");
  EXPECT_EQ(Print(Value::Object(rect)), "Shape::Rect(1.0, \"w\")");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjEnum>(&shape, 2, 0))), "Shape::Dot");
}

TEST(PrintTest, OptionAndResult) {
  Objects o;
  ObjEnum* some = o.Make<ObjEnum>(OptionType(), kSomeVariant, 1);
  some->payload = {Value::Int(3)};
  ObjEnum* ok = o.Make<ObjEnum>(ResultType(), kOkVariant, 1);
  ok->payload = {o.Str("x")};
  ObjEnum* err = o.Make<ObjEnum>(ResultType(), kErrVariant, 1);
  err->payload = {o.Str("bad")};
  EXPECT_EQ(Print(Value::Object(some)), "Some(3)");
  EXPECT_EQ(Print(Value::Object(ok)), "Ok(\"x\")");
  EXPECT_EQ(Print(Value::Object(err)), "Err(\"bad\")");
  EXPECT_TRUE(OptionType()->builtin);
  EXPECT_EQ(ResultType()->variant_names[kErrVariant], "Err");
}

TEST(PrintTest, RangesAndFunctions) {
  Objects o;
  EXPECT_EQ(Print(Value::Object(o.Make<ObjRange>(0, 5, 1, false))), "0..5");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjRange>(0, 5, 1, true))), "0..=5");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjRange>(0, 10, 3, false))), "0..10 step 3");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjRange>(-2, 2, 1, false))), "-2..2");

  Proto add;
  add.name = "add";
  EXPECT_EQ(Print(Value::Object(o.Make<ObjFunction>(&add))), "<function add>");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjClosure>(&add, 0))), "<closure>");
  NativeDef print_def{"print", nullptr, 0, -1, false};
  EXPECT_EQ(Print(Value::Object(o.Make<ObjNative>(&print_def))), "<function print>");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjCell>(o.Str("in")))), "in");
  EXPECT_EQ(Print(o.Array({Value::Object(o.Make<ObjCell>(o.Str("in")))})), "[\"in\"]");
}

TEST(PrintTest, TypedArraysAndMatrices) {
  Objects o;
  ObjTypedArray* f = o.Make<ObjTypedArray>(ElemKind::kF64, 2);
  f->As<double>()[0] = 1.0;
  f->As<double>()[1] = 2.5;
  EXPECT_EQ(Print(Value::Object(f)), "Vec<f64>[1.0, 2.5]");
  ObjTypedArray* g = o.Make<ObjTypedArray>(ElemKind::kF32, 2);
  g->As<float>()[0] = 0.1f;
  g->As<float>()[1] = 1.0f;
  EXPECT_EQ(Print(Value::Object(g)), "Vec<f32>[0.1, 1.0]");
  ObjTypedArray* i = o.Make<ObjTypedArray>(ElemKind::kI32, 2);
  i->As<int32_t>()[0] = 1;
  i->As<int32_t>()[1] = -2;
  EXPECT_EQ(Print(Value::Object(i)), "Vec<i32>[1, -2]");
  ObjTypedArray* b = o.Make<ObjTypedArray>(ElemKind::kBool, 2);
  b->As<uint8_t>()[0] = 1;
  EXPECT_EQ(Print(Value::Object(b)), "Vec<bool>[true, false]");
  ObjTypedArray* u = o.Make<ObjTypedArray>(ElemKind::kU8, 1);
  u->As<uint8_t>()[0] = 255;
  EXPECT_EQ(Print(Value::Object(u)), "Vec<u8>[255]");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjTypedArray>(ElemKind::kI8, 0))), "Vec<i8>[]");

  ObjMatrix* m = o.Make<ObjMatrix>(2, 2);
  m->At(0, 0) = 1.0;
  m->At(0, 1) = 2.0;
  m->At(1, 0) = 3.0;
  m->At(1, 1) = 4.0;
  EXPECT_EQ(Print(Value::Object(m)), "Matrix(2x2)[[1.0, 2.0], [3.0, 4.0]]");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjMatrix>(1, 3))), "Matrix(1x3)[[0.0, 0.0, 0.0]]");
  EXPECT_EQ(Print(Value::Object(o.Make<ObjMatrix>(0, 0))), "Matrix(0x0)[]");
}

TEST(PrintTest, CyclesAndDeepNestingTerminate) {
  Objects o;
  Value a = o.Array({Value::Int(1)});
  AsArray(a)->items.push_back(a);
  EXPECT_EQ(Print(a), "[1, [...]]");

  ObjMap* m = o.Make<ObjMap>();
  m->Set(o.Str("self"), Value::Object(m));
  EXPECT_EQ(Print(Value::Object(m)), "{\"self\": {...}}");

  Value deep = o.Array({});
  for (int i = 0; i < 200; ++i) deep = o.Array({deep});
  std::string s = Print(deep);
  EXPECT_NE(s.find("[...]"), std::string::npos);
  EXPECT_LT(s.size(), 200u);
}

TEST(TypeNameTest, AllKinds) {
  Objects o;
  EXPECT_EQ(TypeName(Value::None()), "none");
  EXPECT_EQ(TypeName(Value::Int(1)), "int");
  EXPECT_EQ(TypeName(Value::Number(1)), "number");
  EXPECT_EQ(TypeName(Value::Bool(true)), "bool");
  EXPECT_EQ(TypeName(o.Str("")), "string");
  EXPECT_EQ(TypeName(o.Array({})), "array");
  EXPECT_EQ(TypeName(Value::Object(o.Make<ObjMap>())), "map");
  EXPECT_EQ(TypeName(Value::Object(o.Make<ObjEnum>(OptionType(), 0, 1))), "option");
  EXPECT_EQ(TypeName(Value::Object(o.Make<ObjEnum>(ResultType(), 1, 1))), "result");
  EXPECT_EQ(TypeName(Value::Object(o.Make<ObjRange>(0, 1, 1, false))), "range");
  EXPECT_EQ(TypeName(Value::Object(o.Make<ObjTypedArray>(ElemKind::kU8, 0))), "Vec<u8>");
  EXPECT_EQ(TypeName(Value::Object(o.Make<ObjMatrix>(1, 1))), "matrix");
  StructType point;
  point.name = "Point";
  EXPECT_EQ(TypeName(Value::Object(o.Make<ObjStruct>(&point, 0))), "Point");
  Proto f;
  EXPECT_EQ(TypeName(Value::Object(o.Make<ObjClosure>(&f, 0))), "function");
}

// ---------------- map ----------------

TEST(ObjMapTest, InsertUpdateKeepsOrder) {
  Objects o;
  ObjMap m;
  m.Set(o.Str("b"), Value::Int(1));
  m.Set(o.Str("a"), Value::Int(2));
  m.Set(Value::Int(7), Value::Int(3));
  m.Set(o.Str("b"), Value::Int(10));  // update in place, keeps its position
  EXPECT_EQ(m.count, 3u);
  EXPECT_EQ(Print(Value::Object(&m)), "{\"b\": 10, \"a\": 2, 7: 3}");
  ASSERT_NE(m.Find(o.Str("a")), nullptr);
  EXPECT_EQ(m.Find(o.Str("a"))->as.i, 2);
  EXPECT_EQ(m.Find(o.Str("zz")), nullptr);
}

TEST(ObjMapTest, IntBoolAndStringKeysAreDistinct) {
  Objects o;
  ObjMap m;
  m.Set(Value::Int(1), o.Str("int"));
  m.Set(Value::Bool(true), o.Str("bool"));
  m.Set(o.Str("1"), o.Str("string"));
  EXPECT_EQ(m.count, 3u);
  EXPECT_EQ(AsString(*m.Find(Value::Int(1)))->str, "int");
  EXPECT_EQ(AsString(*m.Find(Value::Bool(true)))->str, "bool");
  EXPECT_EQ(AsString(*m.Find(o.Str("1")))->str, "string");
  EXPECT_EQ(m.Find(Value::Bool(false)), nullptr);
}

TEST(ObjMapTest, RemoveKeepsOtherKeysAndOrder) {
  Objects o;
  ObjMap m;
  EXPECT_FALSE(m.Remove(Value::Int(1), nullptr));  // empty map
  for (int i = 0; i < 6; ++i) m.Set(Value::Int(i), Value::Int(i * 10));
  Value old;
  ASSERT_TRUE(m.Remove(Value::Int(2), &old));
  EXPECT_EQ(old.as.i, 20);
  EXPECT_FALSE(m.Remove(Value::Int(2), &old));
  EXPECT_EQ(m.count, 5u);
  EXPECT_EQ(Print(Value::Object(&m)), "{0: 0, 1: 10, 3: 30, 4: 40, 5: 50}");
  for (int i : {0, 1, 3, 4, 5}) EXPECT_NE(m.Find(Value::Int(i)), nullptr) << i;
  m.Set(Value::Int(2), Value::Int(99));  // re-inserted at the end
  EXPECT_EQ(Print(Value::Object(&m)), "{0: 0, 1: 10, 3: 30, 4: 40, 5: 50, 2: 99}");
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(m.Remove(Value::Int(i), nullptr));
  EXPECT_EQ(m.count, 0u);
  EXPECT_EQ(Print(Value::Object(&m)), "{}");
  m.Set(o.Str("again"), Value::None());
  EXPECT_EQ(m.count, 1u);
}

TEST(ObjMapTest, TenThousandKeysWithRebuilds) {
  Objects o;
  ObjMap m;
  constexpr int kN = 10000;
  for (int i = 0; i < kN; ++i) m.Set(o.Str("k" + std::to_string(i)), Value::Int(i));
  EXPECT_EQ(m.count, static_cast<size_t>(kN));
  EXPECT_LE(m.entries.size() * 2, m.index.size());       // load factor <= 0.5
  EXPECT_EQ(m.index.size() & (m.index.size() - 1), 0u);  // power of two
  for (int i = 0; i < kN; ++i) {
    const Value* v = m.Find(o.Str("k" + std::to_string(i)));
    ASSERT_NE(v, nullptr) << i;
    EXPECT_EQ(v->as.i, i);
  }
  // Remove the even keys: tombstones pile up and force compaction.
  for (int i = 0; i < kN; i += 2) ASSERT_TRUE(m.Remove(o.Str("k" + std::to_string(i)), nullptr));
  EXPECT_EQ(m.count, static_cast<size_t>(kN / 2));
  EXPECT_LE(m.entries.size(), static_cast<size_t>(kN));
  for (int i = 0; i < kN; ++i) {
    const Value* v = m.Find(o.Str("k" + std::to_string(i)));
    if (i % 2 == 0) {
      EXPECT_EQ(v, nullptr) << i;
    } else {
      ASSERT_NE(v, nullptr) << i;
      EXPECT_EQ(v->as.i, i);
    }
  }
  // Order of the survivors is still insertion order.
  int64_t expect = 1;
  m.ForEach([&](const Value& k, const Value& v) {
    EXPECT_EQ(v.as.i, expect);
    EXPECT_EQ(AsString(k)->str, "k" + std::to_string(expect));
    expect += 2;
  });
  EXPECT_EQ(expect, kN + 1);
  // Re-insert and update everything.
  for (int i = 0; i < kN; ++i) m.Set(o.Str("k" + std::to_string(i)), Value::Int(-i));
  EXPECT_EQ(m.count, static_cast<size_t>(kN));
  for (int i = 0; i < kN; ++i) EXPECT_EQ(m.Find(o.Str("k" + std::to_string(i)))->as.i, -i);
}

TEST(ObjMapTest, ChurnDoesNotGrowWithoutBound) {
  ObjMap m;
  for (int i = 0; i < 100000; ++i) {
    m.Set(Value::Int(i), Value::Int(i));
    if (i > 0) {
      ASSERT_TRUE(m.Remove(Value::Int(i - 1), nullptr));
    }
  }
  EXPECT_EQ(m.count, 1u);
  EXPECT_NE(m.Find(Value::Int(99999)), nullptr);
  EXPECT_LE(m.entries.size(), 64u);
  EXPECT_LE(m.index.size(), 128u);
}

// ---------------- equality, hashing, comparison ----------------

TEST(EqualityTest, NumbersAcrossIntAndNumber) {
  EXPECT_TRUE(ValuesEqual(Value::Int(1), Value::Number(1.0)));
  EXPECT_TRUE(ValuesEqual(Value::Number(1.0), Value::Int(1)));
  EXPECT_FALSE(ValuesEqual(Value::Int(1), Value::Number(1.5)));
  EXPECT_FALSE(ValuesEqual(Value::Number(std::nan("")), Value::Number(std::nan(""))));
  // 2^53 + 1 is not representable as a double: must not compare equal to 2^53.
  EXPECT_FALSE(ValuesEqual(Value::Int((int64_t{1} << 53) + 1), Value::Number(9007199254740992.0)));
  EXPECT_FALSE(ValuesEqual(Value::Int(1), Value::Bool(true)));
  EXPECT_TRUE(ValuesEqual(Value::None(), Value::None()));
  EXPECT_FALSE(ValuesEqual(Value::None(), Value::Bool(false)));
}

TEST(EqualityTest, Structural) {
  Objects o;
  EXPECT_TRUE(ValuesEqual(o.Str("ab"), o.Str("ab")));
  EXPECT_FALSE(ValuesEqual(o.Str("ab"), o.Str("ac")));
  EXPECT_TRUE(
      ValuesEqual(o.Array({Value::Int(1), o.Str("x")}), o.Array({Value::Number(1.0), o.Str("x")})));
  EXPECT_FALSE(ValuesEqual(o.Array({Value::Int(1)}), o.Array({Value::Int(1), Value::Int(2)})));

  ObjMap* m1 = o.Make<ObjMap>();
  ObjMap* m2 = o.Make<ObjMap>();
  m1->Set(o.Str("a"), Value::Int(1));
  m1->Set(o.Str("b"), Value::Int(2));
  m2->Set(o.Str("b"), Value::Int(2));
  m2->Set(o.Str("a"), Value::Int(1));
  EXPECT_TRUE(ValuesEqual(Value::Object(m1), Value::Object(m2)));
  m2->Set(o.Str("a"), Value::Int(3));
  EXPECT_FALSE(ValuesEqual(Value::Object(m1), Value::Object(m2)));

  EnumType e;
  e.name = "E";
  e.variant_names = {"A", "B"};
  ObjEnum* a1 = o.Make<ObjEnum>(&e, 0, 1);
  ObjEnum* a2 = o.Make<ObjEnum>(&e, 0, 1);
  ObjEnum* b1 = o.Make<ObjEnum>(&e, 1, 1);
  a1->payload = a2->payload = b1->payload = {Value::Int(1)};
  EXPECT_TRUE(ValuesEqual(Value::Object(a1), Value::Object(a2)));
  EXPECT_FALSE(ValuesEqual(Value::Object(a1), Value::Object(b1)));

  EXPECT_TRUE(ValuesEqual(Value::Object(o.Make<ObjRange>(0, 5, 1, false)),
                          Value::Object(o.Make<ObjRange>(0, 5, 1, false))));
  EXPECT_FALSE(ValuesEqual(Value::Object(o.Make<ObjRange>(0, 5, 1, false)),
                           Value::Object(o.Make<ObjRange>(0, 5, 1, true))));

  ObjTypedArray* v1 = o.Make<ObjTypedArray>(ElemKind::kI32, 3);
  ObjTypedArray* v2 = o.Make<ObjTypedArray>(ElemKind::kI32, 3);
  EXPECT_TRUE(ValuesEqual(Value::Object(v1), Value::Object(v2)));
  v2->As<int32_t>()[2] = 5;
  EXPECT_FALSE(ValuesEqual(Value::Object(v1), Value::Object(v2)));

  ObjMatrix* x = o.Make<ObjMatrix>(2, 1);
  ObjMatrix* y = o.Make<ObjMatrix>(1, 2);
  EXPECT_FALSE(ValuesEqual(Value::Object(x), Value::Object(y)));
  EXPECT_TRUE(ValuesEqual(Value::Object(x), Value::Object(o.Make<ObjMatrix>(2, 1))));
}

TEST(EqualityTest, FunctionsByIdentity) {
  Objects o;
  Proto p, q;
  EXPECT_TRUE(
      ValuesEqual(Value::Object(o.Make<ObjFunction>(&p)), Value::Object(o.Make<ObjFunction>(&p))));
  EXPECT_FALSE(
      ValuesEqual(Value::Object(o.Make<ObjFunction>(&p)), Value::Object(o.Make<ObjFunction>(&q))));
  ObjClosure* c = o.Make<ObjClosure>(&p, 0);
  EXPECT_TRUE(ValuesEqual(Value::Object(c), Value::Object(c)));
  EXPECT_FALSE(ValuesEqual(Value::Object(c), Value::Object(o.Make<ObjClosure>(&p, 0))));
}

TEST(EqualityTest, CyclesTerminate) {
  Objects o;
  Value a = o.Array({Value::Int(1)});
  Value b = o.Array({Value::Int(1)});
  AsArray(a)->items.push_back(a);
  AsArray(b)->items.push_back(b);
  EXPECT_TRUE(ValuesEqual(a, a));
  EXPECT_TRUE(ValuesEqual(a, b));
  AsArray(b)->items[0] = Value::Int(2);
  EXPECT_FALSE(ValuesEqual(a, b));
}

// ---------------- walk budgets ----------------

// A Vm to pay for walks: an empty program with the given limits. The values walked are built on
// the test's own Objects; a walk does not care which heap they live on.
class BudgetTest : public ::testing::Test {
 protected:
  std::unique_ptr<Vm> NewVm(Limits limits) {
    if (program_ == nullptr) {
      auto compiled = Compile("", "budget_test.shape");
      EXPECT_TRUE(compiled.has_value());
      program_ = std::move(*compiled);
    }
    return std::make_unique<Vm>(*program_, limits);
  }

  // [x, x] `depth` times over a one-element array holding `leaf`: depth + 1 objects whose
  // tree has 2^depth leaves.
  Value Dag(int depth, Value leaf) {
    Value a = o_.Array({leaf});
    for (int i = 0; i < depth; ++i) a = o_.Array({a, a});
    return a;
  }

  // The Status a walk's failure leaves in the Vm, as a native reports it.
  static Status FormatThroughNative(Vm& vm, const Value& v) {
    static const NativeDef def = {"test.format", [](Vm& vm, Value* args, int, Value* out) {
                                    std::string text;
                                    if (!ValueToString(vm, args[0], false, &text)) return false;
                                    *out = vm.NewString(std::move(text));
                                    return true;
                                  },
                                  1, 1, false};
    Value result;
    return vm.CallValue(vm.NewNative(&def), {v}, &result);
  }

  Objects o_;
  std::unique_ptr<Program> program_;
};

TEST_F(BudgetTest, UnlimitedBudgetIsTheSameWalk) {
  Value v = o_.Array({Value::Int(1), o_.Str("s"), Dag(3, Value::Int(2))});
  WalkBudget unlimited;
  std::string text;
  ASSERT_TRUE(AppendValue(&text, v, /*quoted=*/false, unlimited));
  EXPECT_EQ(text, Print(v));
  EXPECT_EQ(text, "[1, \"s\", [[[[2], [2]], [[2], [2]]], [[[2], [2]], [[2], [2]]]]]");
  bool equal = false;
  ASSERT_TRUE(ValuesEqual(v, v, unlimited, &equal));
  EXPECT_TRUE(equal);
  EXPECT_TRUE(unlimited.Settle(text.size()));
}

TEST_F(BudgetTest, FormattingPaysPerElementAndPer16BytesBuilt) {
  auto vm = NewVm({.fuel = 1'000'000});
  ObjMap* m = o_.Make<ObjMap>();
  m->Set(o_.Str("k"), Value::Int(4));
  Value v = o_.Array({Value::Int(1), o_.Array({Value::Int(2), Value::Int(3)}), Value::Object(m)});
  uint64_t before = vm->fuel_left();
  std::string text;
  ASSERT_TRUE(ValueToString(*vm, v, /*quoted=*/false, &text));
  EXPECT_EQ(text, "[1, [2, 3], {\"k\": 4}]");
  // 3 items + 2 items + 1 entry visited; 21 bytes built: one unit.
  EXPECT_EQ(before - vm->fuel_left(), 6u + 1u);

  // A scalar costs nothing beyond its bytes.
  before = vm->fuel_left();
  ASSERT_TRUE(ValueToString(*vm, Value::Int(7), false, &text));
  EXPECT_EQ(text, "7");
  EXPECT_EQ(vm->fuel_left(), before);
}

TEST_F(BudgetTest, EqualityPaysPerElementComparedAndStopsAtTheFirstDifference) {
  auto vm = NewVm({.fuel = 1'000'000});
  auto make = [&](int first) {
    return o_.Array({Value::Int(first), o_.Array({Value::Int(2), Value::Int(3)})});
  };
  uint64_t before = vm->fuel_left();
  bool equal = false;
  ASSERT_TRUE(ValuesEqual(*vm, make(1), make(1), &equal));
  EXPECT_TRUE(equal);
  EXPECT_EQ(before - vm->fuel_left(), 4u);  // 2 outer + 2 inner pairs

  before = vm->fuel_left();
  ASSERT_TRUE(ValuesEqual(*vm, make(1), make(9), &equal));
  EXPECT_FALSE(equal);
  EXPECT_EQ(before - vm->fuel_left(), 1u);  // stopped at the first pair

  // Long strings that are not the same object pay per 16 bytes compared.
  before = vm->fuel_left();
  ASSERT_TRUE(ValuesEqual(*vm, o_.Str(std::string(160, 'x')), o_.Str(std::string(160, 'x')),
                          &equal));
  EXPECT_TRUE(equal);
  EXPECT_EQ(before - vm->fuel_left(), 10u);
}

TEST_F(BudgetTest, CountedFuelIsPaidInBatchesAndOnSettle) {
  auto vm = NewVm({.fuel = 1'000'000});
  uint64_t before = vm->fuel_left();
  WalkBudget budget(*vm);
  ASSERT_TRUE(budget.Charge(10));
  EXPECT_EQ(budget.owed(), 10u);
  EXPECT_EQ(vm->fuel_left(), before);  // not paid yet
  ASSERT_TRUE(budget.Charge(WalkBudget::kBatch));
  EXPECT_EQ(budget.owed(), 0u);
  EXPECT_EQ(before - vm->fuel_left(), 10u + WalkBudget::kBatch);
  ASSERT_TRUE(budget.Charge(5));
  ASSERT_TRUE(budget.Settle());
  EXPECT_EQ(before - vm->fuel_left(), 15u + WalkBudget::kBatch);
}

TEST_F(BudgetTest, ARefusedBudgetStaysRefused) {
  auto vm = NewVm({.fuel = 100});
  WalkBudget budget(*vm);
  EXPECT_FALSE(budget.Charge(WalkBudget::kBatch));
  EXPECT_EQ(vm->fuel_left(), 0u);
  EXPECT_FALSE(budget.Charge(0));
  EXPECT_FALSE(budget.Grow(1));
  EXPECT_FALSE(budget.Settle());
}

TEST_F(BudgetTest, DagFormattingRunsOutOfFuel) {
  // 41 objects, 2^40 leaves: unpaid, this walk would build terabytes.
  auto vm = NewVm({.fuel = 100'000, .memory = 16'000'000});
  Value dag = Dag(40, Value::Int(1));
  std::string text;
  EXPECT_FALSE(ValueToString(*vm, dag, false, &text));
  EXPECT_EQ(vm->fuel_left(), 0u);
  // Stopped within a batch of the limit: about 2 bytes per element visited.
  EXPECT_LT(text.size(), 1'000'000u);

  auto vm2 = NewVm({.fuel = 100'000, .memory = 16'000'000});
  Status s = FormatThroughNative(*vm2, dag);
  EXPECT_EQ(s.kind(), ErrorKind::kResourceExhausted);
  EXPECT_EQ(s.message(), "fuel exhausted");
}

TEST_F(BudgetTest, DagEqualityRunsOutOfFuel) {
  auto vm = NewVm({.fuel = 100'000});
  Value a = Dag(40, Value::Int(1));
  Value b = Dag(40, Value::Int(1));
  bool equal = false;
  ASSERT_TRUE(ValuesEqual(*vm, a, a, &equal));  // the same object: nothing to walk
  EXPECT_TRUE(equal);
  EXPECT_FALSE(ValuesEqual(*vm, a, b, &equal));
  EXPECT_EQ(vm->fuel_left(), 0u);
}

TEST_F(BudgetTest, StringIsCheckedAgainstTheMemoryLimitAsItGrows) {
  // No fuel limit: only the memory limit stops this walk, while the string grows.
  constexpr size_t kLimit = 1'000'000;
  auto vm = NewVm({.fuel = 0, .memory = kLimit});
  Value dag = Dag(30, o_.Str(std::string(100, 'x')));
  std::string text;
  EXPECT_FALSE(ValueToString(*vm, dag, false, &text));
  EXPECT_LE(text.size(), kLimit + WalkBudget::kSizeStep);

  auto vm2 = NewVm({.fuel = 0, .memory = kLimit});
  Status s = FormatThroughNative(*vm2, dag);
  EXPECT_EQ(s.kind(), ErrorKind::kResourceExhausted);
  EXPECT_EQ(s.message(), "memory limit exceeded");
}

TEST_F(BudgetTest, CyclesStayFiniteAndCheap) {
  auto vm = NewVm({.fuel = 1'000});
  Value a = o_.Array({Value::Int(1)});
  AsArray(a)->items.push_back(a);
  std::string text;
  ASSERT_TRUE(ValueToString(*vm, a, false, &text));
  EXPECT_EQ(text, "[1, [...]]");
  EXPECT_EQ(vm->fuel_left(), 1'000u - 2u);
  Value b = o_.Array({Value::Int(1)});
  AsArray(b)->items.push_back(b);
  bool equal = false;
  ASSERT_TRUE(ValuesEqual(*vm, a, b, &equal));
  EXPECT_TRUE(equal);
}

TEST(HashTest, ConsistentWithEquality) {
  Objects o;
  EXPECT_EQ(HashKey(o.Str("hello")), HashKey(o.Str("hello")));
  EXPECT_NE(HashKey(o.Str("hello")), HashKey(o.Str("hellp")));
  EXPECT_EQ(HashKey(Value::Int(42)), HashKey(Value::Int(42)));
  ObjString empty("");
  EXPECT_NE(empty.Hash(), 0u);
  EXPECT_EQ(empty.Hash(), empty.Hash());
}

TEST(ObjStringTest, AsciiFlag) {
  EXPECT_TRUE(ObjString("plain text").ascii);
  EXPECT_TRUE(ObjString("").ascii);
  EXPECT_FALSE(ObjString("caf\xc3\xa9").ascii);
  // Word-at-a-time scan: a high byte anywhere, including the tail after the last full word.
  std::string long_ascii(37, 'a');
  EXPECT_TRUE(ObjString(long_ascii).ascii);
  for (size_t i : {0u, 7u, 8u, 20u, 31u, 32u, 36u}) {
    std::string t = long_ascii;
    t[i] = '\x80';
    EXPECT_FALSE(ObjString(t).ascii) << i;
  }
}

TEST(CompareTest, NumbersStringsAndNaN) {
  Objects o;
  int r = 99;
  ASSERT_TRUE(CompareValues(Value::Int(1), Value::Int(2), &r));
  EXPECT_EQ(r, -1);
  ASSERT_TRUE(CompareValues(Value::Number(2.5), Value::Int(2), &r));
  EXPECT_EQ(r, 1);
  ASSERT_TRUE(CompareValues(Value::Int(3), Value::Number(3.0), &r));
  EXPECT_EQ(r, 0);
  ASSERT_TRUE(
      CompareValues(Value::Int((int64_t{1} << 53) + 1), Value::Number(9007199254740992.0), &r));
  EXPECT_EQ(r, 1);
  ASSERT_TRUE(CompareValues(o.Str("abc"), o.Str("abd"), &r));
  EXPECT_EQ(r, -1);
  ASSERT_TRUE(CompareValues(o.Str("b"), o.Str("abc"), &r));
  EXPECT_EQ(r, 1);
  ASSERT_TRUE(CompareValues(o.Str("\xc3\xa9"), o.Str("z"), &r));  // bytes are unsigned
  EXPECT_EQ(r, 1);
  ASSERT_TRUE(CompareValues(Value::Number(std::nan("")), Value::Int(1), &r));
  EXPECT_EQ(r, kUnordered);
  EXPECT_FALSE(CompareValues(Value::Int(1), o.Str("1"), &r));
  EXPECT_FALSE(CompareValues(Value::Bool(true), Value::Bool(false), &r));
  EXPECT_FALSE(CompareValues(o.Array({}), o.Array({}), &r));
}

// ---------------- other objects ----------------

TEST(ElemKindTest, NamesAndSizes) {
  for (int i = 0; i < kNumElemKinds; ++i) {
    auto k = static_cast<ElemKind>(i);
    ElemKind back;
    ASSERT_TRUE(ElemKindFromName(ElemKindName(k), &back));
    EXPECT_EQ(back, k);
  }
  ElemKind unused;
  EXPECT_FALSE(ElemKindFromName("f16", &unused));
  EXPECT_EQ(ElemSize(ElemKind::kF64), 8u);
  EXPECT_EQ(ElemSize(ElemKind::kF32), 4u);
  EXPECT_EQ(ElemSize(ElemKind::kI16), 2u);
  EXPECT_EQ(ElemSize(ElemKind::kBool), 1u);
}

TEST(TypedArrayTest, AlignedZeroedAndConverted) {
  ObjTypedArray v(ElemKind::kF64, 5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % 64, 0u);
  for (size_t i = 0; i < v.length; ++i) EXPECT_EQ(v.As<double>()[i], 0.0);
  EXPECT_EQ(v.ByteSize(), 40u);
  EXPECT_TRUE(v.Get(0).IsNumber());

  ObjTypedArray i8(ElemKind::kI8, 1);
  i8.As<int8_t>()[0] = -5;
  EXPECT_TRUE(i8.Get(0).IsInt());
  EXPECT_EQ(i8.Get(0).as.i, -5);
  ObjTypedArray u8(ElemKind::kU8, 1);
  u8.As<uint8_t>()[0] = 250;
  EXPECT_EQ(u8.Get(0).as.i, 250);
  ObjTypedArray b(ElemKind::kBool, 1);
  b.As<uint8_t>()[0] = 1;
  EXPECT_TRUE(b.Get(0).IsBool());
  EXPECT_TRUE(b.Get(0).as.b);
  ObjTypedArray empty(ElemKind::kI64, 0);
  EXPECT_NE(empty.data, nullptr);

  ObjMatrix m(3, 3);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data) % 64, 0u);
  EXPECT_EQ(m.At(2, 2), 0.0);
}

TEST(RangeTest, Length) {
  EXPECT_EQ(ObjRange(0, 5, 1, false).Length(), 5);
  EXPECT_EQ(ObjRange(0, 5, 1, true).Length(), 6);
  EXPECT_EQ(ObjRange(0, 10, 3, false).Length(), 4);  // 0 3 6 9
  EXPECT_EQ(ObjRange(0, 9, 3, false).Length(), 3);   // 0 3 6
  EXPECT_EQ(ObjRange(0, 9, 3, true).Length(), 4);    // 0 3 6 9
  EXPECT_EQ(ObjRange(5, 0, 1, false).Length(), 0);
  EXPECT_EQ(ObjRange(5, 5, 1, false).Length(), 0);
  EXPECT_EQ(ObjRange(5, 5, 1, true).Length(), 1);
  EXPECT_EQ(ObjRange(INT64_MIN, INT64_MAX, 1, true).Length(), INT64_MAX);  // saturates
  EXPECT_EQ(ObjRange(INT64_MIN, INT64_MAX, INT64_MAX, true).Length(), 3);
}

TEST(ProgramTest, ConstantsFunctionsAndTypeSpecs) {
  Program p;
  Value s = p.NewConstantString("hello");
  ASSERT_TRUE(s.Is(Type::kString));
  EXPECT_TRUE(AsString(s)->permanent);
  EXPECT_EQ(AsString(s)->str, "hello");
  EXPECT_EQ(p.constant_objects.size(), 1u);

  p.functions = {{"main", 3}, {"add", 7}};
  EXPECT_EQ(p.FindFunction("add"), 7);
  EXPECT_EQ(p.FindFunction("nope"), -1);

  auto point = std::make_unique<StructType>();
  point->name = "Point";
  p.structs.push_back(std::move(point));
  TypeSpec vec;
  vec.kind = TypeSpec::Kind::kVec;
  vec.elem = ElemKind::kI32;
  EXPECT_EQ(TypeSpecName(vec, p), "Vec<i32>");
  TypeSpec st;
  st.kind = TypeSpec::Kind::kStruct;
  st.index = 0;
  EXPECT_EQ(TypeSpecName(st, p), "Point");
  TypeSpec res;
  res.kind = TypeSpec::Kind::kResult;
  res.args.resize(2);
  res.args[0].kind = TypeSpec::Kind::kInt;
  res.args[1].kind = TypeSpec::Kind::kString;
  EXPECT_EQ(TypeSpecName(res, p), "Result<int, string>");
  TypeSpec opt;
  opt.kind = TypeSpec::Kind::kOption;
  opt.args = {st};
  EXPECT_EQ(TypeSpecName(opt, p), "Option<Point>");
}

}  // namespace
}  // namespace shapex::engine
