// The dispatch loop. `ip`, `base` and the constant table live in locals and are written back
// to the frame only at calls and where an error may be raised (Lua's savepc idea). Dispatch
// uses GCC's computed goto (a jump table generated from SHAPEX_OPCODES) with a portable
// `switch` fallback (-DSHAPEX_SWITCH_DISPATCH). Fuel is counted per instruction in a local
// slice that is refilled from the VM's budget every kFuelSlice instructions.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "interp_ops.h"
#include "shapex/engine/opcodes.h"
#include "natives_impl.h"
#include "vm_internal.h"

#if defined(__GNUC__) && !defined(SHAPEX_SWITCH_DISPATCH)
#define SHAPEX_COMPUTED_GOTO 1
#pragma GCC diagnostic ignored "-Wpedantic"
#endif

namespace shapex::engine {

std::string ArgCountMessage(const Proto& p, int argc) {
  bool method = !p.param_names.empty() && p.param_names[0] == "self";
  int shown_argc = argc - (method ? 1 : 0);
  int lo = static_cast<int>(p.num_required) - (method ? 1 : 0);
  int hi = static_cast<int>(p.num_params) - (method ? 1 : 0);
  if (lo == hi)
    return fmt::format("{} expected {} argument{}, got {}", p.name, hi, hi == 1 ? "" : "s",
                       shown_argc);
  return fmt::format("{} expected {} to {} arguments, got {}", p.name, lo, hi, shown_argc);
}

namespace {
constexpr uint64_t kFuelSlice = 4096;
// A run of the frame loop checks the deadline when it uses up a slice. A native calling back a
// short function in a loop (reduce, map or sort_by over a long array) enters the loop many times
// and never uses up one, so every kEntriesPerDeadlineCheck-th entry checks it at once.
constexpr uint32_t kEntriesPerDeadlineCheck = 64;

MethodNs NamespaceOf(const Value& v) {
  switch (v.type) {
    case Type::kArray: return MethodNs::kArray;
    case Type::kString: return MethodNs::kString;
    case Type::kMap: return MethodNs::kMap;
    case Type::kNone: return MethodNs::kOption;
    case Type::kEnum:
      if (AsEnum(v)->etype == OptionType()) return MethodNs::kOption;
      if (AsEnum(v)->etype == ResultType()) return MethodNs::kResult;
      return MethodNs::kOther;
    case Type::kRange: return MethodNs::kRange;
    case Type::kTypedArray: return MethodNs::kVec;
    case Type::kMatrix: return MethodNs::kMatrix;
    default: return MethodNs::kOther;
  }
}

// Parameter annotations at call entry. Forced inline into PushCall (an out-of-line call there
// cost local calls of annotated functions ~5% in callgrind); CheckArgumentTypes is the copy
// for CallRemote.
[[gnu::always_inline]] inline bool CheckArgs(Vm& vm, const Proto& p, Value* args, int argc) {
  for (int i = 0; i < argc; ++i) {
    const TypeSpec& t = p.param_types[i];
    if (t.kind == TypeSpec::Kind::kAny) continue;
    if (!MatchesType(&args[i], t, vm.program()))
      return vm.FailKind(ErrorKind::kArgumentError,
                         fmt::format("argument '{}' of {}: expected {}, got {}", p.param_names[i],
                                     p.name, TypeSpecName(t, vm.program()), TypeName(args[i])));
  }
  return true;
}
}  // namespace

bool Vm::CheckArgumentTypes(const Proto& p, Value* args, int argc) {
  return CheckArgs(*this, p, args, argc);
}

bool Vm::PushCall(Value* slot, int argc) {
  Impl& im = *impl_;
  const Value& callee = slot[0];
  const Proto* p;
  ObjClosure* closure = nullptr;
  if (callee.type == Type::kFunction) {
    p = AsFunction(callee)->proto;
  } else if (callee.type == Type::kClosure) {
    closure = AsClosure(callee);
    p = closure->proto;
  } else {
    return Fail("value is not callable: " + TypeName(callee));
  }
  if (static_cast<uint32_t>(argc) < p->num_required || static_cast<uint32_t>(argc) > p->num_params)
    return FailKind(ErrorKind::kArgumentError, ArgCountMessage(*p, argc));
  if (im.frames.full())
    return FailKind(ErrorKind::kResourceExhausted, "stack depth exceeded");
  Value* base = slot + 1;
  if (base + p->num_regs + 1 >= im.stack_end)
    return FailKind(ErrorKind::kResourceExhausted, "stack depth exceeded");
  for (uint32_t i = static_cast<uint32_t>(argc); i < p->num_params; ++i) base[i] = Value::None();
  // CallRemote checks the annotations too (it shares CheckArgumentTypes), then calls the
  // handler. Tested before the annotation loop: after it, local calls got measurably slower.
  if (p->remote && remote_call_ && local_remote_depth_ == 0) [[unlikely]]
    return CallRemote(*p, slot, argc);
  if (!CheckArgs(*this, *p, base, argc)) return false;
  if (base + p->num_regs > im.high_water) im.high_water = base + p->num_regs;
  im.frames.push_back(Frame{p, closure, p->code.data(), base, static_cast<uint32_t>(argc)});
  return true;
}

// slot[0] = result slot, slot[1] = receiver, slot[2..] = arguments; argc counts the receiver.
bool Vm::InvokeMethod(Value* slot, int argc, uint32_t symbol, bool* pushed) {
  Impl& im = *impl_;
  *pushed = false;
  const Value& recv = slot[1];
  const std::vector<std::pair<uint32_t, uint32_t>>* methods = nullptr;
  if (recv.type == Type::kStruct) methods = &AsStruct(recv)->stype->methods;
  else if (recv.type == Type::kEnum) methods = &AsEnum(recv)->etype->methods;
  if (methods != nullptr) {
    for (auto& [sym, proto] : *methods) {
      if (sym != symbol) continue;
      slot[0] = FunctionValue(proto);
      *pushed = true;  // or, for a @remote method, ran through the handler (see INVOKE)
      return PushCall(slot, argc);
    }
  }
  auto& entry = im.method_cache[symbol][static_cast<int>(NamespaceOf(recv))];
  if (entry == nullptr) {
    const NativeDef* def = FindMethod(recv, program_.symbols[symbol]);
    entry = def != nullptr ? def : NoMethodSentinel();
  }
  const NativeDef* def = entry;
  if (def == NoMethodSentinel())
    return Fail(fmt::format("no method '{}' on {}", program_.symbols[symbol], TypeName(recv)));
  int n = argc - 1;
  if (n < def->min_args || (def->max_args >= 0 && n > def->max_args)) {
    std::string want = def->min_args == def->max_args
                           ? std::to_string(def->min_args)
                           : def->max_args < 0 ? fmt::format("at least {}", def->min_args)
                                               : fmt::format("{} to {}", def->min_args,
                                                             def->max_args);
    return FailKind(ErrorKind::kArgumentError,
                    fmt::format("{} expected {} argument{}, got {}", program_.symbols[symbol],
                                want, want == "1" ? "" : "s", n));
  }
  Value out;
  if (!def->fn(*this, slot + 1, argc, &out)) return false;
  slot[0] = out;
  return true;
}

namespace {
bool CallNative(Vm& vm, const NativeDef* def, Value* args, int argc, Value* out) {
  if (argc < def->min_args || (def->max_args >= 0 && argc > def->max_args)) {
    std::string want = def->min_args == def->max_args
                           ? std::to_string(def->min_args)
                           : def->max_args < 0 ? fmt::format("at least {}", def->min_args)
                                               : fmt::format("{} to {}", def->min_args,
                                                             def->max_args);
    return vm.FailKind(ErrorKind::kArgumentError,
                       fmt::format("{} expected {} argument{}, got {}", def->name, want,
                                   want == "1" ? "" : "s", argc));
  }
  return def->fn(vm, args, argc, out);
}

// GETFIELD/SETFIELD miss: the linear FieldIndex scan, remembered in the symbol's cache entry
// (the older way is dropped). -1 (no such field) is not cached.
[[gnu::noinline]] int FieldIndexMiss(FieldCacheEntry& fc, const StructType* st,
                                     uint32_t symbol) {
  int fi = st->FieldIndex(symbol);
  if (fi >= 0) {
    fc.stype[1] = fc.stype[0];
    fc.slot[1] = fc.slot[0];
    fc.stype[0] = st;
    fc.slot[0] = static_cast<uint32_t>(fi);
  }
  return fi;
}

[[gnu::always_inline]] inline int CachedFieldIndex(FieldCacheEntry& fc, const StructType* st,
                                                   uint32_t symbol) {
  if (st == fc.stype[0]) return static_cast<int>(fc.slot[0]);
  if (st == fc.stype[1]) return static_cast<int>(fc.slot[1]);
  return FieldIndexMiss(fc, st, symbol);
}
}  // namespace

bool Vm::RunFrameLoop(size_t stop_depth) {
  Impl& im = *impl_;
  Frame* const stop_frame = im.frames.at_depth(stop_depth);
  // No frame to run: PushCall handed the call to a RemoteCallHandler.
  if (im.frames.top() == stop_frame) return true;
  Frame* frame = &im.frames.back();
  const uint32_t* ip = frame->ip;
  Value* base = frame->base;
  const Value* k = frame->proto->constants.data();
  uint64_t slice = std::min(kFuelSlice, im.fuel_left);
  if (++im.entries_unchecked >= kEntriesPerDeadlineCheck) {
    im.entries_unchecked = 0;
    slice = 0;  // the first instruction refuels, which checks the deadline (and the fuel)
  }
  im.fuel_left -= slice;
  uint32_t i = 0;

#define LOAD_FRAME()                         \
  do {                                       \
    frame = &im.frames.back();               \
    ip = frame->ip;                          \
    base = frame->base;                      \
    k = frame->proto->constants.data();      \
  } while (0)
#define SAVE_IP() (frame->ip = ip)
#define A() code::GetA(i)
#define B() code::GetB(i)
#define C() code::GetC(i)
#define RA base[code::GetA(i)]
#define RB base[code::GetB(i)]
#define RC base[code::GetC(i)]
#define THROW()   \
  do {            \
    SAVE_IP();    \
    goto error;   \
  } while (0)
#define CHECK(expr) \
  do {              \
    if (!(expr)) THROW(); \
  } while (0)
// CHECK(expr) for work that pays fuel through Vm::ChargeFuel (natives, walks of values): the
// loop's slice is handed back for it, so it can spend all the fuel that is left, and then
// resumes where it was (the deadline is still checked every kFuelSlice instructions).
#define CHECK_PAYING(expr)                        \
  do {                                            \
    uint64_t held = slice;                        \
    im.fuel_left += held;                         \
    bool paid = (expr);                           \
    slice = std::min(held, im.fuel_left);         \
    im.fuel_left -= slice;                        \
    if (!paid) THROW();                           \
  } while (0)
#define GC_CHECK()                                       \
  do {                                                   \
    if (im.heap.bytes > im.heap.next_gc) {               \
      SAVE_IP();                                         \
      if (!CollectIfNeeded()) goto error;                \
    }                                                    \
  } while (0)
// Executes the JMP that follows a test when `cond` holds, else skips it.
#define COND_JUMP(cond)                  \
  do {                                   \
    if (cond) {                          \
      ip += code::GetSBx(*ip) + 1;       \
    } else {                             \
      ++ip;                              \
    }                                    \
  } while (0)

#ifdef SHAPEX_COMPUTED_GOTO
  static const void* const kDispatch[] = {
#define SHAPEX_OP_LABEL(name, fmt, a, b, c, x, doc) &&op_##name,
      SHAPEX_OPCODES(SHAPEX_OP_LABEL)
#undef SHAPEX_OP_LABEL
  };
#define CASE(name) op_##name:
#define DISPATCH()                               \
  do {                                           \
    if (slice-- == 0) goto refuel;               \
    i = *ip++;                                   \
    goto *kDispatch[i & 0xff];                   \
  } while (0)
  DISPATCH();
#else
#define CASE(name) case Op::k##name:
#define DISPATCH() goto next
next:
  if (slice-- == 0) goto refuel;
  i = *ip++;
  switch (code::GetOp(i)) {
#endif

  CASE(MOVE) { RA = RB; DISPATCH(); }
  CASE(LOADK) { RA = k[code::GetBx(i)]; DISPATCH(); }
  CASE(LOADI) { RA = Value::Int(code::GetSBx(i)); DISPATCH(); }
  CASE(LOADNONE) { RA = Value::None(); DISPATCH(); }
  CASE(LOADBOOL) { RA = Value::Bool(B() != 0); DISPATCH(); }
  CASE(GETGLOBAL) {
    const Value& g = im.globals[code::GetBx(i)];
    if (__builtin_expect(g.IsUnset(), 0)) {  // its let/var has not run
      FailUnsetGlobal(*this, code::GetBx(i));
      THROW();
    }
    RA = g;
    DISPATCH();
  }
  CASE(SETGLOBAL) { im.globals[code::GetBx(i)] = RA; DISPATCH(); }
  CASE(FUNC) {
    RA = Value::Object(im.functions[frame->proto->fn_refs[code::GetBx(i)]]);
    DISPATCH();
  }
  CASE(NATIVE) {
    RA = im.natives[frame->proto->index][code::GetBx(i)];
    DISPATCH();
  }
  CASE(CLOSURE) {
    const Proto* target = program_.protos[frame->proto->fn_refs[code::GetBx(i)]].get();
    ObjClosure* c = im.heap.New<ObjClosure>(target, target->captures.size());
    for (size_t ci = 0; ci < target->captures.size(); ++ci) {
      const CaptureDesc& d = target->captures[ci];
      if (d.from_parent_local) {
        const Value& cell = base[d.index];
        if (cell.type != Type::kCell) {
          Fail("internal: captured variable is not boxed");
          THROW();
        }
        c->cells[ci] = AsCell(cell);
      } else {
        if (frame->closure == nullptr || d.index >= frame->closure->cells.size()) {
          Fail("internal: capture index out of range");
          THROW();
        }
        c->cells[ci] = frame->closure->cells[d.index];
      }
    }
    RA = Value::Object(c);
    GC_CHECK();
    DISPATCH();
  }
  CASE(NEWCELL) {
    RA = Value::Object(im.heap.New<ObjCell>(RA));
    GC_CHECK();
    DISPATCH();
  }
  CASE(GETCELL) {
    if (RB.type != Type::kCell) {
      Fail("internal: variable is not boxed");
      THROW();
    }
    RA = AsCell(RB)->value;
    DISPATCH();
  }
  CASE(SETCELL) {
    if (RA.type != Type::kCell) {
      Fail("internal: variable is not boxed");
      THROW();
    }
    AsCell(RA)->value = RB;
    DISPATCH();
  }
  CASE(GETUPVAL) {
    if (frame->closure == nullptr || B() >= frame->closure->cells.size()) {
      Fail("internal: upvalue out of range");
      THROW();
    }
    RA = frame->closure->cells[B()]->value;
    DISPATCH();
  }
  CASE(SETUPVAL) {
    if (frame->closure == nullptr || B() >= frame->closure->cells.size()) {
      Fail("internal: upvalue out of range");
      THROW();
    }
    frame->closure->cells[B()]->value = RA;
    DISPATCH();
  }
// Int fast path with overflow check, Number (then mixed Int/Number) fast path, everything else
// in ArithSlow.
#define ARITH_OP(NAME, OVERFLOW_BUILTIN, OPERATOR, OPCHAR, RIGHT)     \
  CASE(NAME) {                                                        \
    const Value& b = RB;                                              \
    const Value& c = RIGHT;                                           \
    if (b.type == Type::kInt && c.type == Type::kInt) {               \
      int64_t r;                                                      \
      if (OVERFLOW_BUILTIN(b.as.i, c.as.i, &r)) {                     \
        Fail("integer overflow");                                     \
        THROW();                                                      \
      }                                                               \
      RA = Value::Int(r);                                             \
    } else if (b.type == Type::kNumber && c.type == Type::kNumber) {  \
      RA = Value::Number(b.as.n OPERATOR c.as.n);                     \
    } else if (b.IsNumeric() && c.IsNumeric()) {                      \
      RA = Value::Number(b.AsDouble() OPERATOR c.AsDouble());         \
    } else {                                                          \
      Value out;                                                      \
      CHECK(ArithSlow(*this, OPCHAR, b, c, &out));                    \
      RA = out;                                                       \
      GC_CHECK();                                                     \
    }                                                                 \
    DISPATCH();                                                       \
  }
  ARITH_OP(ADD, __builtin_add_overflow, +, '+', RC)
  ARITH_OP(SUB, __builtin_sub_overflow, -, '-', RC)
  ARITH_OP(MUL, __builtin_mul_overflow, *, '*', RC)
  ARITH_OP(ADDK, __builtin_add_overflow, +, '+', k[C()])
  ARITH_OP(SUBK, __builtin_sub_overflow, -, '-', k[C()])
  ARITH_OP(MULK, __builtin_mul_overflow, *, '*', k[C()])
#undef ARITH_OP
#define SLOW_ARITH_OP(NAME, OPCHAR)                                 \
  CASE(NAME) {                                                      \
    Value out;                                                      \
    CHECK(ArithSlow(*this, OPCHAR, RB, RC, &out));                  \
    RA = out;                                                       \
    GC_CHECK();                                                     \
    DISPATCH();                                                     \
  }
// Division and modulo: Number and Int fast paths; the rest (division by zero, INT64_MIN / -1,
// negative divisors for %, typed arrays) in ArithSlow. Int / Int truncates (IntArith); a
// divisor other than 0 and -1 can neither fail nor overflow.
#define DIV_OP(NAME, RIGHT)                                                              \
  CASE(NAME) {                                                                           \
    const Value& b = RB;                                                                 \
    const Value& c = RIGHT;                                                              \
    if (b.type == Type::kInt && c.type == Type::kInt) {                                  \
      if (static_cast<uint64_t>(c.as.i) + 1 > 1) {                                       \
        RA = Value::Int(b.as.i / c.as.i);                                                \
        DISPATCH();                                                                      \
      }                                                                                  \
    } else if (b.type == Type::kNumber && c.type == Type::kNumber) {                     \
      RA = Value::Number(b.as.n / c.as.n);                                               \
      DISPATCH();                                                                        \
    } else if (b.IsNumeric() && c.IsNumeric()) {                                         \
      RA = Value::Number(b.AsDouble() / c.AsDouble());                                   \
      DISPATCH();                                                                        \
    }                                                                                    \
    Value out;                                                                           \
    CHECK(ArithSlow(*this, '/', b, c, &out));                                            \
    RA = out;                                                                            \
    GC_CHECK();                                                                          \
    DISPATCH();                                                                          \
  }
#define MOD_OP(NAME, RIGHT)                                                              \
  CASE(NAME) {                                                                           \
    const Value& b = RB;                                                                 \
    const Value& c = RIGHT;                                                              \
    if (b.type == Type::kInt && c.type == Type::kInt && c.as.i > 0) {                    \
      RA = Value::Int(b.as.i % c.as.i);                                                  \
      DISPATCH();                                                                        \
    }                                                                                    \
    Value out;                                                                           \
    CHECK(ArithSlow(*this, '%', b, c, &out));                                            \
    RA = out;                                                                            \
    DISPATCH();                                                                          \
  }
  DIV_OP(DIV, RC)
  DIV_OP(DIVK, k[C()])
  MOD_OP(MOD, RC)
  MOD_OP(MODK, k[C()])
#undef DIV_OP
#undef MOD_OP
  SLOW_ARITH_OP(POW, 'p')
#undef SLOW_ARITH_OP
// Bitwise operators and shifts: Int fast paths as in IntArith; a shift count outside 0..63, a
// << that overflows and every other type go to ArithSlow (for its result or error).
#define BIT_OP(NAME, OPCHAR, INT_RESULT)                                 \
  CASE(NAME) {                                                           \
    const Value& b = RB;                                                 \
    const Value& c = RC;                                                 \
    if (b.type == Type::kInt && c.type == Type::kInt) {                  \
      int64_t x = b.as.i, y = c.as.i;                                    \
      int64_t r;                                                         \
      bool ok = true;                                                    \
      INT_RESULT;                                                        \
      if (ok) {                                                          \
        RA = Value::Int(r);                                              \
        DISPATCH();                                                      \
      }                                                                  \
    }                                                                    \
    Value out;                                                           \
    CHECK(ArithSlow(*this, OPCHAR, b, c, &out));                         \
    RA = out;                                                            \
    GC_CHECK();                                                          \
    DISPATCH();                                                          \
  }
  BIT_OP(BAND, '&', r = x & y)
  BIT_OP(BOR, '|', r = x | y)
  BIT_OP(BXOR, '^', r = x ^ y)
  BIT_OP(SHL, 'l',
         ok = static_cast<uint64_t>(y) < 64;
         r = ok ? static_cast<int64_t>(static_cast<uint64_t>(x) << y) : 0;
         ok = ok && (r >> y) == x)
  BIT_OP(SHR, 'r', ok = static_cast<uint64_t>(y) < 64; r = ok ? x >> y : 0)
#undef BIT_OP
  CASE(ADDI) {
    const Value& b = RB;
    int64_t imm = code::GetSC(i);
    if (b.type == Type::kInt) {
      int64_t r;
      if (__builtin_add_overflow(b.as.i, imm, &r)) {
        Fail("integer overflow");
        THROW();
      }
      RA = Value::Int(r);
    } else if (b.type == Type::kNumber) {
      RA = Value::Number(b.as.n + static_cast<double>(imm));
    } else {
      Value out;
      CHECK(ArithSlow(*this, '+', b, Value::Int(imm), &out));
      RA = out;
      GC_CHECK();
    }
    DISPATCH();
  }
  CASE(NEG) {
    const Value& b = RB;
    if (b.type == Type::kInt) {
      if (b.as.i == INT64_MIN) {
        Fail("integer overflow");
        THROW();
      }
      RA = Value::Int(-b.as.i);
    } else if (b.type == Type::kNumber) {
      RA = Value::Number(-b.as.n);
    } else {
      Value out;
      CHECK(ArithSlow(*this, '*', b, Value::Int(-1), &out));
      RA = out;
      GC_CHECK();
    }
    DISPATCH();
  }
  CASE(NOT) {
    if (RB.type != Type::kBool) {
      Fail("operand must be bool, got " + TypeName(RB));
      THROW();
    }
    RA = Value::Bool(!RB.as.b);
    DISPATCH();
  }
  CASE(BNOT) {
    if (RB.type != Type::kInt) {
      Fail("unsupported operand type for ~: " + TypeName(RB));
      THROW();
    }
    RA = Value::Int(~RB.as.i);
    DISPATCH();
  }
  CASE(EQ) {
    bool eq;
    CHECK_PAYING(EqualOrFail(*this, RB, RC, &eq));
    RA = Value::Bool(eq);
    DISPATCH();
  }
  CASE(NE) {
    bool eq;
    CHECK_PAYING(EqualOrFail(*this, RB, RC, &eq));
    RA = Value::Bool(!eq);
    DISPATCH();
  }
  CASE(LT) {
    const Value& b = RB;
    const Value& c = RC;
    if (b.type == Type::kInt && c.type == Type::kInt) {
      RA = Value::Bool(b.as.i < c.as.i);
      DISPATCH();
    }
    if (b.type == Type::kNumber && c.type == Type::kNumber) {
      RA = Value::Bool(b.as.n < c.as.n);
      DISPATCH();
    }
    int cmp;
    CHECK(CompareOrFail(*this, b, c, &cmp));
    RA = Value::Bool(cmp < 0);
    DISPATCH();
  }
  CASE(LE) {
    const Value& b = RB;
    const Value& c = RC;
    if (b.type == Type::kInt && c.type == Type::kInt) {
      RA = Value::Bool(b.as.i <= c.as.i);
      DISPATCH();
    }
    if (b.type == Type::kNumber && c.type == Type::kNumber) {
      RA = Value::Bool(b.as.n <= c.as.n);
      DISPATCH();
    }
    int cmp;
    CHECK(CompareOrFail(*this, b, c, &cmp));
    RA = Value::Bool(cmp <= 0);
    DISPATCH();
  }
  CASE(TEST) {
    const Value& a = RA;
    if (a.type != Type::kBool) {
      Fail((B() ? "operand must be bool, got " : "condition must be bool, got ") + TypeName(a));
      THROW();
    }
    COND_JUMP(a.as.b == (C() != 0));
    DISPATCH();
  }
  CASE(TEQ) {
    bool eq;
    CHECK_PAYING(EqualOrFail(*this, RA, RB, &eq));
    COND_JUMP(eq == (C() != 0));
    DISPATCH();
  }
  CASE(TLT) {
    const Value& a = RA;
    const Value& b = RB;
    bool r;
    if (a.type == Type::kInt && b.type == Type::kInt) {
      r = a.as.i < b.as.i;
    } else if (a.type == Type::kNumber && b.type == Type::kNumber) {
      r = a.as.n < b.as.n;  // NaN: false, as CompareValues' kUnordered
    } else {
      int cmp;
      CHECK(CompareOrFail(*this, a, b, &cmp));
      r = cmp < 0;
    }
    COND_JUMP(r == (C() != 0));
    DISPATCH();
  }
  CASE(TLE) {
    const Value& a = RA;
    const Value& b = RB;
    bool r;
    if (a.type == Type::kInt && b.type == Type::kInt) {
      r = a.as.i <= b.as.i;
    } else if (a.type == Type::kNumber && b.type == Type::kNumber) {
      r = a.as.n <= b.as.n;  // NaN: false, as CompareValues' kUnordered
    } else {
      int cmp;
      CHECK(CompareOrFail(*this, a, b, &cmp));
      r = cmp <= 0;
    }
    COND_JUMP(r == (C() != 0));
    DISPATCH();
  }
#define IMM_COMPARE(NAME, OPERATOR)                                     \
  CASE(NAME) {                                                          \
    const Value& a = RA;                                                \
    int64_t imm = code::GetSB(i);                                       \
    bool r;                                                             \
    if (a.type == Type::kInt) {                                         \
      r = a.as.i OPERATOR imm;                                          \
    } else if (a.type == Type::kNumber) {                               \
      r = a.as.n OPERATOR static_cast<double>(imm);                     \
    } else {                                                            \
      int cmp;                                                          \
      CHECK(CompareOrFail(*this, a, Value::Int(imm), &cmp));            \
      r = cmp OPERATOR 0;                                               \
    }                                                                   \
    COND_JUMP(r == (C() != 0));                                         \
    DISPATCH();                                                         \
  }
  CASE(TEQI) {
    const Value& a = RA;
    int64_t imm = code::GetSB(i);
    bool r = a.type == Type::kInt ? a.as.i == imm
                                  : a.type == Type::kNumber && a.as.n == static_cast<double>(imm);
    COND_JUMP(r == (C() != 0));
    DISPATCH();
  }
  IMM_COMPARE(TLTI, <)
  IMM_COMPARE(TLEI, <=)
  IMM_COMPARE(TGTI, >)
  IMM_COMPARE(TGEI, >=)
#undef IMM_COMPARE
  CASE(JMP) {
    ip += code::GetSBx(i);
    DISPATCH();
  }
  CASE(CALL) {
    Value* slot = &RA;
    int argc = static_cast<int>(B());
    if (slot->type == Type::kFunction) {
      // Fast path: exact arity, no annotated parameters, not handed to a remote-call handler,
      // room for the frame.
      const Proto* p = AsFunction(*slot)->proto;
      Value* nb = slot + 1;
      if (static_cast<uint32_t>(argc) == p->num_params && im.fast_call[p->index] &&
          !im.frames.full() && nb + p->num_regs + 1 < im.stack_end) {
        SAVE_IP();
        if (nb + p->num_regs > im.high_water) im.high_water = nb + p->num_regs;
        im.frames.push_back(Frame{p, nullptr, p->code.data(), nb, static_cast<uint32_t>(argc)});
        frame = &im.frames.back();
        ip = p->code.data();
        base = nb;
        k = p->constants.data();
        DISPATCH();
      }
    }
    if (slot->type == Type::kNative) {
      SAVE_IP();
      Value out;
      CHECK_PAYING(CallNative(*this, AsNative(*slot)->def, slot + 1, argc, &out));
      frame = &im.frames.back();
      *slot = out;
      GC_CHECK();
      DISPATCH();
    }
    SAVE_IP();
    if (const Proto* cp = CalleeProto(*slot); cp != nullptr && cp->remote && remote_call_) [[unlikely]] {
      // A remote call is charged against what is left: hand the slice back so Vm::fuel_left()
      // is exact (the next instruction takes a new one).
      im.fuel_left += slice;
      slice = 0;
    }
    Frame* caller = frame;
    if (!PushCall(slot, argc)) goto error;
    LOAD_FRAME();
    if (frame == caller) GC_CHECK();  // a RemoteCallHandler ran it: *slot holds its result
    DISPATCH();
  }
  CASE(INVOKE) {
    uint32_t symbol = *ip++;
    SAVE_IP();
    bool pushed;
    CHECK_PAYING(InvokeMethod(&RA, static_cast<int>(B()) + 1, symbol, &pushed));
    if (pushed) {
      Frame* caller = frame;
      LOAD_FRAME();
      if (frame == caller) GC_CHECK();  // a RemoteCallHandler ran it: RA holds its result
    } else {
      frame = &im.frames.back();
      GC_CHECK();
    }
    DISPATCH();
  }
  CASE(RET) {
    base[-1] = RA;
    goto do_return;
  }
  CASE(RETNONE) {
    base[-1] = Value::None();
    goto do_return;
  }
  CASE(TESTARG) {
    if (A() < frame->argc) ip += code::GetSBx(i);
    DISPATCH();
  }
  CASE(CHECKRET) {
    Value* v = &RA;
    if (!MatchesType(v, frame->proto->return_type, program_)) {
      Fail(fmt::format("return value of {}: expected {}, got {}", frame->proto->name,
                       TypeSpecName(frame->proto->return_type, program_), TypeName(*v)));
      THROW();
    }
    DISPATCH();
  }
  CASE(NEWARRAY) {
    ObjArray* arr = im.heap.New<ObjArray>();
    arr->items.assign(&RB, &RB + C());
    im.heap.Recharge(arr);
    RA = Value::Object(arr);
    GC_CHECK();
    DISPATCH();
  }
  CASE(APPEND) {
    if (RA.type != Type::kArray) {
      Fail("internal: APPEND to a non-array");
      THROW();
    }
    ObjArray* arr = AsArray(RA);
    arr->items.push_back(RB);
    im.heap.Recharge(arr);
    GC_CHECK();
    DISPATCH();
  }
  CASE(NEWMAP) {
    ObjMap* m = im.heap.New<ObjMap>();
    Value mv = Value::Object(m);
    const Value* kv = &RB;
    uint32_t pairs = C();
    for (uint32_t p = 0; p < pairs; ++p) {
      if (!ObjMap::ValidKey(kv[2 * p])) {
        Fail("invalid map key: " + TypeName(kv[2 * p]));
        RA = mv;
        THROW();
      }
      m->Set(kv[2 * p], kv[2 * p + 1]);
    }
    im.heap.Recharge(m);
    RA = mv;
    GC_CHECK();
    DISPATCH();
  }
  CASE(NEWSTRUCT) {
    uint32_t index = *ip++;
    const StructType* st = program_.structs[index].get();
    ObjStruct* s = im.heap.New<ObjStruct>(st, st->field_names.size());
    std::copy(&RB, &RB + st->field_names.size(), s->fields.begin());
    RA = Value::Object(s);
    GC_CHECK();
    DISPATCH();
  }
  CASE(NEWENUM) {
    uint32_t id = *ip++;
    const EnumType* et = EnumTypeFor(program_, id >> 16);
    uint32_t variant = id & 0xffff;
    uint32_t arity = et->variant_arity[variant];
    ObjEnum* e = im.heap.New<ObjEnum>(et, variant, arity);
    std::copy(&RB, &RB + arity, e->payload.begin());
    RA = Value::Object(e);
    GC_CHECK();
    DISPATCH();
  }
  CASE(GETFIELD) {
    uint32_t symbol = *ip++;
    const Value& obj = RB;
    if (obj.type == Type::kStruct) [[likely]] {
      ObjStruct* s = AsStruct(obj);
      int fi = CachedFieldIndex(im.field_cache[symbol], s->stype, symbol);
      if (fi >= 0) [[likely]] {
        RA = s->fields[fi];
        DISPATCH();
      }
    }
    Fail(fmt::format("no field '{}' on {}", program_.symbols[symbol], TypeName(obj)));
    THROW();
  }
  CASE(SETFIELD) {
    uint32_t symbol = *ip++;
    const Value& obj = RA;
    if (obj.type == Type::kStruct) [[likely]] {
      ObjStruct* s = AsStruct(obj);
      int fi = CachedFieldIndex(im.field_cache[symbol], s->stype, symbol);
      if (fi >= 0) [[likely]] {
        s->fields[fi] = RB;
        DISPATCH();
      }
    }
    Fail(fmt::format("no field '{}' on {}", program_.symbols[symbol], TypeName(obj)));
    THROW();
  }
  CASE(GETINDEX) {
    const Value& c = RB;
    const Value& x = RC;
    if (c.type == Type::kArray && x.type == Type::kInt) {
      ObjArray* arr = AsArray(c);
      int64_t idx = x.as.i;
      int64_t n = static_cast<int64_t>(arr->items.size());
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) {
        RA = arr->items[idx];
        DISPATCH();
      }
    } else if (c.type == Type::kTypedArray && x.type == Type::kInt) {
      // Same index rule as ResolveIndex; out of range falls to IndexGet for its error.
      const ObjTypedArray* ta = AsTypedArray(c);
      int64_t idx = x.as.i;
      int64_t n = static_cast<int64_t>(ta->length);
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) {
        switch (ta->kind) {
          case ElemKind::kF64: RA = Value::Number(ta->As<double>()[idx]); break;
          case ElemKind::kI64: RA = Value::Int(ta->As<int64_t>()[idx]); break;
          case ElemKind::kI32: RA = Value::Int(ta->As<int32_t>()[idx]); break;
          default: RA = ta->Get(static_cast<size_t>(idx)); break;
        }
        DISPATCH();
      }
    }
    Value out;
    CHECK(IndexGet(*this, c, x, &out));
    RA = out;
    GC_CHECK();
    DISPATCH();
  }
  CASE(SETINDEX) {
    const Value& c = RA;
    const Value& x = RB;
    if (c.type == Type::kArray && x.type == Type::kInt) {
      ObjArray* arr = AsArray(c);
      int64_t idx = x.as.i;
      int64_t n = static_cast<int64_t>(arr->items.size());
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) {
        arr->items[idx] = RC;
        DISPATCH();
      }
    } else if (c.type == Type::kTypedArray && x.type == Type::kInt) {
      // StoreElem's conversions for the common kinds; anything it would reject (or an index
      // out of range) goes to IndexSet for the error.
      ObjTypedArray* ta = AsTypedArray(c);
      const Value& v = RC;
      int64_t idx = x.as.i;
      int64_t n = static_cast<int64_t>(ta->length);
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) {
        if (ta->kind == ElemKind::kF64 && v.IsNumeric()) {
          ta->As<double>()[idx] = v.AsDouble();
          DISPATCH();
        }
        if (ta->kind == ElemKind::kI64 && v.type == Type::kInt) {
          ta->As<int64_t>()[idx] = v.as.i;
          DISPATCH();
        }
        if (ta->kind == ElemKind::kI32 && v.type == Type::kInt && v.as.i >= INT32_MIN &&
            v.as.i <= INT32_MAX) {
          ta->As<int32_t>()[idx] = static_cast<int32_t>(v.as.i);
          DISPATCH();
        }
      }
    }
    CHECK(IndexSet(*this, c, x, RC));
    GC_CHECK();
    DISPATCH();
  }
  CASE(GETINDEX2) {
    Value out;
    CHECK(IndexGet2(*this, RB, base[C()], base[C() + 1], &out));
    RA = out;
    DISPATCH();
  }
  CASE(SETINDEX2) {
    CHECK(IndexSet2(*this, RA, base[B()], base[B() + 1], RC));
    DISPATCH();
  }
  CASE(NEWRANGE) {
    const Value& lo = RB;
    const Value& hi = base[B() + 1];
    if (lo.type != Type::kInt || hi.type != Type::kInt) {
      Fail(fmt::format("range bounds must be int, got {} and {}", TypeName(lo), TypeName(hi)));
      THROW();
    }
    RA = NewRange(lo.as.i, hi.as.i, 1, C() != 0);
    GC_CHECK();
    DISPATCH();
  }
  CASE(BUILDSTR) {
    // No named std::string here (clang forbids computed gotos out of its scope): BuildString.
    CHECK_PAYING(BuildString(*this, &RB, C(), &RA));
    GC_CHECK();
    DISPATCH();
  }
  CASE(FORMAT) {
    CHECK_PAYING(FormatWithSpec(*this, RA, k[code::GetBx(i)], &RA));
    GC_CHECK();
    DISPATCH();
  }
  CASE(FORPREP)
  CASE(FORPREPI) {
    Value* r = &RA;
    if (r[0].type != Type::kInt || r[1].type != Type::kInt) {
      Fail(fmt::format("range bounds must be int, got {} and {}", TypeName(r[0]),
                       TypeName(r[1])));
      THROW();
    }
    bool inclusive = code::GetOp(i) == Op::kFORPREPI;
    int64_t lo = r[0].as.i, hi = r[1].as.i;
    if (lo > hi || (!inclusive && lo == hi)) {
      ip += code::GetSBx(i);
      DISPATCH();
    }
    uint64_t remaining = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
    if (!inclusive) --remaining;
    r[1] = Value::Int(static_cast<int64_t>(remaining));  // iterations left after this one
    r[3] = Value::Int(lo);
    DISPATCH();
  }
  CASE(FORLOOP) {
    Value* r = &RA;
    uint64_t remaining = static_cast<uint64_t>(r[1].as.i);
    if (r[0].type == Type::kInt && r[1].type == Type::kInt && remaining > 0) {
      r[1].as.i = static_cast<int64_t>(remaining - 1);
      r[0].as.i = static_cast<int64_t>(static_cast<uint64_t>(r[0].as.i) + 1);
      r[3] = Value::Int(r[0].as.i);
      ip += code::GetSBx(i);
    }
    DISPATCH();
  }
  CASE(ITERINIT) {
    const Value v = RB;
    switch (v.type) {
      case Type::kArray: case Type::kMap: case Type::kString: case Type::kRange:
      case Type::kTypedArray:
        break;
      default:
        Fail(TypeName(v) + " is not iterable");
        THROW();
    }
    RA = v;
    base[A() + 1] = Value::Int(0);
    DISPATCH();
  }
  CASE(ITERNEXT) {
    Value* r = &RA;
    bool done;
    CHECK(IterNext(*this, r, &done));
    if (done) ip += code::GetSBx(i);
    else GC_CHECK();
    DISPATCH();
  }
  CASE(TRY) {
    const Value v = RB;
    if (v.type == Type::kNone) {
      base[-1] = v;
      goto do_return;
    }
    if (v.type == Type::kEnum) {
      ObjEnum* e = AsEnum(v);
      if (e->etype == OptionType() || (e->etype == ResultType() && e->variant == kOkVariant)) {
        RA = e->payload[0];
        DISPATCH();
      }
      if (e->etype == ResultType()) {
        base[-1] = v;
        goto do_return;
      }
    }
    Fail("'?' needs an Option or Result, got " + TypeName(v));
    THROW();
  }
  CASE(MATCHENUM) {
    uint32_t id = *ip++;
    const Value& v = RA;
    bool match = v.type == Type::kEnum && AsEnum(v)->etype == EnumTypeFor(program_, id >> 16) &&
                 AsEnum(v)->variant == (id & 0xffff);
    COND_JUMP(match == (C() != 0));
    DISPATCH();
  }
  CASE(MATCHSTRUCT) {
    uint32_t index = *ip++;
    const Value& v = RA;
    bool match = v.type == Type::kStruct && AsStruct(v)->stype == program_.structs[index].get();
    COND_JUMP(match == (C() != 0));
    DISPATCH();
  }
  CASE(MATCHARRAY) {
    const Value& v = RA;
    bool match = v.type == Type::kArray && AsArray(v)->items.size() == B();
    COND_JUMP(match == (C() != 0));
    DISPATCH();
  }
  CASE(GETPAYLOAD) {
    const Value& v = RB;
    if (v.type != Type::kEnum || C() >= AsEnum(v)->payload.size()) {
      Fail("internal: payload index out of range");
      THROW();
    }
    RA = AsEnum(v)->payload[C()];
    DISPATCH();
  }
  CASE(NOMATCH) {
    CHECK_PAYING(FailNoMatch(*this, RA));
    THROW();
  }

#ifndef SHAPEX_COMPUTED_GOTO
  }  // switch
  Fail("invalid opcode");
  THROW();
#endif

do_return:
  im.frames.pop_back();
  if (im.frames.top() == stop_frame) {
    im.fuel_left += slice;
    return true;
  }
  LOAD_FRAME();
  DISPATCH();

refuel:
  if (im.deadline != std::chrono::steady_clock::time_point::max() &&
      std::chrono::steady_clock::now() >= im.deadline) {
    slice = 0;
    SAVE_IP();
    FailKind(ErrorKind::kTimeout, fmt::format("timed out after {}s", im.deadline_seconds));
    goto error;
  }
  if (im.fuel_left == 0) {
    slice = 0;
    SAVE_IP();
    FailKind(ErrorKind::kResourceExhausted, "fuel exhausted");
    goto error;
  }
  slice = std::min(kFuelSlice, im.fuel_left);
  im.fuel_left -= slice;
  DISPATCH();

error:
  im.fuel_left += slice;
  BuildTrace();
  im.frames.resize(stop_depth);
  return false;

#undef LOAD_FRAME
#undef SAVE_IP
#undef A
#undef B
#undef C
#undef RA
#undef RB
#undef RC
#undef THROW
#undef CHECK
#undef CHECK_PAYING
#undef GC_CHECK
#undef COND_JUMP
#undef CASE
#undef DISPATCH
}

}  // namespace shapex::engine
