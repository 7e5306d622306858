// Structure-aware mutations of a blob set (blob_set_model.h) for fuzz_blob_struct: opcodes,
// operands (inside, at and just past the sizes of the tables they index), instructions
// inserted, copied or deleted with the jumps around them kept right, constants, function
// references retargeted inside the set, headers (num_regs, num_params, flags), captures,
// annotations, type schemas, names, impls, the entry. The caller rehashes the model afterwards
// (SetModel::Rehash), so the set still passes hash verification.
#ifndef SHAPEX_TOOLS_FUZZ_BLOB_SET_MUTATOR_H_
#define SHAPEX_TOOLS_FUZZ_BLOB_SET_MUTATOR_H_

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "blob_set_model.h"
#include "shapex/engine/natives.h"

namespace shapex_fuzz {

class BlobSetMutator {
 public:
  BlobSetMutator(SetModel* m, uint32_t seed) : m_(*m), rng_(seed) {}

  // Applies 1..4 random edits.
  void Mutate() {
    int n = 1 + static_cast<int>(Below(4));
    for (int i = 0; i < n; ++i) MutateOnce();
  }

  // Appends up to four functions (and the impls that name them) of `other` to the set, and
  // points a reference or the entry's code at them.
  void CrossOver(const SetModel& other) {
    if (other.fns.empty()) return;
    int base = static_cast<int>(m_.fns.size());
    size_t take = std::min<size_t>(other.fns.size(), 1 + Below(4));
    if (m_.fns.size() + take > kMaxSetBlobs) take = kMaxSetBlobs - std::min(kMaxSetBlobs, m_.fns.size());
    if (take == 0) return;
    size_t first = Below(static_cast<uint32_t>(other.fns.size() - take + 1));
    for (size_t i = first; i < first + take; ++i) {
      FnModel fn = other.fns[i];
      for (FnModel::Ref& r : fn.refs) {
        if (r.target >= static_cast<int>(first) && r.target < static_cast<int>(first + take))
          r.target = base + r.target - static_cast<int>(first);
        else
          r.target = -1;  // keeps its hash: a missing dependency unless the set has it
      }
      m_.fns.push_back(std::move(fn));
    }
    for (size_t i = 0; i < other.impls.size() && m_.impls.size() < kMaxSetImpls; ++i) {
      int t = other.impl_target[i];
      if (t < static_cast<int>(first) || t >= static_cast<int>(first + take)) continue;
      m_.impls.push_back(other.impls[i]);
      m_.impl_target.push_back(base + t - static_cast<int>(first));
    }
    FnModel& entry = m_.fns[0];
    if (OneIn(4) && other.fns[first].insns_ok && entry.insns_ok) {
      entry.insns = other.fns[first].insns;  // the other entry's code over this entry's tables
    } else if (!entry.refs.empty()) {
      entry.refs[Below(static_cast<uint32_t>(entry.refs.size()))].target = base;
    } else {
      AddRef(&entry, base);
    }
  }

 private:
  uint32_t Below(uint32_t n) { return n == 0 ? 0 : static_cast<uint32_t>(rng_() % n); }
  bool OneIn(uint32_t n) { return Below(n) == 0; }
  FnModel& AnyFn() { return m_.fns[Below(static_cast<uint32_t>(m_.fns.size()))]; }

  // A table index or count near `size`: mostly inside, sometimes exactly at or just past it.
  uint32_t Near(uint32_t size, uint32_t max) {
    uint32_t v;
    switch (Below(10)) {
      case 0: v = size; break;
      case 1: v = size + 1; break;
      case 2: v = size == 0 ? 0 : size - 1; break;
      case 3: v = Below(max + 1); break;
      default: v = Below(size == 0 ? 1 : size);
    }
    return std::min(v, max);
  }

  uint32_t Operand(const FnModel& fn, shapex::engine::OperandKind kind, uint32_t max) {
    using shapex::engine::OperandKind;
    const BlobBody& b = fn.body;
    switch (kind) {
      case OperandKind::kRegister: return Near(b.num_regs, max);
      case OperandKind::kConstant: return Near(static_cast<uint32_t>(b.constants.size()), max);
      case OperandKind::kFnRef: return Near(static_cast<uint32_t>(b.fn_refs.size()), max);
      case OperandKind::kNative: return Near(static_cast<uint32_t>(b.natives.size()), max);
      case OperandKind::kGlobal: return Near(static_cast<uint32_t>(b.globals.size()), max);
      case OperandKind::kUnsigned: return OneIn(4) ? Below(max + 1) : Below(4);
      case OperandKind::kImmediate: {
        static const int32_t kInteresting[] = {0, 1, -1, 2, 127, -128, 32767, -32768};
        int32_t v = OneIn(2) ? kInteresting[Below(8)] : static_cast<int32_t>(rng_());
        return static_cast<uint32_t>(v) & max;
      }
      case OperandKind::kJump:
      case OperandKind::kUnused: return OneIn(16) ? Below(max + 1) : 0;
    }
    return 0;
  }

  uint32_t ExtraWord(const FnModel& fn, shapex::engine::Op op) {
    using shapex::engine::RemapKind;
    const BlobBody& b = fn.body;
    std::vector<uint32_t> structs, enums;
    for (uint32_t i = 0; i < b.types.size(); ++i)
      (b.types[i].kind == shapex::engine::TypeSchema::kStruct ? structs : enums).push_back(i);
    switch (shapex::engine::ExtraRemapKind(op)) {
      case RemapKind::kSymbol: return Near(static_cast<uint32_t>(b.symbols.size()), 0xffffffff);
      case RemapKind::kStruct:
        if (!structs.empty() && !OneIn(5)) return structs[Below(static_cast<uint32_t>(structs.size()))];
        return Near(static_cast<uint32_t>(b.types.size()), 0xffff);
      case RemapKind::kEnum: {
        uint32_t id, variants = 2;
        if (!enums.empty() && !OneIn(3)) {
          id = enums[Below(static_cast<uint32_t>(enums.size()))];
          variants = static_cast<uint32_t>(b.types[id].names.size());
        } else {
          id = OneIn(2) ? 0xFFFF : OneIn(2) ? 0xFFFE : Near(static_cast<uint32_t>(b.types.size()), 0xffff);
        }
        return id << 16 | Near(variants, 0xffff);
      }
      default: return Below(4);
    }
  }

  // A fresh instruction with kind-aware operands.
  Insn NewInsn(const FnModel& fn, uint32_t op, uint32_t a_hint) {
    using shapex::engine::OpFormat;
    const shapex::engine::OpInfo& info = shapex::engine::kOpInfo[op];
    Insn insn;
    uint32_t a = OneIn(2) ? a_hint : Operand(fn, info.a, 255);
    uint32_t word = op | (a & 0xff) << 8;
    if (info.format == OpFormat::kABC) {
      uint32_t b = Operand(fn, info.b, 255), c = Operand(fn, info.c, 255);
      if (info.b == shapex::engine::OperandKind::kRegister && info.c == shapex::engine::OperandKind::kUnsigned &&
          fn.body.num_regs > 0 && !OneIn(4)) {
        b = Below(fn.body.num_regs);  // a register block B .. B+C-1 that fits
        c = Below(fn.body.num_regs - b + 1);
      }
      word |= b << 16 | c << 24;
    } else if (info.format == OpFormat::kABx) {
      word |= Operand(fn, info.b, 0xffff) << 16;
    } else {
      word |= Operand(fn, info.b, 0xffff) << 16;
    }
    insn.word = word;
    insn.has_extra = info.extra;
    if (info.extra) insn.extra = ExtraWord(fn, static_cast<shapex::engine::Op>(op));
    if (IsJumpOp(op) && !fn.insns.empty() && !OneIn(8))
      insn.target = static_cast<int>(Below(static_cast<uint32_t>(fn.insns.size())));
    return insn;
  }

  Insn Jmp(const FnModel& fn) {
    Insn j;
    j.word = static_cast<uint32_t>(shapex::engine::Op::kJMP);
    j.target = fn.insns.empty() ? -1 : static_cast<int>(Below(static_cast<uint32_t>(fn.insns.size())));
    return j;
  }

  // Inserts `insn` before position `at`, shifting the jump targets at or after it.
  void InsertAt(FnModel* fn, size_t at, Insn insn) {
    for (Insn& other : fn->insns)
      if (other.target >= static_cast<int>(at)) ++other.target;
    if (insn.target >= static_cast<int>(at)) ++insn.target;
    fn->insns.insert(fn->insns.begin() + static_cast<ptrdiff_t>(at), insn);
  }

  void EraseAt(FnModel* fn, size_t at) {
    fn->insns.erase(fn->insns.begin() + static_cast<ptrdiff_t>(at));
    for (Insn& other : fn->insns) {
      if (other.target > static_cast<int>(at)) --other.target;
      if (other.target >= static_cast<int>(fn->insns.size())) other.target = -1;
    }
  }

  // A skip instruction needs a JMP right after it.
  void InsertWithJmp(FnModel* fn, size_t at, Insn insn) {
    bool skip = shapex::engine::kOpInfo[insn.word & 0xff].skip;
    InsertAt(fn, at, insn);
    if (skip && !OneIn(8)) InsertAt(fn, at + 1, Jmp(*fn));
  }

  void MutateCode(FnModel* fn) {
    std::vector<Insn>& code = fn->insns;
    if (code.empty()) {
      InsertAt(fn, 0, NewInsn(*fn, Below(shapex::engine::kNumOps), 0));
      return;
    }
    size_t i = Below(static_cast<uint32_t>(code.size()));
    switch (Below(9)) {
      case 0:
      case 1: {  // another opcode, often keeping A (and B, C when they are still meaningful)
        uint32_t op = Below(shapex::engine::kNumOps);
        Insn fresh = NewInsn(*fn, op, (code[i].word >> 8) & 0xff);
        if (OneIn(2)) fresh.word = (code[i].word & ~0xffu) | op;
        bool skip = shapex::engine::kOpInfo[op].skip;
        fresh.target = IsJumpOp(op) ? (code[i].target >= 0 ? code[i].target : fresh.target) : -1;
        fresh.line = code[i].line;
        code[i] = fresh;
        if (skip && (i + 1 >= code.size() || (code[i + 1].word & 0xff) != static_cast<uint32_t>(shapex::engine::Op::kJMP)))
          InsertAt(fn, i + 1, Jmp(*fn));
        return;
      }
      case 2:
      case 3: {  // one operand
        Insn& insn = code[i];
        const shapex::engine::OpInfo& info = shapex::engine::kOpInfo[insn.word & 0xff];
        uint32_t field = Below(insn.has_extra ? 4 : 3);
        if (field == 3) {
          insn.extra = OneIn(4) ? insn.extra + (OneIn(2) ? 1 : -1) : ExtraWord(*fn, static_cast<shapex::engine::Op>(insn.word & 0xff));
        } else if (field == 0) {
          uint32_t a = OneIn(3) ? (((insn.word >> 8) & 0xff) + 1) & 0xff : Operand(*fn, info.a, 255);
          insn.word = (insn.word & ~0xff00u) | a << 8;
        } else if (info.format != shapex::engine::OpFormat::kABC) {
          if (IsJumpOp(insn.word & 0xff) && !OneIn(6)) {
            insn.target = static_cast<int>(Below(static_cast<uint32_t>(code.size())));
          } else {
            insn.target = -1;
            uint32_t bx = OneIn(2) ? Operand(*fn, info.b, 0xffff) : ((insn.word >> 16) + (OneIn(2) ? 1 : 0xffff)) & 0xffff;
            insn.word = (insn.word & 0xffff) | bx << 16;
          }
        } else {
          int shift = field == 1 ? 16 : 24;
          shapex::engine::OperandKind kind = field == 1 ? info.b : info.c;
          uint32_t v = OneIn(3) ? (((insn.word >> shift) & 0xff) + (OneIn(2) ? 1 : 255)) & 0xff : Operand(*fn, kind, 255);
          insn.word = (insn.word & ~(0xffu << shift)) | v << shift;
        }
        return;
      }
      case 4:
      case 5:
        InsertWithJmp(fn, Below(static_cast<uint32_t>(code.size() + 1)), NewInsn(*fn, Below(shapex::engine::kNumOps), Below(fn->body.num_regs + 1)));
        return;
      case 6: {  // copy an instruction (from this or another function of the set)
        FnModel& from = AnyFn();
        if (!from.insns_ok || from.insns.empty()) return;
        Insn insn = from.insns[Below(static_cast<uint32_t>(from.insns.size()))];
        if (&from != fn) insn.target = insn.target < 0 ? -1 : static_cast<int>(Below(static_cast<uint32_t>(code.size())));
        InsertWithJmp(fn, Below(static_cast<uint32_t>(code.size() + 1)), insn);
        return;
      }
      case 7:
        if (code.size() > 1) EraseAt(fn, i);
        return;
      default: {  // retarget a jump
        std::vector<size_t> jumps;
        for (size_t k = 0; k < code.size(); ++k)
          if (IsJumpOp(code[k].word & 0xff)) jumps.push_back(k);
        if (jumps.empty()) return;
        code[jumps[Below(static_cast<uint32_t>(jumps.size()))]].target = static_cast<int>(Below(static_cast<uint32_t>(code.size())));
        return;
      }
    }
  }

  void MutateRawCode(FnModel* fn) {
    std::vector<uint32_t>& code = fn->body.code;
    if (code.empty() || OneIn(4)) {
      code.push_back(Below(shapex::engine::kNumOps + 2) | Below(256) << 8);
    } else {
      uint32_t& w = code[Below(static_cast<uint32_t>(code.size()))];
      w = OneIn(2) ? (w & ~0xffu) | Below(shapex::engine::kNumOps) : w ^ (1u << Below(32));
    }
    fn->debug.lines.assign(code.size(), 1);
    fn->SplitCode();
  }

  void MutateConstant(BlobBody* b) {
    using shapex::engine::BlobConstant;
    if (b->constants.empty() || OneIn(4)) {
      if (OneIn(8)) {  // drop the last constants: LOADK and K operands may now point past them
        b->constants.resize(b->constants.size() / 2);
        return;
      }
      b->constants.push_back(BlobConstant{});
      return;
    }
    BlobConstant& c = b->constants[Below(static_cast<uint32_t>(b->constants.size()))];
    static const int64_t kInts[] = {0, 1, -1, 2, 255, 65536, std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::min(), int64_t{1} << 62, -(int64_t{1} << 53)};
    static const double kNums[] = {0.0, -0.0, 1.5, -1e308, 1e308, std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity(), std::nan(""), 5e-324};
    using namespace std::string_view_literals;
    static const std::string_view kStrs[] = {""sv, "x"sv, "len"sv, "\xff\xfe"sv, "a\0b"sv, "{}"sv,
                                             "%s%n"sv, "\xe2\x82"sv, "0"sv, "-9223372036854775808"sv};
    switch (Below(4)) {
      case 0: c.tag = static_cast<BlobConstant::Tag>(1 + Below(3)); break;
      case 1: c.i = OneIn(2) ? kInts[Below(10)] : static_cast<int64_t>(static_cast<uint64_t>(c.i) + 1); break;
      case 2: c.n = kNums[Below(9)]; break;
      default: c.s = OneIn(4) ? std::string(Below(3000), 'a') : std::string(kStrs[Below(10)]); break;
    }
    if (c.tag == BlobConstant::kString && c.s.empty() && OneIn(2)) c.s = std::string(kStrs[Below(10)]);
  }

  std::string AnyName() {
    std::vector<const std::string*> pool;
    for (const FnModel& fn : m_.fns) {
      for (const std::string& s : fn.body.symbols) pool.push_back(&s);
      for (const std::string& s : fn.body.globals) pool.push_back(&s);
      for (const auto& t : fn.body.types)
        for (const std::string& s : t.names) pool.push_back(&s);
    }
    static const char* kNames[] = {"len", "x", "y", "value", "to_string", "map", "push", "self", "main", ""};
    if (pool.empty() || OneIn(3)) return kNames[Below(10)];
    return *pool[Below(static_cast<uint32_t>(pool.size()))];
  }

  std::string AnyNative() {
    size_t count = 0;
    const shapex::engine::NativeDef* all = shapex::engine::AllNatives(&count);
    if (count == 0 || OneIn(32)) return "no.such_native";
    return all[Below(static_cast<uint32_t>(count))].name;
  }

  void MutateNames(BlobBody* b) {
    std::vector<std::string>* tables[] = {&b->natives, &b->symbols, &b->globals};
    uint32_t which = Below(3);
    std::vector<std::string>& t = *tables[which];
    std::string name = which == 0 ? AnyNative() : AnyName();
    if (t.empty() || OneIn(3)) t.push_back(name);
    else if (OneIn(8)) t.pop_back();
    else t[Below(static_cast<uint32_t>(t.size()))] = name;
  }

  void MutateTypes(FnModel* fn) {
    using shapex::engine::TypeSchema;
    std::vector<TypeSchema>& types = fn->body.types;
    if (types.empty() || OneIn(4)) {
      const FnModel& from = AnyFn();
      if (!from.body.types.empty()) types.push_back(from.body.types[Below(static_cast<uint32_t>(from.body.types.size()))]);
      else types.push_back(TypeSchema{OneIn(2) ? TypeSchema::kStruct : TypeSchema::kEnum, "T", {"a"}, {}});
      if (types.back().kind == TypeSchema::kEnum) types.back().arity.resize(types.back().names.size(), 0);
      return;
    }
    TypeSchema& t = types[Below(static_cast<uint32_t>(types.size()))];
    switch (Below(5)) {
      case 0: t.name = AnyName(); break;
      case 1:
        t.names.push_back(AnyName());
        if (t.kind == TypeSchema::kEnum) t.arity.push_back(Below(3));
        break;
      case 2:
        if (!t.names.empty()) t.names.pop_back();
        if (t.kind == TypeSchema::kEnum && !t.arity.empty()) t.arity.pop_back();
        break;
      case 3:
        if (!t.arity.empty()) t.arity[Below(static_cast<uint32_t>(t.arity.size()))] = OneIn(8) ? 256 : Below(4);
        break;
      default:
        t.kind = t.kind == TypeSchema::kStruct ? TypeSchema::kEnum : TypeSchema::kStruct;
        t.arity.assign(t.kind == TypeSchema::kEnum ? t.names.size() : 0, 1);
    }
  }

  shapex::engine::TypeSpec AnyTypeSpec(const BlobBody& b, int depth) {
    using K = shapex::engine::TypeSpec::Kind;
    shapex::engine::TypeSpec t;
    t.kind = static_cast<K>(Below(16));
    if (t.kind == K::kVec) t.elem = static_cast<shapex::engine::ElemKind>(Below(8));
    if (t.kind == K::kStruct || t.kind == K::kEnum) t.index = Near(static_cast<uint32_t>(b.types.size()), 0xffffffff);
    size_t args = t.kind == K::kOption ? 1 : t.kind == K::kResult ? 2 : 0;
    for (size_t i = 0; i < args; ++i)
      t.args.push_back(depth > 2 ? shapex::engine::TypeSpec{} : AnyTypeSpec(b, depth + 1));
    return t;
  }

  void MutateHeader(FnModel* fn) {
    BlobBody& b = fn->body;
    switch (Below(6)) {
      case 0: b.num_regs = OneIn(2) ? b.num_regs + (OneIn(2) ? 1 : static_cast<uint32_t>(-1)) : Near(255, 256); break;
      case 1: {
        b.num_params = OneIn(2) ? b.num_params + 1 : (b.num_params > 0 ? b.num_params - 1 : 0);
        if (!OneIn(8) && b.num_params <= 256) {  // keep the tables in step
          b.param_types.resize(b.num_params);
          fn->debug.param_names.resize(b.num_params, "p");
          b.num_required = std::min(b.num_required, b.num_params);
          b.num_regs = std::max(b.num_regs, b.num_params);
        }
        break;
      }
      case 2: b.num_required = Below(b.num_params + 2); break;
      case 3: b.flags ^= static_cast<uint8_t>(1u << Below(OneIn(16) ? 8 : 3)); break;
      case 4:
        if (!b.param_types.empty() && !OneIn(3)) b.param_types[Below(static_cast<uint32_t>(b.param_types.size()))] = AnyTypeSpec(b, 0);
        else b.return_type = AnyTypeSpec(b, 0), b.flags |= shapex::engine::kFlagReturnType;
        break;
      default: {  // captures
        auto& caps = b.captures;
        if (caps.empty() || OneIn(3)) {
          bool local = OneIn(2);
          caps.push_back({local, static_cast<uint8_t>(Near(local ? b.num_regs : static_cast<uint32_t>(caps.size()), 255))});
          if (!OneIn(4)) b.flags |= shapex::engine::kFlagClosure;
        } else if (OneIn(3)) {
          caps.pop_back();
        } else {
          auto& c = caps[Below(static_cast<uint32_t>(caps.size()))];
          c.from_parent_local = !c.from_parent_local;
          if (OneIn(2)) c.index = static_cast<uint8_t>(Near(b.num_regs, 255));
        }
      }
    }
  }

  void AddRef(FnModel* fn, int target) {
    FnModel::Ref r;
    r.target = target;
    fn->refs.push_back(r);
    if (!fn->insns_ok || !OneIn(2)) return;
    // ... and an instruction that uses it.
    bool closure = target >= 0 && (m_.fns[static_cast<size_t>(target)].body.flags & shapex::engine::kFlagClosure);
    uint32_t op = static_cast<uint32_t>(closure ? shapex::engine::Op::kCLOSURE : shapex::engine::Op::kFUNC);
    Insn insn;
    insn.word = op | Below(std::max(1u, fn->body.num_regs)) << 8 | static_cast<uint32_t>(fn->refs.size() - 1) << 16;
    InsertAt(fn, Below(static_cast<uint32_t>(fn->insns.size() + 1)), insn);
  }

  void MutateRefs(FnModel* fn) {
    int n = static_cast<int>(m_.fns.size());
    if (fn->refs.empty() || OneIn(3)) {
      AddRef(fn, static_cast<int>(Below(static_cast<uint32_t>(n))));
    } else if (OneIn(8)) {
      FnModel::Ref& r = fn->refs[Below(static_cast<uint32_t>(fn->refs.size()))];
      r.target = -1;
      r.external[Below(32)] ^= 1;  // a function nobody has
    } else {
      fn->refs[Below(static_cast<uint32_t>(fn->refs.size()))].target = static_cast<int>(Below(static_cast<uint32_t>(n)));
    }
  }

  void RemoveFn(size_t k) {
    m_.fns.erase(m_.fns.begin() + static_cast<ptrdiff_t>(k));
    auto fix = [&](int* t) {
      if (*t == static_cast<int>(k)) *t = -1;
      else if (*t > static_cast<int>(k)) --*t;
    };
    for (FnModel& fn : m_.fns)
      for (FnModel::Ref& r : fn.refs) fix(&r.target);
    for (int& t : m_.impl_target) fix(&t);
  }

  void SwapFns(size_t a, size_t b) {
    std::swap(m_.fns[a], m_.fns[b]);
    auto fix = [&](int* t) {
      if (*t == static_cast<int>(a)) *t = static_cast<int>(b);
      else if (*t == static_cast<int>(b)) *t = static_cast<int>(a);
    };
    for (FnModel& fn : m_.fns)
      for (FnModel::Ref& r : fn.refs) fix(&r.target);
    for (int& t : m_.impl_target) fix(&t);
  }

  void MutateSet() {
    size_t n = m_.fns.size();
    switch (Below(5)) {
      case 0:  // a copy of a function, referenced from somewhere
        if (n < kMaxSetBlobs) {
          m_.fns.push_back(m_.fns[Below(static_cast<uint32_t>(n))]);
          AddRef(&AnyFn(), static_cast<int>(n));
        }
        return;
      case 1:
        if (n > 1) RemoveFn(1 + Below(static_cast<uint32_t>(n - 1)));
        return;
      case 2:
        if (n > 1) SwapFns(0, 1 + Below(static_cast<uint32_t>(n - 1)));
        return;
      case 3: {  // impls: a method for a type the set uses
        if (!m_.impls.empty() && OneIn(3)) {
          size_t k = Below(static_cast<uint32_t>(m_.impls.size()));
          if (OneIn(2)) {
            m_.impls.erase(m_.impls.begin() + static_cast<ptrdiff_t>(k));
            m_.impl_target.erase(m_.impl_target.begin() + static_cast<ptrdiff_t>(k));
          } else {
            m_.impl_target[k] = static_cast<int>(Below(static_cast<uint32_t>(n)));
          }
          return;
        }
        const FnModel& with = AnyFn();
        if (with.body.types.empty() || m_.impls.size() >= kMaxSetImpls) return;
        ImplEntry e;
        e.type_schema = shapex::engine::Sha256(shapex::engine::EncodeSchema(
            with.body.types[Below(static_cast<uint32_t>(with.body.types.size()))]));
        e.method = AnyName();
        m_.impls.push_back(e);
        m_.impl_target.push_back(static_cast<int>(Below(static_cast<uint32_t>(n))));
        return;
      }
      default:
        m_.arg_seed = static_cast<uint8_t>(rng_());
    }
  }

  void MutateOnce() {
    if (m_.fns.empty()) return;
    FnModel& fn = OneIn(2) ? m_.fns[0] : AnyFn();
    switch (Below(16)) {
      case 0: case 1: case 2: case 3: case 4: case 5:
        if (fn.insns_ok) MutateCode(&fn);
        else MutateRawCode(&fn);
        return;
      case 6: case 7: MutateConstant(&fn.body); return;
      case 8: MutateRefs(&fn); return;
      case 9: MutateNames(&fn.body); return;
      case 10: MutateTypes(&fn); return;
      case 11: case 12: MutateHeader(&fn); return;
      case 13: case 14: MutateSet(); return;
      default:  // debug info: not hashed, but the linker reads it
        if (OneIn(2)) fn.debug.name = AnyName();
        else if (OneIn(2)) fn.debug.param_names.push_back("extra");
        else if (fn.insns_ok && !fn.insns.empty()) fn.insns[Below(static_cast<uint32_t>(fn.insns.size()))].line = rng_();
    }
  }

  SetModel& m_;
  std::mt19937 rng_;
};

}  // namespace shapex_fuzz

#endif  // SHAPEX_TOOLS_FUZZ_BLOB_SET_MUTATOR_H_
