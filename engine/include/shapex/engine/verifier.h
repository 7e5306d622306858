// Verify: the bytecode verifier. A Program that passes can be run by the VM without any
// out-of-bounds access: every register, constant, function, native, global, symbol, struct and
// enum reference is in range, every jump lands on an instruction boundary, no instruction runs
// off the end of its function, and closure captures refer to existing registers or cells.
//
// Usage:
//   ASSIGN_OR_RETURN(auto program, Compile(source, "prog.shape"));
//   RETURN_IF_ERROR(Verify(*program));   // mandatory for programs that came from elsewhere
//   Vm vm(*program, limits);
//
// What it does NOT check: that native names exist (a separate link step reports
// MissingModuleFunction), or anything that depends on runtime values (types, array lengths,
// argument counts); the VM checks those as it runs.
//
// On failure returns an InvalidArgument Status whose message starts with "invalid bytecode"
// and names the function and instruction, e.g.
//   "invalid bytecode in add at pc 3: register 9 out of range (num_regs 4)".
// Thread-safe: reads the Program only.
#ifndef SHAPEX_ENGINE_VERIFIER_H_
#define SHAPEX_ENGINE_VERIFIER_H_

#include "shapex/core/status.h"
#include "shapex/engine/program.h"

namespace shapex::engine {

Status Verify(const Program& program);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_VERIFIER_H_
