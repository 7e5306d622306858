// OpInfo: per-opcode metadata (format, operand kinds, extra word, doc) generated from the
// SHAPEX_OPCODES table, for the verifier and the disassembler. Internal to the engine.
//
// The table's operand columns are single tokens (R K F N G J I U -); they are stringized and
// mapped to OperandKind at compile time, so adding an opcode to the table is enough. Careful:
// the EXTRA column's `X` is the same token as SHAPEX_OPCODES's parameter, so it expands to the
// name of the macro passed in; only "not -" is a reliable test for it.
#ifndef SHAPEX_ENGINE_OPCODE_INFO_H_
#define SHAPEX_ENGINE_OPCODE_INFO_H_

#include <cstdint>
#include <string_view>

#include "shapex/engine/opcodes.h"

namespace shapex::engine {

enum class OperandKind : uint8_t {
  kUnused,     // -
  kRegister,   // R
  kConstant,   // K
  kFnRef,      // F
  kNative,     // N
  kGlobal,     // G
  kJump,       // J
  kImmediate,  // I (signed)
  kUnsigned,   // U
};

enum class OpFormat : uint8_t { kABC, kABx, kAsBx };

struct OpInfo {
  const char* name;
  OpFormat format;
  OperandKind a, b, c;
  bool extra;  // followed by one extra word
  bool skip;   // a "skip next" test: must be followed by a JMP
  const char* doc;
};

constexpr OperandKind OperandKindFromChar(char c) {
  switch (c) {
    case 'R':
      return OperandKind::kRegister;
    case 'K':
      return OperandKind::kConstant;
    case 'F':
      return OperandKind::kFnRef;
    case 'N':
      return OperandKind::kNative;
    case 'G':
      return OperandKind::kGlobal;
    case 'J':
      return OperandKind::kJump;
    case 'I':
      return OperandKind::kImmediate;
    case 'U':
      return OperandKind::kUnsigned;
    default:
      return OperandKind::kUnused;
  }
}

// The table marks skip instructions only through their doc text ("skip next unless ...").
constexpr bool IsSkipDoc(const char* doc) {
  return std::string_view(doc).substr(0, 9) == "skip next";
}

inline constexpr OpInfo kOpInfo[] = {
#define SHAPEX_OP_INFO(name, fmt, a, b, c, x, doc) \
  {#name,                                          \
   OpFormat::k##fmt,                               \
   OperandKindFromChar(#a[0]),                     \
   OperandKindFromChar(#b[0]),                     \
   OperandKindFromChar(#c[0]),                     \
   #x[0] != '-',                                   \
   IsSkipDoc(doc),                                 \
   doc},
    SHAPEX_OPCODES(SHAPEX_OP_INFO)
#undef SHAPEX_OP_INFO
};
static_assert(sizeof(kOpInfo) / sizeof(kOpInfo[0]) == kNumOps);

inline const OpInfo& InfoOf(Op op) { return kOpInfo[static_cast<uint8_t>(op)]; }

// NEWENUM / MATCHENUM extra word: enum id (high 16 bits) and variant (low 16 bits). Ids
// 0xFFFF and 0xFFFE name the built-in Option and Result.
inline constexpr uint32_t kOptionEnumWord = 0xFFFF;
inline constexpr uint32_t kResultEnumWord = 0xFFFE;
inline uint32_t EnumWordId(uint32_t word) { return word >> 16; }
inline uint32_t EnumWordVariant(uint32_t word) { return word & 0xFFFF; }

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_OPCODE_INFO_H_
