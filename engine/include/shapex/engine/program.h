// Program: the compiler's output and the VM's input. A Program is a set of function prototypes
// (bytecode + constants + debug info), the struct and enum types they use, a symbol table for
// field and method names, and the number of module globals.
//
// A Program is immutable once built; one Program can be run by many VMs (each VM has its own
// heap, globals and stacks). Constants are created as permanent heap objects owned by the
// Program (ConstantPool) and are never collected.
//
// Untrusted programs (later: blobs from peers) must pass Verify() (verifier.h) before a VM
// runs them; the VM relies on the verifier's guarantees for register, constant and jump bounds.
#ifndef SHAPEX_ENGINE_PROGRAM_H_
#define SHAPEX_ENGINE_PROGRAM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shapex/engine/value.h"

namespace shapex::engine {

// A type annotation: `int`, `Option<int>`, `Vec<f64>`, `Point` ...
struct TypeSpec {
  enum class Kind : uint8_t {
    kAny,
    kInt,
    kNumber,
    kBool,
    kString,
    kArray,
    kMap,
    kFunction,
    kMatrix,
    kRange,
    kNone,
    kVec,     // elem = element kind
    kStruct,  // index into Program::structs
    kEnum,    // index into Program::enums
    kOption,  // args[0]
    kResult,  // args[0], args[1]
  };
  Kind kind = Kind::kAny;
  ElemKind elem = ElemKind::kF64;
  uint32_t index = 0;
  std::vector<TypeSpec> args;
};
std::string TypeSpecName(const TypeSpec& t, const struct Program& p);

struct StructType {
  std::string name;
  std::vector<std::string> field_names;
  std::vector<uint32_t> field_symbols;  // Program::symbols index per field
  // Methods from `impl`: symbol -> proto index (self methods and static functions).
  std::vector<std::pair<uint32_t, uint32_t>> methods;
  int FieldIndex(uint32_t symbol) const {
    for (size_t i = 0; i < field_symbols.size(); ++i)
      if (field_symbols[i] == symbol) return static_cast<int>(i);
    return -1;
  }
};

struct EnumType {
  std::string name;
  std::vector<std::string> variant_names;
  std::vector<uint32_t> variant_arity;
  std::vector<std::pair<uint32_t, uint32_t>> methods;  // symbol -> proto index
  bool builtin = false;                                // Option / Result: printed without prefix
};

// The built-in enum types. Option: variant 0 = Some(x). Result: 0 = Ok(x), 1 = Err(e).
const EnumType* OptionType();
const EnumType* ResultType();
inline constexpr uint32_t kSomeVariant = 0;
inline constexpr uint32_t kOkVariant = 0;
inline constexpr uint32_t kErrVariant = 1;

// How a closure obtains each captured cell when it is created.
struct CaptureDesc {
  bool from_parent_local;  // true: parent's register `index` holds the cell; false: parent's cell
  uint8_t index;
};

// One compiled function.
struct Proto {
  uint32_t index = 0;              // position in Program::protos (checked by the verifier)
  std::string name;                // "add", "<closure>", "<script>", "Point.len"
  uint32_t num_params = 0;         // including self for methods
  uint32_t num_required = 0;       // params without defaults
  uint32_t num_regs = 0;           // frame size in registers (<= 255)
  bool has_return_type = false;
  std::vector<TypeSpec> param_types;  // num_params entries (kAny when unannotated)
  std::vector<std::string> param_names;
  TypeSpec return_type;
  std::vector<uint32_t> code;
  std::vector<Value> constants;       // Int, Number, String (permanent objects)
  std::vector<uint32_t> fn_refs;      // Program::protos indices, used by FUNC/CLOSURE
  std::vector<std::string> natives;   // qualified native names, used by NATIVE
  std::vector<CaptureDesc> captures;  // closure prototypes only
  std::vector<uint32_t> lines;        // source line per instruction word
  bool is_closure = false;
  bool remote = false;  // declared @remote
};

struct Program {
  std::string source_name;
  std::vector<std::unique_ptr<Proto>> protos;
  std::vector<std::unique_ptr<StructType>> structs;
  std::vector<std::unique_ptr<EnumType>> enums;
  std::vector<std::string> symbols;  // field and method names
  std::vector<std::string> global_names;
  uint32_t script = 0;   // proto index of the top-level code
  int32_t main = -1;     // proto index of main, or -1
  // Named top-level functions: name -> proto index.
  std::vector<std::pair<std::string, uint32_t>> functions;
  // Owner of permanent constant objects (strings); freed with the program.
  std::vector<std::unique_ptr<Obj, void (*)(Obj*)>> constant_objects;

  int FindFunction(const std::string& name) const;
  Value NewConstantString(std::string s);
};

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_PROGRAM_H_
