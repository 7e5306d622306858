// Content-addressed blobs: hash properties, encoding, linking and the random-program property.
#include <algorithm>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "blob_body.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/vm.h"
#include "testing/status_matchers.h"

namespace shapex::engine {
namespace {

std::unique_ptr<Program> MustCompile(const std::string& src, const std::string& file = "t.shape") {
  Diagnostic d;
  auto p = Compile(src, file, &d);
  EXPECT_TRUE(p.has_value()) << d.message << " at " << d.line << ":" << d.col;
  return p.has_value() ? std::move(*p) : nullptr;
}

FunctionHash HashOf(const std::string& src, const std::string& fn, const std::string& file = "t.shape") {
  auto p = MustCompile(src, file);
  auto pb = BuildProgramBlobs(*p);
  EXPECT_TRUE(pb.has_value()) << pb.error().ToString();
  int idx = p->FindFunction(fn);
  EXPECT_GE(idx, 0);
  return pb->proto_hashes[idx];
}

// Runs `fn(args)` directly and through blobs (encode -> decode -> link); returns both results
// printed (or the error).
std::pair<std::string, std::string> RunBothWays(const std::string& src, const std::string& fn,
                                                std::vector<int64_t> int_args) {
  auto p = MustCompile(src);
  auto show = [](Vm& vm, const Status& s, const Value& v) {
    return s.ok() ? ValueToString(v, true) : s.ToString();
  };
  std::vector<Value> args;
  for (int64_t a : int_args) args.push_back(Value::Int(a));
  Limits limits{.fuel = 200000, .memory = 64 << 20, .stack = 200};
  Vm direct(*p, limits);
  direct.SetOutput([](std::string_view) {});
  Value r1;
  std::string first = show(direct, direct.CallByName(fn, args, &r1), r1);

  auto pb = BuildProgramBlobs(*p);
  EXPECT_TRUE(pb.has_value());
  auto set = MinimalBlobs(*pb, fn);
  EXPECT_TRUE(set.has_value()) << set.error().ToString();
  std::vector<FunctionBlob> received;
  for (const FunctionBlob& b : set->blobs) {
    auto decoded = DecodeBlob(EncodeBlob(b));
    EXPECT_TRUE(decoded.has_value());
    received.push_back(*decoded);
  }
  auto linked = ProgramFromBlobs(set->entry, received, set->impls);
  EXPECT_TRUE(linked.has_value()) << linked.error().ToString();
  if (!linked.has_value()) return {first, linked.error().ToString()};
  Vm remote(*linked->program, limits);
  remote.SetOutput([](std::string_view) {});
  Value r2;
  std::string second = show(remote, remote.CallFunction(linked->entry, args, &r2), r2);
  return {first, second};
}

TEST(BlobHashTest, StableAcrossCompilations) {
  const char* src = "function f(x) { x * 2 }\nfunction g(y) { f(y) + 1 }";
  EXPECT_EQ(HashOf(src, "g"), HashOf(src, "g"));
  EXPECT_EQ(HashToHex(HashOf(src, "f")).size(), 64u);
}

TEST(BlobHashTest, UnchangedByFileNameAndPosition) {
  FunctionHash a = HashOf("function add(a, b) { a + b }", "add", "one.shape");
  FunctionHash b = HashOf("\n\n// moved\nfunction other() { 7 }\n\nfunction add(a, b) { a + b }",
                          "add", "renamed/two.shape");
  EXPECT_EQ(a, b);
}

TEST(BlobHashTest, IdenticalBodiesInDifferentProgramsHashTheSame) {
  FunctionHash a = HashOf("let k = 3\nfunction sq(x) { x * x }", "sq");
  FunctionHash b = HashOf("function sq(x) { x * x }\nprint(sq(2))", "sq");
  EXPECT_EQ(a, b);
}

TEST(BlobHashTest, ChangesWhenACalleeChanges) {
  FunctionHash a = HashOf("function g() { 1 }\nfunction f() { g() + 1 }", "f");
  FunctionHash b = HashOf("function g() { 2 }\nfunction f() { g() + 1 }", "f");
  EXPECT_NE(a, b);
  // And when the function's own body changes.
  EXPECT_NE(HashOf("function f(x) { x + 1 }", "f"), HashOf("function f(x) { x + 2 }", "f"));
}

TEST(BlobHashTest, SelfRecursionIsStable) {
  const char* fib = "function fib(n) { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }";
  EXPECT_EQ(HashOf(fib, "fib"), HashOf(std::string("\n") + fib, "fib"));
}

TEST(BlobHashTest, MutualRecursionIsStableUnderReordering) {
  const char* even = "function even(n) { if n == 0 { true } else { odd(n - 1) } }\n";
  const char* odd = "function odd(n) { if n == 0 { false } else { even(n - 1) } }\n";
  std::string ab = std::string(even) + odd, ba = std::string(odd) + even;
  EXPECT_EQ(HashOf(ab, "even"), HashOf(ba, "even"));
  EXPECT_EQ(HashOf(ab, "odd"), HashOf(ba, "odd"));
  EXPECT_NE(HashOf(ab, "even"), HashOf(ab, "odd"));
  auto [direct, linked] = RunBothWays(ab, "even", {11});
  EXPECT_EQ(direct, "false");
  EXPECT_EQ(linked, "false");
}

TEST(BlobRoundTripTest, EncodeDecodePreservesEveryField) {
  auto p = MustCompile("function f(a: int, b = 2) -> int { let c = [a, b]; c.len() + a }");
  auto pb = BuildProgramBlobs(*p);
  ASSERT_TRUE(pb.has_value());
  const FunctionBlob& blob = pb->blobs[p->FindFunction("f")];
  auto decoded = DecodeBlob(EncodeBlob(blob));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(decoded->hash, blob.hash);
  EXPECT_EQ(decoded->canonical, blob.canonical);
  EXPECT_EQ(decoded->debug.name, "f");
  EXPECT_EQ(decoded->debug.lines, blob.debug.lines);
  EXPECT_EQ(decoded->debug.param_names, (std::vector<std::string>{"a", "b"}));
}

TEST(BlobRoundTripTest, StructsEnumsClosuresAndMethodsSurviveLinking) {
  const char* src = R"(
type Point { x: number, y: number }
impl Point { function norm2(self) { self.x * self.x + self.y * self.y } }
enum Shape { Circle(number), Square(number) }
function area(s: Shape) { match s { Shape::Circle(r) => 3.0 * r * r, Shape::Square(a) => a * a } }
function run(n) {
  let p = Point { x: 3.0, y: 4.0 }
  let add = |v| v + n
  [p.norm2(), area(Shape::Circle(1.0)), area(Shape::Square(2.0)), add(1), Some(n)?]
}
)";
  auto [direct, linked] = RunBothWays(src, "run", {5});
  EXPECT_EQ(direct, "[25.0, 3.0, 4.0, 6, 5]");
  EXPECT_EQ(linked, direct);
}

TEST(BlobLinkTest, RejectsTamperedBytes) {
  auto p = MustCompile("function f(x) { x + 1 }");
  auto pb = BuildProgramBlobs(*p);
  ASSERT_TRUE(pb.has_value());
  FunctionBlob blob = pb->blobs[p->FindFunction("f")];
  blob.canonical[blob.canonical.size() / 2] ^= 1;
  auto linked = ProgramFromBlobs(blob.hash, {blob});
  ASSERT_FALSE(linked.has_value());
  EXPECT_EQ(linked.error().kind(), ErrorKind::kProtocolError) << linked.error().ToString();
}

TEST(BlobLinkTest, RejectsMissingDependency) {
  auto p = MustCompile("function g() { 1 }\nfunction f() { g() }");
  auto pb = BuildProgramBlobs(*p);
  ASSERT_TRUE(pb.has_value());
  const FunctionBlob& f = pb->blobs[p->FindFunction("f")];
  auto linked = ProgramFromBlobs(f.hash, {f});
  ASSERT_FALSE(linked.has_value());
  EXPECT_EQ(linked.error().kind(), ErrorKind::kProtocolError);
  EXPECT_NE(linked.error().message().find("missing dependency"), std::string::npos);
}

// What a supervisor preloads with a function: enough to link it from those blobs alone.
TEST(BlobDependenciesTest, NameEveryFunctionNeededToLink) {
  auto p = MustCompile(
      "function g() { 1 }\nfunction h(x) { x }\nfunction f() { g() + h(2) + g() }\n"
      "function even(n) { if n == 0 { true } else { odd(n - 1) } }\n"
      "function odd(n) { if n == 0 { false } else { even(n - 1) } }\n"
      "function top(n) { even(n) }\nfunction fib(n) { if n < 2 { n } else { fib(n - 1) } }");
  auto pb = BuildProgramBlobs(*p);
  ASSERT_TRUE(pb.has_value());
  auto blob = [&](const char* name) { return pb->blobs[p->FindFunction(name)]; };
  auto hash = [&](const char* name) { return pb->proto_hashes[p->FindFunction(name)]; };

  auto f = BlobDependencies(blob("f"));
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(*f, (std::vector<FunctionHash>{hash("g"), hash("h")}));  // each once
  auto g = BlobDependencies(blob("g"));
  ASSERT_TRUE(g.has_value());
  EXPECT_TRUE(g->empty());
  auto fib = BlobDependencies(blob("fib"));  // a self-reference is not a dependency
  ASSERT_TRUE(fib.has_value());
  EXPECT_TRUE(fib->empty());
  auto even = BlobDependencies(blob("even"));  // its group sibling
  ASSERT_TRUE(even.has_value());
  EXPECT_EQ(*even, std::vector<FunctionHash>{hash("odd")});
  auto top = BlobDependencies(blob("top"));
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(*top, std::vector<FunctionHash>{hash("even")});

  // Following dependencies from `top` gathers a set that links on its own.
  std::vector<FunctionBlob> gathered{blob("top")};
  for (size_t i = 0; i < gathered.size(); ++i) {
    auto deps = BlobDependencies(gathered[i]);
    ASSERT_TRUE(deps.has_value());
    for (const FunctionHash& d : *deps) {
      bool have = false;
      for (const FunctionBlob& b : gathered) have = have || b.hash == d;
      if (!have) gathered.push_back(pb->blobs[std::find(pb->proto_hashes.begin(),
                                                        pb->proto_hashes.end(), d) -
                                              pb->proto_hashes.begin()]);
    }
  }
  EXPECT_EQ(gathered.size(), 3u);
  EXPECT_TRUE(ProgramFromBlobs(hash("top"), gathered).has_value());

  FunctionBlob bad = blob("f");
  bad.canonical.resize(bad.canonical.size() / 2);
  auto truncated = BlobDependencies(bad);
  ASSERT_FALSE(truncated.has_value());
  EXPECT_EQ(truncated.error().kind(), ErrorKind::kProtocolError);
}

TEST(BlobLinkTest, UnknownNativeIsMissingModuleFunction) {
  auto p = MustCompile("function f(x) { math.sqrt(x) }");
  auto pb = BuildProgramBlobs(*p);
  ASSERT_TRUE(pb.has_value());
  FunctionBlob blob = pb->blobs[p->FindFunction("f")];
  auto body = DecodeBody(blob.canonical);
  ASSERT_TRUE(body.has_value());
  ASSERT_EQ(body->natives.size(), 1u);
  body->natives[0] = "math.teleport";
  blob.canonical = EncodeBody(*body);
  blob.hash = Sha256(blob.canonical);
  auto linked = ProgramFromBlobs(blob.hash, {blob});
  ASSERT_FALSE(linked.has_value());
  EXPECT_EQ(linked.error().kind(), ErrorKind::kMissingModuleFunction);
}

TEST(BlobLinkTest, CorruptedOperandsAreRejectedNotRun) {
  auto p = MustCompile("type P { a: int }\nfunction f(x) { let p = P { a: x }; p.a + x }");
  auto pb = BuildProgramBlobs(*p);
  ASSERT_TRUE(pb.has_value());
  const FunctionBlob& orig = pb->blobs[p->FindFunction("f")];
  auto body = DecodeBody(orig.canonical);
  ASSERT_TRUE(body.has_value());
  // Every single-word corruption is either rejected or links to a verified program.
  for (size_t pc = 0; pc < body->code.size(); ++pc) {
    for (uint32_t flip : {0x100u, 0x10000u, 0x1000000u, 0xffu}) {
      BlobBody bad = *body;
      bad.code[pc] ^= flip;
      FunctionBlob blob = orig;
      blob.canonical = EncodeBody(bad);
      blob.hash = Sha256(blob.canonical);
      auto linked = ProgramFromBlobs(blob.hash, {blob});
      if (!linked.has_value()) continue;
      Vm vm(*linked->program, Limits{.fuel = 10000, .memory = 8 << 20, .stack = 50});
      Value out;
      (void)vm.CallFunction(linked->entry, {Value::Int(1)}, &out);  // must not crash
    }
  }
}

TEST(BlobDecodeTest, EveryTruncationIsAProtocolError) {
  auto p = MustCompile("function f(a, b) { f(a, b - 1) + \"s\".len() }");
  auto pb = BuildProgramBlobs(*p);
  ASSERT_TRUE(pb.has_value());
  std::vector<uint8_t> bytes = EncodeBlob(pb->blobs[p->FindFunction("f")]);
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = DecodeBlob(std::span<const uint8_t>(bytes.data(), n));
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().kind(), ErrorKind::kProtocolError);
  }
  auto body = pb->blobs[p->FindFunction("f")].canonical;
  for (size_t n = 0; n < body.size(); ++n)
    EXPECT_FALSE(DecodeBody(std::span<const uint8_t>(body.data(), n)).has_value()) << n;
}

// Random programs: blobs -> link -> same result as running the program directly.
std::string RandomExpr(std::mt19937& rng, int fn_index, int depth) {
  std::uniform_int_distribution<int> pick(0, depth > 2 ? 2 : 6);
  switch (pick(rng)) {
    case 0: return "x";
    case 1: return std::to_string(rng() % 20);
    case 2: return fmt::format("({} + x)", rng() % 7);
    case 3: return fmt::format("({} {} {})", RandomExpr(rng, fn_index, depth + 1),
                               "+-*"[rng() % 3], RandomExpr(rng, fn_index, depth + 1));
    case 4:
      if (fn_index == 0) return "x";
      return fmt::format("f{}({})", rng() % fn_index, RandomExpr(rng, fn_index, depth + 1));
    case 5:
      return fmt::format("(if x < {} {{ {} }} else {{ {} }})", rng() % 10,
                         RandomExpr(rng, fn_index, depth + 1), RandomExpr(rng, fn_index, depth + 1));
    default:
      return fmt::format("[{}, x].len()", RandomExpr(rng, fn_index, depth + 1));
  }
}

TEST(BlobPropertyTest, RandomProgramsGiveTheSameResultsThroughBlobs) {
  std::mt19937 rng(12345);
  int successes = 0;
  for (int round = 0; round < 60; ++round) {
    int n = 1 + static_cast<int>(rng() % 5);
    std::string src;
    for (int i = 0; i < n; ++i) src += fmt::format("function f{}(x) {{ {} }}\n", i, RandomExpr(rng, i, 0));
    int64_t arg = static_cast<int64_t>(rng() % 10);
    auto [direct, linked] = RunBothWays(src, fmt::format("f{}", n - 1), {arg});
    EXPECT_EQ(direct, linked) << src;
    if (direct.find("Error") == std::string::npos) ++successes;
  }
  EXPECT_GT(successes, 30);  // most random programs run to a value, not an error
}

}  // namespace
}  // namespace shapex::engine
