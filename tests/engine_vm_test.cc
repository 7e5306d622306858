// Vm regressions: verified programs that used to reach freed objects or trip a sanitizer (found
// by fuzz_blob_struct, tools/fuzz/fuzz_blob_struct.cc), and limits that used not to hold (found
// by the differential run, tools/difftest).
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "shapex/engine/compiler.h"
#include "shapex/engine/opcodes.h"
#include "shapex/engine/verifier.h"
#include "shapex/engine/vm.h"

namespace shapex::engine {
namespace {

std::unique_ptr<Program> MustCompile(const std::string& src) {
  Diagnostic d;
  auto p = Compile(src, "t.shape", &d);
  EXPECT_TRUE(p.has_value()) << d.message << " at " << d.line << ":" << d.col;
  return p.has_value() ? std::move(*p) : nullptr;
}

// f(a) returns its argument; g() returns register 6, which nothing writes (the verifier does
// not track assignment: a register not yet written is None).
struct StaleRegisterProgram {
  std::unique_ptr<Program> program;
  uint32_t f = 0, g = 0;
};

StaleRegisterProgram MakeStaleRegisterProgram() {
  StaleRegisterProgram out;
  out.program = MustCompile("function f(a) { a }\nfunction g() { 0 }");
  if (out.program == nullptr) return out;
  int f = out.program->FindFunction("f"), g = out.program->FindFunction("g");
  EXPECT_GE(f, 0);
  EXPECT_GE(g, 0);
  out.f = static_cast<uint32_t>(f);
  out.g = static_cast<uint32_t>(g);
  Proto& gp = *out.program->protos[out.g];
  gp.num_regs = 8;
  gp.code = {code::ABC(Op::kRET, 6, 0, 0)};
  gp.lines = {1};
  EXPECT_TRUE(Verify(*out.program).ok());
  return out;
}

// Calls f with 8 strings: PushCall refuses it (too many arguments), leaving them in registers.
void LeaveStaleRegisters(Vm& vm, uint32_t f) {
  std::vector<Value> args;
  for (int i = 0; i < 8; ++i) args.push_back(vm.NewString("stale " + std::to_string(i)));
  Value out;
  Status s = vm.CallFunction(f, args, &out);
  EXPECT_EQ(s.kind(), ErrorKind::kArgumentError) << s.ToString();
}

void ExpectUnwrittenRegisterIsNone(Vm& vm, uint32_t g) {
  Value out = Value::Int(1);
  Status s = vm.CallFunction(g, {}, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(out.IsNone()) << "an unwritten register holds a value of type "
                            << static_cast<int>(out.type);
}

const Limits kStaleLimits{.fuel = 10000, .memory = 8 << 20, .stack = 64};

// A call that PushCall refused (too many arguments) left its arguments above the register
// stack's high-water mark, so the stack went back to the per-thread spare unzeroed there, and
// the next Vm on the thread found the previous Vm's (freed) strings in registers that must read
// as None: a register the code never wrote, and registers the collector marks.
TEST(VmStackTest, RefusedCallLeavesNoStaleRegistersForTheNextVm) {
  StaleRegisterProgram p = MakeStaleRegisterProgram();
  ASSERT_NE(p.program, nullptr);
  {
    Vm vm(*p.program, kStaleLimits);
    LeaveStaleRegisters(vm, p.f);
  }
  Vm vm(*p.program, kStaleLimits);  // takes over the previous Vm's register stack
  ExpectUnwrittenRegisterIsNone(vm, p.g);
}

// A native that calls back a short function in a loop (reduce over an array the callback
// grows) never used up a fuel slice in any one run of the frame loop, so the wall-clock deadline
// was never checked: the program ran until the memory limit (seconds later), or for ever when
// the callback allocated nothing. Every 64th entry into the loop now checks it.
TEST(VmLimitsTest, DeadlineHoldsInsideNativeCallbackLoops) {
  auto p = MustCompile(
      "function main() {\n"
      "  let a = [1]\n"
      "  a.reduce(|acc, x| { a.push(x); acc }, 0)\n"
      "}\n");
  ASSERT_NE(p, nullptr);
  Vm vm(*p, Limits{.fuel = 0, .memory = size_t{1} << 30, .stack = 1000, .timeout = 0.3});
  Status s = vm.RunMain({});
  EXPECT_EQ(s.kind(), ErrorKind::kTimeout) << s.ToString();
  ASSERT_FALSE(vm.trace().empty());
  EXPECT_EQ(vm.trace().back().function, "main");
}

// An executor resets its Vm between calls instead of building one (Vm::Reset): the second call
// must see exactly what a new Vm would show it, whatever the first one left behind.
TEST(VmResetTest, TheSameCallAfterAResetGivesTheSameAnswerOutputAndFuel) {
  auto p = MustCompile(
      "var g = 0\nvar log = []\n"
      "function f(x) {\n"
      "  if type_of(log) == \"none\" { g = 0; log = [] }\n"
      "  g = g + x\n"
      "  log.push(f\"entry {g}\")\n"
      "  print(g, log)\n"
      "  log.len()\n"
      "}\n");
  ASSERT_NE(p, nullptr);
  int f = p->FindFunction("f");
  ASSERT_GE(f, 0);
  const Limits limits{.fuel = 100000, .memory = 8 << 20, .stack = 64};
  Vm vm(*p, limits);
  auto call = [&](std::string* out, uint64_t* fuel) {
    vm.SetOutput([out](std::string_view text) { *out += text; });
    Value r;
    Status s = vm.CallFunction(static_cast<uint32_t>(f), {Value::Int(3)}, &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    *fuel = vm.instructions_executed();
    return r;
  };
  std::string first_out, second_out;
  uint64_t first_fuel = 0, second_fuel = 0;
  Value first = call(&first_out, &first_fuel);
  ASSERT_TRUE(vm.Reset(limits));
  EXPECT_EQ(vm.instructions_executed(), 0u);
  Value second = call(&second_out, &second_fuel);
  ASSERT_TRUE(first.IsInt() && second.IsInt());
  EXPECT_EQ(first.as.i, 1);
  EXPECT_EQ(second.as.i, 1) << "the global array kept the first call's entry";
  EXPECT_EQ(second_out, first_out);
  EXPECT_EQ(second_fuel, first_fuel);
  // Another stack-depth limit needs another register stack: refused, the Vm still works.
  EXPECT_FALSE(vm.Reset(Limits{.fuel = 100000, .memory = 8 << 20, .stack = 128}));
  ASSERT_TRUE(vm.Reset(limits));
  std::string third_out;
  uint64_t third_fuel = 0;
  EXPECT_EQ(call(&third_out, &third_fuel).as.i, 1);
}

// The registers a call wrote (even ones a refused call left above the frame) read as None after
// a reset, as in a new Vm.
TEST(VmResetTest, RegistersReadAsNoneAfterAReset) {
  StaleRegisterProgram p = MakeStaleRegisterProgram();
  ASSERT_NE(p.program, nullptr);
  Vm vm(*p.program, kStaleLimits);
  LeaveStaleRegisters(vm, p.f);
  ASSERT_TRUE(vm.Reset(kStaleLimits));
  ExpectUnwrittenRegisterIsNone(vm, p.g);
}

}  // namespace
}  // namespace shapex::engine
