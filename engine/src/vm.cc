// Vm: construction, the public API, allocation, type checks and the garbage collector. The
// dispatch loop is in interpreter.cc.
#include "shapex/engine/vm.h"

#include <sys/mman.h>

#include <cstring>
#include <utility>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "vm_internal.h"

namespace shapex::engine {

namespace {
constexpr size_t kMaxStackBytes = size_t{256} << 20;  // virtual reservation cap
constexpr int kMaxNativeDepth = 200;                  // nested native -> VM calls
const NativeDef kNoMethod{"<none>", nullptr, 0, 0, true};
}  // namespace

const NativeDef* NoMethodSentinel() { return &kNoMethod; }

// ---------------- heap ----------------

size_t Heap::ObjectBytes(const Obj* o) {
  switch (o->type) {
    case Type::kString: return sizeof(ObjString) + static_cast<const ObjString*>(o)->str.capacity();
    case Type::kArray:
      return sizeof(ObjArray) + static_cast<const ObjArray*>(o)->items.capacity() * sizeof(Value);
    case Type::kMap: {
      auto* m = static_cast<const ObjMap*>(o);
      return sizeof(ObjMap) + m->entries.capacity() * sizeof(ObjMap::Entry) +
             m->index.capacity() * sizeof(int32_t);
    }
    case Type::kStruct:
      return sizeof(ObjStruct) + static_cast<const ObjStruct*>(o)->fields.capacity() * sizeof(Value);
    case Type::kEnum:
      return sizeof(ObjEnum) + static_cast<const ObjEnum*>(o)->payload.capacity() * sizeof(Value);
    case Type::kRange: return sizeof(ObjRange);
    case Type::kFunction: return sizeof(ObjFunction);
    case Type::kClosure:
      return sizeof(ObjClosure) + static_cast<const ObjClosure*>(o)->cells.capacity() * sizeof(void*);
    case Type::kNative: return sizeof(ObjNative);
    case Type::kTypedArray:
      return sizeof(ObjTypedArray) + static_cast<const ObjTypedArray*>(o)->ByteSize();
    case Type::kMatrix: {
      auto* m = static_cast<const ObjMatrix*>(o);
      return sizeof(ObjMatrix) + m->rows * m->cols * sizeof(double);
    }
    case Type::kCell: return sizeof(ObjCell);
    default: return sizeof(Obj);
  }
}

void Heap::Free(Obj* o) {
  switch (o->type) {
    case Type::kString: delete static_cast<ObjString*>(o); return;
    case Type::kArray: delete static_cast<ObjArray*>(o); return;
    case Type::kMap: delete static_cast<ObjMap*>(o); return;
    case Type::kStruct: delete static_cast<ObjStruct*>(o); return;
    case Type::kEnum: delete static_cast<ObjEnum*>(o); return;
    case Type::kRange: delete static_cast<ObjRange*>(o); return;
    case Type::kFunction: delete static_cast<ObjFunction*>(o); return;
    case Type::kClosure: delete static_cast<ObjClosure*>(o); return;
    case Type::kNative: delete static_cast<ObjNative*>(o); return;
    case Type::kTypedArray: delete static_cast<ObjTypedArray*>(o); return;
    case Type::kMatrix: delete static_cast<ObjMatrix*>(o); return;
    case Type::kCell: delete static_cast<ObjCell*>(o); return;
    default: return;
  }
}

void Heap::FreeAll() {
  while (objects != nullptr) {
    Obj* next = objects->gc_next;
    Free(objects);
    objects = next;
  }
  bytes = 0;
}

// ---------------- construction ----------------

namespace {

// One spare register stack per thread: an executor makes a Vm per call, and mapping, faulting
// in and unmapping tens of megabytes of reservation each time cost more than a small call.
// A stack goes back here zeroed up to its high-water mark (everything above it is zero already).
struct SpareStack {
  void* memory = nullptr;
  size_t bytes = 0;
  ~SpareStack() {
    if (memory != nullptr) munmap(memory, bytes);
  }
};
thread_local SpareStack spare_stack;

void* TakeStack(size_t bytes) {
  if (spare_stack.memory != nullptr && spare_stack.bytes == bytes) {
    return std::exchange(spare_stack.memory, nullptr);
  }
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  return mem == MAP_FAILED ? nullptr : mem;
}

void GiveBackStack(void* memory, size_t bytes, size_t dirty_bytes) {
  if (spare_stack.memory == nullptr && dirty_bytes <= (size_t{1} << 20)) {
    std::memset(memory, 0, dirty_bytes);  // None is all-zero bytes
    spare_stack.memory = memory;
    spare_stack.bytes = bytes;
    return;
  }
  munmap(memory, bytes);
}

}  // namespace

Vm::Vm(const Program& program, Limits limits)
    : program_(program), limits_(limits), impl_(std::make_unique<Impl>()) {
  output_ = [](std::string_view text) { std::fwrite(text.data(), 1, text.size(), stdout); };
  Impl& im = *impl_;
  im.heap.limit = limits_.memory;
  im.heap.next_gc = std::min<size_t>(size_t{1} << 20, limits_.memory);
  size_t want = (static_cast<size_t>(limits_.stack) + 4) * 256 * sizeof(Value);
  im.stack_bytes = std::min(want, kMaxStackBytes);
  void* mem = TakeStack(im.stack_bytes);
  if (mem == nullptr) {
    im.setup_error = ResourceExhausted("cannot reserve the VM register stack");
    im.stack_bytes = 0;
  } else {
    im.stack = static_cast<Value*>(mem);  // zero-filled pages are None values
    im.stack_end = im.stack + im.stack_bytes / sizeof(Value);
  }
  im.high_water = im.stack;
  im.frames.Init(std::max<uint32_t>(limits_.stack, 1));
  im.globals.assign(program.global_names.size(), Value::Unset());  // until their let runs
  im.method_cache.resize(program.symbols.size());
  for (auto& row : im.method_cache) row.fill(nullptr);
  im.field_cache.assign(program.symbols.size(), FieldCacheEntry{});
  im.functions.resize(program.protos.size());
  im.natives.resize(program.protos.size());
  for (size_t i = 0; i < program.protos.size(); ++i) {
    const Proto& p = *program.protos[i];
    im.functions[i] = new ObjFunction(&p);
    im.functions[i]->permanent = true;
    im.fast_call.push_back(FastCallable(p, /*intercept_remote=*/false) ? 1 : 0);
    for (const std::string& name : p.natives) {
      const NativeDef* def = FindNative(name);
      if (def == nullptr) {
        if (im.setup_error.ok())
          im.setup_error = MissingModuleFunctionError("this executor has no native '" + name + "'");
        im.natives[i].push_back(Value::None());
        continue;
      }
      im.natives[i].push_back(NewNative(def));
    }
  }
  im.fuel_total = limits_.fuel == 0 ? UINT64_MAX : limits_.fuel;
  im.fuel_left = im.fuel_total;
}

bool Vm::Reset(const Limits& limits) {
  Impl& im = *impl_;
  if (limits.stack != limits_.stack || !im.frames.empty() || im.native_depth != 0) return false;
  im.heap.FreeAll();
  im.heap.limit = limits.memory;
  im.heap.next_gc = std::min<size_t>(size_t{1} << 20, limits.memory);
  im.heap.collections = 0;
  if (im.stack != nullptr) {
    // Registers up to the high-water mark may hold values of the last call; above it the
    // stack is still zero (None).
    std::memset(static_cast<void*>(im.stack), 0,
                static_cast<size_t>(im.high_water - im.stack) * sizeof(Value));
  }
  im.high_water = im.stack;
  std::fill(im.globals.begin(), im.globals.end(), Value::Unset());  // as in a new Vm
  im.gray.clear();
  im.deadline = std::chrono::steady_clock::time_point::max();
  im.deadline_seconds = 0;
  im.entries_unchecked = 0;
  limits_ = limits;
  im.fuel_total = limits_.fuel == 0 ? UINT64_MAX : limits_.fuel;
  im.fuel_left = im.fuel_total;
  temp_roots_.clear();
  trace_.clear();
  error_ = Status::Ok();
  output_ = [](std::string_view text) { std::fwrite(text.data(), 1, text.size(), stdout); };
  remote_call_ = nullptr;
  local_remote_depth_ = 0;
  trace_base_ = 0;
  remote_map_ = nullptr;
  remote_trace_.clear();
  map_progress_ = nullptr;
  map_depth_ = 0;
  script_ran_ = false;
  return true;
}

Vm::~Vm() {
  impl_->heap.FreeAll();
  for (ObjFunction* f : impl_->functions) delete f;
  if (impl_->stack != nullptr) {
    size_t dirty = static_cast<size_t>(impl_->high_water - impl_->stack) * sizeof(Value);
    GiveBackStack(impl_->stack, impl_->stack_bytes, dirty);
  }
}

uint64_t Vm::instructions_executed() const { return impl_->fuel_total - impl_->fuel_left; }

Value Vm::FunctionValue(uint32_t proto_index) {
  return Value::Object(impl_->functions[proto_index]);
}

// ---------------- allocation API ----------------

Value Vm::NewString(std::string s) { return Value::Object(impl_->heap.New<ObjString>(std::move(s))); }

Value Vm::NewArray(std::vector<Value> items) {
  ObjArray* a = impl_->heap.New<ObjArray>();
  a->items = std::move(items);
  impl_->heap.Recharge(a);
  return Value::Object(a);
}

Value Vm::NewMap() { return Value::Object(impl_->heap.New<ObjMap>()); }

Value Vm::NewEnum(const EnumType* type, uint32_t variant, std::vector<Value> payload) {
  ObjEnum* e = impl_->heap.New<ObjEnum>(type, variant, 0);
  e->payload = std::move(payload);
  impl_->heap.Recharge(e);
  return Value::Object(e);
}

Value Vm::NewSome(Value v) { return NewEnum(OptionType(), kSomeVariant, {v}); }
Value Vm::NewOk(Value v) { return NewEnum(ResultType(), kOkVariant, {v}); }
Value Vm::NewErr(Value v) { return NewEnum(ResultType(), kErrVariant, {v}); }

Value Vm::NewRange(int64_t start, int64_t end, int64_t step, bool inclusive) {
  return Value::Object(impl_->heap.New<ObjRange>(start, end, step, inclusive));
}

Value Vm::NewStruct(const StructType* type, std::vector<Value> fields) {
  ObjStruct* obj = impl_->heap.New<ObjStruct>(type, type->field_names.size());
  for (size_t i = 0; i < obj->fields.size() && i < fields.size(); ++i) obj->fields[i] = fields[i];
  return Value::Object(obj);
}

Value Vm::NewFunction(uint32_t proto) { return FunctionValue(proto); }

Value Vm::NewClosure(uint32_t proto, std::vector<Value> captures) {
  const Proto* p = program_.protos[proto].get();
  ObjClosure* c = impl_->heap.New<ObjClosure>(p, p->captures.size());
  for (size_t i = 0; i < c->cells.size(); ++i)
    c->cells[i] = impl_->heap.New<ObjCell>(i < captures.size() ? captures[i] : Value::None());
  return Value::Object(c);
}

Status Vm::CallValue(const Value& callee, const std::vector<Value>& args, Value* result) {
  trace_.clear();
  error_ = Status::Ok();
  StartDeadline();
  if (!EnsureScriptRan()) return error_;
  RootScope roots(*this);
  roots.Add(callee);
  for (const Value& a : args) roots.Add(a);
  if (!Call(callee, args.data(), static_cast<int>(args.size()), result)) return error_;
  return Status::Ok();
}

Status Vm::CallValueWithin(double seconds, const Value& callee, const std::vector<Value>& args,
                           Value* result) {
  using Clock = std::chrono::steady_clock;
  Impl& im = *impl_;
  bool nested = !im.frames.empty() || im.native_depth > 0;
  if (!nested) StartDeadline();
  auto saved = im.deadline;
  double saved_seconds = im.deadline_seconds;
  auto mine = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(seconds));
  if (seconds > 0 && mine < im.deadline) {
    im.deadline = mine;
    im.deadline_seconds = seconds;
  }
  // Nested, CallValue keeps the deadline just set; at the top it would start its own.
  Status s = Status::Ok();
  ++local_remote_depth_;
  size_t saved_base = trace_base_;
  trace_base_ = im.frames.size();
  if (nested) {
    s = CallValue(callee, args, result);
  } else {
    trace_.clear();
    error_ = Status::Ok();
    if (!EnsureScriptRan()) {
      s = error_;
    } else {
      RootScope roots(*this);
      roots.Add(callee);
      for (const Value& a : args) roots.Add(a);
      if (!Call(callee, args.data(), static_cast<int>(args.size()), result)) s = error_;
    }
  }
  --local_remote_depth_;
  trace_base_ = saved_base;
  im.deadline = saved;
  im.deadline_seconds = saved_seconds;
  return s;
}

bool Vm::ChargeFuel(uint64_t units) {
  if (units > impl_->fuel_left) {
    impl_->fuel_left = 0;
    return FailKind(ErrorKind::kResourceExhausted, "fuel exhausted");
  }
  impl_->fuel_left -= units;
  return true;
}

uint64_t Vm::fuel_left() const { return impl_->fuel_left; }

size_t Vm::call_depth() const { return impl_->frames.size(); }

bool Vm::CheckAlloc(size_t bytes) {
  // Building a big value is work too: charge fuel per 16 bytes so a native cannot do unbounded
  // work for the price of one instruction.
  return ChargeFuel(bytes / 16) && CheckMemory(bytes);
}

bool Vm::CheckMemory(size_t bytes) {
  const Heap& h = impl_->heap;
  if (bytes > h.limit || h.bytes > h.limit - bytes) {
    // Garbage may still be counted; collecting here is unsafe (a native may hold unrooted
    // values), so the check is against live + garbage, which the safe-point collector keeps
    // below the limit.
    return FailKind(ErrorKind::kResourceExhausted, "memory limit exceeded");
  }
  return true;
}

bool Vm::CheckDeadline() {
  const Impl& im = *impl_;
  if (im.deadline == std::chrono::steady_clock::time_point::max() ||
      std::chrono::steady_clock::now() < im.deadline)
    return true;
  return FailKind(ErrorKind::kTimeout, fmt::format("timed out after {}s", im.deadline_seconds));
}

// The memory limit check (and size overflow check) shared by new and adopted buffers.
bool Vm::ChargeTypedArray(ElemKind kind, size_t length) {
  size_t es = ElemSize(kind);
  if (length > (SIZE_MAX / 2) / es || !CheckAlloc(length * es + sizeof(ObjTypedArray)))
    return FailKind(ErrorKind::kResourceExhausted, "memory limit exceeded");
  return true;
}

bool Vm::ChargeMatrix(size_t rows, size_t cols) {
  if ((cols != 0 && rows > (SIZE_MAX / 16) / cols) ||
      !CheckAlloc(rows * cols * sizeof(double) + sizeof(ObjMatrix)))
    return FailKind(ErrorKind::kResourceExhausted, "memory limit exceeded");
  return true;
}

bool Vm::NewTypedArray(ElemKind kind, size_t length, Value* out) {
  if (!ChargeTypedArray(kind, length)) return false;
  *out = Value::Object(impl_->heap.New<ObjTypedArray>(kind, length));
  return true;
}

bool Vm::NewMatrix(size_t rows, size_t cols, Value* out) {
  if (!ChargeMatrix(rows, cols)) return false;
  *out = Value::Object(impl_->heap.New<ObjMatrix>(rows, cols));
  return true;
}

bool Vm::AdoptTypedArray(ElemKind kind, size_t length, uint8_t* data, ExternalBuffer owner,
                         Value* out) {
  if (!ChargeTypedArray(kind, length)) {
    if (owner.release != nullptr) owner.release(owner.base, owner.size);
    return false;
  }
  *out = Value::Object(impl_->heap.New<ObjTypedArray>(kind, length, data, owner));
  return true;
}

bool Vm::AdoptMatrix(size_t rows, size_t cols, double* data, ExternalBuffer owner, Value* out) {
  if (!ChargeMatrix(rows, cols)) {
    if (owner.release != nullptr) owner.release(owner.base, owner.size);
    return false;
  }
  *out = Value::Object(impl_->heap.New<ObjMatrix>(rows, cols, data, owner));
  return true;
}

Value Vm::NewNative(const NativeDef* def) {
  for (auto& n : impl_->native_objects)
    if (n->def == def) return Value::Object(n.get());
  auto obj = std::make_unique<ObjNative>(def);
  obj->permanent = true;
  impl_->native_objects.push_back(std::move(obj));
  return Value::Object(impl_->native_objects.back().get());
}

void Vm::Recharge(Obj* o) {
  if (!o->permanent) impl_->heap.Recharge(o);
}

bool Vm::Fail(std::string message) { return FailKind(ErrorKind::kRuntimeError, std::move(message)); }

bool Vm::FailKind(ErrorKind kind, std::string message) {
  error_ = Status(kind, std::move(message));
  return false;
}

// ---------------- calls ----------------

// Only used in this file: inline so Vm::Call pays nothing for it. When PushCall pushed no frame
// (a RemoteCallHandler ran the call), RunFrameLoop returns at once.
inline bool Vm::RunCall(Value* slot, int argc) {
  size_t depth = impl_->frames.size();
  return PushCall(slot, argc) && RunFrameLoop(depth);
}

bool Vm::Call(const Value& callee, const Value* args, int argc, Value* result) {
  Impl& im = *impl_;
  if (callee.type == Type::kNative) {
    const NativeDef* def = AsNative(callee)->def;
    if (argc < def->min_args + (def->method ? 1 : 0) ||
        (def->max_args >= 0 && argc > def->max_args + (def->method ? 1 : 0)))
      return FailKind(ErrorKind::kArgumentError,
                      fmt::format("{}: wrong number of arguments ({})", def->name, argc));
    // Copy args onto the stack so they stay rooted for the native.
    Value* top = im.LiveTop();
    if (top + argc + 1 >= im.stack_end)
      return FailKind(ErrorKind::kResourceExhausted, "stack depth exceeded");
    std::copy(args, args + argc, top);
    im.high_water = std::max(im.high_water, top + argc);
    Value out;
    if (!def->fn(*this, top, argc, &out)) return false;
    *result = out;
    return true;
  }
  if (callee.type != Type::kFunction && callee.type != Type::kClosure)
    return Fail("value is not callable: " + TypeName(callee));
  if (++im.native_depth > kMaxNativeDepth) {
    --im.native_depth;
    return FailKind(ErrorKind::kResourceExhausted, "stack depth exceeded");
  }
  Value* top = im.LiveTop();
  bool ok = false;
  if (top + argc + 2 >= im.stack_end) {
    FailKind(ErrorKind::kResourceExhausted, "stack depth exceeded");
  } else {
    top[0] = callee;
    std::copy(args, args + argc, top + 1);
    // The arguments stay in these registers if PushCall refuses the call (arity, annotations),
    // so they count as used: the stack is zeroed only up to the high-water mark when the next
    // Vm on this thread takes it over (a stale object there would be read or marked).
    im.high_water = std::max(im.high_water, top + argc + 1);
    ok = RunCall(top, argc);
    if (ok) *result = top[0];
  }
  --im.native_depth;
  return ok;
}

// ---------------- running ----------------

bool Vm::EnsureScriptRan() {
  if (script_ran_) return true;
  script_ran_ = true;
  Impl& im = *impl_;
  if (!im.setup_error.ok()) {
    error_ = im.setup_error;
    return false;
  }
  Value* slot = im.stack;
  slot[0] = FunctionValue(program_.script);
  return RunCall(slot, 0);
}

void Vm::StartDeadline() {
  // A nested entry (a native or a RemoteCallHandler calling CallValue) keeps the deadline of
  // the call that is running.
  if (!impl_->frames.empty() || impl_->native_depth > 0) return;
  using Clock = std::chrono::steady_clock;
  impl_->deadline_seconds = limits_.timeout;
  impl_->deadline = limits_.timeout > 0
                        ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(limits_.timeout))
                        : Clock::time_point::max();
}

Status Vm::RunTopLevel() {
  if (script_ran_) return Status::Ok();
  trace_.clear();
  error_ = Status::Ok();
  StartDeadline();
  if (!EnsureScriptRan()) return error_;
  return Status::Ok();
}

Status Vm::RunMain(const std::vector<std::string>& args) {
  trace_.clear();
  error_ = Status::Ok();
  StartDeadline();
  if (!EnsureScriptRan()) return error_;
  if (program_.main < 0) return Status::Ok();
  const Proto& main = *program_.protos[program_.main];
  Value argv = NewArray();
  RootScope roots(*this);
  roots.Add(argv);
  for (const std::string& a : args) {
    Value s = NewString(a);
    AsArray(argv)->items.push_back(s);
  }
  Recharge(argv.as.o);
  Value result;
  if (!Call(FunctionValue(program_.main), &argv, main.num_params == 0 ? 0 : 1, &result))
    return error_;
  return Status::Ok();
}

Status Vm::CallByName(const std::string& name, const std::vector<Value>& args, Value* result) {
  trace_.clear();
  error_ = Status::Ok();
  StartDeadline();
  int index = program_.FindFunction(name);
  if (index < 0) return FunctionNotFoundError("no function named '" + name + "'");
  if (!EnsureScriptRan()) return error_;
  if (!Call(FunctionValue(index), args.data(), static_cast<int>(args.size()), result))
    return error_;
  return Status::Ok();
}

Status Vm::CallFunction(uint32_t proto, const std::vector<Value>& args, Value* result) {
  trace_.clear();
  error_ = Status::Ok();
  StartDeadline();
  if (proto >= program_.protos.size()) return FunctionNotFoundError("no such function");
  if (!EnsureScriptRan()) return error_;
  if (!Call(FunctionValue(proto), args.data(), static_cast<int>(args.size()), result))
    return error_;
  return Status::Ok();
}

void Vm::BuildTrace() {
  if (trace_.empty()) AppendFrameTrace();
}

void Vm::AppendFrameTrace() {
  // Deep recursion would print thousands of identical lines: keep the innermost kTraceInner and
  // the outermost kTraceOuter frames and say how many were left out (a marker frame).
  // Frames below trace_base_ belong to the caller of a CallValueWithin (they are added by
  // CallRemote, as for an executor's trace).
  size_t base = std::min(trace_base_, impl_->frames.size());
  size_t n = impl_->frames.size() - base;
  for (size_t i = n; i-- > 0;) {
    if (n > kTraceInner + kTraceOuter + 1 && i == n - kTraceInner - 1) {
      size_t skipped = n - kTraceInner - kTraceOuter;
      TraceFrame marker;
      marker.function = fmt::format("... {} more frames", skipped);
      marker.skipped = skipped;
      trace_.push_back(std::move(marker));
      i = kTraceOuter;
      continue;
    }
    const Frame& f = impl_->frames[base + i];
    TraceFrame t;
    t.function = f.proto->name;
    t.file = program_.source_name;
    size_t pc = f.ip - f.proto->code.data();
    if (pc > 0) --pc;
    t.line = pc < f.proto->lines.size() ? f.proto->lines[pc] : 0;
    t.proto = f.proto->index;
    t.pc = static_cast<uint32_t>(pc);
    trace_.push_back(std::move(t));
  }
  ShortenTrace(&trace_);
}

void ShortenTrace(std::vector<TraceFrame>* frames) {
  std::vector<TraceFrame>& t = *frames;
  uint64_t total = 0;
  for (const TraceFrame& f : t) total += f.skipped != 0 ? f.skipped : 1;
  if (total <= kTraceInner + kTraceOuter + 1) return;
  size_t front = 0;
  while (front < t.size() && front < kTraceInner && t[front].skipped == 0) ++front;
  size_t back = 0;
  while (back < t.size() - front && back < kTraceOuter && t[t.size() - 1 - back].skipped == 0)
    ++back;
  if (front + back >= t.size()) return;
  uint64_t skipped = total - front - back;
  TraceFrame marker;
  marker.function = fmt::format("... {} more frames", skipped);
  marker.skipped = skipped;
  t.erase(t.begin() + static_cast<std::ptrdiff_t>(front),
          t.end() - static_cast<std::ptrdiff_t>(back));
  t.insert(t.begin() + static_cast<std::ptrdiff_t>(front), std::move(marker));
}

// ---------------- type annotations ----------------

bool MatchesType(Value* v, const TypeSpec& t, const Program& p) {
  using K = TypeSpec::Kind;
  switch (t.kind) {
    case K::kAny: return true;
    case K::kInt: return v->type == Type::kInt;
    case K::kNumber:
      if (v->type == Type::kInt) {
        *v = Value::Number(static_cast<double>(v->as.i));
        return true;
      }
      return v->type == Type::kNumber;
    case K::kBool: return v->type == Type::kBool;
    case K::kString: return v->type == Type::kString;
    case K::kArray: return v->type == Type::kArray;
    case K::kMap: return v->type == Type::kMap;
    case K::kFunction: return IsCallable(*v);
    case K::kMatrix: return v->type == Type::kMatrix;
    case K::kRange: return v->type == Type::kRange;
    case K::kNone: return v->type == Type::kNone;
    case K::kVec: return v->type == Type::kTypedArray && AsTypedArray(*v)->kind == t.elem;
    case K::kStruct:
      return v->type == Type::kStruct && t.index < p.structs.size() &&
             AsStruct(*v)->stype == p.structs[t.index].get();
    case K::kEnum:
      return v->type == Type::kEnum && t.index < p.enums.size() &&
             AsEnum(*v)->etype == p.enums[t.index].get();
    case K::kOption: {
      if (v->type == Type::kNone) return true;
      if (v->type != Type::kEnum || AsEnum(*v)->etype != OptionType()) return false;
      Value inner = AsEnum(*v)->payload[0];
      return t.args.empty() || MatchesType(&inner, t.args[0], p);
    }
    case K::kResult: {
      if (v->type != Type::kEnum || AsEnum(*v)->etype != ResultType()) return false;
      ObjEnum* e = AsEnum(*v);
      Value inner = e->payload[0];
      size_t which = e->variant == kOkVariant ? 0 : 1;
      return t.args.size() < 2 || MatchesType(&inner, t.args[which], p);
    }
  }
  return false;
}

// ---------------- garbage collector ----------------

namespace {
inline void MarkValue(const Value& v, std::vector<Obj*>* gray) {
  if (!v.IsObject()) return;
  Obj* o = v.as.o;
  if (o->marked || o->permanent) return;
  o->marked = true;
  gray->push_back(o);
}
}  // namespace

void Vm::CollectGarbage() {
  Impl& im = *impl_;
  std::vector<Obj*>& gray = im.gray;
  gray.clear();
  // Roots: live registers, globals, natives' temporaries, frames' closures.
  Value* top = im.LiveTop();
  top = std::min(top, im.stack_end);
  for (Value* v = im.stack; v < top; ++v) MarkValue(*v, &gray);
  // Registers above the top are dead; clear them so a stale value never outlives its object.
  for (Value* v = top; v < im.high_water && v < im.stack_end; ++v) *v = Value::None();
  im.high_water = top;
  for (const Value& v : im.globals) MarkValue(v, &gray);
  for (const Value& v : temp_roots_) MarkValue(v, &gray);
  for (const Frame& f : im.frames)
    if (f.closure != nullptr) MarkValue(Value::Object(f.closure), &gray);
  while (!gray.empty()) {
    Obj* o = gray.back();
    gray.pop_back();
    switch (o->type) {
      case Type::kArray:
        for (const Value& v : static_cast<ObjArray*>(o)->items) MarkValue(v, &gray);
        break;
      case Type::kMap:
        for (const auto& e : static_cast<ObjMap*>(o)->entries) {
          MarkValue(e.key, &gray);
          MarkValue(e.value, &gray);
        }
        break;
      case Type::kStruct:
        for (const Value& v : static_cast<ObjStruct*>(o)->fields) MarkValue(v, &gray);
        break;
      case Type::kEnum:
        for (const Value& v : static_cast<ObjEnum*>(o)->payload) MarkValue(v, &gray);
        break;
      case Type::kClosure:
        for (ObjCell* c : static_cast<ObjClosure*>(o)->cells)
          if (c != nullptr) MarkValue(Value::Object(c), &gray);
        break;
      case Type::kCell: MarkValue(static_cast<ObjCell*>(o)->value, &gray); break;
      default: break;
    }
  }
  // Sweep.
  Heap& h = im.heap;
  Obj** link = &h.objects;
  while (*link != nullptr) {
    Obj* o = *link;
    if (o->marked) {
      o->marked = false;
      link = &o->gc_next;
    } else {
      *link = o->gc_next;
      h.bytes -= o->bytes;
      Heap::Free(o);
    }
  }
  ++h.collections;
  size_t next = std::max<size_t>(h.bytes * 2, size_t{1} << 20);
  h.next_gc = std::min(next, h.limit);
}

// Called at safe points (all live values are in registers): collect when due, then enforce
// the memory limit.
bool Vm::CollectIfNeeded() {
  Heap& h = impl_->heap;
  if (h.bytes <= h.next_gc) return true;
  CollectGarbage();
  if (h.bytes > h.limit) return FailKind(ErrorKind::kResourceExhausted, "memory limit exceeded");
  return true;
}

}  // namespace shapex::engine
