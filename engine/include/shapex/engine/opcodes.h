// The bytecode: one table (SHAPEX_OPCODES) lists every instruction; the enum, the names, the
// disassembler, the verifier's operand checks and the interpreter's dispatch table are all
// generated from it.
//
// The VM is register based (like Lua 5.4): each call frame owns up to 255 registers; parameters
// occupy the first registers. An instruction is one 32-bit word:
//
//     bits  0..7   opcode
//     bits  8..15  A   (register, usually the destination)
//     bits 16..23  B   (register / count / small immediate)
//     bits 24..31  C   (register / count / small immediate / flag)
//     bits 16..31  Bx  (unsigned 16-bit index) or sBx (signed 16-bit: jump offset / immediate)
//
// Some instructions are followed by one extra word (EXTRA column = E): a 32-bit symbol, type or
// enum-variant index. Jump offsets are relative to the word after the instruction (and after
// its extra word, if any).
//
// "skip" instructions (T*, MATCH*) are always followed by a JMP: when their test fails (result
// != k) the JMP is skipped; otherwise the JMP is taken.
//
// Operand kinds (used by the verifier):
//   R  register        K  constant index     F  fn_refs index     N  natives index
//   G  global index    J  jump offset        I  signed immediate  U  unsigned count/flag
//   -  unused
#ifndef SHAPEX_ENGINE_OPCODES_H_
#define SHAPEX_ENGINE_OPCODES_H_

#include <cstdint>

namespace shapex::engine {

// X(name, format, A, B, C, extra, doc). Format: ABC, ABx, AsBx. Extra: E = one extra word.
//
// This table is a wire format: the opcode numbers (row order), formats and operand kinds are
// specified in docs/blob-format.md ("Instruction encoding"), and engine_opcode_table_test
// checks that document against this table. Any change here (an opcode added, removed or
// moved, an operand changed, or what an instruction does) bumps kVmVersion (blob.h; and
// kBlobFormatVersion if the word layout changes) and updates docs/blob-format.md in the same
// commit: content hashes of existing blobs depend on it.
#define SHAPEX_OPCODES(X)                                                                     \
  X(MOVE, ABC, R, R, -, -, "R[A] = R[B]")                                                   \
  X(LOADK, ABx, R, K, -, -, "R[A] = K[Bx]")                                                 \
  X(LOADI, AsBx, R, I, -, -, "R[A] = Int(sBx)")                                             \
  X(LOADNONE, ABC, R, -, -, -, "R[A] = None")                                               \
  X(LOADBOOL, ABC, R, U, -, -, "R[A] = Bool(B)")                                            \
  X(GETGLOBAL, ABx, R, G, -, -, "R[A] = G[Bx]")                                             \
  X(SETGLOBAL, ABx, R, G, -, -, "G[Bx] = R[A]")                                             \
  X(FUNC, ABx, R, F, -, -, "R[A] = function fn_refs[Bx]")                                   \
  X(NATIVE, ABx, R, N, -, -, "R[A] = native natives[Bx]")                                   \
  X(CLOSURE, ABx, R, F, -, -, "R[A] = closure of fn_refs[Bx] (captures per its proto)")     \
  X(NEWCELL, ABC, R, -, -, -, "R[A] = Cell(R[A])")                                          \
  X(GETCELL, ABC, R, R, -, -, "R[A] = cell R[B].value")                                     \
  X(SETCELL, ABC, R, R, -, -, "cell R[A].value = R[B]")                                     \
  X(GETUPVAL, ABC, R, U, -, -, "R[A] = captured cell B .value")                             \
  X(SETUPVAL, ABC, R, U, -, -, "captured cell B .value = R[A]")                             \
  X(ADD, ABC, R, R, R, -, "R[A] = R[B] + R[C]")                                             \
  X(SUB, ABC, R, R, R, -, "R[A] = R[B] - R[C]")                                             \
  X(MUL, ABC, R, R, R, -, "R[A] = R[B] * R[C]")                                             \
  X(DIV, ABC, R, R, R, -, "R[A] = R[B] / R[C]")                                             \
  X(MOD, ABC, R, R, R, -, "R[A] = R[B] % R[C]")                                             \
  X(POW, ABC, R, R, R, -, "R[A] = R[B] ** R[C]")                                            \
  X(BAND, ABC, R, R, R, -, "R[A] = R[B] & R[C]")                                            \
  X(BOR, ABC, R, R, R, -, "R[A] = R[B] | R[C]")                                             \
  X(BXOR, ABC, R, R, R, -, "R[A] = R[B] ^ R[C]")                                            \
  X(SHL, ABC, R, R, R, -, "R[A] = R[B] << R[C]")                                            \
  X(SHR, ABC, R, R, R, -, "R[A] = R[B] >> R[C]")                                            \
  X(ADDI, ABC, R, R, I, -, "R[A] = R[B] + sC")                                              \
  X(ADDK, ABC, R, R, K, -, "R[A] = R[B] + K[C]")                                            \
  X(SUBK, ABC, R, R, K, -, "R[A] = R[B] - K[C]")                                            \
  X(MULK, ABC, R, R, K, -, "R[A] = R[B] * K[C]")                                            \
  X(DIVK, ABC, R, R, K, -, "R[A] = R[B] / K[C]")                                            \
  X(MODK, ABC, R, R, K, -, "R[A] = R[B] % K[C]")                                            \
  X(NEG, ABC, R, R, -, -, "R[A] = -R[B]")                                                   \
  X(NOT, ABC, R, R, -, -, "R[A] = not R[B] (Bool only)")                                    \
  X(EQ, ABC, R, R, R, -, "R[A] = R[B] == R[C]")                                             \
  X(NE, ABC, R, R, R, -, "R[A] = R[B] != R[C]")                                             \
  X(LT, ABC, R, R, R, -, "R[A] = R[B] < R[C]")                                              \
  X(LE, ABC, R, R, R, -, "R[A] = R[B] <= R[C]")                                             \
  X(TEST, ABC, R, U, U, -, "skip next unless R[A] (Bool) == C; B: error wording")         \
  X(TEQ, ABC, R, R, U, -, "skip next unless (R[A] == R[B]) == C")                           \
  X(TLT, ABC, R, R, U, -, "skip next unless (R[A] < R[B]) == C")                            \
  X(TLE, ABC, R, R, U, -, "skip next unless (R[A] <= R[B]) == C")                           \
  X(TEQI, ABC, R, I, U, -, "skip next unless (R[A] == sB) == C")                            \
  X(TLTI, ABC, R, I, U, -, "skip next unless (R[A] < sB) == C")                             \
  X(TLEI, ABC, R, I, U, -, "skip next unless (R[A] <= sB) == C")                            \
  X(TGTI, ABC, R, I, U, -, "skip next unless (R[A] > sB) == C")                             \
  X(TGEI, ABC, R, I, U, -, "skip next unless (R[A] >= sB) == C")                            \
  X(JMP, AsBx, -, J, -, -, "ip += sBx")                                                     \
  X(CALL, ABC, R, U, -, -, "R[A] = R[A](R[A+1] .. R[A+B])")                                 \
  X(INVOKE, ABC, R, U, -, E, "R[A] = R[A+1].symbol(R[A+2] .. R[A+1+B])")                    \
  X(RET, ABC, R, -, -, -, "return R[A]")                                                    \
  X(RETNONE, ABC, -, -, -, -, "return None")                                                \
  X(TESTARG, AsBx, U, J, -, -, "if argument A was passed: ip += sBx")                       \
  X(CHECKRET, ABC, R, -, -, -, "check R[A] against the return annotation")                  \
  X(NEWARRAY, ABC, R, R, U, -, "R[A] = [R[B] .. R[B+C-1]]")                                 \
  X(APPEND, ABC, R, R, -, -, "array R[A].push(R[B])")                                       \
  X(NEWMAP, ABC, R, R, U, -, "R[A] = {R[B]: R[B+1], ...} (C pairs)")                        \
  X(NEWSTRUCT, ABC, R, R, -, E, "R[A] = struct[extra] { fields R[B] .. }")                  \
  X(NEWENUM, ABC, R, R, -, E, "R[A] = enum (extra = enum<<16 | variant) (payload R[B]..)")  \
  X(GETFIELD, ABC, R, R, -, E, "R[A] = R[B].symbol")                                        \
  X(SETFIELD, ABC, R, R, -, E, "R[A].symbol = R[B]")                                        \
  X(GETINDEX, ABC, R, R, R, -, "R[A] = R[B][R[C]]")                                         \
  X(SETINDEX, ABC, R, R, R, -, "R[A][R[B]] = R[C]")                                         \
  X(GETINDEX2, ABC, R, R, R, -, "R[A] = R[B][R[C], R[C+1]]")                                \
  X(SETINDEX2, ABC, R, R, R, -, "R[A][R[B], R[B+1]] = R[C]")                                \
  X(NEWRANGE, ABC, R, R, U, -, "R[A] = R[B]..R[B+1] (C: inclusive)")                        \
  X(BUILDSTR, ABC, R, R, U, -, "R[A] = str(R[B]) + ... + str(R[B+C-1])")                    \
  X(FORPREP, AsBx, R, J, -, -, "int loop over R[A]..R[A+1] step R[A+2]; skip by sBx if empty")\
  X(FORPREPI, AsBx, R, J, -, -, "as FORPREP, inclusive end")                                \
  X(FORLOOP, AsBx, R, J, -, -, "next int: R[A+3] = value, ip += sBx")                       \
  X(ITERINIT, ABC, R, R, -, -, "R[A] = iterator over R[B]; R[A+1] = state")                 \
  X(ITERNEXT, AsBx, R, J, -, -, "R[A+2] = next element, or ip += sBx when done")            \
  X(TRY, ABC, R, R, -, -, "R[A] = unwrap R[B], or return R[B] (Err/None) from the function") \
  X(MATCHENUM, ABC, R, -, U, E, "skip next unless (R[A] is variant extra) == C")            \
  X(MATCHSTRUCT, ABC, R, -, U, E, "skip next unless (R[A] is struct extra) == C")           \
  X(MATCHARRAY, ABC, R, U, U, -, "skip next unless (R[A] is an array of length B) == C")    \
  X(GETPAYLOAD, ABC, R, R, U, -, "R[A] = enum R[B] payload C")                              \
  X(NOMATCH, ABC, R, -, -, -, "raise 'no match arm for R[A]'")                             \
  X(BNOT, ABC, R, R, -, -, "R[A] = ~R[B] (Int only)")                                       \
  X(FORMAT, ABx, R, K, -, -, "R[A] = R[A] formatted by the format spec K[Bx] (a String)")

enum class Op : uint8_t {
#define SHAPEX_OP_ENUM(name, fmt, a, b, c, x, doc) k##name,
  SHAPEX_OPCODES(SHAPEX_OP_ENUM)
#undef SHAPEX_OP_ENUM
};

#define SHAPEX_OP_COUNT(name, fmt, a, b, c, x, doc) +1
inline constexpr int kNumOps = 0 SHAPEX_OPCODES(SHAPEX_OP_COUNT);
#undef SHAPEX_OP_COUNT

const char* OpName(Op op);
// True when the instruction is followed by an extra word.
bool OpHasExtra(Op op);

// ---- instruction encoding ----
namespace code {
inline constexpr uint32_t kMaxA = 255;
inline constexpr int kMaxSBx = 32767;
inline constexpr int kMinSBx = -32768;
inline uint32_t ABC(Op op, uint32_t a, uint32_t b, uint32_t c) {
  return static_cast<uint32_t>(op) | (a << 8) | (b << 16) | (c << 24);
}
inline uint32_t ABx(Op op, uint32_t a, uint32_t bx) {
  return static_cast<uint32_t>(op) | (a << 8) | (bx << 16);
}
inline uint32_t AsBx(Op op, uint32_t a, int32_t sbx) {
  return static_cast<uint32_t>(op) | (a << 8) | (static_cast<uint32_t>(sbx & 0xffff) << 16);
}
inline Op GetOp(uint32_t i) { return static_cast<Op>(i & 0xff); }
inline uint32_t GetA(uint32_t i) { return (i >> 8) & 0xff; }
inline uint32_t GetB(uint32_t i) { return (i >> 16) & 0xff; }
inline uint32_t GetC(uint32_t i) { return i >> 24; }
inline int32_t GetSB(uint32_t i) { return static_cast<int8_t>((i >> 16) & 0xff); }
inline int32_t GetSC(uint32_t i) { return static_cast<int8_t>(i >> 24); }
inline uint32_t GetBx(uint32_t i) { return i >> 16; }
inline int32_t GetSBx(uint32_t i) { return static_cast<int16_t>(i >> 16); }
}  // namespace code

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_OPCODES_H_
