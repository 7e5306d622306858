// OpName / OpHasExtra (opcodes.h), from the table metadata in opcode_info.h.
#include "shapex/engine/opcodes.h"

#include "opcode_info.h"

namespace shapex::engine {

const char* OpName(Op op) {
  auto index = static_cast<uint8_t>(op);
  return index < kNumOps ? kOpInfo[index].name : "???";
}

bool OpHasExtra(Op op) {
  auto index = static_cast<uint8_t>(op);
  return index < kNumOps && kOpInfo[index].extra;
}

}  // namespace shapex::engine
