// Vm regressions: verified programs that used to reach freed objects or trip a sanitizer (found
// by fuzz_blob_struct, tools/fuzz/fuzz_blob_struct.cc), and limits that used not to hold (found
// by the differential run, tools/difftest).
#include <string>

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

// A call that PushCall refused (too many arguments) left its arguments above the register
// stack's high-water mark, so the stack went back to the per-thread spare unzeroed there, and
// the next Vm on the thread found the previous Vm's (freed) strings in registers that must read
// as None: a register the code never wrote, and registers the collector marks.
TEST(VmStackTest, RefusedCallLeavesNoStaleRegistersForTheNextVm) {
  auto p = MustCompile("function f(a) { a }\nfunction g() { 0 }");
  ASSERT_NE(p, nullptr);
  int f = p->FindFunction("f"), g = p->FindFunction("g");
  ASSERT_GE(f, 0);
  ASSERT_GE(g, 0);
  // g returns register 6, which nothing writes (the verifier does not track assignment: a
  // register not yet written is None).
  Proto& gp = *p->protos[static_cast<size_t>(g)];
  gp.num_regs = 8;
  gp.code = {code::ABC(Op::kRET, 6, 0, 0)};
  gp.lines = {1};
  ASSERT_TRUE(Verify(*p).ok());
  const Limits limits{.fuel = 10000, .memory = 8 << 20, .stack = 64};
  {
    Vm vm(*p, limits);
    std::vector<Value> args;
    for (int i = 0; i < 8; ++i) args.push_back(vm.NewString("stale " + std::to_string(i)));
    Value out;
    Status s = vm.CallFunction(static_cast<uint32_t>(f), args, &out);
    EXPECT_EQ(s.kind(), ErrorKind::kArgumentError) << s.ToString();
  }
  Vm vm(*p, limits);  // takes over the previous Vm's register stack
  Value out = Value::Int(1);
  Status s = vm.CallFunction(static_cast<uint32_t>(g), {}, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(out.IsNone()) << "an unwritten register holds a value of type "
                            << static_cast<int>(out.type);
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

}  // namespace
}  // namespace shapex::engine
