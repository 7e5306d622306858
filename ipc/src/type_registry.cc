#include "shapex/ipc/type_registry.h"

#include <fmt/format.h>

#include <cstdint>
#include <set>

#include "shapex/ipc/value_codec.h"
#include "value_codec_internal.h"

namespace shapex::ipc {
namespace {

Status CheckNames(const WireTypeSchema& s) {
  if (s.name.empty() || s.name.size() > kMaxSchemaNameBytes)
    return ArgumentError("type schema has an empty or overlong name");
  if (s.names.size() > kMaxSchemaNames)
    return ArgumentError(fmt::format("type {} has too many members", s.name));
  std::set<std::string_view> seen;
  for (const std::string& n : s.names) {
    if (n.size() > kMaxSchemaNameBytes)
      return ArgumentError(fmt::format("type {} has an overlong member name", s.name));
    if (!seen.insert(n).second)
      return ArgumentError(fmt::format("type {} names '{}' twice", s.name, n));
  }
  return Status::Ok();
}

}  // namespace

WireTypeSchema TypeRegistry::SchemaOf(const engine::StructType& type) {
  return WireTypeSchema{WireTypeSchema::Kind::kStruct, type.name, type.field_names, {}};
}

WireTypeSchema TypeRegistry::SchemaOf(const engine::EnumType& type) {
  return WireTypeSchema{WireTypeSchema::Kind::kEnum, type.name, type.variant_names,
                        type.variant_arity};
}

Result<const engine::StructType*> TypeRegistry::ResolveStruct(const WireTypeSchema& schema) {
  if (schema.kind != WireTypeSchema::Kind::kStruct || !schema.arity.empty())
    return ArgumentError(fmt::format("'{}' is not a struct schema", schema.name));
  std::string key = internal::SchemaKey(schema);
  if (auto it = resolved_.find(key); it != resolved_.end())
    return static_cast<const engine::StructType*>(it->second);
  RETURN_IF_ERROR(CheckNames(schema));
  const engine::StructType* found = nullptr;
  for (const auto& st : program_.structs) {
    if (st->name == schema.name && st->field_names == schema.names) {
      found = st.get();
      break;
    }
  }
  if (found == nullptr) {
    auto st = std::make_unique<engine::StructType>();
    st->name = schema.name;
    st->field_names = schema.names;
    // Field access compiles to a symbol of the program's table; a field whose name the program
    // never mentions gets a symbol no instruction can carry.
    for (const std::string& field : schema.names) {
      uint32_t symbol = UINT32_MAX;
      for (size_t i = 0; i < program_.symbols.size(); ++i) {
        if (program_.symbols[i] == field) {
          symbol = static_cast<uint32_t>(i);
          break;
        }
      }
      st->field_symbols.push_back(symbol);
    }
    found = st.get();
    structs_.push_back(std::move(st));
  }
  resolved_.emplace(std::move(key), found);
  return found;
}

Result<const engine::EnumType*> TypeRegistry::ResolveEnum(const WireTypeSchema& schema) {
  if (schema.kind != WireTypeSchema::Kind::kEnum || schema.arity.size() != schema.names.size())
    return ArgumentError(fmt::format("'{}' is not an enum schema", schema.name));
  std::string key = internal::SchemaKey(schema);
  if (auto it = resolved_.find(key); it != resolved_.end())
    return static_cast<const engine::EnumType*>(it->second);
  RETURN_IF_ERROR(CheckNames(schema));
  for (uint32_t a : schema.arity)
    if (a > kMaxEnumArity)
      return ArgumentError(fmt::format("enum {} has a variant with {} fields", schema.name, a));
  const engine::EnumType* found = nullptr;
  for (const auto& et : program_.enums) {
    if (!et->builtin && et->name == schema.name && et->variant_names == schema.names &&
        et->variant_arity == schema.arity) {
      found = et.get();
      break;
    }
  }
  if (found == nullptr) {
    auto et = std::make_unique<engine::EnumType>();
    et->name = schema.name;
    et->variant_names = schema.names;
    et->variant_arity = schema.arity;
    found = et.get();
    enums_.push_back(std::move(et));
  }
  resolved_.emplace(std::move(key), found);
  return found;
}

}  // namespace shapex::ipc
