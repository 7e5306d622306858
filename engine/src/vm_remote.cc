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

void Vm::ReportMapProgress(size_t done) {
  if (map_progress_ != nullptr && map_depth_ == 1) map_progress_->Advance(done);
}

void Vm::PrintDuringMap(std::string_view text) {
  map_progress_->BeforeOutput();
  output_(text);
  map_progress_->AfterOutput();
}

bool Vm::MapCalls(const Value& f, std::span<const Value> items, Value* out) {
  // The outermost pmap is reported to map_progress_ from here to every way out.
  struct ProgressScope {
    Vm& vm;
    ProgressScope(Vm& v, size_t total) : vm(v) {
      if (++vm.map_depth_ == 1 && vm.map_progress_ != nullptr) vm.map_progress_->Begin(total);
    }
    ~ProgressScope() {
      if (--vm.map_depth_ == 0 && vm.map_progress_ != nullptr) vm.map_progress_->End();
    }
  } progress(*this, items.size());
  Value result = NewArray();
  RootScope roots(*this);
  roots.Add(result);
  ObjArray* r = AsArray(result);
  const Proto* proto = CalleeProto(f);
  if (remote_map_ && proto != nullptr) {
    // The batch goes to the handler only as far as the calls pass the entry checks: a local
    // map runs items 0..k-1 and then fails on item k's arguments, and so do we.
    std::vector<Value> checked;
    checked.reserve(items.size());
    Status entry_error;
    for (const Value& item : items) {
      Value arg = item;
      if (proto->num_required > 1 || proto->num_params < 1) {
        entry_error = Status(ErrorKind::kArgumentError, ArgCountMessage(*proto, 1));
        break;
      }
      if (!CheckArgumentTypes(*proto, &arg, 1)) {
        entry_error = std::exchange(error_, Status::Ok());
        break;
      }
      roots.Add(arg);
      checked.push_back(arg);
    }
    std::vector<Value> results;
    bool handled = true;
    Status status;
    remote_trace_.clear();
    if (!checked.empty()) status = remote_map_(*this, f, checked, &results, &handled);
    std::vector<TraceFrame> remote_trace = std::exchange(remote_trace_, {});
    if (handled) {
      if (!status.ok()) {
        error_ = std::move(status);
        trace_ = std::move(remote_trace);
        if (!trace_.empty()) AppendFrameTrace();
        return false;
      }
      if (results.size() != checked.size())
        return FailKind(ErrorKind::kInternal, "pmap: the handler returned the wrong number of results");
      trace_.clear();
      for (Value& y : results) {
        if (proto->has_return_type && !MatchesType(&y, proto->return_type, program_))
          return Fail(fmt::format("return value of {}: expected {}, got {}", proto->name,
                                  TypeSpecName(proto->return_type, program_), TypeName(y)));
        r->items.push_back(y);
      }
      Recharge(r);
      if (!entry_error.ok()) {
        error_ = std::move(entry_error);
        return false;
      }
      *out = result;
      return true;
    }
  }
  for (const Value& item : items) {
    Value x = item;
    Value y;
    if (!Call(f, &x, 1, &y)) return false;
    r->items.push_back(y);
    Recharge(r);
    ReportMapProgress(r->items.size());
  }
  *out = result;
  return true;
}

}  // namespace shapex::engine
