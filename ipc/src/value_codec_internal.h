// Pieces of the value codec that messages.cc reuses: a message carries one schema table for all
// of its values (arguments, captures or the result).
#ifndef SHAPEX_IPC_SRC_VALUE_CODEC_INTERNAL_H_
#define SHAPEX_IPC_SRC_VALUE_CODEC_INTERNAL_H_

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "msgpack_io.h"
#include "shapex/core/result.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc::internal {

// An unambiguous key for a schema's content (every string length-prefixed).
std::string SchemaKey(const WireTypeSchema& schema);

// Collects the distinct schemas of some values (by content, in first-use order) and packs them.
class SchemaTableWriter {
 public:
  void Collect(const WireValue& v);
  uint32_t Add(const WireTypeSchema& schema);
  // Index of a schema seen by Collect/Add.
  uint32_t IndexOf(const WireTypeSchema* schema) const;
  void Pack(Packer& pk) const;

 private:
  std::map<std::string, uint32_t> by_content_;
  std::unordered_map<const WireTypeSchema*, uint32_t> by_address_;
  std::vector<const WireTypeSchema*> schemas_;
};

// Packs a value whose schemas were collected into `schemas`.
void PackValue(Packer& pk, const WireValue& v, const SchemaTableWriter& schemas);

using SchemaList = std::vector<SchemaPtr>;
Result<SchemaList> ReadSchemaTable(const msgpack::object& o);
// `depth` is the wire depth `o` has if it is a container (1 for a root value).
Result<WireValue> ReadValue(const msgpack::object& o, const SchemaList& schemas, int depth = 1);

}  // namespace shapex::ipc::internal

#endif  // SHAPEX_IPC_SRC_VALUE_CODEC_INTERNAL_H_
