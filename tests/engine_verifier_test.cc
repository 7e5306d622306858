// Tests for the bytecode verifier: every compiled program verifies; single corrupted fields are
// rejected with a message naming the function and pc; and random single-word mutations either
// fail verification or run without crashing.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "shapex/engine/compiler.h"
#include "shapex/engine/opcodes.h"
#include "shapex/engine/program.h"
#include "shapex/engine/verifier.h"
#include "shapex/engine/vm.h"
#include "testing/status_matchers.h"

namespace shapex::engine {
namespace {

using ::shapex_testing::IsError;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Programs covering most of the instruction set.
const char* const kPrograms[] = {
    R"(function add(a: int, b: int) -> int { a + b }
function main(args) { print(add(10, 32)) })",

    R"(type Point { x: number, y: number }
impl Point { function len(self) -> number { math.sqrt(self.x * self.x + self.y * self.y) } }
function main(args) {
  var p = Point { x: 3.0, y: 4.0 }
  p.x = p.x + 1.0
  print(p.len(), p)
  match p { Point { x, y: 4.0 } => print(x), _ => print("other") }
})",

    R"(enum Shape { Circle(number), Rect(number, number), Empty }
function area(s) { match s { Shape::Circle(r) => 3.0 * r * r, Shape::Rect(w, h) => w * h, _ => 0.0 } }
function main(args) {
  let shapes = [Shape::Circle(1.0), Shape::Rect(2.0, 3.0), Shape::Empty]
  var total = 0.0
  for s in shapes { total += area(s) }
  print(total)
})",

    R"(function make_counter() {
  var n = 0
  let inc = |k| { n = n + k; n }
  inc
}
function main(args) {
  let c = make_counter()
  c(1); c(2)
  let adders = []
  for i in 0..3 { adders.push(|x| x + i) }
  print(c(3), adders.map(|f| f(10)))
})",

    R"(function parse(s) -> Result<int, string> {
  let n = s.to_int()?
  if n < 0 { return Err("negative") }
  Ok(n * 2)
}
function first(xs) { if xs.len() > 0 { Some(xs[0]) } else { None } }
function main(args) {
  print(parse("21"), parse("x"), parse("-1"))
  match first([7, 8]) { Some(v) if v > 5 => print("big", v), Some(v) => print(v), None => print("none") }
  print(first([]).unwrap_or(0))
})",

    R"(function greet(name, greeting = "hello", punct = "!") { f"{greeting}, {name}{punct}" }
function main(args) {
  print(greet("a"), greet("b", "hi"), greet("c", "yo", "?"))
  var m = {"a": 1, "b": 2}
  m["c"] = 3
  m["a"] += 10
  for k in m { print(k, m[k]) }
  for (k, v) in m.items() { print(k, v) }
})",

    R"(function collatz(n) {
  var steps = 0
  var x = n
  while x != 1 {
    if x % 2 == 0 { x = x / 2 } else { x = 3 * x + 1 }
    steps += 1
    if steps > 1000 { break }
  }
  steps
}
function main(args) {
  var total = 0
  for i in 1..=30 { if i == 7 { continue }; total += collatz(i) }
  print(total, 2 ** 10, 7 & 3, 7 | 8, 5 ^ 1, 1 << 4, 256 >> 2, -total, not true)
  print(1 < 2 and 2 <= 3 or false, 3 > 2, 3 >= 3, "a" == "a", [1, 2] != [1])
})",

    R"(let base = 100
var counter = 0
function bump() { counter = counter + 1; counter + base }
function main(args) {
  bump(); bump()
  print(bump(), args.len(), type_of(1.5), str(3) + "x")
  let v = Vec::f64([1.0, 2.0, 3.0])
  let m = Matrix::zeros(2, 2)
  m[0, 1] = 5.0
  print(v.sum(), m[0, 1], [3, 1, 2].sort(), (0..10).step(3))
  let t = [[1, 2], [3, 4]]
  for (a, b) in t { print(a + b) }
  match [1, 2] { [a, b] => print(a * b), _ => print("?") }
  match 3 { 1 | 2 => print("small"), n => print("n", n) }
})",
};

std::unique_ptr<Program> MustCompile(const std::string& source) {
  Diagnostic diag;
  auto program = Compile(source, "test.shape", &diag);
  EXPECT_TRUE(program.has_value()) << diag.message << " at " << diag.line << ":" << diag.col << "\n"
                                   << source;
  if (!program.has_value()) return nullptr;
  return std::move(program).value();
}

Proto& ProtoNamed(Program& p, const std::string& name) {
  for (auto& proto : p.protos)
    if (proto->name == name) return *proto;
  ADD_FAILURE() << "no function " << name;
  return *p.protos[0];
}

// pc of the first instruction with this opcode (instruction boundaries respected).
size_t FindOp(const Proto& proto, Op op) {
  for (size_t pc = 0; pc < proto.code.size(); pc += OpHasExtra(code::GetOp(proto.code[pc])) ? 2 : 1)
    if (code::GetOp(proto.code[pc]) == op) return pc;
  ADD_FAILURE() << "no " << OpName(op) << " in " << proto.name;
  return 0;
}

TEST(VerifierTest, CompiledProgramsVerify) {
  for (const char* source : kPrograms) {
    auto program = MustCompile(source);
    ASSERT_NE(program, nullptr);
    EXPECT_OK(Verify(*program)) << source;
  }
}

// Every golden-test program and example that compiles must verify.
TEST(VerifierTest, GoldenAndExampleProgramsVerify) {
  fs::path tests_dir = fs::path(__FILE__).parent_path();
  int compiled = 0;
  for (fs::path dir :
       {tests_dir / "lang", tests_dir.parent_path() / "examples", tests_dir / "fuzz" / "compile"}) {
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (entry.path().extension() != ".shape") continue;
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      auto program = Compile(text.str(), entry.path().filename().string());
      if (!program.has_value()) continue;
      ++compiled;
      EXPECT_OK(Verify(**program)) << entry.path();
    }
  }
  RecordProperty("compiled", compiled);
}

class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    program_ = MustCompile(kSource);
    ASSERT_NE(program_, nullptr);
    ASSERT_OK(Verify(*program_));
  }
  Status Check() { return Verify(*program_); }
  void ExpectRejected(const std::string& text) {
    Status s = Check();
    EXPECT_THAT(s, IsError(ErrorKind::kInvalidArgument));
    EXPECT_THAT(s.message(), HasSubstr("invalid bytecode"));
    EXPECT_THAT(s.message(), HasSubstr(text));
  }

  static constexpr const char* kSource = R"(
type Point { x: number, y: number }
enum Shape { Circle(number), Square }
function add(a, b) { a + b }
function pick(s) { match s { Shape::Circle(r) => r, _ => 0.0 } }
function getx(p) { p.x }
function make(x = 1.0) { Point { x: x, y: 2.0 } }
function counter() { var n = 0; |k| { n = n + k; n } }
function loop(n) { var t = 0; for i in 0..n { if i > 2 { t += i } }; t }
function show(x) { f"ab{x + 0.5:>4.1f}" }
function main(args) { print(add(1, 2), pick(Shape::Circle(2.0)), getx(make()), loop(5), "s") }
)";
  std::unique_ptr<Program> program_;
};

TEST_F(CorruptionTest, RegisterOutOfRange) {
  Proto& add = ProtoNamed(*program_, "add");
  size_t pc = FindOp(add, Op::kADD);
  add.code[pc] = code::ABC(Op::kADD, 9, 0, 1);
  Status s = Check();
  EXPECT_THAT(s, IsError(ErrorKind::kInvalidArgument));
  EXPECT_EQ(s.message(), "invalid bytecode in add at pc 0: register 9 out of range (num_regs 3)");
}

TEST_F(CorruptionTest, ConstantIndexOutOfRange) {
  Proto& main = ProtoNamed(*program_, "main");
  size_t pc = FindOp(main, Op::kLOADK);
  main.code[pc] = code::ABx(Op::kLOADK, 1, static_cast<uint32_t>(main.constants.size()));
  ExpectRejected(
      fmt::format("in main at pc {}: constant {} out of range", pc, main.constants.size()));
}

TEST_F(CorruptionTest, JumpIntoExtraWord) {
  // loop: FORPREP ... FORLOOP; retarget the loop's JMP into pick's MATCHENUM extra word.
  Proto& pick = ProtoNamed(*program_, "pick");
  size_t match = FindOp(pick, Op::kMATCHENUM);
  size_t jmp = match + 2;  // the JMP after MATCHENUM + extra
  ASSERT_EQ(code::GetOp(pick.code[jmp]), Op::kJMP);
  int offset = static_cast<int>(match + 1) - static_cast<int>(jmp + 1);
  pick.code[jmp] = code::AsBx(Op::kJMP, 0, offset);
  ExpectRejected(fmt::format("at pc {}: jump target {} is inside an instruction", jmp, match + 1));
}

TEST_F(CorruptionTest, JumpOutOfRange) {
  Proto& loop = ProtoNamed(*program_, "loop");
  size_t pc = FindOp(loop, Op::kFORPREP);
  loop.code[pc] = code::AsBx(Op::kFORPREP, code::GetA(loop.code[pc]), 5000);
  ExpectRejected("out of range (code size");
  loop.code[pc] = code::AsBx(Op::kFORPREP, code::GetA(loop.code[pc]), -static_cast<int>(pc) - 2);
  ExpectRejected("jump target -1 out of range");
}

TEST_F(CorruptionTest, TruncatedExtraWord) {
  Proto& getx = ProtoNamed(*program_, "getx");
  size_t pc = FindOp(getx, Op::kGETFIELD);
  getx.code.resize(pc + 1);
  getx.lines.resize(pc + 1);
  ExpectRejected(fmt::format("in getx at pc {}: GETFIELD is missing its extra word", pc));
}

TEST_F(CorruptionTest, MissingFinalReturn) {
  Proto& add = ProtoNamed(*program_, "add");
  add.code.pop_back();
  add.lines.pop_back();
  ExpectRejected("in add at pc 0: code ends with ADD");
}

TEST_F(CorruptionTest, EmptyCodeAndLineTable) {
  Proto& add = ProtoNamed(*program_, "add");
  add.lines.pop_back();
  ExpectRejected("in add: 1 line entries for 2 code words");
  add.code.clear();
  add.lines.clear();
  ExpectRejected("in add: empty code");
}

TEST_F(CorruptionTest, BadStructIndex) {
  Proto& make = ProtoNamed(*program_, "make");
  size_t pc = FindOp(make, Op::kNEWSTRUCT);
  make.code[pc + 1] = 5;
  ExpectRejected(fmt::format("in make at pc {}: struct type 5 out of range (1 structs)", pc));
}

TEST_F(CorruptionTest, StructFieldsPastLastRegister) {
  Proto& make = ProtoNamed(*program_, "make");
  size_t pc = FindOp(make, Op::kNEWSTRUCT);
  uint32_t w = make.code[pc];
  make.code[pc] = code::ABC(Op::kNEWSTRUCT, code::GetA(w), make.num_regs - 1, 0);
  ExpectRejected("out of range (num_regs");
}

TEST_F(CorruptionTest, BadEnumVariant) {
  Proto& main = ProtoNamed(*program_, "main");
  size_t pc = FindOp(main, Op::kNEWENUM);
  main.code[pc + 1] = (0u << 16) | 7;
  ExpectRejected(fmt::format("at pc {}: variant 7 out of range for enum Shape (2 variants)", pc));
  main.code[pc + 1] = (3u << 16) | 0;
  ExpectRejected("enum type 3 out of range (1 enums)");
  main.code[pc + 1] = (0xFFFFu << 16) | 1;
  ExpectRejected("variant 1 out of range for Option");
  main.code[pc + 1] = (0xFFFEu << 16) | 1;  // Err: valid
  EXPECT_OK(Check());
  Proto& pick = ProtoNamed(*program_, "pick");
  pick.code[FindOp(pick, Op::kMATCHENUM) + 1] = (0u << 16) | 2;
  ExpectRejected("in pick");
}

// FORMAT's constant must be a String that parses as a format spec (a blob may come from anywhere;
// the interpreter relies on it).
TEST_F(CorruptionTest, FormatSpecConstant) {
  Proto& show = ProtoNamed(*program_, "show");
  size_t pc = FindOp(show, Op::kFORMAT);
  uint32_t a = code::GetA(show.code[pc]);
  int number = -1, text = -1;
  for (size_t k = 0; k < show.constants.size(); ++k) {
    if (show.constants[k].type == Type::kNumber) number = static_cast<int>(k);
    if (show.constants[k].type == Type::kString && AsString(show.constants[k])->str == "ab")
      text = static_cast<int>(k);
  }
  ASSERT_GE(number, 0);
  ASSERT_GE(text, 0);
  show.code[pc] = code::ABx(Op::kFORMAT, a, static_cast<uint32_t>(number));
  ExpectRejected(fmt::format("in show at pc {}: FORMAT's constant is not a string", pc));
  show.code[pc] = code::ABx(Op::kFORMAT, a, static_cast<uint32_t>(text));
  ExpectRejected(fmt::format("in show at pc {}: invalid format spec 'ab': unknown format type 'a'", pc));
}

TEST_F(CorruptionTest, UpvalueIndex) {
  Proto& closure = ProtoNamed(*program_, "<closure>");
  size_t pc = FindOp(closure, Op::kGETUPVAL);
  uint32_t w = closure.code[pc];
  closure.code[pc] = code::ABC(Op::kGETUPVAL, code::GetA(w), 3, 0);
  ExpectRejected(
      fmt::format("in <closure> at pc {}: captured cell 3 out of range (1 captures)", pc));
  closure.code[pc] = w;
  ASSERT_OK(Check());
  // GETUPVAL in a plain function.
  Proto& add = ProtoNamed(*program_, "add");
  add.code[0] = code::ABC(Op::kGETUPVAL, 2, 0, 0);
  ExpectRejected("in add at pc 0: GETUPVAL outside a closure");
}

TEST_F(CorruptionTest, ClosureCaptureSource) {
  Proto& closure = ProtoNamed(*program_, "<closure>");
  ASSERT_EQ(closure.captures.size(), 1u);
  closure.captures[0].index = 200;
  ExpectRejected("in counter at pc");
  closure.captures[0] = CaptureDesc{false, 0};  // counter has no cells of its own
  ExpectRejected("captured cell 0 out of range (0 captures)");
}

TEST_F(CorruptionTest, FuncAndClosureMustMatchPrototypeKind) {
  Proto& counter = ProtoNamed(*program_, "counter");
  size_t pc = FindOp(counter, Op::kCLOSURE);
  counter.code[pc] = (counter.code[pc] & ~0xffu) | static_cast<uint32_t>(Op::kFUNC);
  ExpectRejected("FUNC of closure prototype");
}

TEST_F(CorruptionTest, SkipMustBeFollowedByJump) {
  Proto& loop = ProtoNamed(*program_, "loop");
  size_t pc = FindOp(loop, Op::kTGTI);
  loop.code[pc + 1] = code::ABC(Op::kLOADNONE, 0, 0, 0);
  ExpectRejected(fmt::format("in loop at pc {}: TGTI is not followed by a JMP", pc));
}

TEST_F(CorruptionTest, CallArgumentsPastLastRegister) {
  Proto& main = ProtoNamed(*program_, "main");
  size_t pc = FindOp(main, Op::kCALL);
  uint32_t a = code::GetA(main.code[pc]);
  main.code[pc] = code::ABC(Op::kCALL, a, main.num_regs - a, 0);
  ExpectRejected(fmt::format("at pc {}: registers {}..{} out of range", pc, a, main.num_regs));
}

TEST_F(CorruptionTest, TestArgBeyondParameters) {
  Proto& make = ProtoNamed(*program_, "make");
  size_t pc = FindOp(make, Op::kTESTARG);
  make.code[pc] = code::AsBx(Op::kTESTARG, 1, code::GetSBx(make.code[pc]));
  ExpectRejected("argument 1 out of range (1 parameters)");
}

TEST_F(CorruptionTest, UnknownOpcode) {
  Proto& add = ProtoNamed(*program_, "add");
  add.code[0] = 0xff;
  ExpectRejected("in add at pc 0: unknown opcode 255");
}

TEST_F(CorruptionTest, ProgramTables) {
  program_->script = 1000;
  ExpectRejected("script function 1000 out of range");
  program_->script = static_cast<uint32_t>(program_->protos.size() - 1);
  program_->main = 1000;
  ExpectRejected("main function 1000 out of range");
  program_->main = -1;
  ASSERT_OK(Check());
  program_->structs[0]->field_symbols[1] = 999;
  ExpectRejected("struct Point: field symbol 999 out of range");
}

TEST_F(CorruptionTest, HeaderFields) {
  Proto& add = ProtoNamed(*program_, "add");
  add.num_regs = 300;
  ExpectRejected("in add: num_regs 300 exceeds 255");
  add.num_regs = 1;
  ExpectRejected("in add: num_params 2 exceeds num_regs 1");
  add.num_regs = 3;
  add.num_required = 3;
  ExpectRejected("num_required 3 exceeds num_params 2");
  add.num_required = 2;
  add.param_types.pop_back();
  ExpectRejected("1 parameter types for 2 parameters");
  add.param_types.push_back(TypeSpec{.kind = TypeSpec::Kind::kStruct, .index = 4, .args = {}});
  ExpectRejected("struct type 4 out of range");
  add.param_types.back() = TypeSpec{};
  add.index = 77;
  ExpectRejected("index field 77");
}

// Random single-word mutations: Verify rejects, or the VM runs the program without crashing
// and reports success or a typed error.
TEST(VerifierFuzzTest, RandomMutationsAreRejectedOrRunSafely) {
  std::vector<std::unique_ptr<Program>> programs;
  for (const char* source : kPrograms) {
    programs.push_back(MustCompile(source));
    ASSERT_NE(programs.back(), nullptr);
  }
  std::mt19937 rng(12345);
  int accepted = 0, rejected = 0;
  constexpr int kMutations = 20000;
  for (int n = 0; n < kMutations; ++n) {
    Program& program = *programs[rng() % programs.size()];
    Proto& proto = *program.protos[rng() % program.protos.size()];
    if (proto.code.empty()) continue;
    size_t pc = rng() % proto.code.size();
    uint32_t original = proto.code[pc];
    uint32_t word = original;
    switch (rng() % 5) {
      case 0:
        word = static_cast<uint32_t>(rng());
        break;
      case 1:
        word ^= 1u << (rng() % 32);
        break;
      case 2:
        word = (word & ~0xffu) | static_cast<uint32_t>(rng() % kNumOps);
        break;
      case 3: {
        int shift = 8 * static_cast<int>(1 + rng() % 3);
        word = (word & ~(0xffu << shift)) | ((rng() & 0xffu) << shift);
        break;
      }
      default:
        word = (word & 0xffffu) | (static_cast<uint32_t>(rng() % 64) << 16);
        break;
    }
    proto.code[pc] = word;
    Status verified = Verify(program);
    if (!verified.ok()) {
      ++rejected;
      EXPECT_THAT(verified, IsError(ErrorKind::kInvalidArgument));
    } else {
      ++accepted;
      Vm vm(program, Limits{.fuel = 10000, .memory = 8 << 20});
      vm.SetOutput([](std::string_view) {});
      Status ran = vm.RunMain({"x"});
      EXPECT_NE(ran.kind(), ErrorKind::kInternal) << ran;
      EXPECT_NE(ran.kind(), ErrorKind::kInvalidArgument) << ran;
    }
    proto.code[pc] = original;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
  RecordProperty("accepted", accepted);
  RecordProperty("rejected", rejected);
}

}  // namespace
}  // namespace shapex::engine
