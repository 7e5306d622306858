// The bytecode verifier (verifier.h). Two passes per function: the first finds instruction
// boundaries (so jumps into an extra word are caught), the second checks every operand against
// the kinds in the SHAPEX_OPCODES table plus the per-opcode register ranges the interpreter
// relies on. Program-wide tables (structs, enums, methods, entry points) are checked first so
// the per-instruction checks can index them freely.
#include "shapex/engine/verifier.h"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "format_spec.h"
#include "opcode_info.h"
#include "shapex/core/result.h"
#include "shapex/engine/opcodes.h"

namespace shapex::engine {
namespace {

constexpr uint32_t kMaxRegisters = 255;
constexpr int kMaxTypeDepth = 64;

std::string ProtoLabel(const Proto& proto, size_t index) {
  if (proto.name.empty()) return fmt::format("<function #{}>", index);
  return proto.name;
}

Status Invalid(std::string message) {
  return InvalidArgument("invalid bytecode: " + std::move(message));
}

// `where` names the function: "in add".
Status CheckTypeSpec(const Program& p, const TypeSpec& t, int depth, std::string_view where) {
  using K = TypeSpec::Kind;
  if (depth > kMaxTypeDepth)
    return InvalidArgument(
        fmt::format("invalid bytecode {}: type annotation nested too deep", where));
  size_t want_args = 0;
  switch (t.kind) {
    case K::kAny:
    case K::kInt:
    case K::kNumber:
    case K::kBool:
    case K::kString:
    case K::kArray:
    case K::kMap:
    case K::kFunction:
    case K::kMatrix:
    case K::kRange:
    case K::kNone:
      break;
    case K::kVec:
      if (static_cast<int>(t.elem) >= kNumElemKinds)
        return InvalidArgument(fmt::format("invalid bytecode {}: bad Vec element kind {}", where,
                                           static_cast<int>(t.elem)));
      break;
    case K::kStruct:
      if (t.index >= p.structs.size())
        return InvalidArgument(
            fmt::format("invalid bytecode {}: struct type {} out of range ({} structs)", where,
                        t.index, p.structs.size()));
      break;
    case K::kEnum:
      if (t.index >= p.enums.size())
        return InvalidArgument(
            fmt::format("invalid bytecode {}: enum type {} out of range ({} enums)", where, t.index,
                        p.enums.size()));
      break;
    case K::kOption:
      want_args = 1;
      break;
    case K::kResult:
      want_args = 2;
      break;
    default:
      return Invalid(
          fmt::format("{}: bad type annotation kind {}", where, static_cast<int>(t.kind)));
  }
  if (t.args.size() != want_args)
    return InvalidArgument(
        fmt::format("invalid bytecode {}: type annotation has {} type arguments, expected {}",
                    where, t.args.size(), want_args));
  for (const TypeSpec& arg : t.args) RETURN_IF_ERROR(CheckTypeSpec(p, arg, depth + 1, where));
  return Status::Ok();
}

// Methods of a struct or enum: symbol -> proto.
Status CheckMethods(const Program& p, const std::vector<std::pair<uint32_t, uint32_t>>& methods,
                    const std::string& type_name) {
  for (auto& [symbol, proto] : methods) {
    if (symbol >= p.symbols.size())
      return Invalid(fmt::format("type {}: method symbol {} out of range ({} symbols)", type_name,
                                 symbol, p.symbols.size()));
    if (proto >= p.protos.size())
      return Invalid(fmt::format("type {}: method function {} out of range ({} functions)",
                                 type_name, proto, p.protos.size()));
    if (p.protos[proto]->is_closure)
      return Invalid(fmt::format("type {}: method function {} is a closure", type_name, proto));
  }
  return Status::Ok();
}

Status CheckProgramTables(const Program& p) {
  for (size_t i = 0; i < p.protos.size(); ++i)
    if (!p.protos[i]) return Invalid(fmt::format("function #{} is missing", i));
  for (size_t i = 0; i < p.structs.size(); ++i)
    if (!p.structs[i]) return Invalid(fmt::format("struct type #{} is missing", i));
  for (size_t i = 0; i < p.enums.size(); ++i)
    if (!p.enums[i]) return Invalid(fmt::format("enum type #{} is missing", i));

  auto check_entry = [&](uint32_t index, const char* what) -> Status {
    if (index >= p.protos.size())
      return Invalid(
          fmt::format("{} function {} out of range ({} functions)", what, index, p.protos.size()));
    if (p.protos[index]->is_closure)
      return Invalid(fmt::format("{} function {} is a closure", what, index));
    return Status::Ok();
  };
  RETURN_IF_ERROR(check_entry(p.script, "script"));
  if (p.main != -1) {
    if (p.main < 0) return Invalid(fmt::format("main function {} out of range", p.main));
    RETURN_IF_ERROR(check_entry(static_cast<uint32_t>(p.main), "main"));
  }
  for (auto& [name, index] : p.functions) RETURN_IF_ERROR(check_entry(index, "named"));

  for (const auto& st : p.structs) {
    if (st->field_symbols.size() != st->field_names.size())
      return Invalid(fmt::format("struct {}: {} field symbols for {} fields", st->name,
                                 st->field_symbols.size(), st->field_names.size()));
    if (st->field_names.size() > kMaxRegisters)
      return Invalid(fmt::format("struct {}: too many fields", st->name));
    for (uint32_t symbol : st->field_symbols)
      if (symbol >= p.symbols.size())
        return Invalid(fmt::format("struct {}: field symbol {} out of range ({} symbols)", st->name,
                                   symbol, p.symbols.size()));
    RETURN_IF_ERROR(CheckMethods(p, st->methods, st->name));
  }
  for (const auto& et : p.enums) {
    if (et->variant_arity.size() != et->variant_names.size())
      return Invalid(fmt::format("enum {}: {} arities for {} variants", et->name,
                                 et->variant_arity.size(), et->variant_names.size()));
    if (et->variant_names.size() > 0x10000)
      return Invalid(fmt::format("enum {}: too many variants", et->name));
    for (uint32_t arity : et->variant_arity)
      if (arity > kMaxRegisters)
        return Invalid(fmt::format("enum {}: variant arity {} too large", et->name, arity));
    RETURN_IF_ERROR(CheckMethods(p, et->methods, et->name));
  }
  return Status::Ok();
}

// Checks one function's header and code.
class ProtoVerifier {
 public:
  ProtoVerifier(const Program& program, const Proto& proto, size_t index)
      : p_(program), proto_(proto), index_(index), label_(ProtoLabel(proto, index)) {}

  Status Run() {
    RETURN_IF_ERROR(CheckHeader());
    RETURN_IF_ERROR(FindBoundaries());
    for (size_t pc = 0; pc < proto_.code.size(); ++pc)
      if (is_start_[pc]) RETURN_IF_ERROR(CheckInstruction(pc));
    return Status::Ok();
  }

 private:
  template <class... Args>
  Status Error(fmt::format_string<Args...> format, Args&&... args) const {
    return InvalidArgument(fmt::format("invalid bytecode in {}: {}", label_,
                                       fmt::format(format, std::forward<Args>(args)...)));
  }
  template <class... Args>
  Status ErrorAt(size_t pc, fmt::format_string<Args...> format, Args&&... args) const {
    return InvalidArgument(fmt::format("invalid bytecode in {} at pc {}: {}", label_, pc,
                                       fmt::format(format, std::forward<Args>(args)...)));
  }

  Status CheckHeader() {
    const Proto& f = proto_;
    if (f.index != index_) return Error("index field {} at position {}", f.index, index_);
    if (f.num_regs > kMaxRegisters)
      return Error("num_regs {} exceeds {}", f.num_regs, kMaxRegisters);
    if (f.num_params > f.num_regs)
      return Error("num_params {} exceeds num_regs {}", f.num_params, f.num_regs);
    if (f.num_required > f.num_params)
      return Error("num_required {} exceeds num_params {}", f.num_required, f.num_params);
    if (f.param_types.size() != f.num_params)
      return Error("{} parameter types for {} parameters", f.param_types.size(), f.num_params);
    if (f.param_names.size() != f.num_params)
      return Error("{} parameter names for {} parameters", f.param_names.size(), f.num_params);
    std::string where = "in " + label_;
    for (const TypeSpec& t : f.param_types) RETURN_IF_ERROR(CheckTypeSpec(p_, t, 0, where));
    RETURN_IF_ERROR(CheckTypeSpec(p_, f.return_type, 0, where));
    if (f.code.empty()) return Error("empty code");
    if (f.lines.size() != f.code.size())
      return Error("{} line entries for {} code words", f.lines.size(), f.code.size());
    for (size_t k = 0; k < f.constants.size(); ++k) {
      const Value& c = f.constants[k];
      bool ok = c.type == Type::kNone || c.type == Type::kBool || c.type == Type::kInt ||
                c.type == Type::kNumber || (c.type == Type::kString && c.as.o != nullptr);
      if (!ok) return Error("constant {} has a type constants cannot have", k);
    }
    for (size_t i = 0; i < f.fn_refs.size(); ++i)
      if (f.fn_refs[i] >= p_.protos.size())
        return Error("function reference {} -> {} out of range ({} functions)", i, f.fn_refs[i],
                     p_.protos.size());
    if (!f.is_closure && !f.captures.empty())
      return Error("{} captures in a function that is not a closure", f.captures.size());
    if (f.captures.size() > kMaxRegisters)
      return Error("too many captures ({})", f.captures.size());
    return Status::Ok();
  }

  Status FindBoundaries() {
    const auto& code = proto_.code;
    is_start_.assign(code.size(), false);
    size_t last = 0;
    for (size_t pc = 0; pc < code.size();) {
      uint32_t op = code[pc] & 0xff;
      if (op >= static_cast<uint32_t>(kNumOps)) return ErrorAt(pc, "unknown opcode {}", op);
      const OpInfo& info = kOpInfo[op];
      size_t length = info.extra ? 2 : 1;
      if (pc + length > code.size())
        return ErrorAt(pc, "{} is missing its extra word (truncated code)", info.name);
      is_start_[pc] = true;
      last = pc;
      pc += length;
    }
    Op op = code::GetOp(code[last]);
    if (op != Op::kRET && op != Op::kRETNONE && op != Op::kJMP)
      return ErrorAt(last, "code ends with {} (must end with RET, RETNONE or JMP)",
                     InfoOf(op).name);
    return Status::Ok();
  }

  Status CheckRegister(size_t pc, uint32_t r) const {
    if (r >= proto_.num_regs)
      return ErrorAt(pc, "register {} out of range (num_regs {})", r, proto_.num_regs);
    return Status::Ok();
  }
  // Registers first .. first+count-1 (count may be 0) must exist.
  Status CheckRegisterRange(size_t pc, uint64_t first, uint64_t count) const {
    if (first + count > proto_.num_regs)
      return ErrorAt(pc, "registers {}..{} out of range (num_regs {})", first,
                     first + count - (count > 0 ? 1 : 0), proto_.num_regs);
    return Status::Ok();
  }

  Status CheckJump(size_t pc, size_t next, int32_t offset) const {
    int64_t target = static_cast<int64_t>(next) + offset;
    if (target < 0 || target >= static_cast<int64_t>(proto_.code.size()))
      return ErrorAt(pc, "jump target {} out of range (code size {})", target, proto_.code.size());
    if (!is_start_[static_cast<size_t>(target)])
      return ErrorAt(pc, "jump target {} is inside an instruction", target);
    return Status::Ok();
  }

  Status CheckOperand(size_t pc, OperandKind kind, uint32_t value, size_t next, int32_t sbx) {
    switch (kind) {
      case OperandKind::kRegister:
        return CheckRegister(pc, value);
      case OperandKind::kConstant:
        if (value >= proto_.constants.size())
          return ErrorAt(pc, "constant {} out of range ({} constants)", value,
                         proto_.constants.size());
        return Status::Ok();
      case OperandKind::kFnRef:
        if (value >= proto_.fn_refs.size())
          return ErrorAt(pc, "function reference {} out of range ({} references)", value,
                         proto_.fn_refs.size());
        return Status::Ok();
      case OperandKind::kNative:
        if (value >= proto_.natives.size())
          return ErrorAt(pc, "native {} out of range ({} natives)", value, proto_.natives.size());
        return Status::Ok();
      case OperandKind::kGlobal:
        if (value >= p_.global_names.size())
          return ErrorAt(pc, "global {} out of range ({} globals)", value, p_.global_names.size());
        return Status::Ok();
      case OperandKind::kJump:
        return CheckJump(pc, next, sbx);
      case OperandKind::kUnused:
      case OperandKind::kImmediate:
      case OperandKind::kUnsigned:
        return Status::Ok();
    }
    return Status::Ok();
  }

  // Decodes NEWENUM/MATCHENUM's extra word; *arity receives the variant's payload size.
  Status CheckEnumWord(size_t pc, uint32_t word, uint32_t* arity) const {
    uint32_t id = EnumWordId(word), variant = EnumWordVariant(word);
    if (id == kOptionEnumWord || id == kResultEnumWord) {
      uint32_t variants = id == kOptionEnumWord ? 1 : 2;
      if (variant >= variants)
        return ErrorAt(pc, "variant {} out of range for {}", variant,
                       id == kOptionEnumWord ? "Option" : "Result");
      *arity = 1;
      return Status::Ok();
    }
    if (id >= p_.enums.size())
      return ErrorAt(pc, "enum type {} out of range ({} enums)", id, p_.enums.size());
    const EnumType& et = *p_.enums[id];
    if (variant >= et.variant_names.size())
      return ErrorAt(pc, "variant {} out of range for enum {} ({} variants)", variant, et.name,
                     et.variant_names.size());
    *arity = et.variant_arity[variant];
    return Status::Ok();
  }

  Status CheckSymbol(size_t pc, uint32_t symbol) const {
    if (symbol >= p_.symbols.size())
      return ErrorAt(pc, "symbol {} out of range ({} symbols)", symbol, p_.symbols.size());
    return Status::Ok();
  }

  Status CheckStructIndex(size_t pc, uint32_t index) const {
    if (index >= p_.structs.size())
      return ErrorAt(pc, "struct type {} out of range ({} structs)", index, p_.structs.size());
    return Status::Ok();
  }

  // Ops whose B is the first of a block of registers (possibly empty, so B may equal num_regs).
  static bool HasRegisterBlockB(Op op) {
    return op == Op::kNEWARRAY || op == Op::kBUILDSTR || op == Op::kNEWMAP ||
           op == Op::kNEWSTRUCT || op == Op::kNEWENUM;
  }

  Status CheckInstruction(size_t pc) {
    const uint32_t word = proto_.code[pc];
    const Op op = code::GetOp(word);
    const OpInfo& info = InfoOf(op);
    const uint32_t a = code::GetA(word), b = code::GetB(word), c = code::GetC(word);
    const uint32_t extra = info.extra ? proto_.code[pc + 1] : 0;
    const size_t next = pc + (info.extra ? 2 : 1);
    const int32_t sbx = code::GetSBx(word);

    RETURN_IF_ERROR(CheckOperand(pc, info.a, a, next, sbx));
    switch (info.format) {
      case OpFormat::kABC:
        if (!HasRegisterBlockB(op)) RETURN_IF_ERROR(CheckOperand(pc, info.b, b, next, sbx));
        RETURN_IF_ERROR(CheckOperand(pc, info.c, c, next, sbx));
        break;
      case OpFormat::kABx:
        RETURN_IF_ERROR(CheckOperand(pc, info.b, code::GetBx(word), next, sbx));
        break;
      case OpFormat::kAsBx:
        RETURN_IF_ERROR(CheckOperand(pc, info.b, 0, next, sbx));
        break;
    }
    if (info.skip) RETURN_IF_ERROR(CheckSkip(pc, next, info));
    return CheckSpecial(pc, op, a, b, c, extra);
  }

  // A skip instruction's JMP must follow directly, and something must follow the JMP.
  Status CheckSkip(size_t pc, size_t next, const OpInfo& info) const {
    if (next >= proto_.code.size() || code::GetOp(proto_.code[next]) != Op::kJMP)
      return ErrorAt(pc, "{} is not followed by a JMP", info.name);
    if (next + 1 >= proto_.code.size())
      return ErrorAt(pc, "{} can skip past the end of the code", info.name);
    return Status::Ok();
  }

  Status CheckSpecial(size_t pc, Op op, uint32_t a, uint32_t b, uint32_t c, uint32_t extra) {
    switch (op) {
      case Op::kCALL:
        return CheckRegisterRange(pc, a, uint64_t{b} + 1);
      case Op::kINVOKE:
        RETURN_IF_ERROR(CheckRegisterRange(pc, a, uint64_t{b} + 2));
        return CheckSymbol(pc, extra);
      case Op::kNEWARRAY:
      case Op::kBUILDSTR:
        return CheckRegisterRange(pc, b, c);
      case Op::kNEWMAP:
        return CheckRegisterRange(pc, b, uint64_t{c} * 2);
      case Op::kNEWSTRUCT:
        RETURN_IF_ERROR(CheckStructIndex(pc, extra));
        return CheckRegisterRange(pc, b, p_.structs[extra]->field_names.size());
      case Op::kNEWENUM: {
        uint32_t arity = 0;
        RETURN_IF_ERROR(CheckEnumWord(pc, extra, &arity));
        return CheckRegisterRange(pc, b, arity);
      }
      case Op::kMATCHENUM: {
        uint32_t arity = 0;
        return CheckEnumWord(pc, extra, &arity);
      }
      case Op::kMATCHSTRUCT:
        return CheckStructIndex(pc, extra);
      case Op::kGETFIELD:
      case Op::kSETFIELD:
        return CheckSymbol(pc, extra);
      case Op::kGETINDEX2:
        return CheckRegisterRange(pc, c, 2);
      case Op::kSETINDEX2:
      case Op::kNEWRANGE:
        return CheckRegisterRange(pc, b, 2);
      case Op::kFORPREP:
      case Op::kFORPREPI:
      case Op::kFORLOOP:
        return CheckRegisterRange(pc, a, 4);
      case Op::kITERINIT:
        return CheckRegisterRange(pc, a, 2);
      case Op::kITERNEXT:
        return CheckRegisterRange(pc, a, 3);
      case Op::kGETUPVAL:
      case Op::kSETUPVAL:
        if (!proto_.is_closure) return ErrorAt(pc, "{} outside a closure", InfoOf(op).name);
        if (b >= proto_.captures.size())
          return ErrorAt(pc, "captured cell {} out of range ({} captures)", b,
                         proto_.captures.size());
        return Status::Ok();
      case Op::kTESTARG:
        if (a >= proto_.num_params)
          return ErrorAt(pc, "argument {} out of range ({} parameters)", a, proto_.num_params);
        return Status::Ok();
      case Op::kFUNC: {
        const Proto& target = *p_.protos[proto_.fn_refs[code::GetBx(proto_.code[pc])]];
        if (target.is_closure)
          return ErrorAt(pc, "FUNC of closure prototype {} (needs CLOSURE)", target.name);
        return Status::Ok();
      }
      case Op::kCLOSURE:
        return CheckClosure(pc, code::GetBx(proto_.code[pc]));
      case Op::kFORMAT:
        return CheckFormatSpec(pc, proto_.constants[code::GetBx(proto_.code[pc])]);
      default:
        return Status::Ok();
    }
  }

  // FORMAT's constant is a String that parses as a format spec.
  Status CheckFormatSpec(size_t pc, const Value& spec) const {
    if (spec.type != Type::kString) return ErrorAt(pc, "FORMAT's constant is not a string");
    FormatSpec parsed;
    std::string why;
    if (!ParseFormatSpec(AsString(spec)->str, &parsed, &why))
      return ErrorAt(pc, "invalid format spec '{}': {}", AsString(spec)->str, why);
    return Status::Ok();
  }

  // The new closure's captures come from this function's registers or its own captures.
  Status CheckClosure(size_t pc, uint32_t ref) const {
    const Proto& target = *p_.protos[proto_.fn_refs[ref]];
    if (!target.is_closure)
      return ErrorAt(pc, "CLOSURE of {}, which is not a closure prototype", target.name);
    for (size_t i = 0; i < target.captures.size(); ++i) {
      const CaptureDesc& d = target.captures[i];
      if (d.from_parent_local && d.index >= proto_.num_regs)
        return ErrorAt(pc, "capture {} takes register {} out of range (num_regs {})", i, d.index,
                       proto_.num_regs);
      if (!d.from_parent_local && d.index >= proto_.captures.size())
        return ErrorAt(pc, "capture {} takes captured cell {} out of range ({} captures)", i,
                       d.index, proto_.captures.size());
    }
    return Status::Ok();
  }

  const Program& p_;
  const Proto& proto_;
  size_t index_;
  std::string label_;
  std::vector<bool> is_start_;
};

}  // namespace

Status Verify(const Program& program) {
  RETURN_IF_ERROR(CheckProgramTables(program));
  for (size_t i = 0; i < program.protos.size(); ++i)
    RETURN_IF_ERROR(ProtoVerifier(program, *program.protos[i], i).Run());
  return Status::Ok();
}

}  // namespace shapex::engine
