// Vm: runs a verified Program with limits (fuel, heap bytes, stack depth) and reports failures
// as typed Status values plus a Shape stack trace.
//
// Usage:
//   ASSIGN_OR_RETURN(auto program, Compile(source, "prog.shape"));
//   Vm vm(*program, Limits{.fuel = 1'000'000});
//   Status s = vm.RunMain({"arg1"});          // top-level code, then main(args)
//   if (!s.ok()) print(s, vm.trace());
//
// A Vm owns its heap, globals and register stack; it is single-threaded. The Program must
// outlive the Vm. The same Vm can run several calls (globals persist between them).
//
// The second half of this header is the API that natives (natives.h) use: allocation,
// errors, re-entrant calls, and GC rooting. Rules for natives:
//   * Return false after calling one of the Fail*() functions; return true with *out set.
//   * The garbage collector runs only at VM safe points, never inside a native, EXCEPT while
//     the native is inside Vm::Call(). Values a native created and still needs after a Call()
//     must be protected with a RootScope. Arguments are rooted by the caller.
//   * `args` points into the register stack; it stays valid for the whole native call.
//   * Before allocating a buffer whose size comes from the program (Vec::f64(n), repeat(n)),
//     call CheckAlloc(bytes) so an absurd size fails with ResourceExhausted instead of
//     exhausting the process.
//
// Remote calls. By default a Vm runs @remote functions in-process (`shapex run --local`). An
// embedder that ships them to an executor installs a RemoteCallHandler (SetRemoteCallHandler);
// from then on every call of a function whose Proto has `remote` set, made by code running in
// this Vm, goes to the handler instead of being interpreted: the CALL and INVOKE instructions,
// natives calling back (Array.map/filter/reduce/sort_by, Option.map, pmap, ...) and the public
// entry points (CallValue, CallByName, CallFunction, RunMain). Non-remote calls never see it.
//   * Before the handler runs, the Vm checks the call exactly as a local call is checked at
//     entry: argument count and parameter annotations (ArgumentError, Int converted to Number
//     for `number`) and stack depth (ResourceExhausted), so errors are the same with and
//     without --local. `args` holds only the arguments given: defaults are filled in by the
//     callee on the remote side.
//   * OK: *result (None unless set) becomes the call's value. If the function declares a return
//     annotation the Vm checks the value again (the executor already did) and fails with the
//     local RuntimeError "return value of f: expected T, got U" when it does not match.
//   * Error: the Status (kind and message unchanged: RuntimeError, FunctionNotFound, Timeout,
//     ExecutorCrashed, ...) becomes the call's error in this Vm. trace() is then the frames the
//     handler passed to SetRemoteErrorTrace (the remote side's frames, innermost first),
//     followed by this Vm's frames from the caller outwards.
//   * The handler is called like a native: `callee` and `args` are rooted for the whole call and
//     stay valid; it may allocate with the API below (no collection happens inside it) and may
//     re-enter the Vm with Call() or CallValue() (values it made and still needs across such a
//     call must be in a RootScope). It must not throw, and must not replace or clear the
//     handler while it runs. One call at a time: the Vm stays single-threaded.
#ifndef SHAPEX_ENGINE_VM_H_
#define SHAPEX_ENGINE_VM_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shapex/core/status.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"

namespace shapex::engine {

struct Limits {
  uint64_t fuel = 0;                // instructions; 0 = unlimited
  size_t memory = size_t{1} << 30;  // heap bytes
  uint32_t stack = 10000;           // call frames
  double timeout = 0;               // wall-clock seconds per RunMain/CallByName; 0 = none
};

struct TraceFrame {
  std::string function;
  std::string file;
  uint32_t line = 0;
  // Where the frame stopped, so another holder of the same code can name it with its own debug
  // info (a caller naming an executor's frames, vm_remote.cc): the proto's content hash when
  // the frame came over the wire (has_hash), and the code offset of the instruction running.
  std::array<uint8_t, 32> hash{};
  bool has_hash = false;
  uint32_t proto = UINT32_MAX;  // proto index in the program the trace came from
  uint32_t pc = 0;
  // Non-zero: not a frame but the marker for this many frames left out ("... N more frames").
  uint64_t skipped = 0;
};

// Traces keep the innermost kTraceInner and the outermost kTraceOuter frames of a deeper stack
// and one marker frame for the rest. Shortening concatenated traces again (the frames of a
// remote call, then the caller's) gives what shortening the whole stack at once would.
inline constexpr size_t kTraceInner = 20;
inline constexpr size_t kTraceOuter = 5;
void ShortenTrace(std::vector<TraceFrame>* frames);

struct Heap;
struct Frame;
class Vm;

// Runs one call of a @remote function for a Vm (see "Remote calls" above). Returns OK with
// *result set, or the call's error.
using RemoteCallHandler =
    std::function<Status(Vm& vm, const Value& callee, std::span<const Value> args, Value* result)>;

// pmap(xs, f) as one batch, so the embedder can spread the calls f(xs[i]) over several
// executors. The Vm has checked every call's arguments as a local call would (count,
// annotations; `items` holds the checked, possibly converted, single arguments). The handler
// sets *handled = false to decline (pmap then calls f item by item, through the
// RemoteCallHandler where f is @remote). Otherwise it returns OK with one result per item, in
// order, or the error of the first failing item in order, after printing through vm.Print
// exactly what items 0..k of a one-by-one map would have printed. Same rules as
// RemoteCallHandler otherwise (SetRemoteErrorTrace for remote frames).
using RemoteMapHandler = std::function<Status(Vm& vm, const Value& callee,
                                              std::span<const Value> items,
                                              std::vector<Value>* results, bool* handled)>;

// Watches the pmaps a Vm runs, for a progress display (RemoteCalls draws `pmap 37/100` on a
// terminal). Only the outermost pmap is reported (one inside f is part of f's item), whether its
// items run here one by one or through the RemoteMapHandler. Every call comes on the Vm's thread.
class MapProgress {
 public:
  virtual ~MapProgress() = default;
  virtual void Begin(size_t total) = 0;   // a pmap of `total` items starts
  virtual void Advance(size_t done) = 0;  // items 0..done-1 have finished
  virtual void End() = 0;                 // the pmap ended, all done or failed
  // Around text the program prints while a pmap runs (the display may take its line away).
  virtual void BeforeOutput() = 0;
  virtual void AfterOutput() = 0;
};

class Vm {
 public:
  Vm(const Program& program, Limits limits);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Makes this Vm what `Vm(program(), limits)` would be, cheaper than building one (an
  // executor reuses its Vm between calls): every object is freed, and globals, registers,
  // frames, fuel, deadline, trace, error, output sink and handlers go back to a new Vm's. What
  // it keeps is derived from the program alone (function values, resolved natives, method
  // lookups). False, with the Vm unchanged, when `limits` needs another register stack or
  // frame array (a different stack-depth limit): build a new Vm then. Not during a call.
  bool Reset(const Limits& limits);

  // Runs the top-level statements, then main(args) if the program declares main.
  Status RunMain(const std::vector<std::string>& args);
  // Runs the top-level statements once (idempotent; every entry point below runs them first
  // too). For an embedder that sets up a module before its first call.
  Status RunTopLevel();
  // Runs the top-level statements once (idempotent), then calls the named top-level function.
  Status CallByName(const std::string& name, const std::vector<Value>& args, Value* result);
  // Calls the function with proto index `proto` (e.g. LinkedProgram::entry) after the
  // top-level statements.
  Status CallFunction(uint32_t proto, const std::vector<Value>& args, Value* result);
  // Trace of the last failure, innermost frame first.
  const std::vector<TraceFrame>& trace() const { return trace_; }
  // The error of the last failure (e.g. of a paid walk such as ValueToString(vm, ...)).
  const Status& last_error() const { return error_; }
  // Where print() writes. Default: stdout.
  void SetOutput(std::function<void(std::string_view)> sink) { output_ = std::move(sink); }
  const Program& program() const { return program_; }
  // Routes calls of @remote functions to `handler`; an empty handler (the default) runs them
  // in this Vm. Not while a call is running inside the handler.
  void SetRemoteCallHandler(RemoteCallHandler handler);
  // For a RemoteCallHandler about to return an error: the remote side's trace frames (innermost
  // first), put before the caller's frames in trace(). Ignored when the handler returns OK.
  void SetRemoteErrorTrace(std::vector<TraceFrame> frames) { remote_trace_ = std::move(frames); }
  // Where pmap hands its whole batch (see RemoteMapHandler); empty: pmap maps one by one.
  void SetRemoteMapHandler(RemoteMapHandler handler) { remote_map_ = std::move(handler); }
  // Reports this Vm's pmaps to `progress` (not owned; nullptr, the default: none). Not while a
  // pmap runs.
  void SetMapProgress(MapProgress* progress) { map_progress_ = progress; }
  // For a RemoteMapHandler: items 0..done-1 of its batch have finished.
  void ReportMapProgress(size_t done);
  // pmap's body: f over `items` in order, through the RemoteMapHandler when there is one and it
  // accepts f, else one call at a time. False with the error set, like Call.
  bool MapCalls(const Value& f, std::span<const Value> items, Value* out);
  uint64_t instructions_executed() const;
  // Module globals by slot (Program::global_names). SetGlobal is for embedders between calls,
  // e.g. an executor installing the caller's values of the globals a remote function reads.
  const Value& global(size_t slot) const;
  void SetGlobal(size_t slot, const Value& v);

  // ---------------- API for natives ----------------
  Value NewString(std::string s);
  Value NewArray(std::vector<Value> items = {});
  Value NewMap();
  Value NewSome(Value v);
  Value NewOk(Value v);
  Value NewErr(Value v);
  Value NewEnum(const EnumType* type, uint32_t variant, std::vector<Value> payload);
  Value NewRange(int64_t start, int64_t end, int64_t step, bool inclusive);
  // A struct of `type` (which must belong to this VM's program or outlive the VM) with
  // `fields` in declaration order; missing fields are None, extra ones are dropped.
  Value NewStruct(const StructType* type, std::vector<Value> fields);
  // The function value of proto `proto` (a non-closure function), as FUNC produces it.
  Value NewFunction(uint32_t proto);
  // A closure of proto `proto` whose captured variables start with copies of `captures` (one
  // fresh cell each: send-copy). Missing captures are None.
  Value NewClosure(uint32_t proto, std::vector<Value> captures);
  // Calls any callable value from outside the VM (resets the trace and the wall-clock deadline;
  // called from inside a native or a RemoteCallHandler it keeps the running call's deadline).
  Status CallValue(const Value& callee, const std::vector<Value>& args, Value* result);
  // CallValue with a wall-clock limit of `seconds` (> 0) for this call, or the running call's
  // deadline if that comes sooner; the Timeout message names the limit that applied. Used to
  // give in-process calls of @remote functions the limit an executor would apply: within it,
  // @remote functions are called directly (the RemoteCallHandler is not consulted), as inside
  // an executor.
  Status CallValueWithin(double seconds, const Value& callee, const std::vector<Value>& args,
                         Value* result);
  // Work that is not an instruction (walking a value to print, compare, hash or copy it) pays
  // fuel too: false with ResourceExhausted "fuel exhausted" when `units` exceed what is left.
  bool ChargeFuel(uint64_t units);
  // Fuel not yet spent (UINT64_MAX - spent when unlimited), exact also from inside a native or
  // a RemoteCallHandler.
  uint64_t fuel_left() const;
  const Limits& limits() const { return limits_; }
  // Frames on the call stack now (what counts against Limits::stack).
  size_t call_depth() const;
  // Fail with ResourceExhausted (and return false) when the buffer would exceed the limit.
  bool NewTypedArray(ElemKind kind, size_t length, Value* out);
  bool NewMatrix(size_t rows, size_t cols, Value* out);
  // The same over a buffer the caller hands over (`data`, 64-byte aligned, inside `owner`),
  // e.g. a private mapping of a received segment: no allocation and no copy. The object owns
  // the buffer from here on, also when this fails (ResourceExhausted: it is released at once).
  bool AdoptTypedArray(ElemKind kind, size_t length, uint8_t* data, ExternalBuffer owner,
                       Value* out);
  bool AdoptMatrix(size_t rows, size_t cols, double* data, ExternalBuffer owner, Value* out);
  Value NewNative(const struct NativeDef* def);
  // A container's owned buffers changed size: update the heap's byte count.
  void Recharge(Obj* o);
  bool CheckAlloc(size_t bytes);
  // The memory half of CheckAlloc, no fuel: for a buffer whose bytes are paid for otherwise,
  // e.g. the string a walk of a value is building (WalkBudget).
  bool CheckMemory(size_t bytes);
  // Timeout once the wall-clock deadline has passed: for long work outside the instruction
  // loop, which checks it every 4096 instructions (a WalkBudget checks it every batch it pays).
  bool CheckDeadline();

  // Call any callable value (function, closure, native) with arguments; re-entrant.
  bool Call(const Value& callee, const Value* args, int argc, Value* result);

  bool Fail(std::string message);  // RuntimeError
  bool FailKind(ErrorKind kind, std::string message);
  void Print(std::string_view text) {
    if (map_progress_ != nullptr && map_depth_ > 0) return PrintDuringMap(text);
    output_(text);
  }

  // Keeps values alive across Call() inside a native.
  class RootScope {
   public:
    explicit RootScope(Vm& vm) : vm_(vm), mark_(vm.temp_roots_.size()) {}
    ~RootScope() { vm_.temp_roots_.resize(mark_); }
    void Add(const Value& v) { vm_.temp_roots_.push_back(v); }

   private:
    Vm& vm_;
    size_t mark_;
  };

  // ---------------- internals (interpreter.cc, vm.cc, gc.cc) ----------------
 private:
  struct Impl;
  bool EnsureScriptRan();
  // Memory-limit checks for a typed array's or matrix's buffer (false with the error set).
  bool ChargeTypedArray(ElemKind kind, size_t length);
  bool ChargeMatrix(size_t rows, size_t cols);
  void StartDeadline();  // for an outermost entry only
  // Pushes a frame for the function in slot[0] with arguments slot[1..argc] (checks arity,
  // annotations, stack depth). A @remote function with a handler set runs through CallRemote
  // instead: no frame is pushed and the result is already in slot[0].
  bool PushCall(Value* slot, int argc);
  // PushCall, then runs the new frame (if any) to completion; the result is in slot[0].
  bool RunCall(Value* slot, int argc);
  // ArgumentError unless args[0..argc) match p's parameter annotations (Int converted to
  // Number in place for `number`).
  bool CheckArgumentTypes(const Proto& p, Value* args, int argc);
  // The remote half of PushCall, after its arity and depth checks (vm_remote.cc).
  bool CallRemote(const Proto& proto, Value* slot, int argc);
  // Runs frames until the frame count drops back to `stop_depth` (at once if it is there).
  bool RunFrameLoop(size_t stop_depth);
  bool InvokeMethod(Value* slot, int argc, uint32_t symbol, bool* pushed);
  void CollectGarbage();
  bool CollectIfNeeded();
  void BuildTrace();
  void AppendFrameTrace();  // this Vm's frames, innermost first, after what trace_ holds
  Value FunctionValue(uint32_t proto_index);
  void PrintDuringMap(std::string_view text);  // Print while a reported pmap runs

  const Program& program_;
  Limits limits_;
  std::unique_ptr<Impl> impl_;
  std::vector<Value> temp_roots_;
  std::vector<TraceFrame> trace_;
  Status error_;
  std::function<void(std::string_view)> output_;
  RemoteCallHandler remote_call_;
  // Inside CallValueWithin: @remote functions are called like any other (as in an executor).
  int local_remote_depth_ = 0;
  size_t trace_base_ = 0;  // the first frame a trace shows (CallValueWithin's entry)
  RemoteMapHandler remote_map_;
  std::vector<TraceFrame> remote_trace_;
  MapProgress* map_progress_ = nullptr;
  int map_depth_ = 0;  // pmaps running (MapCalls nesting); 1 is the reported one
  bool script_ran_ = false;
};

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_VM_H_
