// Vm: handing calls of @remote functions to the embedder's RemoteCallHandler (vm.h, "Remote
// calls"). PushCall (interpreter.cc) makes the entry checks and then calls CallRemote instead of
// pushing a frame, so every way the VM calls a function — CALL, INVOKE, natives through
// Vm::Call, the public entry points — takes the same route.
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "vm_internal.h"

namespace shapex::engine {

const Value& Vm::global(size_t slot) const { return impl_->globals.at(slot); }

void Vm::SetGlobal(size_t slot, const Value& v) { impl_->globals.at(slot) = v; }

void Vm::SetRemoteCallHandler(RemoteCallHandler handler) {
  remote_call_ = std::move(handler);
  // @remote protos leave the CALL fast path while a handler is set, so the fast path needs no
  // test of its own.
  bool intercept = static_cast<bool>(remote_call_);
  for (size_t i = 0; i < program_.protos.size(); ++i)
    impl_->fast_call[i] = FastCallable(*program_.protos[i], intercept) ? 1 : 0;
}

bool Vm::CallRemote(const Proto& proto, Value* slot, int argc) {
  if (!CheckArgumentTypes(proto, slot + 1, argc)) return false;
  // The handler may re-enter the VM, which reuses the registers above the live top where
  // Vm::Call put this call's callee and arguments: copy them out and root the copies.
  std::vector<Value> call(slot, slot + argc + 1);
  RootScope roots(*this);
  for (const Value& v : call) roots.Add(v);
  remote_trace_.clear();
  Value result = Value::None();
  Status status = remote_call_(*this, call[0], std::span<const Value>(call).subspan(1), &result);
  std::vector<TraceFrame> remote_trace = std::move(remote_trace_);
  remote_trace_.clear();
  if (!status.ok()) {
    error_ = std::move(status);
    // The remote frames, then ours from the caller outwards. Without remote frames the usual
    // BuildTrace at the error's way out produces the same local frames.
    trace_ = std::move(remote_trace);
    if (!trace_.empty()) AppendFrameTrace();
    return false;
  }
  // A failed re-entrant call the handler recovered from may have left a trace behind.
  trace_.clear();
  if (proto.has_return_type && !MatchesType(&result, proto.return_type, program_))
    return Fail(fmt::format("return value of {}: expected {}, got {}", proto.name,
                            TypeSpecName(proto.return_type, program_), TypeName(result)));
  slot[0] = result;
  return true;
}

}  // namespace shapex::engine
