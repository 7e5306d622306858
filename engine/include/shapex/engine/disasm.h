// Disassembler: a readable listing of a Program's bytecode, generated from the SHAPEX_OPCODES
// table (opcodes.h). Used by `shapex disasm` and in tests; the format is for humans and may
// change.
//
//   function add (params 2, regs 3, constants 0)
//      0     4  ADD         2 0 1
//      1     4  RET         2
//
// Each instruction line is `pc  line  OPNAME  operands` followed, where helpful, by a `;`
// comment naming what an operand refers to: constants (printed quoted), function references,
// natives, globals, symbols, struct and enum types, and jump targets (`-> 12`).
//
// Safe on unverified programs: an out-of-range reference is printed as `?` instead of being
// followed. Thread-safe: reads the Program only.
#ifndef SHAPEX_ENGINE_DISASM_H_
#define SHAPEX_ENGINE_DISASM_H_

#include <string>

#include "shapex/engine/program.h"

namespace shapex::engine {

// One function: a header line, then one line per instruction.
std::string Disassemble(const Program& program, const Proto& proto);
// Every function of the program in index order, separated by blank lines.
std::string DisassembleProgram(const Program& program);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_DISASM_H_
