// Program -> content-addressed blobs: table remapping, recursion groups (Tarjan's strongly
// connected components, callees first), hashing, and minimal closures.
#include <algorithm>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "blob_body.h"
#include "shapex/engine/verifier.h"

namespace shapex::engine {
namespace {

TypeSchema SchemaOf(const StructType& st) {
  return TypeSchema{TypeSchema::kStruct, st.name, st.field_names, {}};
}
TypeSchema SchemaOf(const EnumType& et) {
  return TypeSchema{TypeSchema::kEnum, et.name, et.variant_names, et.variant_arity};
}

// Builds a body whose operands refer to its own tables. fn_refs are filled in later.
class LocalBodyBuilder {
 public:
  explicit LocalBodyBuilder(const Program& p) : p_(p) {}

  BlobBody Build(const Proto& proto) {
    body_ = BlobBody{};
    symbols_.clear();
    globals_.clear();
    types_.clear();
    body_.num_params = proto.num_params;
    body_.num_required = proto.num_required;
    body_.num_regs = proto.num_regs;
    body_.flags = (proto.is_closure ? kFlagClosure : 0) |
                  (proto.has_return_type ? kFlagReturnType : 0) | (proto.remote ? kFlagRemote : 0);
    for (const TypeSpec& t : proto.param_types) body_.param_types.push_back(MapType(t));
    body_.return_type = MapType(proto.return_type);
    body_.code = proto.code;
    for (size_t pc = 0; pc < body_.code.size(); ++pc) {
      uint32_t& word = body_.code[pc];
      Op op = code::GetOp(word);
      if (op == Op::kGETGLOBAL || op == Op::kSETGLOBAL)
        word = code::ABx(op, code::GetA(word), Global(p_.global_names[code::GetBx(word)]));
      if (!OpHasExtra(op)) continue;
      uint32_t& extra = body_.code[++pc];
      switch (ExtraRemapKind(op)) {
        case RemapKind::kSymbol: extra = Symbol(p_.symbols[extra]); break;
        case RemapKind::kStruct: extra = Type(SchemaOf(*p_.structs[extra])); break;
        case RemapKind::kEnum: {
          uint32_t id = extra >> 16;
          if (id != 0xFFFF && id != 0xFFFE) extra = Type(SchemaOf(*p_.enums[id])) << 16 | (extra & 0xffff);
          break;
        }
        default: break;
      }
    }
    for (const Value& v : proto.constants) {
      BlobConstant c;
      if (v.type == Type::kInt) {
        c.tag = BlobConstant::kInt;
        c.i = v.as.i;
      } else if (v.type == Type::kNumber) {
        c.tag = BlobConstant::kNumber;
        c.n = v.as.n;
      } else {
        c.tag = BlobConstant::kString;
        c.s = AsString(v)->str;
      }
      body_.constants.push_back(std::move(c));
    }
    body_.natives = proto.natives;
    body_.captures = proto.captures;
    return std::move(body_);
  }

 private:
  uint32_t Intern(std::map<std::string, uint32_t>* map, std::vector<std::string>* table,
                  const std::string& name) {
    auto [it, inserted] = map->emplace(name, static_cast<uint32_t>(table->size()));
    if (inserted) table->push_back(name);
    return it->second;
  }
  uint32_t Symbol(const std::string& s) { return Intern(&symbols_, &body_.symbols, s); }
  uint32_t Global(const std::string& s) { return Intern(&globals_, &body_.globals, s); }
  uint32_t Type(const TypeSchema& schema) {
    std::vector<uint8_t> key = EncodeSchema(schema);
    auto [it, inserted] = types_.emplace(key, static_cast<uint32_t>(body_.types.size()));
    if (inserted) body_.types.push_back(schema);
    return it->second;
  }
  TypeSpec MapType(const TypeSpec& t) {
    TypeSpec out = t;
    if (t.kind == TypeSpec::Kind::kStruct) out.index = Type(SchemaOf(*p_.structs[t.index]));
    if (t.kind == TypeSpec::Kind::kEnum) out.index = Type(SchemaOf(*p_.enums[t.index]));
    for (size_t i = 0; i < t.args.size(); ++i) out.args[i] = MapType(t.args[i]);
    return out;
  }

  const Program& p_;
  BlobBody body_;
  std::map<std::string, uint32_t> symbols_, globals_;
  std::map<std::vector<uint8_t>, uint32_t> types_;
};

// Strongly connected components of the fn_refs graph, callees before callers.
std::vector<std::vector<uint32_t>> Components(const Program& p) {
  size_t n = p.protos.size();
  std::vector<int> index(n, -1), low(n, 0);
  std::vector<bool> on_stack(n, false);
  std::vector<uint32_t> stack;
  std::vector<std::vector<uint32_t>> out;
  int counter = 0;
  struct Item {
    uint32_t v;
    size_t next;
  };
  for (uint32_t root = 0; root < n; ++root) {
    if (index[root] >= 0) continue;
    std::vector<Item> work{{root, 0}};
    index[root] = low[root] = counter++;
    stack.push_back(root);
    on_stack[root] = true;
    while (!work.empty()) {
      Item& it = work.back();
      const auto& refs = p.protos[it.v]->fn_refs;
      if (it.next < refs.size()) {
        uint32_t w = refs[it.next++];
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push_back(w);
          on_stack[w] = true;
          work.push_back({w, 0});
        } else if (on_stack[w]) {
          low[it.v] = std::min(low[it.v], index[w]);
        }
        continue;
      }
      uint32_t v = it.v;
      work.pop_back();
      if (!work.empty()) low[work.back().v] = std::min(low[work.back().v], low[v]);
      if (low[v] != index[v]) continue;
      std::vector<uint32_t> comp;
      uint32_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        comp.push_back(w);
      } while (w != v);
      std::sort(comp.begin(), comp.end());
      out.push_back(std::move(comp));
    }
  }
  return out;
}

}  // namespace

Result<ProgramBlobs> BuildProgramBlobs(const Program& program) {
  RETURN_IF_ERROR(Verify(program));
  const size_t n = program.protos.size();
  LocalBodyBuilder builder(program);
  std::vector<BlobBody> bodies;
  bodies.reserve(n);
  for (const auto& proto : program.protos) bodies.push_back(builder.Build(*proto));

  ProgramBlobs pb;
  pb.proto_hashes.resize(n);
  std::vector<FunctionBlob> blobs(n);
  std::vector<bool> hashed(n, false);
  for (const std::vector<uint32_t>& comp : Components(program)) {
    // Encodes member m with in-group references resolved through `order` (member -> index).
    auto encode = [&](uint32_t m, const std::map<uint32_t, uint32_t>& order, uint32_t size) {
      BlobBody body = bodies[m];
      body.group_size = size;
      body.group_index = order.empty() ? 0 : order.at(m);
      for (uint32_t target : program.protos[m]->fn_refs) {
        BlobFnRef ref;
        if (std::binary_search(comp.begin(), comp.end(), target)) {
          ref.in_group = true;
          ref.index = order.empty() ? 0 : order.at(target);
        } else {
          ref.hash = pb.proto_hashes[target];
        }
        body.fn_refs.push_back(ref);
      }
      return EncodeBody(body);
    };
    if (comp.size() == 1) {
      uint32_t m = comp[0];
      blobs[m].canonical = encode(m, {}, 1);
      blobs[m].hash = Sha256(blobs[m].canonical);
      pb.proto_hashes[m] = blobs[m].hash;
      continue;
    }
    // Canonical member order: by the hash of each member's shape (its bytes with every
    // in-group reference written as index 0), ties by source order.
    std::vector<std::pair<FunctionHash, uint32_t>> shapes;
    for (uint32_t m : comp) shapes.push_back({Sha256(encode(m, {}, static_cast<uint32_t>(comp.size()))), m});
    std::sort(shapes.begin(), shapes.end());
    std::map<uint32_t, uint32_t> order;
    for (uint32_t k = 0; k < shapes.size(); ++k) order[shapes[k].second] = k;
    std::vector<std::vector<uint8_t>> canon;
    for (auto& [shape, m] : shapes)
      canon.push_back(encode(m, order, static_cast<uint32_t>(comp.size())));
    std::vector<FunctionHash> hashes = GroupMemberHashes(canon);
    for (uint32_t k = 0; k < shapes.size(); ++k) {
      uint32_t m = shapes[k].second;
      blobs[m].canonical = std::move(canon[k]);
      blobs[m].hash = hashes[k];
      blobs[m].group = hashes;
      pb.proto_hashes[m] = hashes[k];
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const Proto& p = *program.protos[i];
    blobs[i].debug = BlobDebugInfo{p.name, program.source_name, p.lines, p.param_names};
  }
  pb.blobs = std::move(blobs);
  auto add_impls = [&](const TypeSchema& schema,
                       const std::vector<std::pair<uint32_t, uint32_t>>& methods) {
    FunctionHash type_hash = Sha256(EncodeSchema(schema));
    for (auto& [symbol, proto] : methods)
      pb.impls.push_back({type_hash, program.symbols[symbol], pb.proto_hashes[proto]});
  };
  for (const auto& st : program.structs) add_impls(SchemaOf(*st), st->methods);
  for (const auto& et : program.enums) add_impls(SchemaOf(*et), et->methods);
  return pb;
}

Result<BlobSet> MinimalBlobsByHash(const ProgramBlobs& pb, const FunctionHash& entry) {
  std::unordered_map<std::string, size_t> by_hash;
  for (size_t i = 0; i < pb.blobs.size(); ++i) by_hash.emplace(HashToHex(pb.blobs[i].hash), i);
  if (!by_hash.count(HashToHex(entry)))
    return FunctionNotFoundError("no function with hash " + HashToHex(entry));
  BlobSet set;
  set.entry = entry;
  std::vector<bool> taken(pb.blobs.size(), false);
  std::vector<bool> impl_taken(pb.impls.size(), false);
  std::vector<FunctionHash> queue{entry};
  while (!queue.empty()) {
    FunctionHash h = queue.back();
    queue.pop_back();
    auto it = by_hash.find(HashToHex(h));
    if (it == by_hash.end() || taken[it->second]) continue;
    taken[it->second] = true;
    const FunctionBlob& blob = pb.blobs[it->second];
    set.blobs.push_back(blob);
    ASSIGN_OR_RETURN(BlobBody body, DecodeBody(blob.canonical));
    for (const BlobFnRef& ref : body.fn_refs)
      queue.push_back(!ref.in_group ? ref.hash : blob.group.empty() ? blob.hash : blob.group.at(ref.index));
    for (const TypeSchema& schema : body.types) {
      FunctionHash type_hash = Sha256(EncodeSchema(schema));
      for (size_t i = 0; i < pb.impls.size(); ++i) {
        if (impl_taken[i] || pb.impls[i].type_schema != type_hash) continue;
        impl_taken[i] = true;
        set.impls.push_back(pb.impls[i]);
        queue.push_back(pb.impls[i].function);
      }
    }
  }
  return set;
}

Result<BlobSet> MinimalBlobs(const ProgramBlobs& pb, std::string_view name) {
  std::vector<const FunctionBlob*> matches;
  for (const FunctionBlob& b : pb.blobs)
    if (b.debug.name == name) matches.push_back(&b);
  if (matches.empty()) return FunctionNotFoundError(fmt::format("no function named '{}'", name));
  if (matches.size() > 1)
    return FunctionNotFoundError(
        fmt::format("function name '{}' is ambiguous ({} functions match)", name, matches.size()));
  return MinimalBlobsByHash(pb, matches[0]->hash);
}

FunctionHash TypeSchemaHash(const StructType& type) { return Sha256(EncodeSchema(SchemaOf(type))); }
FunctionHash TypeSchemaHash(const EnumType& type) { return Sha256(EncodeSchema(SchemaOf(type))); }

std::vector<uint32_t> GlobalsUsedBy(const Proto& proto) {
  std::vector<uint32_t> slots;
  for (size_t pc = 0; pc < proto.code.size(); ++pc) {
    uint32_t word = proto.code[pc];
    Op op = code::GetOp(word);
    if (op == Op::kGETGLOBAL || op == Op::kSETGLOBAL) slots.push_back(code::GetBx(word));
    if (OpHasExtra(op)) ++pc;
  }
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  return slots;
}

}  // namespace shapex::engine
