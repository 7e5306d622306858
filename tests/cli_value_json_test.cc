// tools/value_json.h: the parts of the value-to-JSON mapping that the CLI's golden test
// (tests/cli/call_json.sh) cannot reach or cannot measure: the depth cap (results arrive over
// the wire, which refuses deeper values), the exact Int boundary, bytes that are not UTF-8,
// what the walk pays, and that a large string-keyed map converts in linear time.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "json_output.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/program.h"
#include "shapex/engine/verifier.h"
#include "shapex/engine/vm.h"
#include "value_json.h"

namespace shapex::cli {
namespace {

// Compiles `source` and calls its function `f` with no arguments.
class ValueJsonTest : public ::testing::Test {
 protected:
  engine::Value Run(const std::string& source, engine::Limits limits = {}) {
    engine::Diagnostic diag;
    auto program = engine::Compile(source, "t.shape", &diag);
    EXPECT_TRUE(program.has_value()) << diag.message;
    program_ = std::move(program).value();
    EXPECT_TRUE(engine::Verify(*program_).ok());
    vm_ = std::make_unique<engine::Vm>(*program_, limits);
    engine::Value result;
    Status status = vm_->CallByName("f", {}, &result);
    EXPECT_TRUE(status.ok()) << status;
    return result;
  }
  // The JSON text of f()'s result, converted with an unlimited budget.
  std::string Text(const std::string& source) {
    engine::Value v = Run(source);
    engine::WalkBudget unlimited;
    Json json;
    EXPECT_TRUE(ValueToJson(v, unlimited, {}, &json));
    return DumpJson(json);
  }

  std::unique_ptr<engine::Program> program_;
  std::unique_ptr<engine::Vm> vm_;
};

TEST_F(ValueJsonTest, IntsBeyondTwoToThe53AreTagged) {
  EXPECT_EQ(Text("function f() { [9007199254740992, -9007199254740992] }"),
            "[9007199254740992,-9007199254740992]\n");
  EXPECT_EQ(Text("function f() { [9007199254740993, -9007199254740993] }"),
            "[{\"$int\":\"9007199254740993\"},{\"$int\":\"-9007199254740993\"}]\n");
}

TEST_F(ValueJsonTest, NestingPastTheCapIsTruncated) {
  std::string text = Text("function f() { var x = [1]; for i in 0..100 { x = [x] }; x }");
  std::string opening(kMaxJsonDepth, '[');
  EXPECT_EQ(text.substr(0, kMaxJsonDepth), opening);
  EXPECT_EQ(text.substr(kMaxJsonDepth, 27), "{\"$truncated\":\"array\"}]]]]]");
  EXPECT_EQ(text.size(), 2 * kMaxJsonDepth + 22 + 1);
}

TEST_F(ValueJsonTest, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  EXPECT_EQ(DumpJson(Json("a\xff"
                          "b")),
            "\"a\xef\xbf\xbd"
            "b\"\n");
  EXPECT_EQ(DumpJson(Json::object({{"k\xc3", 1}})), "{\"k\xef\xbf\xbd\":1}\n");
}

TEST_F(ValueJsonTest, ACycleThroughAStructPointsAtIt) {
  EXPECT_EQ(Text("type Box { items: any }\n"
                 "function f() { let b = Box { items: [] }; b.items.push(b); [b] }"),
            "[{\"$struct\":\"Box\",\"items\":[{\"$ref\":\"/0\"}]}]\n");
}

TEST_F(ValueJsonTest, TheWalkPaysFuelForEveryElement) {
  engine::Value v = Run("function f() { var x = [1]; for i in 0..20 { x = [x, x] }; x }",
                        engine::Limits{.fuel = 100'000'000});
  uint64_t before = vm_->fuel_left();
  Json json;
  ASSERT_TRUE(ValueToJson(*vm_, v, {}, &json));
  // 2^21 - 1 arrays of two items plus the 2^20 leaves' item each: at least 2^21 elements.
  EXPECT_GE(before - vm_->fuel_left(), uint64_t{1} << 21);
}

TEST_F(ValueJsonTest, ADagOfDepth40StopsAtTheFuelLimit) {
  engine::Value v = Run("function f() { var x = [1]; for i in 0..40 { x = [x, x] }; x }",
                        engine::Limits{.fuel = 1'000'000});
  Json json;
  EXPECT_FALSE(ValueToJson(*vm_, v, {}, &json));
  EXPECT_EQ(vm_->last_error().kind(), ErrorKind::kResourceExhausted);
  EXPECT_EQ(vm_->last_error().message(), "fuel exhausted");
}

TEST_F(ValueJsonTest, ADagOfDepth40StopsAtTheMemoryLimit) {
  engine::Value v = Run("function f() { var x = [1]; for i in 0..40 { x = [x, x] }; x }",
                        engine::Limits{.memory = size_t{8} << 20});
  Json json;
  EXPECT_FALSE(ValueToJson(*vm_, v, {}, &json));
  EXPECT_EQ(vm_->last_error().kind(), ErrorKind::kResourceExhausted);
  EXPECT_EQ(vm_->last_error().message(), "memory limit exceeded");
}

TEST_F(ValueJsonTest, ALargeStringKeyedMapKeepsItsOrderInLinearTime) {
  engine::Value v =
      Run("function f() { var m = {}; for i in 0..200000 { m[str(199999 - i)] = i }; m }");
  auto start = std::chrono::steady_clock::now();
  engine::WalkBudget unlimited;
  Json json;
  ASSERT_TRUE(ValueToJson(v, unlimited, {}, &json));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(json.size(), 200000u);
  EXPECT_EQ(json.begin().key(), "199999");
  EXPECT_EQ((--json.end()).key(), "0");
  // Quadratic insertion would take minutes here.
  EXPECT_LT(seconds, 10.0);
}

TEST_F(ValueJsonTest, FunctionsCarryTheHashOfTheirCode) {
  engine::Value v = Run("function g(x) { x }\nfunction f() { g }");
  ProgramHashes hashes(*program_);
  ValueJsonOptions options;
  options.hash_of = [&hashes](const engine::Proto& p) { return hashes.Of(p); };
  engine::WalkBudget unlimited;
  Json json;
  ASSERT_TRUE(ValueToJson(v, unlimited, options, &json));
  auto blobs = engine::BuildProgramBlobs(*program_);
  ASSERT_TRUE(blobs.has_value());
  int g = program_->FindFunction("g");
  ASSERT_GE(g, 0);
  EXPECT_EQ(json["$function"], "g");
  EXPECT_EQ(json["hash"], engine::HashToHex(blobs->proto_hashes[static_cast<size_t>(g)]));
  // Without a way to hash: null.
  Json bare;
  ASSERT_TRUE(ValueToJson(v, unlimited, {}, &bare));
  EXPECT_TRUE(bare["hash"].is_null());
}

}  // namespace
}  // namespace shapex::cli
