// The expression and pattern half of CodeGen (see codegen.h).
#include <cstdint>

#include <fmt/format.h>

#include "codegen.h"
#include "shapex/engine/natives.h"

namespace shapex::engine {
namespace {

bool SmallInt(const Expr& e, int64_t* v) {
  if (e.kind != ExprKind::kInt) return false;
  if (e.negative_literal) {
    if (e.int_value > 128) return false;
    *v = -static_cast<int64_t>(e.int_value);
    return true;
  }
  if (e.int_value > 127) return false;
  *v = static_cast<int64_t>(e.int_value);
  return true;
}

Op ArithOp(Tok t) {
  switch (t) {
    case Tok::kPlus: return Op::kADD;
    case Tok::kMinus: return Op::kSUB;
    case Tok::kStar: return Op::kMUL;
    case Tok::kSlash: return Op::kDIV;
    case Tok::kPercent: return Op::kMOD;
    case Tok::kStarStar: return Op::kPOW;
    case Tok::kAmp: return Op::kBAND;
    case Tok::kPipe: return Op::kBOR;
    case Tok::kCaret: return Op::kBXOR;
    case Tok::kShl: return Op::kSHL;
    default: return Op::kSHR;
  }
}

bool IsComparison(Tok t) {
  return t == Tok::kEq || t == Tok::kNe || t == Tok::kLt || t == Tok::kLe || t == Tok::kGt ||
         t == Tok::kGe;
}

}  // namespace

int64_t CodeGen::IntLiteral(const Expr& e) {
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  if (e.negative_literal) {
    if (e.int_value > kMax + 1) Fail("integer literal out of range", e.pos);
    return e.int_value == kMax + 1 ? INT64_MIN : -static_cast<int64_t>(e.int_value);
  }
  if (e.int_value > kMax) Fail("integer literal out of range", e.pos);
  return static_cast<int64_t>(e.int_value);
}

void CodeGen::LoadInt(int dst, int64_t v) {
  if (v >= code::kMinSBx && v <= code::kMaxSBx)
    Emit(code::AsBx(Op::kLOADI, dst, static_cast<int32_t>(v)));
  else
    LoadConstK(dst, ConstInt(v));
}

bool CodeGen::IsModuleName(const Expr& e) const {
  return e.kind == ExprKind::kIdent && e.decl == nullptr && e.name == "math" &&
         functions_.count("math") == 0;
}

bool CodeGen::IsSafeDirectTarget(const Expr& e) const {
  // Calls may use their destination as the callee slot before evaluating the arguments.
  return e.kind != ExprKind::kCall && e.kind != ExprKind::kMethodCall;
}

int CodeGen::ExprAny(const Expr& e) {
  if (e.kind == ExprKind::kIdent || e.kind == ExprKind::kSelf) {
    int r = VarRegister(e.decl);
    if (r >= 0) return r;
  }
  int t = AllocReg(e.pos);
  ExprTo(e, t);
  return t;
}

void CodeGen::ExprEffect(const Expr& e) {
  int saved = fs_->free_reg;
  ExprTo(e, AllocReg(e.pos));
  fs_->free_reg = saved;
}

void CodeGen::ExprTo(const Expr& e, int dst) {
  SetLine(e.pos);
  int saved = fs_->free_reg;
  switch (e.kind) {
    case ExprKind::kInt: LoadInt(dst, IntLiteral(e)); break;
    case ExprKind::kNumber: LoadConstK(dst, ConstNumber(e.number_value)); break;
    case ExprKind::kString: LoadConstK(dst, ConstString(e.name)); break;
    case ExprKind::kFString: FStringTo(e, dst); break;
    case ExprKind::kBool: EmitABC(Op::kLOADBOOL, dst, e.flag ? 1 : 0, 0); break;
    case ExprKind::kNone: EmitABC(Op::kLOADNONE, dst, 0, 0); break;
    case ExprKind::kIdent:
    case ExprKind::kSelf: LoadIdent(e, dst); break;
    case ExprKind::kArray: ListTo(Op::kNEWARRAY, e.items, 1, dst, e.pos); break;
    case ExprKind::kMap: ListTo(Op::kNEWMAP, e.items, 2, dst, e.pos); break;
    case ExprKind::kStructLit: StructLitTo(e, dst); break;
    case ExprKind::kUnary: {
      if (e.op == Tok::kMinus && e.a->kind == ExprKind::kNumber) {
        LoadConstK(dst, ConstNumber(-e.a->number_value));
        break;
      }
      if (e.op == Tok::kTilde && e.a->kind == ExprKind::kInt) {  // ~5 folds to -6
        LoadInt(dst, ~IntLiteral(*e.a));
        break;
      }
      int r = ExprAny(*e.a);
      SetLine(e.pos);
      Op op = e.op == Tok::kMinus ? Op::kNEG : e.op == Tok::kTilde ? Op::kBNOT : Op::kNOT;
      EmitABC(op, dst, r, 0);
      break;
    }
    case ExprKind::kBinary: BinaryTo(e, dst); break;
    case ExprKind::kAnd:
    case ExprKind::kOr: {
      std::vector<size_t> falses;
      CondJump(e, false, &falses);
      EmitABC(Op::kLOADBOOL, dst, 1, 0);
      size_t end = EmitJump();
      for (size_t j : falses) PatchJump(j);
      EmitABC(Op::kLOADBOOL, dst, 0, 0);
      PatchJump(end);
      break;
    }
    case ExprKind::kRange: {
      int base = AllocRegs(2, e.pos);
      ExprTo(*e.a, base);
      ExprTo(*e.b, base + 1);
      SetLine(e.pos);
      EmitABC(Op::kNEWRANGE, dst, base, e.flag ? 1 : 0);
      break;
    }
    case ExprKind::kCall: CallTo(e, dst); break;
    case ExprKind::kMethodCall: MethodCallTo(e, dst); break;
    case ExprKind::kField: {
      if (IsModuleName(*e.a)) {
        static const std::pair<const char*, double> kConstants[] = {
            {"pi", 3.14159265358979323846}, {"e", 2.71828182845904523536},
            {"inf", __builtin_inf()}, {"nan", __builtin_nan("")}};
        for (auto& [name, value] : kConstants)
          if (e.name == name) {
            LoadConstK(dst, ConstNumber(value));
            fs_->free_reg = saved;
            return;
          }
        const NativeDef* def = FindNative("math." + e.name);
        if (def == nullptr) Fail("unknown name 'math." + e.name + "'", e.pos);
        EmitABx(Op::kNATIVE, dst, NativeRef("math." + e.name, e.pos));
        break;
      }
      int r = ExprAny(*e.a);
      SetLine(e.pos);
      EmitABC(Op::kGETFIELD, dst, r, 0);
      Emit(Symbol(e.name));
      break;
    }
    case ExprKind::kIndex: {
      int r = ExprAny(*e.a);
      if (e.items.size() == 2) {
        int base = AllocRegs(2, e.pos);
        ExprTo(*e.items[0], base);
        ExprTo(*e.items[1], base + 1);
        SetLine(e.pos);
        EmitABC(Op::kGETINDEX2, dst, r, base);
      } else {
        int i = ExprAny(*e.items[0]);
        SetLine(e.pos);
        EmitABC(Op::kGETINDEX, dst, r, i);
      }
      break;
    }
    case ExprKind::kPath: PathTo(e, dst, nullptr); break;
    case ExprKind::kSome:
    case ExprKind::kOk:
    case ExprKind::kErr: {
      int base = AllocReg(e.pos);
      ExprTo(*e.a, base);
      uint32_t id = e.kind == ExprKind::kSome ? (kOptionEnumId << 16 | kSomeVariant)
                    : e.kind == ExprKind::kOk ? (kResultEnumId << 16 | kOkVariant)
                                              : (kResultEnumId << 16 | kErrVariant);
      SetLine(e.pos);
      EmitABC(Op::kNEWENUM, dst, base, 0);
      Emit(id);
      break;
    }
    case ExprKind::kClosure: ClosureTo(e, dst); break;
    case ExprKind::kIf: IfTo(e, dst); break;
    case ExprKind::kBlockExpr: BlockTo(*e.block, dst); break;
    case ExprKind::kMatch: MatchTo(e, dst); break;
    case ExprKind::kTry: {
      int r = ExprAny(*e.a);
      SetLine(e.pos);
      EmitABC(Op::kTRY, dst, r, 0);
      break;
    }
  }
  fs_->free_reg = saved;
}

void CodeGen::LoadIdent(const Expr& e, int dst) {
  const Decl* d = e.decl;
  if (d != nullptr) {
    if (d->is_global) {
      EmitABx(Op::kGETGLOBAL, dst, d->global_index);
      return;
    }
    auto it = fs_->regs.find(d);
    if (it != fs_->regs.end()) {
      if (d->captured) EmitABC(Op::kGETCELL, dst, it->second, 0);
      else if (it->second != dst) EmitABC(Op::kMOVE, dst, it->second, 0);
      return;
    }
    EmitABC(Op::kGETUPVAL, dst, CaptureIndex(fs_, d), 0);
    return;
  }
  auto fn = functions_.find(e.name);
  if (fn != functions_.end()) {
    EmitABx(Op::kFUNC, dst, FnRef(fn->second));
    return;
  }
  const NativeDef* native = FindNative(e.name);
  if (native != nullptr && !native->method && e.name.find('.') == std::string::npos) {
    EmitABx(Op::kNATIVE, dst, NativeRef(e.name, e.pos));
    return;
  }
  if (e.name == "math") Fail("module 'math' is not a value (use math.NAME)", e.pos);
  int index;
  if (FindStruct(e.name, &index) || FindEnum(e.name, &index))
    Fail("type '" + e.name + "' is not a value", e.pos);
  Fail("undefined variable '" + e.name + "'", e.pos);
}

void CodeGen::ArithTo(Tok op, const Expr& a, const Expr& b, int dst, Pos pos) {
  int64_t imm;
  if ((op == Tok::kPlus || op == Tok::kMinus) && SmallInt(b, &imm) && imm != -128) {
    int ra = ExprAny(a);
    SetLine(pos);
    int64_t v = op == Tok::kPlus ? imm : -imm;
    EmitABC(Op::kADDI, dst, ra, static_cast<uint32_t>(v) & 0xff);
    return;
  }
  // A literal right operand of + - * / % comes straight from the constant table.
  Op kop = op == Tok::kPlus ? Op::kADDK : op == Tok::kMinus ? Op::kSUBK
           : op == Tok::kStar ? Op::kMULK : op == Tok::kSlash ? Op::kDIVK
           : op == Tok::kPercent ? Op::kMODK : Op::kMOVE;
  if (kop != Op::kMOVE) {
    int64_t k = -1;
    if (b.kind == ExprKind::kInt) k = ConstInt(IntLiteral(b));
    else if (b.kind == ExprKind::kNumber) k = ConstNumber(b.number_value);
    else if (b.kind == ExprKind::kUnary && b.op == Tok::kMinus && b.a->kind == ExprKind::kNumber)
      k = ConstNumber(-b.a->number_value);
    if (k >= 0 && k <= 255) {
      int ra = ExprAny(a);
      SetLine(pos);
      EmitABC(kop, dst, ra, static_cast<int>(k));
      return;
    }
  }
  int ra = ExprAny(a);
  int rb = ExprAny(b);
  SetLine(pos);
  EmitABC(ArithOp(op), dst, ra, rb);
}

void CodeGen::CompoundUpdate(Tok arith, const Expr& rhs, int cur, int val, Pos pos) {
  int r = ExprAny(rhs);
  SetLine(pos);
  EmitABC(ArithOp(arith), val, cur, r);
}

void CodeGen::BinaryTo(const Expr& e, int dst) {
  if (!IsComparison(e.op)) return ArithTo(e.op, *e.a, *e.b, dst, e.pos);
  int ra = ExprAny(*e.a);
  int rb = ExprAny(*e.b);
  SetLine(e.pos);
  switch (e.op) {
    case Tok::kEq: EmitABC(Op::kEQ, dst, ra, rb); break;
    case Tok::kNe: EmitABC(Op::kNE, dst, ra, rb); break;
    case Tok::kLt: EmitABC(Op::kLT, dst, ra, rb); break;
    case Tok::kLe: EmitABC(Op::kLE, dst, ra, rb); break;
    case Tok::kGt: EmitABC(Op::kLT, dst, rb, ra); break;
    default: EmitABC(Op::kLE, dst, rb, ra); break;
  }
}

// Emits code that jumps (patch sites appended to *jumps) when e's truth equals jump_if.
void CodeGen::CondJump(const Expr& e, bool jump_if, std::vector<size_t>* jumps) {
  SetLine(e.pos);
  int saved = fs_->free_reg;
  if (e.kind == ExprKind::kBool) {
    if (e.flag == jump_if) jumps->push_back(EmitJump());
    return;
  }
  if (e.kind == ExprKind::kUnary && e.op == Tok::kNot) {
    if (e.a->kind == ExprKind::kBinary || e.a->kind == ExprKind::kAnd ||
        e.a->kind == ExprKind::kOr || e.a->kind == ExprKind::kBool ||
        (e.a->kind == ExprKind::kUnary && e.a->op == Tok::kNot)) {
      CondJump(*e.a, !jump_if, jumps);
      return;
    }
    int r = ExprAny(*e.a);
    SetLine(e.pos);
    EmitABC(Op::kTEST, r, 1, jump_if ? 0 : 1);
    jumps->push_back(EmitJump());
    fs_->free_reg = saved;
    return;
  }
  if (e.kind == ExprKind::kAnd || e.kind == ExprKind::kOr) {
    bool is_and = e.kind == ExprKind::kAnd;
    auto operand = [&](const Expr& x, bool jif, std::vector<size_t>* js) {
      if (x.kind == ExprKind::kBinary || x.kind == ExprKind::kAnd || x.kind == ExprKind::kOr ||
          x.kind == ExprKind::kBool || (x.kind == ExprKind::kUnary && x.op == Tok::kNot)) {
        CondJump(x, jif, js);
        return;
      }
      int s = fs_->free_reg;
      int r = ExprAny(x);
      EmitABC(Op::kTEST, r, 1, jif ? 1 : 0);
      js->push_back(EmitJump());
      fs_->free_reg = s;
    };
    if (is_and != jump_if) {  // and/false or or/true: either operand decides
      operand(*e.a, jump_if, jumps);
      operand(*e.b, jump_if, jumps);
    } else {
      std::vector<size_t> local;
      operand(*e.a, !jump_if, &local);
      operand(*e.b, jump_if, jumps);
      for (size_t j : local) PatchJump(j);
    }
    return;
  }
  if (e.kind == ExprKind::kBinary && IsComparison(e.op)) {
    int64_t imm;
    if (SmallInt(*e.b, &imm)) {
      int ra = ExprAny(*e.a);
      uint32_t b = static_cast<uint32_t>(imm) & 0xff;
      SetLine(e.pos);
      switch (e.op) {
        case Tok::kEq: EmitABC(Op::kTEQI, ra, b, jump_if); break;
        case Tok::kNe: EmitABC(Op::kTEQI, ra, b, !jump_if); break;
        case Tok::kLt: EmitABC(Op::kTLTI, ra, b, jump_if); break;
        case Tok::kLe: EmitABC(Op::kTLEI, ra, b, jump_if); break;
        case Tok::kGt: EmitABC(Op::kTGTI, ra, b, jump_if); break;
        default: EmitABC(Op::kTGEI, ra, b, jump_if); break;
      }
    } else {
      int ra = ExprAny(*e.a);
      int rb = ExprAny(*e.b);
      SetLine(e.pos);
      switch (e.op) {
        case Tok::kEq: EmitABC(Op::kTEQ, ra, rb, jump_if); break;
        case Tok::kNe: EmitABC(Op::kTEQ, ra, rb, !jump_if); break;
        case Tok::kLt: EmitABC(Op::kTLT, ra, rb, jump_if); break;
        case Tok::kLe: EmitABC(Op::kTLE, ra, rb, jump_if); break;
        case Tok::kGt: EmitABC(Op::kTLT, rb, ra, jump_if); break;
        default: EmitABC(Op::kTLE, rb, ra, jump_if); break;
      }
    }
    jumps->push_back(EmitJump());
    fs_->free_reg = saved;
    return;
  }
  int r = ExprAny(e);
  SetLine(e.pos);
  EmitABC(Op::kTEST, r, 0, jump_if ? 1 : 0);
  jumps->push_back(EmitJump());
  fs_->free_reg = saved;
}

void CodeGen::IfTo(const Expr& e, int dst) {
  std::vector<size_t> else_jumps;
  CondJump(*e.a, false, &else_jumps);
  BlockTo(*e.block, dst);
  size_t end = EmitJump();
  for (size_t j : else_jumps) PatchJump(j);
  if (e.else_expr) ExprTo(*e.else_expr, dst);
  else EmitABC(Op::kLOADNONE, dst, 0, 0);
  PatchJump(end);
}

namespace {
bool IsBoundLocal(const std::unordered_map<const Decl*, int>& regs, int reg) {
  for (auto& [decl, r] : regs)
    if (r == reg) return true;
  return false;
}
}  // namespace

// A call's callee slot: the destination itself when it is the newest temporary (saves a MOVE),
// never a variable's register (the callee would overwrite it before the arguments read it).
int CodeGen::CallBase(int dst, Pos pos) {
  if (dst == fs_->free_reg - 1 && !IsBoundLocal(fs_->regs, dst)) return dst;
  return AllocReg(pos);
}

void CodeGen::CallTo(const Expr& e, int dst) {
  const Expr& callee = *e.a;
  if (callee.kind == ExprKind::kPath) return PathTo(callee, dst, &e.items);
  if (e.items.size() > 200) Fail("too many arguments", e.pos);
  int base = CallBase(dst, e.pos);
  ExprTo(callee, base);
  for (auto& arg : e.items) ExprTo(*arg, AllocReg(arg->pos));
  SetLine(e.pos);
  EmitABC(Op::kCALL, base, static_cast<int>(e.items.size()), 0);
  if (base != dst) EmitABC(Op::kMOVE, dst, base, 0);
}

void CodeGen::MethodCallTo(const Expr& e, int dst) {
  if (e.items.size() > 200) Fail("too many arguments", e.pos);
  int base = CallBase(dst, e.pos);
  if (IsModuleName(*e.a)) {
    EmitABx(Op::kNATIVE, base, NativeRef("math." + e.name, e.pos));
    for (auto& arg : e.items) ExprTo(*arg, AllocReg(arg->pos));
    SetLine(e.pos);
    EmitABC(Op::kCALL, base, static_cast<int>(e.items.size()), 0);
  } else {
    ExprTo(*e.a, AllocReg(e.pos));
    for (auto& arg : e.items) ExprTo(*arg, AllocReg(arg->pos));
    SetLine(e.pos);
    EmitABC(Op::kINVOKE, base, static_cast<int>(e.items.size()), 0);
    Emit(Symbol(e.name));
  }
  if (base != dst) EmitABC(Op::kMOVE, dst, base, 0);
}

void CodeGen::PathTo(const Expr& e, int dst, const std::vector<ExprPtr>* args) {
  const std::string& type = e.name;
  const std::string& member = e.name2;
  size_t nargs = args ? args->size() : 0;
  if (nargs > 200) Fail("too many arguments", e.pos);
  auto call_loaded = [&](auto load) {
    int base = CallBase(dst, e.pos);
    load(base);
    if (args == nullptr) {
      if (base != dst) EmitABC(Op::kMOVE, dst, base, 0);
      return;
    }
    for (auto& arg : *args) ExprTo(*arg, AllocReg(arg->pos));
    SetLine(e.pos);
    EmitABC(Op::kCALL, base, static_cast<int>(nargs), 0);
    if (base != dst) EmitABC(Op::kMOVE, dst, base, 0);
  };
  auto st = statics_.find(type + "::" + member);
  if (st != statics_.end()) {
    uint32_t ref = FnRef(st->second);
    call_loaded([&](int base) { EmitABx(Op::kFUNC, base, ref); });
    return;
  }
  int index;
  if (const EnumType* et = FindEnum(type, &index)) {
    for (uint32_t v = 0; v < et->variant_names.size(); ++v) {
      if (et->variant_names[v] != member) continue;
      uint32_t arity = et->variant_arity[v];
      if ((args == nullptr && arity != 0) || (args != nullptr && nargs != arity))
        Fail(fmt::format("{}::{} takes {} value{}", type, member, arity, arity == 1 ? "" : "s"),
             e.pos);
      int base = fs_->free_reg;
      for (size_t i = 0; i < nargs; ++i) ExprTo(*(*args)[i], AllocReg(e.pos));
      SetLine(e.pos);
      EmitABC(Op::kNEWENUM, dst, base, 0);
      Emit(static_cast<uint32_t>(index) << 16 | v);
      return;
    }
    Fail("no variant '" + member + "' in enum " + type, e.pos);
  }
  if (type == "Vec" || type == "Matrix") {
    std::string q = type + "." + member;
    const NativeDef* def = FindNative(q);
    if (def == nullptr || def->method) Fail("unknown function '" + type + "::" + member + "'", e.pos);
    uint32_t ref = NativeRef(q, e.pos);
    call_loaded([&](int base) { EmitABx(Op::kNATIVE, base, ref); });
    return;
  }
  if (FindStruct(type, &index)) Fail("no function '" + member + "' on type " + type, e.pos);
  Fail("unknown type '" + type + "'", e.pos);
}

void CodeGen::ClosureTo(const Expr& e, int dst) {
  uint32_t idx = NewProto();
  CompileFunction(e.fn.get(), idx, fs_);
  SetLine(e.pos);
  EmitABx(Op::kCLOSURE, dst, FnRef(idx));
}

void CodeGen::StructLitTo(const Expr& e, int dst) {
  int index;
  const StructType* st = FindStruct(e.name, &index);
  if (st == nullptr) Fail("unknown type '" + e.name + "'", e.pos);
  size_t n = st->field_names.size();
  int base = AllocRegs(static_cast<int>(n), e.pos);
  std::vector<bool> seen(n, false);
  for (size_t i = 0; i < e.items.size(); ++i) {
    const std::string& f = e.field_names[i];
    size_t fi = 0;
    while (fi < n && st->field_names[fi] != f) ++fi;
    if (fi == n) Fail("unknown field '" + f + "' on " + e.name, e.field_pos[i]);
    if (seen[fi]) Fail("duplicate field '" + f + "' in " + e.name + " literal", e.field_pos[i]);
    seen[fi] = true;
    ExprTo(*e.items[i], base + static_cast<int>(fi));
  }
  for (size_t fi = 0; fi < n; ++fi)
    if (!seen[fi]) Fail("missing field '" + st->field_names[fi] + "' in " + e.name + " literal", e.pos);
  SetLine(e.pos);
  EmitABC(Op::kNEWSTRUCT, dst, base, 0);
  Emit(static_cast<uint32_t>(index));
}

void CodeGen::ListTo(Op op, const std::vector<ExprPtr>& items, int per, int dst, Pos pos) {
  constexpr size_t kChunk = 48;
  size_t n = items.size() / per;
  size_t first = n < kChunk ? n : kChunk;
  int target = n > kChunk ? AllocReg(pos) : dst;
  int base = AllocRegs(static_cast<int>(first * per), pos);
  for (size_t i = 0; i < first * per; ++i) ExprTo(*items[i], base + static_cast<int>(i));
  SetLine(pos);
  EmitABC(op, target, base, static_cast<int>(first));
  fs_->free_reg = base;
  for (size_t i = first; i < n; ++i) {
    int saved = fs_->free_reg;
    if (per == 1) {
      int r = ExprAny(*items[i]);
      EmitABC(Op::kAPPEND, target, r, 0);
    } else {
      int k = ExprAny(*items[2 * i]);
      int v = ExprAny(*items[2 * i + 1]);
      EmitABC(Op::kSETINDEX, target, k, v);
    }
    fs_->free_reg = saved;
  }
  if (target != dst) EmitABC(Op::kMOVE, dst, target, 0);
}

void CodeGen::FStringTo(const Expr& e, int dst) {
  size_t n = e.parts.size();
  if (n == 0) {
    LoadConstK(dst, ConstString(""));
    return;
  }
  if (n > 200) Fail("f-string has too many parts", e.pos);
  // A hole with a format spec: FORMAT turns its value into the formatted String in place.
  auto format = [&](const FStringPart& part, int reg) {
    if (part.spec.empty()) return;
    SetLine(e.pos);
    EmitABx(Op::kFORMAT, reg, ConstString(part.spec));
  };
  if (n == 1 && e.parts[0].is_expr && !e.parts[0].spec.empty()) {  // f"{x:.3f}" alone
    ExprTo(*e.fstring_exprs[0], dst);
    format(e.parts[0], dst);
    return;
  }
  int base = AllocRegs(static_cast<int>(n), e.pos);
  for (size_t i = 0; i < n; ++i) {
    int reg = base + static_cast<int>(i);
    if (e.parts[i].is_expr) {
      ExprTo(*e.fstring_exprs[i], reg);
      format(e.parts[i], reg);
    } else {
      LoadConstK(reg, ConstString(e.parts[i].text));
    }
  }
  SetLine(e.pos);
  EmitABC(Op::kBUILDSTR, dst, base, static_cast<int>(n));
}

void CodeGen::MatchTo(const Expr& e, int dst) {
  int subject = ExprAny(*e.a);
  std::vector<size_t> ends;
  for (const MatchArm& arm : e.arms) {
    int saved = fs_->free_reg;
    SetLine(arm.pos);
    std::vector<size_t> fails;
    PatternTest(*arm.pattern, subject, &fails);
    if (arm.guard) CondJump(*arm.guard, false, &fails);
    ExprTo(*arm.body, dst);
    ends.push_back(EmitJump());
    for (size_t j : fails) PatchJump(j);
    fs_->free_reg = saved;
  }
  SetLine(e.pos);
  EmitABC(Op::kNOMATCH, subject, 0, 0);
  for (size_t j : ends) PatchJump(j);
}

void CodeGen::PatternTest(const Pattern& p, int reg, std::vector<size_t>* fails) {
  SetLine(p.pos);
  auto sub_at = [&](const Pattern& sub, auto load) {
    if (sub.kind == PatternKind::kWildcard) return;
    int t = AllocReg(sub.pos);
    load(t);
    PatternTest(sub, t, fails);
  };
  switch (p.kind) {
    case PatternKind::kWildcard: return;
    case PatternKind::kBind: {
      int r = AllocReg(p.pos);
      EmitABC(Op::kMOVE, r, reg, 0);
      if (p.decl->captured) EmitABC(Op::kNEWCELL, r, 0, 0);
      BindLocal(p.decl.get(), r);
      return;
    }
    case PatternKind::kLiteral:
    case PatternKind::kNone: {
      int t = AllocReg(p.pos);
      if (p.kind == PatternKind::kNone) EmitABC(Op::kLOADNONE, t, 0, 0);
      else ExprTo(*p.literal, t);
      EmitABC(Op::kTEQ, reg, t, 0);
      fails->push_back(EmitJump());
      return;
    }
    case PatternKind::kSome:
    case PatternKind::kOk:
    case PatternKind::kErr:
    case PatternKind::kVariant: {
      uint32_t id;
      uint32_t arity = 1;
      if (p.kind == PatternKind::kSome) id = kOptionEnumId << 16 | kSomeVariant;
      else if (p.kind == PatternKind::kOk) id = kResultEnumId << 16 | kOkVariant;
      else if (p.kind == PatternKind::kErr) id = kResultEnumId << 16 | kErrVariant;
      else {
        int index;
        const EnumType* et = FindEnum(p.name2, &index);
        if (et == nullptr) Fail("unknown enum '" + p.name2 + "'", p.pos);
        uint32_t v = 0;
        while (v < et->variant_names.size() && et->variant_names[v] != p.name) ++v;
        if (v == et->variant_names.size())
          Fail("no variant '" + p.name + "' in enum " + p.name2, p.pos);
        arity = et->variant_arity[v];
        if (p.subs.size() != arity)
          Fail(fmt::format("pattern {}::{} needs {} value{}", p.name2, p.name, arity,
                           arity == 1 ? "" : "s"),
               p.pos);
        id = static_cast<uint32_t>(index) << 16 | v;
      }
      EmitABC(Op::kMATCHENUM, reg, 0, 0);
      Emit(id);
      fails->push_back(EmitJump());
      for (size_t i = 0; i < p.subs.size(); ++i)
        sub_at(*p.subs[i], [&](int t) { EmitABC(Op::kGETPAYLOAD, t, reg, static_cast<int>(i)); });
      return;
    }
    case PatternKind::kStruct: {
      int index;
      const StructType* st = FindStruct(p.name, &index);
      if (st == nullptr) Fail("unknown type '" + p.name + "'", p.pos);
      EmitABC(Op::kMATCHSTRUCT, reg, 0, 0);
      Emit(static_cast<uint32_t>(index));
      fails->push_back(EmitJump());
      for (size_t i = 0; i < p.subs.size(); ++i) {
        bool known = false;
        for (auto& f : st->field_names) known |= f == p.field_names[i];
        if (!known) Fail("unknown field '" + p.field_names[i] + "' on " + p.name, p.subs[i]->pos);
        sub_at(*p.subs[i], [&](int t) {
          EmitABC(Op::kGETFIELD, t, reg, 0);
          Emit(Symbol(p.field_names[i]));
        });
      }
      return;
    }
    case PatternKind::kArray: {
      if (p.subs.size() > 255) Fail("array pattern too long", p.pos);
      EmitABC(Op::kMATCHARRAY, reg, static_cast<int>(p.subs.size()), 0);
      fails->push_back(EmitJump());
      for (size_t i = 0; i < p.subs.size(); ++i)
        sub_at(*p.subs[i], [&](int t) {
          Emit(code::AsBx(Op::kLOADI, t, static_cast<int32_t>(i)));
          EmitABC(Op::kGETINDEX, t, reg, t);
        });
      return;
    }
    case PatternKind::kAlt: {
      std::vector<size_t> success;
      for (size_t i = 0; i < p.subs.size(); ++i) {
        bool last = i + 1 == p.subs.size();
        int saved = fs_->free_reg;
        if (last) {
          PatternTest(*p.subs[i], reg, fails);
        } else {
          std::vector<size_t> local;
          PatternTest(*p.subs[i], reg, &local);
          success.push_back(EmitJump());
          for (size_t j : local) PatchJump(j);
        }
        fs_->free_reg = saved;
      }
      for (size_t j : success) PatchJump(j);
      return;
    }
  }
}

}  // namespace shapex::engine
