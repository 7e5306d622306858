// Compiler driver and the statement half of CodeGen. See codegen.h for the register discipline.
#include "shapex/engine/compiler.h"

#include <cstring>

#include <fmt/format.h>

#include "codegen.h"
#include "parser.h"
#include "resolver.h"
#include "shapex/engine/natives.h"

namespace shapex::engine {

// ---------------- declarations ----------------

void CodeGen::Run() {
  DeclareTypes();
  // Give every top-level and impl function its proto index first so calls can refer to
  // functions declared later in the file.
  std::vector<std::pair<FunctionDecl*, uint32_t>> order;
  for (auto& fn : m_->functions) {
    uint32_t idx = NewProto();
    order.push_back({fn.get(), idx});
    if (fn->impl_type.empty()) {
      if (!functions_.emplace(fn->name, idx).second)
        Fail("function '" + fn->name + "' is already defined", fn->pos);
      p_->functions.push_back({fn->name, idx});
      if (fn->name == "main") p_->main = static_cast<int32_t>(idx);
      continue;
    }
    int si = -1, ei = -1;
    StructType* st = const_cast<StructType*>(FindStruct(fn->impl_type, &si));
    EnumType* et = st ? nullptr : const_cast<EnumType*>(FindEnum(fn->impl_type, &ei));
    if (st == nullptr && et == nullptr) Fail("unknown type '" + fn->impl_type + "'", fn->pos);
    std::string key = fn->impl_type + "::" + fn->name;
    if (!statics_.emplace(key, idx).second)
      Fail("function '" + key + "' is already defined", fn->pos);
    if (fn->is_method) {
      auto& methods = st ? st->methods : et->methods;
      methods.push_back({Symbol(fn->name), idx});
    }
  }
  for (auto& [fn, idx] : order) CompileFunction(fn, idx, nullptr);
  p_->script = NewProto();
  CompileFunction(m_->script.get(), p_->script, nullptr);
}

uint32_t CodeGen::NewProto() {
  p_->protos.push_back(std::make_unique<Proto>());
  p_->protos.back()->index = static_cast<uint32_t>(p_->protos.size() - 1);
  return p_->protos.back()->index;
}

uint32_t CodeGen::Symbol(const std::string& name) {
  auto it = symbols_.find(name);
  if (it != symbols_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(p_->symbols.size());
  p_->symbols.push_back(name);
  symbols_.emplace(name, id);
  return id;
}

void CodeGen::DeclareTypes() {
  for (auto& sd : m_->structs) {
    int dummy;
    if (FindStruct(sd.name, &dummy) || FindEnum(sd.name, &dummy))
      Fail("type '" + sd.name + "' is already defined", sd.pos);
    auto st = std::make_unique<StructType>();
    st->name = sd.name;
    for (auto& f : sd.fields) {
      for (auto& existing : st->field_names)
        if (existing == f) Fail("duplicate field '" + f + "' in type " + sd.name, sd.pos);
      st->field_names.push_back(f);
      st->field_symbols.push_back(Symbol(f));
    }
    p_->structs.push_back(std::move(st));
  }
  for (auto& ed : m_->enums) {
    int dummy;
    if (FindStruct(ed.name, &dummy) || FindEnum(ed.name, &dummy))
      Fail("type '" + ed.name + "' is already defined", ed.pos);
    auto et = std::make_unique<EnumType>();
    et->name = ed.name;
    for (size_t i = 0; i < ed.variants.size(); ++i) {
      for (auto& existing : et->variant_names)
        if (existing == ed.variants[i])
          Fail("duplicate variant '" + existing + "' in enum " + ed.name, ed.pos);
      et->variant_names.push_back(ed.variants[i]);
      et->variant_arity.push_back(static_cast<uint32_t>(ed.payloads[i].size()));
    }
    p_->enums.push_back(std::move(et));
  }
  // Field and payload annotations must name known types.
  for (auto& sd : m_->structs)
    for (auto& t : sd.field_types) ResolveType(t);
  for (auto& ed : m_->enums)
    for (auto& payload : ed.payloads)
      for (auto& t : payload) ResolveType(t);
}

const StructType* CodeGen::FindStruct(const std::string& name, int* index) const {
  for (size_t i = 0; i < p_->structs.size(); ++i)
    if (p_->structs[i]->name == name) {
      *index = static_cast<int>(i);
      return p_->structs[i].get();
    }
  return nullptr;
}

const EnumType* CodeGen::FindEnum(const std::string& name, int* index) const {
  for (size_t i = 0; i < p_->enums.size(); ++i)
    if (p_->enums[i]->name == name) {
      *index = static_cast<int>(i);
      return p_->enums[i].get();
    }
  return nullptr;
}

TypeSpec CodeGen::ResolveType(const TypeExpr& t) {
  using K = TypeSpec::Kind;
  static const std::pair<const char*, K> kSimple[] = {
      {"any", K::kAny},       {"int", K::kInt},         {"number", K::kNumber},
      {"bool", K::kBool},     {"string", K::kString},   {"array", K::kArray},
      {"map", K::kMap},       {"function", K::kFunction}, {"Matrix", K::kMatrix},
      {"range", K::kRange},   {"None", K::kNone}};
  TypeSpec spec;
  auto want_args = [&](size_t n) {
    if (t.args.size() != n)
      Fail(fmt::format("type '{}' takes {} type argument{}", t.name, n, n == 1 ? "" : "s"),
           t.pos);
  };
  for (auto& [name, kind] : kSimple) {
    if (t.name == name) {
      want_args(0);
      spec.kind = kind;
      return spec;
    }
  }
  if (t.name == "Option" || t.name == "Result") {
    want_args(t.name == "Option" ? 1 : 2);
    spec.kind = t.name == "Option" ? K::kOption : K::kResult;
    for (auto& a : t.args) spec.args.push_back(ResolveType(a));
    return spec;
  }
  if (t.name == "Vec") {
    want_args(1);
    spec.kind = K::kVec;
    if (!t.args[0].args.empty() || !ElemKindFromName(t.args[0].name, &spec.elem))
      Fail("unknown element type '" + t.args[0].name + "' for Vec", t.args[0].pos);
    return spec;
  }
  int index;
  if (FindStruct(t.name, &index)) {
    want_args(0);
    spec.kind = K::kStruct;
    spec.index = index;
    return spec;
  }
  if (FindEnum(t.name, &index)) {
    want_args(0);
    spec.kind = K::kEnum;
    spec.index = index;
    return spec;
  }
  Fail("unknown type '" + t.name + "'", t.pos);
}

void CodeGen::CompileFunction(FunctionDecl* fn, uint32_t proto_index, FnState* parent) {
  FnState state;
  state.decl = fn;
  state.proto = p_->protos[proto_index].get();
  state.parent = parent;
  state.line = fn->pos.line > 0 ? fn->pos.line : 1;
  FnState* saved = fs_;
  fs_ = &state;
  Proto* proto = state.proto;
  proto->name = fn->impl_type.empty() ? fn->name : fn->impl_type + "." + fn->name;
  proto->is_closure = fn->is_closure;
  proto->remote = fn->remote;
  proto->num_params = static_cast<uint32_t>(fn->params.size());
  if (fn->params.size() > 200) Fail("too many parameters", fn->pos);
  bool seen_default = false;
  for (auto& p : fn->params) {
    for (auto& other : fn->params)
      if (&other != &p && other.decl->name == p.decl->name && &other < &p)
        Fail("duplicate parameter '" + p.decl->name + "'", p.pos);
    proto->param_names.push_back(p.decl->name);
    proto->param_types.push_back(p.type ? ResolveType(*p.type) : TypeSpec{});
    if (p.default_value) {
      seen_default = true;
    } else {
      if (seen_default) Fail("parameter without a default after one with a default", p.pos);
      ++proto->num_required;
    }
    BindLocal(p.decl.get(), AllocReg(p.pos));
  }
  if (fn->return_type) {
    proto->return_type = ResolveType(*fn->return_type);
    proto->has_return_type = true;
  }
  // Prologue: defaults for missing arguments, then box captured parameters.
  for (size_t i = 0; i < fn->params.size(); ++i) {
    auto& p = fn->params[i];
    if (!p.default_value) continue;
    SetLine(p.pos);
    size_t skip = Emit(code::AsBx(Op::kTESTARG, static_cast<uint32_t>(i), 0));
    int saved_free = fs_->free_reg;
    ExprTo(*p.default_value, static_cast<int>(i));
    fs_->free_reg = saved_free;
    PatchJump(skip);
  }
  for (size_t i = 0; i < fn->params.size(); ++i)
    if (fn->params[i].decl->captured) EmitABC(Op::kNEWCELL, static_cast<int>(i), 0, 0);

  bool is_script = parent == nullptr && fn == m_->script.get();
  if (is_script) {
    BlockEffect(*fn->body);
    EmitABC(Op::kRETNONE, 0, 0, 0);
  } else {
    int result = AllocReg(fn->pos);
    BlockTo(*fn->body, result);
    if (proto->has_return_type) EmitABC(Op::kCHECKRET, result, 0, 0);
    EmitABC(Op::kRET, result, 0, 0);
  }
  fs_ = saved;
}

// ---------------- emission helpers ----------------

size_t CodeGen::Emit(uint32_t word) {
  Proto* p = fs_->proto;
  if (p->code.size() >= 1'000'000) Fail("function too large", {fs_->line, 1});
  p->code.push_back(word);
  p->lines.push_back(static_cast<uint32_t>(fs_->line));
  return p->code.size() - 1;
}

size_t CodeGen::EmitJump() { return Emit(code::AsBx(Op::kJMP, 0, 0)); }

void CodeGen::PatchJumpTo(size_t at, size_t target) {
  int64_t offset = static_cast<int64_t>(target) - static_cast<int64_t>(at + 1);
  if (offset > code::kMaxSBx || offset < code::kMinSBx)
    Fail("function too large (jump out of range)", {fs_->line, 1});
  uint32_t& word = fs_->proto->code[at];
  word = (word & 0xffff) | (static_cast<uint32_t>(offset & 0xffff) << 16);
}

void CodeGen::PatchJump(size_t at) { PatchJumpTo(at, Here()); }

void CodeGen::EmitJumpBack(size_t target) { PatchJumpTo(EmitJump(), target); }

int CodeGen::AllocReg(Pos pos) {
  int r = fs_->free_reg++;
  if (fs_->free_reg > 250) Fail("function too complex (more than 250 registers)", pos);
  if (static_cast<uint32_t>(fs_->free_reg) > fs_->proto->num_regs)
    fs_->proto->num_regs = fs_->free_reg;
  return r;
}

int CodeGen::AllocRegs(int n, Pos pos) {
  int first = fs_->free_reg;
  for (int i = 0; i < n; ++i) AllocReg(pos);
  return first;
}

uint32_t CodeGen::ConstInt(int64_t v) {
  auto it = fs_->ints.find(v);
  if (it != fs_->ints.end()) return it->second;
  uint32_t k = static_cast<uint32_t>(fs_->proto->constants.size());
  if (k > 0xffff) Fail("too many constants in one function", {fs_->line, 1});
  fs_->proto->constants.push_back(Value::Int(v));
  fs_->ints.emplace(v, k);
  return k;
}

uint32_t CodeGen::ConstNumber(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  auto it = fs_->numbers.find(bits);
  if (it != fs_->numbers.end()) return it->second;
  uint32_t k = static_cast<uint32_t>(fs_->proto->constants.size());
  if (k > 0xffff) Fail("too many constants in one function", {fs_->line, 1});
  fs_->proto->constants.push_back(Value::Number(v));
  fs_->numbers.emplace(bits, k);
  return k;
}

uint32_t CodeGen::ConstString(const std::string& s) {
  auto it = fs_->strings.find(s);
  if (it != fs_->strings.end()) return it->second;
  uint32_t k = static_cast<uint32_t>(fs_->proto->constants.size());
  if (k > 0xffff) Fail("too many constants in one function", {fs_->line, 1});
  fs_->proto->constants.push_back(p_->NewConstantString(s));
  fs_->strings.emplace(s, k);
  return k;
}

void CodeGen::LoadConstK(int dst, uint32_t k) { EmitABx(Op::kLOADK, dst, k); }

uint32_t CodeGen::FnRef(uint32_t proto_index) {
  auto it = fs_->fn_refs.find(proto_index);
  if (it != fs_->fn_refs.end()) return it->second;
  uint32_t k = static_cast<uint32_t>(fs_->proto->fn_refs.size());
  if (k > 0xffff) Fail("too many function references", {fs_->line, 1});
  fs_->proto->fn_refs.push_back(proto_index);
  fs_->fn_refs.emplace(proto_index, k);
  return k;
}

uint32_t CodeGen::NativeRef(const std::string& qualified, Pos pos) {
  auto it = fs_->natives.find(qualified);
  if (it != fs_->natives.end()) return it->second;
  if (FindNative(qualified) == nullptr) Fail("unknown function '" + qualified + "'", pos);
  uint32_t k = static_cast<uint32_t>(fs_->proto->natives.size());
  if (k > 0xffff) Fail("too many native references", pos);
  fs_->proto->natives.push_back(qualified);
  fs_->natives.emplace(qualified, k);
  return k;
}

// ---------------- variables ----------------

void CodeGen::BindLocal(const Decl* d, int reg) { fs_->regs[d] = reg; }

int CodeGen::VarRegister(const Decl* d) {
  if (d == nullptr || d->is_global || d->captured) return -1;
  auto it = fs_->regs.find(d);
  return it == fs_->regs.end() ? -1 : it->second;
}

// Index of `d` in fs's capture list, adding it (and the chain through enclosing closures).
int CodeGen::CaptureIndex(FnState* fs, const Decl* d) {
  for (size_t i = 0; i < fs->captures.size(); ++i)
    if (fs->captures[i] == d) return static_cast<int>(i);
  if (fs->parent == nullptr) Fail("internal: captured variable has no owner", d->pos);
  CaptureDesc desc;
  auto it = fs->parent->regs.find(d);
  if (it != fs->parent->regs.end()) {
    desc.from_parent_local = true;
    desc.index = static_cast<uint8_t>(it->second);
  } else {
    desc.from_parent_local = false;
    desc.index = static_cast<uint8_t>(CaptureIndex(fs->parent, d));
  }
  if (fs->captures.size() >= 250) Fail("closure captures too many variables", d->pos);
  fs->captures.push_back(d);
  fs->proto->captures.push_back(desc);
  return static_cast<int>(fs->captures.size() - 1);
}

// ---------------- statements ----------------

void CodeGen::BlockTo(const Block& b, int dst) {
  int saved = fs_->free_reg;
  for (auto& s : b.stmts) Stmt(*s);
  if (b.value) {
    ExprTo(*b.value, dst);
  } else {
    SetLine(b.pos);
    EmitABC(Op::kLOADNONE, dst, 0, 0);
  }
  fs_->free_reg = saved;
}

void CodeGen::BlockEffect(const Block& b) {
  int saved = fs_->free_reg;
  for (auto& s : b.stmts) Stmt(*s);
  if (b.value) ExprEffect(*b.value);
  fs_->free_reg = saved;
}

void CodeGen::Stmt(const struct Stmt& s) {
  SetLine(s.pos);
  switch (s.kind) {
    case StmtKind::kLet: return LetStmt(s);
    case StmtKind::kAssign: return AssignStmt(s);
    case StmtKind::kExpr: {
      int saved = fs_->free_reg;
      ExprEffect(*s.value);
      fs_->free_reg = saved;
      return;
    }
    case StmtKind::kReturn: {
      if (fs_->parent == nullptr && fs_->decl == m_->script.get())
        Fail("return outside of function", s.pos);
      int saved = fs_->free_reg;
      if (s.value) {
        int r = ExprAny(*s.value);
        if (fs_->proto->has_return_type) EmitABC(Op::kCHECKRET, r, 0, 0);
        EmitABC(Op::kRET, r, 0, 0);
      } else {
        if (fs_->proto->has_return_type) {
          int r = AllocReg(s.pos);
          EmitABC(Op::kLOADNONE, r, 0, 0);
          EmitABC(Op::kCHECKRET, r, 0, 0);
        }
        EmitABC(Op::kRETNONE, 0, 0, 0);
      }
      fs_->free_reg = saved;
      return;
    }
    case StmtKind::kBreak:
    case StmtKind::kContinue: {
      bool is_break = s.kind == StmtKind::kBreak;
      if (fs_->loops.empty())
        Fail(is_break ? "break outside of loop" : "continue outside of loop", s.pos);
      size_t j = EmitJump();
      (is_break ? fs_->loops.back().breaks : fs_->loops.back().continues).push_back(j);
      return;
    }
    case StmtKind::kWhile: return WhileStmt(s);
    case StmtKind::kFor: return ForStmt(s);
  }
}

void CodeGen::LetStmt(const struct Stmt& s) {
  if (s.type) ResolveType(*s.type);  // annotation must name a known type
  const Decl* d = s.decl.get();
  if (d->is_global) {
    int saved = fs_->free_reg;
    int r = ExprAny(*s.value);
    EmitABx(Op::kSETGLOBAL, r, d->global_index);
    fs_->free_reg = saved;
    return;
  }
  int reg = AllocReg(s.pos);
  ExprTo(*s.value, reg);
  fs_->free_reg = reg + 1;
  if (d->captured) EmitABC(Op::kNEWCELL, reg, 0, 0);
  BindLocal(d, reg);
}

void CodeGen::StoreVariable(const Decl* d, int src, Pos pos) {
  if (d->is_global) {
    EmitABx(Op::kSETGLOBAL, src, d->global_index);
    return;
  }
  auto it = fs_->regs.find(d);
  if (it != fs_->regs.end()) {
    if (d->captured) EmitABC(Op::kSETCELL, it->second, src, 0);
    else if (it->second != src) EmitABC(Op::kMOVE, it->second, src, 0);
    return;
  }
  EmitABC(Op::kSETUPVAL, src, CaptureIndex(fs_, d), 0);
}

void CodeGen::AssignStmt(const struct Stmt& s) {
  int saved = fs_->free_reg;
  const Expr& target = *s.target;
  Tok arith = Tok::kEof;
  switch (s.op) {
    case Tok::kPlusAssign: arith = Tok::kPlus; break;
    case Tok::kMinusAssign: arith = Tok::kMinus; break;
    case Tok::kStarAssign: arith = Tok::kStar; break;
    case Tok::kSlashAssign: arith = Tok::kSlash; break;
    case Tok::kPercentAssign: arith = Tok::kPercent; break;
    default: break;
  }
  if (target.kind == ExprKind::kIdent) {
    const Decl* d = target.decl;
    if (d == nullptr) {
      if (functions_.count(target.name))
        Fail("cannot assign to function '" + target.name + "'", target.pos);
      Fail("undefined variable '" + target.name + "'", target.pos);
    }
    if (!d->is_mutable) Fail("cannot assign to immutable variable '" + d->name + "'", target.pos);
    int reg = VarRegister(d);
    if (reg >= 0) {
      if (arith != Tok::kEof) ArithTo(arith, target, *s.value, reg, s.pos);
      else if (IsSafeDirectTarget(*s.value)) ExprTo(*s.value, reg);
      else EmitABC(Op::kMOVE, reg, ExprAny(*s.value), 0);
    } else {
      int tmp = AllocReg(s.pos);
      if (arith != Tok::kEof) ArithTo(arith, target, *s.value, tmp, s.pos);
      else ExprTo(*s.value, tmp);
      StoreVariable(d, tmp, s.pos);
    }
    fs_->free_reg = saved;
    return;
  }
  if (target.kind == ExprKind::kField) {
    if (IsModuleName(*target.a)) Fail("cannot assign to a module constant", target.pos);
    int obj = ExprAny(*target.a);
    int val = AllocReg(s.pos);
    if (arith != Tok::kEof) {
      int cur = AllocReg(s.pos);
      EmitABC(Op::kGETFIELD, cur, obj, 0);
      Emit(Symbol(target.name));
      CompoundUpdate(arith, *s.value, cur, val, s.pos);
    } else {
      ExprTo(*s.value, val);
    }
    SetLine(s.pos);
    EmitABC(Op::kSETFIELD, obj, val, 0);
    Emit(Symbol(target.name));
    fs_->free_reg = saved;
    return;
  }
  // Index target: a[i] or m[i, j]
  int obj = ExprAny(*target.a);
  bool two = target.items.size() == 2;
  int idx = two ? AllocRegs(2, s.pos) : ExprAny(*target.items[0]);
  if (two) {
    ExprTo(*target.items[0], idx);
    ExprTo(*target.items[1], idx + 1);
  }
  int val = AllocReg(s.pos);
  if (arith != Tok::kEof) {
    int cur = AllocReg(s.pos);
    EmitABC(two ? Op::kGETINDEX2 : Op::kGETINDEX, cur, obj, idx);
    CompoundUpdate(arith, *s.value, cur, val, s.pos);
  } else {
    ExprTo(*s.value, val);
  }
  SetLine(s.pos);
  EmitABC(two ? Op::kSETINDEX2 : Op::kSETINDEX, obj, idx, val);
  fs_->free_reg = saved;
}

void CodeGen::WhileStmt(const struct Stmt& s) {
  size_t top = Here();
  std::vector<size_t> exits;
  CondJump(*s.value, false, &exits);
  fs_->loops.push_back({});
  BlockEffect(*s.body);
  Loop loop = std::move(fs_->loops.back());
  fs_->loops.pop_back();
  for (size_t c : loop.continues) PatchJumpTo(c, top);
  SetLine(s.pos);
  EmitJumpBack(top);
  for (size_t e : exits) PatchJump(e);
  for (size_t b : loop.breaks) PatchJump(b);
}

void CodeGen::ForStmt(const struct Stmt& s) {
  int saved = fs_->free_reg;
  const Expr& iter = *s.value;
  const Pattern& pat = *s.pattern;
  bool int_loop = iter.kind == ExprKind::kRange;
  int base = AllocRegs(int_loop ? 4 : 3, s.pos);
  size_t prep;
  int var_reg;
  if (int_loop) {
    ExprTo(*iter.a, base);
    ExprTo(*iter.b, base + 1);
    Emit(code::AsBx(Op::kLOADI, base + 2, 1));
    SetLine(s.pos);
    prep = Emit(code::AsBx(iter.flag ? Op::kFORPREPI : Op::kFORPREP, base, 0));
    var_reg = base + 3;
  } else {
    ExprTo(iter, base);
    SetLine(s.pos);
    EmitABC(Op::kITERINIT, base, base, 0);
    prep = Emit(code::AsBx(Op::kITERNEXT, base, 0));
    var_reg = base + 2;
  }
  size_t body_start = Here();
  // Loop variables: a fresh binding per iteration (a closure captures that iteration's value).
  if (pat.kind == PatternKind::kBind) {
    if (pat.decl->captured) EmitABC(Op::kNEWCELL, var_reg, 0, 0);
    BindLocal(pat.decl.get(), var_reg);
  } else if (pat.kind == PatternKind::kArray) {
    int n = static_cast<int>(pat.subs.size());
    int first = AllocRegs(n, s.pos);
    int idx = AllocReg(s.pos);
    EmitABC(Op::kMATCHARRAY, var_reg, n, 1);  // matches: jump over the error
    size_t ok = EmitJump();
    EmitABC(Op::kNOMATCH, var_reg, 0, 0);
    PatchJump(ok);
    for (int i = 0; i < n; ++i) {
      const Pattern& sub = *pat.subs[i];
      if (sub.kind != PatternKind::kBind) continue;
      Emit(code::AsBx(Op::kLOADI, idx, i));
      EmitABC(Op::kGETINDEX, first + i, var_reg, idx);
      if (sub.decl->captured) EmitABC(Op::kNEWCELL, first + i, 0, 0);
      BindLocal(sub.decl.get(), first + i);
    }
  }
  fs_->loops.push_back({});
  BlockEffect(*s.body);
  Loop loop = std::move(fs_->loops.back());
  fs_->loops.pop_back();
  for (size_t c : loop.continues) PatchJump(c);
  SetLine(s.pos);
  if (int_loop) {
    size_t back = Emit(code::AsBx(Op::kFORLOOP, base, 0));
    PatchJumpTo(back, body_start);
    PatchJump(prep);
  } else {
    EmitJumpBack(prep);
    PatchJump(prep);
  }
  for (size_t b : loop.breaks) PatchJump(b);
  fs_->free_reg = saved;
}

// ---------------- entry point ----------------

Result<std::unique_ptr<Program>> Compile(std::string_view source, const std::string& file,
                                         Diagnostic* diagnostic) {
  Diagnostic local;
  Diagnostic& diag = diagnostic ? *diagnostic : local;
  diag.file = file;
  auto fail = [&](std::string msg, int line, int col) -> Status {
    diag.message = std::move(msg);
    diag.line = line;
    diag.col = col;
    return CompileError(diag.message);
  };
  Module module;
  SyntaxError syntax;
  if (!ParseModule(source, &module, &syntax)) return fail(syntax.message, syntax.line, syntax.col);
  auto program = std::make_unique<Program>();
  program->source_name = file;
  if (!ResolveModule(&module, &program->global_names, &syntax))
    return fail(syntax.message, syntax.line, syntax.col);
  try {
    CodeGen gen(&module, program.get());
    gen.Run();
  } catch (CompileFailure& f) {
    return fail(f.message, f.pos.line, f.pos.col);
  }
  return program;
}

std::string FormatDiagnosticLocation(const Diagnostic& d, std::string_view source) {
  std::string line_text;
  int line = 1;
  size_t start = 0;
  for (size_t i = 0; i <= source.size(); ++i) {
    if (i == source.size() || source[i] == '\n') {
      if (line == d.line) {
        line_text = std::string(source.substr(start, i - start));
        break;
      }
      ++line;
      start = i + 1;
    }
  }
  while (!line_text.empty() && line_text.back() == '\r') line_text.pop_back();
  std::string num = std::to_string(d.line);
  std::string pad(num.size(), ' ');
  std::string caret_pad;
  for (int i = 1; i < d.col && static_cast<size_t>(i - 1) < line_text.size(); ++i)
    caret_pad.push_back(line_text[i - 1] == '\t' ? '\t' : ' ');
  if (d.col > 0 && static_cast<size_t>(d.col - 1) > line_text.size())
    caret_pad.append(d.col - 1 - line_text.size(), ' ');
  return fmt::format("{}--> {}:{}:{}\n{} |\n{} | {}\n{} | {}^\n", pad, d.file, d.line, d.col,
                     pad, num, line_text, pad, caret_pad);
}

}  // namespace shapex::engine
