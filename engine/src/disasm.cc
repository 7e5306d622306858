// Disassembler (disasm.h). Operand layout and kinds come from kOpInfo, which is generated from
// the SHAPEX_OPCODES table, so a new opcode is listed correctly without touching this file.
#include "shapex/engine/disasm.h"

#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "opcode_info.h"
#include "shapex/engine/opcodes.h"
#include "shapex/engine/value.h"

namespace shapex::engine {
namespace {

// Constants are printed only when they are of a kind constants can have (the listing must not
// follow a bad pointer in an unverified program).
std::string ConstantText(const Proto& proto, uint32_t k) {
  if (k >= proto.constants.size()) return "?";
  const Value& v = proto.constants[k];
  switch (v.type) {
    case Type::kNone:
    case Type::kBool:
    case Type::kInt:
    case Type::kNumber:
      return ValueToString(v, /*quoted=*/true);
    case Type::kString:
      if (v.as.o != nullptr) return ValueToString(v, /*quoted=*/true);
      return "?";
    default:
      return "?";
  }
}

std::string ProtoName(const Program& p, uint32_t index) {
  if (index >= p.protos.size() || !p.protos[index]) return "?";
  return p.protos[index]->name;
}

std::string EnumVariantText(const Program& p, uint32_t word) {
  uint32_t id = EnumWordId(word), variant = EnumWordVariant(word);
  if (id == kOptionEnumWord) return variant == 0 ? "Some" : "?";
  if (id == kResultEnumWord) return variant == 0 ? "Ok" : variant == 1 ? "Err" : "?";
  if (id >= p.enums.size() || !p.enums[id]) return "?";
  const EnumType& et = *p.enums[id];
  if (variant >= et.variant_names.size()) return et.name + "::?";
  return et.name + "::" + et.variant_names[variant];
}

class Lister {
 public:
  Lister(const Program& program, const Proto& proto) : p_(program), proto_(proto) {}

  std::string Run() {
    std::string out = fmt::format("function {} (params {}, regs {}, constants {})\n", proto_.name,
                                  proto_.num_params, proto_.num_regs, proto_.constants.size());
    for (size_t pc = 0; pc < proto_.code.size();) pc = Line(pc, &out);
    return out;
  }

 private:
  // Appends the listing line for the instruction at pc; returns the next pc.
  size_t Line(size_t pc, std::string* out) {
    const uint32_t word = proto_.code[pc];
    const uint32_t line = pc < proto_.lines.size() ? proto_.lines[pc] : 0;
    const uint32_t op_index = word & 0xff;
    if (op_index >= static_cast<uint32_t>(kNumOps)) {
      fmt::format_to(std::back_inserter(*out), "{:5}  {:4}  {:<11} 0x{:08x}\n", pc, line, "???",
                     word);
      return pc + 1;
    }
    const Op op = static_cast<Op>(op_index);
    const OpInfo& info = InfoOf(op);
    size_t next = pc + 1;
    bool have_extra = false;
    uint32_t extra = 0;
    if (info.extra && next < proto_.code.size()) {
      extra = proto_.code[next];
      have_extra = true;
    }
    if (info.extra) ++next;

    operands_.clear();
    comments_.clear();
    Operand(info.a, code::GetA(word), 0, next, /*is_a=*/true);
    switch (info.format) {
      case OpFormat::kABC:
        Operand(info.b, code::GetB(word), code::GetSB(word), next, false);
        Operand(info.c, code::GetC(word), code::GetSC(word), next, false);
        break;
      case OpFormat::kABx:
        Operand(info.b, code::GetBx(word), 0, next, false);
        break;
      case OpFormat::kAsBx:
        Operand(info.b, code::GetBx(word), code::GetSBx(word), next, false);
        break;
    }
    if (info.extra) {
      if (have_extra) {
        bool is_enum = op == Op::kNEWENUM || op == Op::kMATCHENUM;
        operands_.push_back(is_enum ? fmt::format("0x{:08x}", extra) : std::to_string(extra));
        ExtraComment(op, extra);
      } else {
        operands_.push_back("<missing extra word>");
      }
    }
    std::string text = fmt::format("{:5}  {:4}  {:<11}", pc, line, info.name);
    for (const std::string& o : operands_) text += " " + o;
    if (!comments_.empty()) {
      text += "  ; ";
      for (size_t i = 0; i < comments_.size(); ++i) text += (i ? ", " : "") + comments_[i];
    }
    *out += text;
    *out += '\n';
    return next;
  }

  void Operand(OperandKind kind, uint32_t value, int32_t signed_value, size_t next, bool is_a) {
    switch (kind) {
      case OperandKind::kUnused:
        return;
      case OperandKind::kImmediate:
        operands_.push_back(std::to_string(is_a ? static_cast<int32_t>(value) : signed_value));
        return;
      case OperandKind::kJump:
        operands_.push_back(std::to_string(signed_value));
        comments_.push_back(fmt::format("-> {}", static_cast<int64_t>(next) + signed_value));
        return;
      default:
        break;
    }
    operands_.push_back(std::to_string(value));
    switch (kind) {
      case OperandKind::kConstant:
        comments_.push_back(ConstantText(proto_, value));
        break;
      case OperandKind::kFnRef:
        comments_.push_back(value < proto_.fn_refs.size() ? ProtoName(p_, proto_.fn_refs[value])
                                                          : "?");
        break;
      case OperandKind::kNative:
        comments_.push_back(value < proto_.natives.size() ? "native " + proto_.natives[value]
                                                          : "native ?");
        break;
      case OperandKind::kGlobal:
        comments_.push_back(value < p_.global_names.size() ? "global " + p_.global_names[value]
                                                           : "global ?");
        break;
      default:
        break;
    }
  }

  void ExtraComment(Op op, uint32_t extra) {
    switch (op) {
      case Op::kINVOKE:
      case Op::kGETFIELD:
      case Op::kSETFIELD:
        comments_.push_back(extra < p_.symbols.size() ? "." + p_.symbols[extra] : ".?");
        break;
      case Op::kNEWSTRUCT:
      case Op::kMATCHSTRUCT:
        comments_.push_back(extra < p_.structs.size() && p_.structs[extra] ? p_.structs[extra]->name
                                                                           : "?");
        break;
      case Op::kNEWENUM:
      case Op::kMATCHENUM:
        comments_.push_back(EnumVariantText(p_, extra));
        break;
      default:
        break;
    }
  }

  const Program& p_;
  const Proto& proto_;
  std::vector<std::string> operands_;
  std::vector<std::string> comments_;
};

}  // namespace

std::string Disassemble(const Program& program, const Proto& proto) {
  return Lister(program, proto).Run();
}

std::string DisassembleProgram(const Program& program) {
  std::string out;
  for (size_t i = 0; i < program.protos.size(); ++i) {
    if (!program.protos[i]) continue;
    if (!out.empty()) out += '\n';
    out += Disassemble(program, *program.protos[i]);
  }
  return out;
}

}  // namespace shapex::engine
