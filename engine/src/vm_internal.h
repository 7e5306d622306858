// Internal VM state shared by vm.cc (API, heap, GC) and interpreter.cc (dispatch loop).
#ifndef SHAPEX_ENGINE_VM_INTERNAL_H_
#define SHAPEX_ENGINE_VM_INTERNAL_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "shapex/engine/natives.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"

namespace shapex::engine {

struct Frame {
  const Proto* proto;
  ObjClosure* closure;  // nullptr for plain functions and the script
  const uint32_t* ip;   // saved instruction pointer (next instruction)
  Value* base;          // register 0; base[-1] is the callee slot and receives the result
  uint32_t argc;
};

// The frame array of the last FrameStack this thread destroyed, for the next one of the same
// capacity: an executor makes a Vm per call (and per pmap item), and allocating and freeing
// ~400 KB each time costs more than a small call (glibc consolidates its heap on each free).
struct SpareFrames {
  Frame* memory = nullptr;
  size_t capacity = 0;
  ~SpareFrames() { delete[] memory; }
};
inline thread_local SpareFrames spare_frames;

// Keeps a frame array as this thread's spare when it has none.
struct FramesGiveBack {
  size_t capacity = 0;
  void operator()(Frame* frames) const {
    if (spare_frames.memory == nullptr) {
      spare_frames.memory = frames;
      spare_frames.capacity = capacity;
    } else {
      delete[] frames;
    }
  }
};

// The call-frame stack: a fixed array sized to the stack-depth limit, so the hot path checks
// depth with one pointer comparison and frames never move.
class FrameStack {
 public:
  void Init(size_t capacity) {
    // Default-initialised (not zeroed): a frame is written when it is pushed. At the default
    // depth limit this array is ~400 KB; an executor resets its Vm between calls, but a call
    // with another entry or depth limit, and each pmap batch item, makes a new one.
    Frame* memory = nullptr;
    if (spare_frames.memory != nullptr && spare_frames.capacity == capacity) {
      memory = std::exchange(spare_frames.memory, nullptr);
    } else {
      memory = new Frame[capacity];
    }
    storage_ = std::unique_ptr<Frame[], FramesGiveBack>(memory, FramesGiveBack{capacity});
    top_ = storage_.get();
    limit_ = top_ + capacity;
  }
  size_t size() const { return static_cast<size_t>(top_ - storage_.get()); }
  bool empty() const { return top_ == storage_.get(); }
  bool full() const { return top_ >= limit_; }
  Frame& back() { return top_[-1]; }
  const Frame& back() const { return top_[-1]; }
  Frame& operator[](size_t i) { return storage_[i]; }
  const Frame& operator[](size_t i) const { return storage_[i]; }
  Frame* at_depth(size_t depth) { return storage_.get() + depth; }
  Frame* top() { return top_; }
  void push_back(const Frame& f) { *top_++ = f; }  // callers check full() first
  void pop_back() { --top_; }
  void resize(size_t n) { top_ = storage_.get() + n; }  // shrink only
  const Frame* begin() const { return storage_.get(); }
  const Frame* end() const { return top_; }

 private:
  std::unique_ptr<Frame[], FramesGiveBack> storage_;
  Frame* top_ = nullptr;
  Frame* limit_ = nullptr;
};

// Heap accounting and the list of collectable objects. Permanent objects (function values,
// natives, program constants) are not on the list.
struct Heap {
  Obj* objects = nullptr;
  size_t bytes = 0;
  size_t next_gc = size_t{1} << 20;
  size_t limit = 0;
  uint64_t collections = 0;

  template <class T, class... Args>
  T* New(Args&&... args) {
    T* o = new T(std::forward<Args>(args)...);
    o->bytes = ObjectBytes(o);
    bytes += o->bytes;
    o->gc_next = objects;
    objects = o;
    return o;
  }
  void Recharge(Obj* o) {
    size_t nb = ObjectBytes(o);
    bytes = bytes - o->bytes + nb;
    o->bytes = nb;
  }
  static size_t ObjectBytes(const Obj* o);
  static void Free(Obj* o);
  void FreeAll();
};

// Method namespaces, in the order used by the per-symbol method cache.
enum class MethodNs : uint8_t { kArray, kString, kMap, kOption, kResult, kRange, kVec, kMatrix,
                                kOther, kCount };

// GETFIELD/SETFIELD inline cache, one per field symbol: the last two struct types accessed with
// it and the field's slot in each (nullptr: an empty way). Keyed by symbol, not by instruction,
// so it needs no side table; two ways cover structs sharing a field name (richards' `link`).
// StructTypes belong to the Vm's Program, so entries stay valid for the Vm's lifetime.
struct FieldCacheEntry {
  const StructType* stype[2] = {nullptr, nullptr};
  uint32_t slot[2] = {0, 0};
};

struct Vm::Impl {
  Heap heap;
  // Register stack: one reservation that never moves, so Value* into it stay valid.
  Value* stack = nullptr;
  Value* stack_end = nullptr;
  size_t stack_bytes = 0;
  Value* high_water = nullptr;  // highest register ever used (cleared by the collector)
  FrameStack frames;
  std::vector<Value> globals;
  std::vector<ObjFunction*> functions;          // one permanent value per proto
  // Per proto: the interpreter's CALL fast path may take it (FastCallable).
  std::vector<uint8_t> fast_call;
  std::vector<std::vector<Value>> natives;      // per proto: resolved natives[] as values
  std::vector<std::unique_ptr<ObjNative>> native_objects;
  // method_cache[symbol][ns]: nullptr = not looked up yet, kNoMethod = none.
  std::vector<std::array<const NativeDef*, static_cast<int>(MethodNs::kCount)>> method_cache;
  std::vector<FieldCacheEntry> field_cache;  // per symbol, see FieldCacheEntry
  uint64_t fuel_left = 0;              // instructions not yet handed to the loop
  uint64_t fuel_total = 0;
  int native_depth = 0;                // nested Vm::Call from natives
  // Wall-clock deadline, checked every kFuelSlice instructions; max() = none.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  double deadline_seconds = 0;  // the limit `deadline` stands for (the Timeout message names it)
  // Entries into the frame loop since the deadline was last checked at one (see RunFrameLoop).
  uint32_t entries_unchecked = 0;
  std::vector<Obj*> gray;
  Status setup_error;                  // e.g. a native this VM lacks

  // One past the highest live register: the top frame's last register (stack[0] is the
  // script's callee slot).
  Value* LiveTop() {
    return frames.empty() ? stack + 1 : frames.back().base + frames.back().proto->num_regs;
  }
};

// Whether a call of `p` with exact arity can skip PushCall: no parameter annotations to check,
// and not a @remote function that the Vm hands to a RemoteCallHandler (`intercept_remote`).
// Precomputed per proto so the fast path tests one byte.
inline bool FastCallable(const Proto& p, bool intercept_remote) {
  if (p.remote && intercept_remote) return false;
  for (const TypeSpec& t : p.param_types)
    if (t.kind != TypeSpec::Kind::kAny) return false;
  return true;
}

// Sentinel for "looked up, no such method".
const NativeDef* NoMethodSentinel();

// Checks `v` against an annotation; converts Int to Number for `number`. Returns false when it
// does not match.
bool MatchesType(Value* v, const TypeSpec& t, const Program& p);
// "expected 2 arguments, got 3" (methods do not count self), for a call of p with argc values.
std::string ArgCountMessage(const Proto& p, int argc);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_VM_INTERNAL_H_
