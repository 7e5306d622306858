// Vm::SetRemoteCallHandler: calls of @remote functions go to the embedder's handler from every
// place the VM calls a function (CALL, INVOKE, natives calling back, the public entry points),
// after the same entry checks as a local call; results, errors and traces come back as if the
// call had run locally; nothing changes without a handler.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "shapex/engine/compiler.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"
#include "testing/status_matchers.h"

namespace shapex::engine {
namespace {

using ::shapex_testing::IsError;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// One handler invocation as the test saw it.
struct SeenCall {
  std::string function;           // the callee's proto name
  bool closure = false;           // the callee value was a closure
  std::vector<std::string> args;  // ValueToString(arg, /*quoted=*/true)
  bool operator==(const SeenCall&) const = default;
};

std::ostream& operator<<(std::ostream& os, const SeenCall& c) {
  os << c.function << (c.closure ? "[closure]" : "") << "(";
  for (size_t i = 0; i < c.args.size(); ++i) os << (i ? ", " : "") << c.args[i];
  return os << ")";
}

SeenCall Call(std::string function, std::vector<std::string> args) {
  return SeenCall{std::move(function), false, std::move(args)};
}

// Compiles `source`, runs it in a Vm whose print() output is captured, and records every call
// the remote-call handler receives.
class RemoteHookTest : public ::testing::Test {
 protected:
  void Load(const std::string& source, Limits limits = {}) {
    auto program = Compile(source, "t.shape");
    ASSERT_TRUE(program.has_value()) << program.error().ToString();
    program_ = std::move(*program);
    vm_ = std::make_unique<Vm>(*program_, limits);
    vm_->SetOutput([this](std::string_view text) { out_.append(text); });
  }

  // Installs a handler that records the call and then runs `body` (nullptr: returns Int 0).
  void Hook(RemoteCallHandler body = nullptr) {
    vm_->SetRemoteCallHandler(
        [this, body](Vm& vm, const Value& callee, std::span<const Value> args, Value* result) {
          SeenCall seen{CalleeProto(callee)->name, callee.type == Type::kClosure, {}};
          for (const Value& a : args) seen.args.push_back(ValueToString(a, true));
          calls_.push_back(std::move(seen));
          if (body) return body(vm, callee, args, result);
          *result = Value::Int(0);
          return Status::Ok();
        });
  }

  // A handler that computes what a few known remote functions would, marked so the test can
  // tell it ran: add(a, b) -> 1000 + a + b, anything else -> its first argument.
  void HookAdd() {
    Hook([](Vm&, const Value& callee, std::span<const Value> args, Value* result) {
      if (CalleeProto(callee)->name == "add")
        *result = Value::Int(1000 + args[0].as.i + args[1].as.i);
      else
        *result = args.empty() ? Value::None() : args[0];
      return Status::Ok();
    });
  }

  Status Run() { return vm_->RunMain({}); }

  std::unique_ptr<Program> program_;
  std::unique_ptr<Vm> vm_;
  std::string out_;
  std::vector<SeenCall> calls_;
};

constexpr const char* kAdd = R"(
@remote
function add(a: int, b: int) -> int { a + b }
function twice(x) { x * 2 }
)";

TEST_F(RemoteHookTest, DirectCallGoesToTheHandlerAndLocalCallsDoNot) {
  Load(std::string(kAdd) + "print(add(10, 32))\nprint(twice(5))\n");
  HookAdd();
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "1042\n10\n");
  EXPECT_THAT(calls_, ElementsAre(Call("add", {"10", "32"})));
}

TEST_F(RemoteHookTest, WithoutHandlerRemoteFunctionsRunLocally) {
  Load(std::string(kAdd) + "print(add(10, 32))\nprint([1, 2].map(|x| add(x, x)))\n");
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "42\n[2, 4]\n");
}

TEST_F(RemoteHookTest, ClearingTheHandlerRestoresLocalCalls) {
  Load(std::string(kAdd) + "function main(args) { print(add(1, 2)) }\n");
  HookAdd();
  ASSERT_OK(Run());
  vm_->SetRemoteCallHandler(nullptr);
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "1003\n3\n");
  EXPECT_EQ(calls_.size(), 1u);
}

TEST_F(RemoteHookTest, CallsThroughVariablesAndHigherOrderFunctions) {
  Load(std::string(kAdd) + R"(
function apply(g, x, y) { g(x, y) }
function main(args) {
  let f = add
  print(f(1, 2))
  print(apply(add, 3, 4))
  let c = |x| add(x, 100)     // a local closure over a remote function
  print(c(5))
}
)");
  HookAdd();
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "1003\n1007\n1105\n");
  EXPECT_THAT(calls_, ElementsAre(Call("add", {"1", "2"}), Call("add", {"3", "4"}),
                                  Call("add", {"5", "100"})));
}

TEST_F(RemoteHookTest, ClosuresCannotBeRemote) {
  // Only named functions take annotations: the closure is local, the call inside it remote.
  EXPECT_FALSE(Compile("let f = @remote |x| x", "t.shape").has_value());
}

TEST_F(RemoteHookTest, ClosureValueOfARemoteProtoTakesTheHook) {
  // The embedder's codec may build a closure of any proto (send-copy); PushCall treats it alike.
  Load(kAdd);
  HookAdd();
  int index = program_->FindFunction("add");
  ASSERT_GE(index, 0);
  Value closure = vm_->NewClosure(static_cast<uint32_t>(index), {});
  Value result;
  ASSERT_OK(vm_->CallValue(closure, {Value::Int(2), Value::Int(3)}, &result));
  EXPECT_EQ(ValueToString(result), "1005");
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_TRUE(calls_[0].closure);
}

TEST_F(RemoteHookTest, RemoteMethodsAndStaticFunctions) {
  Load(R"(
type P { x: int }
impl P {
  @remote
  function scale(self, k: int) -> int { self.x * k }
  @remote
  function make(x: int) { P { x: x } }
  function local(self) { self.x }
}
function main(args) {
  let p = P { x: 2 }
  print(p.scale(3))
  print(P::make(7))
  print(p.local())
}
)");
  Hook([](Vm&, const Value& callee, std::span<const Value> args, Value* result) {
    *result = CalleeProto(callee)->name == "P.scale" ? Value::Int(-1) : args[0];
    return Status::Ok();
  });
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "-1\n7\n2\n");
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[0].args, (std::vector<std::string>{"P { x: 2 }", "3"}));
  EXPECT_EQ(calls_[1].args, (std::vector<std::string>{"7"}));
}

TEST_F(RemoteHookTest, NativesCallingBackTakeTheHook) {
  Load(R"(
@remote
function f(x) { x }
@remote
function p(x) { true }
@remote
function g(acc, x) { acc }
function main(args) {
  let xs = [3, 1, 2]
  print(xs.map(f))
  print(xs.filter(p))
  print(xs.reduce(g, 0))
  print([3, 1, 2].sort_by(f))  // sorts in place: not on xs
  print(xs.any(p))
  print(pmap(xs, f))
  print(pmap(0..2, f))
  print(Some(5).map(f))
}
)");
  // The handler's f is x + 10, p is x > 1, g is acc + x: the output shows it ran.
  Hook([](Vm&, const Value& callee, std::span<const Value> args, Value* result) {
    const std::string& name = CalleeProto(callee)->name;
    if (name == "g")
      *result = Value::Int(args[0].as.i + args[1].as.i);
    else if (name == "p")
      *result = Value::Bool(args[0].as.i > 1);
    else
      *result = Value::Int(args[0].as.i + 10);
    return Status::Ok();
  });
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "[13, 11, 12]\n[3, 2]\n6\n[1, 2, 3]\ntrue\n[13, 11, 12]\n[10, 11]\nSome(15)\n");
  // map 3 + filter 3 + reduce 3 + sort_by >= 3 + any >= 1 + pmap 3 + pmap(range) 2 + map 1.
  EXPECT_GE(calls_.size(), 19u);
  EXPECT_EQ(calls_[0], Call("f", {"3"}));
  EXPECT_EQ(calls_[6], Call("g", {"0", "3"}));
}

TEST_F(RemoteHookTest, PublicEntryPointsTakeTheHook) {
  Load(kAdd);
  HookAdd();
  Value result;
  ASSERT_OK(vm_->CallByName("add", {Value::Int(1), Value::Int(1)}, &result));
  EXPECT_EQ(ValueToString(result), "1002");
  int index = program_->FindFunction("add");
  ASSERT_OK(
      vm_->CallFunction(static_cast<uint32_t>(index), {Value::Int(2), Value::Int(2)}, &result));
  EXPECT_EQ(ValueToString(result), "1004");
  ASSERT_OK(vm_->CallByName("twice", {Value::Int(4)}, &result));
  EXPECT_EQ(ValueToString(result), "8");
  EXPECT_EQ(calls_.size(), 2u);
}

TEST_F(RemoteHookTest, HandlerResultsAreVmValues) {
  Load(R"(
@remote
function words(n: int) -> array { [] }
let w = words(3)
w.push("d")
print(w, w.len())
)");
  Hook([](Vm& vm, const Value&, std::span<const Value> args, Value* result) {
    std::vector<Value> items;
    for (int64_t i = 0; i < args[0].as.i; ++i)
      items.push_back(vm.NewString(std::string(1, static_cast<char>('a' + i))));
    *result = vm.NewArray(std::move(items));
    return Status::Ok();
  });
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "[\"a\", \"b\", \"c\", \"d\"] 4\n");
}

TEST_F(RemoteHookTest, NoResultSetMeansNone) {
  Load("@remote\nfunction f() { 1 }\nprint(f())\n");
  Hook([](Vm&, const Value&, std::span<const Value>, Value*) { return Status::Ok(); });
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "None\n");
}

// ---------------- errors ----------------

constexpr const char* kErrorProgram = R"(@remote
function add(a: int, b: int) -> int { a + b }
function middle(x) {
  add(x, 1)
}
function main(args) {
  middle(1)
}
)";

class RemoteHookErrorTest : public RemoteHookTest,
                            public ::testing::WithParamInterface<ErrorKind> {};

TEST_P(RemoteHookErrorTest, HandlerErrorsBecomeTheCallsErrorWithTheCallersTrace) {
  Load(kErrorProgram);
  Hook([](Vm&, const Value&, std::span<const Value>, Value*) {
    return Status(GetParam(), "remote said no");
  });
  Status s = Run();
  EXPECT_THAT(s, IsError(GetParam()));
  EXPECT_EQ(s.message(), "remote said no");
  ASSERT_EQ(vm_->trace().size(), 2u);
  EXPECT_EQ(vm_->trace()[0].function, "middle");
  EXPECT_EQ(vm_->trace()[0].line, 4u);
  EXPECT_EQ(vm_->trace()[1].function, "main");
  EXPECT_EQ(vm_->trace()[1].line, 7u);
}

INSTANTIATE_TEST_SUITE_P(Kinds, RemoteHookErrorTest,
                         ::testing::Values(ErrorKind::kRuntimeError, ErrorKind::kArgumentError,
                                           ErrorKind::kFunctionNotFound,
                                           ErrorKind::kMissingModuleFunction,
                                           ErrorKind::kResourceExhausted, ErrorKind::kTimeout,
                                           ErrorKind::kExecutorCrashed, ErrorKind::kCancelled,
                                           ErrorKind::kSandboxError, ErrorKind::kProtocolError),
                         [](const auto& info) { return std::string(ErrorKindName(info.param)); });

TEST_F(RemoteHookTest, RemoteTraceFramesComeBeforeTheCallersFrames) {
  Load(kErrorProgram);
  Hook([](Vm& vm, const Value&, std::span<const Value>, Value*) {
    vm.SetRemoteErrorTrace({TraceFrame{"divide", "t.shape", 9}, TraceFrame{"add", "t.shape", 2}});
    return RuntimeError("division by zero");
  });
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kRuntimeError));
  std::vector<std::string> trace;
  for (const TraceFrame& f : vm_->trace())
    trace.push_back(f.function + ":" + std::to_string(f.line));
  EXPECT_THAT(trace, ElementsAre("divide:9", "add:2", "middle:4", "main:7"));
}

TEST_F(RemoteHookTest, LocalRunGivesTheSameTraceShape) {
  // What the remote-trace test above imitates: the same error run locally.
  Load(R"(@remote
function add(a: int, b: int) -> int { a / (b - 1) }
function middle(x) {
  add(x, 1)
}
function main(args) {
  middle(1)
}
)");
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kRuntimeError));
  std::vector<std::string> trace;
  for (const TraceFrame& f : vm_->trace())
    trace.push_back(f.function + ":" + std::to_string(f.line));
  EXPECT_THAT(trace, ElementsAre("add:2", "middle:4", "main:7"));
}

TEST_F(RemoteHookTest, RemoteTraceIsIgnoredOnSuccessAndNotReused) {
  Load(kErrorProgram);
  int n = 0;
  Hook([&n](Vm& vm, const Value&, std::span<const Value>, Value* result) {
    if (n++ == 0) {
      vm.SetRemoteErrorTrace({TraceFrame{"stale", "t.shape", 1}});
      *result = Value::Int(1);
      return Status::Ok();
    }
    return TimeoutError("timed out after 1s");
  });
  ASSERT_OK(Run());
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kTimeout));
  ASSERT_FALSE(vm_->trace().empty());
  EXPECT_EQ(vm_->trace()[0].function, "middle");
}

TEST_F(RemoteHookTest, ErrorsFromNativeCallbacksKeepTheTrace) {
  Load(R"(@remote
function f(x) { x }
function main(args) {
  [1, 2].map(f)
}
)");
  Hook([](Vm&, const Value&, std::span<const Value>, Value*) {
    return ExecutorCrashedError("executor died (signal 9)");
  });
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kExecutorCrashed));
  ASSERT_EQ(vm_->trace().size(), 1u);
  EXPECT_EQ(vm_->trace()[0].function, "main");
  EXPECT_EQ(vm_->trace()[0].line, 4u);
}

TEST_F(RemoteHookTest, ErrorFromAMethodCall) {
  Load(R"(type P { x: int }
impl P {
  @remote
  function get(self) { self.x }
}
let p = P { x: 1 }
p.get()
)");
  Hook([](Vm&, const Value&, std::span<const Value>, Value*) {
    return CancelledError("cancelled");
  });
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kCancelled));
  ASSERT_EQ(vm_->trace().size(), 1u);
  EXPECT_EQ(vm_->trace()[0].function, "<script>");
  EXPECT_EQ(vm_->trace()[0].line, 7u);
}

// Runs `program` with and without a handler; the error must be identical and the handler
// never called.
void ExpectSameEntryError(const std::string& program, ErrorKind kind, const std::string& msg) {
  std::vector<std::string> messages, traces;
  for (bool hooked : {false, true}) {
    auto p = Compile(program, "t.shape");
    ASSERT_TRUE(p.has_value()) << p.error().ToString();
    Vm vm(**p, Limits{});
    vm.SetOutput([](std::string_view) {});
    int calls = 0;
    if (hooked)
      vm.SetRemoteCallHandler([&calls](Vm&, const Value&, std::span<const Value>, Value*) {
        ++calls;
        return Status::Ok();
      });
    Status s = vm.RunMain({});
    EXPECT_THAT(s, IsError(kind)) << (hooked ? "with handler" : "local");
    messages.push_back(s.message());
    std::string trace;
    for (const TraceFrame& f : vm.trace()) trace += f.function + ":" + std::to_string(f.line) + " ";
    traces.push_back(trace);
    EXPECT_EQ(calls, 0);
  }
  EXPECT_EQ(messages[0], msg);
  EXPECT_EQ(messages[1], messages[0]);
  EXPECT_EQ(traces[1], traces[0]);
}

TEST(RemoteHookEntryChecks, WrongArgumentCountIsAnArgumentErrorBeforeTheHandler) {
  ExpectSameEntryError(std::string(kAdd) + "function main(args) {\n  add(1)\n}\n",
                       ErrorKind::kArgumentError, "add expected 2 arguments, got 1");
}

TEST(RemoteHookEntryChecks, WrongArgumentKindIsAnArgumentErrorBeforeTheHandler) {
  ExpectSameEntryError(std::string(kAdd) + "function main(args) {\n  add(1, \"2\")\n}\n",
                       ErrorKind::kArgumentError, "argument 'b' of add: expected int, got string");
}

TEST(RemoteHookEntryChecks, WrongArgumentsFromANativeCallback) {
  ExpectSameEntryError(std::string(kAdd) + "function main(args) {\n  [1].map(add)\n}\n",
                       ErrorKind::kArgumentError, "add expected 2 arguments, got 1");
}

TEST_F(RemoteHookTest, ArgumentsAreConvertedAndDefaultsLeftToTheCallee) {
  Load(R"(@remote
function half(x: number, scale = 2) { x / scale }
print(half(3))
print(half(3, 4))
)");
  Hook();
  ASSERT_OK(Run());
  EXPECT_THAT(calls_, ElementsAre(Call("half", {"3.0"}), Call("half", {"3.0", "4"})));
}

TEST_F(RemoteHookTest, ReturnValueIsCheckedAgainstTheAnnotation) {
  Load(std::string(kAdd) + "function main(args) {\n  add(1, 2)\n}\n");
  Hook([](Vm& vm, const Value&, std::span<const Value>, Value* result) {
    *result = vm.NewString("three");
    return Status::Ok();
  });
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kRuntimeError));
  EXPECT_EQ(s.message(), "return value of add: expected int, got string");
  ASSERT_EQ(vm_->trace().size(), 1u);
  EXPECT_EQ(vm_->trace()[0].function, "main");
}

TEST_F(RemoteHookTest, NumberReturnAcceptsAnIntAsLocally) {
  Load("@remote\nfunction f() -> number { 1 }\nprint(f())\n");
  Hook();
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "0.0\n");
}

TEST_F(RemoteHookTest, StackDepthIsCheckedAsForALocalCall) {
  Load(R"(@remote
function f() { 1 }
function down(n) { if n == 0 { f() } else { down(n - 1) } }
down(100)
)",
       Limits{.stack = 50});
  Hook();
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kResourceExhausted));
  EXPECT_THAT(calls_, IsEmpty());
}

// ---------------- re-entrancy and GC ----------------

TEST_F(RemoteHookTest, HandlerMayCallBackIntoTheVm) {
  Load(std::string(kAdd) + "function main(args) { print(add(20, 1)) }\n");
  // The handler computes the result with the program's local `twice`, both ways.
  Hook([this](Vm& vm, const Value&, std::span<const Value> args, Value* result) {
    Value twice = vm.NewFunction(static_cast<uint32_t>(program_->FindFunction("twice")));
    Value doubled;
    RETURN_IF_ERROR(vm.CallValue(twice, {args[0]}, &doubled));
    if (!vm.Call(twice, &args[1], 1, result)) return RuntimeError("nested Call failed");
    *result = Value::Int(doubled.as.i + result->as.i);
    return Status::Ok();
  });
  ASSERT_OK(Run());
  EXPECT_EQ(out_, "42\n");
}

TEST_F(RemoteHookTest, HandlerCallingTheRemoteFunctionAgainIsBounded) {
  // A handler that calls the callee back re-enters itself; the native-depth limit stops it.
  Load(std::string(kAdd) + "function main(args) { add(1, 2) }\n");
  Hook([](Vm& vm, const Value& callee, std::span<const Value> args, Value* result) {
    if (!vm.Call(callee, args.data(), static_cast<int>(args.size()), result))
      return ResourceExhausted("nested: stack depth exceeded");
    return Status::Ok();
  });
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kResourceExhausted));
  EXPECT_GT(calls_.size(), 10u);
  EXPECT_LT(calls_.size(), 1000u);
}

TEST_F(RemoteHookTest, RecoveredNestedFailureLeavesNoStaleTrace) {
  Load(R"(@remote
function r() { 0 }
function bad() { 1 / 0 }
function main(args) {
  r()
  [1].map(|x| x / 0)
}
)");
  Hook([this](Vm& vm, const Value&, std::span<const Value>, Value* result) {
    Value bad = vm.NewFunction(static_cast<uint32_t>(program_->FindFunction("bad")));
    EXPECT_FALSE(vm.CallValue(bad, {}, result).ok());  // swallowed
    *result = Value::Int(0);
    return Status::Ok();
  });
  Status s = Run();
  EXPECT_THAT(s, IsError(ErrorKind::kRuntimeError));
  std::vector<std::string> trace;
  for (const TraceFrame& f : vm_->trace()) trace.push_back(f.function);
  EXPECT_THAT(trace, ElementsAre("<closure>", "main"));
}

TEST_F(RemoteHookTest, ArgumentsAndResultsSurviveCollectionsInsideTheHandler) {
  // 2 MB heap limit; `churn` allocates ~16 MB of garbage, so the collector must run (several
  // times) while the handler is inside vm.Call. The arguments (also when a native made the
  // call: Vm::Call's argument registers are reused by the handler's own vm.Call) and the
  // handler's own result (rooted) must survive.
  Load(R"(@remote
function join(a, b) { a + b }
@remote
function one(a) { a }
function churn() {
  var n = 0
  for i in 0..4000 { n += "x".repeat(4000).len() }
  n
}
function main(args) {
  let out = []
  for i in 0..3 { out.push(join(f"left{i}", [f"right{i}", i])) }
  print(out)
  print([f"m{1}", f"m{2}"].map(|s| join(s, [s])))
  print([f"p{1}", f"q{2}"].map(one))
}
)",
       Limits{.memory = 2u << 20});
  Hook([this](Vm& vm, const Value&, std::span<const Value> args, Value* result) {
    Value churn = vm.NewFunction(static_cast<uint32_t>(program_->FindFunction("churn")));
    Vm::RootScope roots(vm);
    Value partial = vm.NewArray({vm.NewString("got")});
    roots.Add(partial);
    Value n;
    if (!vm.Call(churn, nullptr, 0, &n)) return ResourceExhausted("churn failed");
    if (n.as.i != 16'000'000) return RuntimeError("churn returned " + ValueToString(n));
    // Still intact after the collections: the arguments and our own rooted array.
    std::string seen = ValueToString(args[0]);
    for (size_t i = 1; i < args.size(); ++i) seen += "|" + ValueToString(args[i], true);
    AsArray(partial)->items.push_back(vm.NewString(std::move(seen)));
    vm.Recharge(partial.as.o);
    *result = partial;
    return Status::Ok();
  });
  ASSERT_OK(Run());
  EXPECT_EQ(out_,
            "[[\"got\", \"left0|[\\\"right0\\\", 0]\"], [\"got\", \"left1|[\\\"right1\\\", 1]\"], "
            "[\"got\", \"left2|[\\\"right2\\\", 2]\"]]\n"
            "[[\"got\", \"m1|[\\\"m1\\\"]\"], [\"got\", \"m2|[\\\"m2\\\"]\"]]\n"
            "[[\"got\", \"p1\"], [\"got\", \"q2\"]]\n");
}

TEST_F(RemoteHookTest, ResultsOfRemoteCallsAreCollectable) {
  // Remote results are garbage once dropped; a loop of calls with no other allocation still
  // reaches a collection (CALL checks the heap after a handler ran) and stays under the limit.
  Load(R"(@remote
function big() { "" }
for i in 0..200 { big() }
)",
       Limits{.memory = 4u << 20});
  Hook([](Vm& vm, const Value&, std::span<const Value>, Value* result) {
    // As a native would: CheckAlloc counts garbage too, so it fails unless the loop collects.
    constexpr size_t kBytes = 256 * 1024;
    if (!vm.CheckAlloc(kBytes)) return ResourceExhausted("memory limit exceeded");
    *result = vm.NewString(std::string(kBytes, 'x'));
    return Status::Ok();
  });
  EXPECT_OK(Run());
  EXPECT_EQ(calls_.size(), 200u);
}

}  // namespace
}  // namespace shapex::engine
