// TypeRegistry: maps the struct/enum schemas that arrive with values (WireTypeSchema) to engine
// types of one Program, the receiving side of the seed's TypeSchemaRegistry.
//
//   TypeRegistry types(vm.program());
//   ASSIGN_OR_RETURN(const engine::StructType* point, types.ResolveStruct(schema));
//
// A schema resolves to the Program's own type when one has the same name and the same field
// names (enums: variant names and arities), so received values match the program's patterns,
// use its methods and compare equal to its values. Otherwise the registry creates a new type
// and owns it; fields of a new type are still reachable by name from the program's code
// (field symbols are looked up in Program::symbols). Equal schemas resolve to the same type.
//
// Lifetime: values built with a registry point at its types, so the registry must outlive
// every Vm value built from it (declare it before the Vm). Not thread-safe.
#ifndef SHAPEX_IPC_TYPE_REGISTRY_H_
#define SHAPEX_IPC_TYPE_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/program.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc {

class TypeRegistry {
 public:
  explicit TypeRegistry(const engine::Program& program) : program_(program) {}
  TypeRegistry(const TypeRegistry&) = delete;
  TypeRegistry& operator=(const TypeRegistry&) = delete;

  // ArgumentError when the schema is not a struct schema or is malformed.
  Result<const engine::StructType*> ResolveStruct(const WireTypeSchema& schema);
  // ArgumentError when the schema is not an enum schema or is malformed.
  Result<const engine::EnumType*> ResolveEnum(const WireTypeSchema& schema);

  // Types created because the Program had no match.
  size_t created_types() const { return structs_.size() + enums_.size(); }

  // The schema of an engine type (the sending side's view).
  static WireTypeSchema SchemaOf(const engine::StructType& type);
  static WireTypeSchema SchemaOf(const engine::EnumType& type);

 private:
  const engine::Program& program_;
  std::map<std::string, const void*> resolved_;  // schema key -> StructType* / EnumType*
  std::vector<std::unique_ptr<engine::StructType>> structs_;
  std::vector<std::unique_ptr<engine::EnumType>> enums_;
};

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_TYPE_REGISTRY_H_
