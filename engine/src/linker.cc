// Blobs -> runnable Program. Every blob is untrusted: its hash is recomputed (per recursion
// group), every dependency must be present, every table index is bounds-checked while the
// operands are remapped into the new Program's tables, and the bytecode verifier runs last.
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "blob_body.h"
#include "shapex/engine/natives.h"
#include "shapex/engine/verifier.h"

namespace shapex::engine {
namespace {

struct Entry {
  const FunctionBlob* blob;
  BlobBody body;
};

class Linker {
 public:
  explicit Linker(const std::vector<FunctionBlob>& blobs) {
    for (const FunctionBlob& b : blobs) by_hash_.emplace(HashToHex(b.hash), &b);
  }

  Result<LinkedProgram> Link(const FunctionHash& entry, const std::vector<ImplEntry>& impls,
                             const std::vector<FunctionHash>& roots,
                             const std::vector<ValueType>& value_types) {
    std::vector<TypeSchema> extra;
    for (const ValueType& t : value_types) {
      if (t.is_enum && t.arity.size() != t.names.size())
        return ProtocolError("value type " + t.name + ": arities do not match its variants");
      extra.push_back(TypeSchema{t.is_enum ? TypeSchema::kEnum : TypeSchema::kStruct, t.name,
                                 t.names, t.is_enum ? t.arity : std::vector<uint32_t>{}});
    }
    if (!by_hash_.count(HashToHex(entry)))
      return FunctionNotFoundError("entry function blob " + HashToHex(entry) + " is missing");
    for (const FunctionHash& root : roots)
      if (!by_hash_.count(HashToHex(root)))
        return FunctionNotFoundError("no function with hash " + HashToHex(root));
    RETURN_IF_ERROR(Collect(entry, impls, roots, extra));
    program_ = std::make_unique<Program>();
    program_->source_name = entries_.empty() ? "" : entries_[0].blob->debug.source_file;
    for (size_t i = 0; i < entries_.size(); ++i) {
      program_->protos.push_back(std::make_unique<Proto>());
      program_->protos.back()->index = static_cast<uint32_t>(i);
    }
    for (size_t i = 0; i < entries_.size(); ++i) RETURN_IF_ERROR(BuildProto(i));
    for (const TypeSchema& t : extra) TypeIndex(t);  // so their methods attach
    AttachMethods(impls);
    // A trivial script so a Vm can be constructed; there are no top-level statements.
    auto script = std::make_unique<Proto>();
    script->index = static_cast<uint32_t>(program_->protos.size());
    script->name = "<blobs>";
    script->num_regs = 1;
    script->code = {code::ABC(Op::kRETNONE, 0, 0, 0)};
    script->lines = {0};
    program_->script = script->index;
    program_->protos.push_back(std::move(script));
    Status verified = Verify(*program_);
    if (!verified.ok()) return Status(verified.kind(), verified.message());
    LinkedProgram out;
    out.program = std::move(program_);
    out.entry = 0;
    for (const Entry& e : entries_) out.proto_hashes.push_back(e.blob->hash);
    return out;
  }

 private:
  const FunctionBlob* Find(const FunctionHash& h) const {
    auto it = by_hash_.find(HashToHex(h));
    return it == by_hash_.end() ? nullptr : it->second;
  }

  // Verifies a blob's claimed hash (for a group: all members at once).
  Status VerifyHash(const FunctionBlob& blob, const BlobBody& body) {
    if (verified_.count(HashToHex(blob.hash))) return Status::Ok();
    std::vector<FunctionHash> proved;
    RETURN_IF_ERROR(VerifyBlobHash(
        blob, body, [this](const FunctionHash& h) { return Find(h); }, &proved));
    for (const FunctionHash& h : proved) verified_.insert({HashToHex(h), true});
    return Status::Ok();
  }

  FunctionHash Target(const Entry& e, const BlobFnRef& ref) const {
    if (!ref.in_group) return ref.hash;
    return e.blob->group.empty() ? e.blob->hash : e.blob->group[ref.index];
  }

  // Breadth-first closure of the entry: functions it references and methods of its types.
  Status Collect(const FunctionHash& entry, const std::vector<ImplEntry>& impls,
                 const std::vector<FunctionHash>& roots, const std::vector<TypeSchema>& extra) {
    std::vector<FunctionHash> queue{entry};
    queue.insert(queue.end(), roots.begin(), roots.end());
    std::vector<bool> impl_done(impls.size(), false);
    // The methods of value types are reached like those of the types the code names.
    for (const TypeSchema& schema : extra) {
      FunctionHash type_hash = Sha256(EncodeSchema(schema));
      for (size_t i = 0; i < impls.size(); ++i) {
        if (impl_done[i] || impls[i].type_schema != type_hash) continue;
        impl_done[i] = true;
        queue.push_back(impls[i].function);
      }
    }
    for (size_t head = 0; head < queue.size(); ++head) {
      std::string key = HashToHex(queue[head]);
      if (index_.count(key)) continue;
      const FunctionBlob* blob = Find(queue[head]);
      if (blob == nullptr) return ProtocolError("missing dependency " + key);
      ASSIGN_OR_RETURN(BlobBody body, DecodeBody(blob->canonical));
      RETURN_IF_ERROR(VerifyHash(*blob, body));
      index_[key] = static_cast<uint32_t>(entries_.size());
      entries_.push_back({blob, std::move(body)});
      const Entry& e = entries_.back();
      for (const BlobFnRef& ref : e.body.fn_refs) queue.push_back(Target(e, ref));
      for (const TypeSchema& schema : e.body.types) {
        FunctionHash type_hash = Sha256(EncodeSchema(schema));
        for (size_t i = 0; i < impls.size(); ++i) {
          if (impl_done[i] || impls[i].type_schema != type_hash) continue;
          impl_done[i] = true;
          queue.push_back(impls[i].function);
        }
      }
      if (entries_.size() > 100000) return ProtocolError("too many functions in blob set");
    }
    return Status::Ok();
  }

  uint32_t Intern(std::vector<std::string>* table, std::map<std::string, uint32_t>* map,
                  const std::string& name) {
    auto [it, inserted] = map->emplace(name, static_cast<uint32_t>(table->size()));
    if (inserted) table->push_back(name);
    return it->second;
  }

  // Program type index for a body type (structs and enums are numbered separately).
  uint32_t TypeIndex(const TypeSchema& s) {
    std::vector<uint8_t> key = EncodeSchema(s);
    auto it = types_.find(key);
    if (it != types_.end()) return it->second;
    uint32_t index;
    if (s.kind == TypeSchema::kStruct) {
      auto st = std::make_unique<StructType>();
      st->name = s.name;
      st->field_names = s.names;
      for (const auto& f : s.names) st->field_symbols.push_back(Intern(&program_->symbols, &symbols_, f));
      index = static_cast<uint32_t>(program_->structs.size());
      program_->structs.push_back(std::move(st));
    } else {
      auto et = std::make_unique<EnumType>();
      et->name = s.name;
      et->variant_names = s.names;
      et->variant_arity = s.arity;
      index = static_cast<uint32_t>(program_->enums.size());
      program_->enums.push_back(std::move(et));
    }
    types_.emplace(std::move(key), index);
    return index;
  }

  Status MapType(const BlobBody& body, TypeSpec* t) {
    if (t->kind == TypeSpec::Kind::kStruct || t->kind == TypeSpec::Kind::kEnum) {
      if (t->index >= body.types.size()) return ProtocolError("type annotation index out of range");
      const TypeSchema& s = body.types[t->index];
      bool want_struct = t->kind == TypeSpec::Kind::kStruct;
      if (want_struct != (s.kind == TypeSchema::kStruct))
        return ProtocolError("type annotation kind does not match its schema");
      t->index = TypeIndex(s);
    }
    for (TypeSpec& a : t->args) RETURN_IF_ERROR(MapType(body, &a));
    return Status::Ok();
  }

  Status RemapCode(const BlobBody& body, std::vector<uint32_t>* code) {
    auto bad = [](const char* what) { return ProtocolError(fmt::format("{} index out of range", what)); };
    for (size_t pc = 0; pc < code->size(); ++pc) {
      uint32_t& word = (*code)[pc];
      if ((word & 0xff) >= static_cast<uint32_t>(kNumOps)) continue;  // the verifier rejects it
      Op op = code::GetOp(word);
      if (op == Op::kGETGLOBAL || op == Op::kSETGLOBAL) {
        uint32_t g = code::GetBx(word);
        if (g >= body.globals.size()) return bad("global");
        uint32_t slot = Intern(&program_->global_names, &globals_, body.globals[g]);
        if (slot > 0xffff) return ProtocolError("too many globals");
        word = code::ABx(op, code::GetA(word), slot);
      }
      if (!OpHasExtra(op) || pc + 1 >= code->size()) continue;
      uint32_t& extra = (*code)[++pc];
      switch (ExtraRemapKind(op)) {
        case RemapKind::kSymbol:
          if (extra >= body.symbols.size()) return bad("symbol");
          extra = Intern(&program_->symbols, &symbols_, body.symbols[extra]);
          break;
        case RemapKind::kStruct:
          if (extra >= body.types.size() || body.types[extra].kind != TypeSchema::kStruct)
            return bad("struct type");
          extra = TypeIndex(body.types[extra]);
          break;
        case RemapKind::kEnum: {
          uint32_t id = extra >> 16;
          if (id == 0xFFFF || id == 0xFFFE) break;
          if (id >= body.types.size() || body.types[id].kind != TypeSchema::kEnum)
            return bad("enum type");
          uint32_t mapped = TypeIndex(body.types[id]);
          if (mapped >= 0xFFFE) return ProtocolError("too many enum types");
          extra = mapped << 16 | (extra & 0xffff);
          break;
        }
        default: break;
      }
    }
    return Status::Ok();
  }

  Status BuildProto(size_t i) {
    const Entry& e = entries_[i];
    const BlobBody& b = e.body;
    Proto& p = *program_->protos[i];
    p.name = e.blob->debug.name.empty() ? HashToHex(e.blob->hash).substr(0, 12) : e.blob->debug.name;
    p.num_params = b.num_params;
    p.num_required = b.num_required;
    p.num_regs = b.num_regs;
    p.is_closure = (b.flags & kFlagClosure) != 0;
    p.has_return_type = (b.flags & kFlagReturnType) != 0;
    p.remote = (b.flags & kFlagRemote) != 0;
    p.param_types = b.param_types;
    for (TypeSpec& t : p.param_types) RETURN_IF_ERROR(MapType(b, &t));
    p.return_type = b.return_type;
    RETURN_IF_ERROR(MapType(b, &p.return_type));
    p.param_names = e.blob->debug.param_names;
    if (p.param_names.size() != p.num_params) {
      p.param_names.clear();
      for (uint32_t k = 0; k < p.num_params && k < 256; ++k) p.param_names.push_back(fmt::format("arg{}", k));
    }
    p.code = b.code;
    RETURN_IF_ERROR(RemapCode(b, &p.code));
    p.lines = e.blob->debug.lines;
    if (p.lines.size() != p.code.size()) p.lines.assign(p.code.size(), 0);
    for (const BlobConstant& c : b.constants) {
      if (c.tag == BlobConstant::kInt) p.constants.push_back(Value::Int(c.i));
      else if (c.tag == BlobConstant::kNumber) p.constants.push_back(Value::Number(c.n));
      else p.constants.push_back(program_->NewConstantString(c.s));
    }
    for (const BlobFnRef& ref : b.fn_refs) p.fn_refs.push_back(index_.at(HashToHex(Target(e, ref))));
    for (const std::string& name : b.natives) {
      if (FindNative(name) == nullptr)
        return MissingModuleFunctionError("this executor has no native '" + name + "'");
      p.natives.push_back(name);
    }
    p.captures = b.captures;
    if (!p.is_closure && i == 0 && !e.blob->debug.name.empty())
      program_->functions.push_back({p.name, static_cast<uint32_t>(i)});
    return Status::Ok();
  }

  void AttachMethods(const std::vector<ImplEntry>& impls) {
    std::map<std::vector<uint8_t>, uint32_t> keep = types_;
    for (const auto& [schema_bytes, index] : keep) {
      FunctionHash type_hash = Sha256(schema_bytes);
      for (const ImplEntry& impl : impls) {
        if (impl.type_schema != type_hash) continue;
        auto fn = index_.find(HashToHex(impl.function));
        if (fn == index_.end()) continue;
        uint32_t symbol = Intern(&program_->symbols, &symbols_, impl.method);
        if (schema_bytes[0] == TypeSchema::kStruct)
          program_->structs[index]->methods.push_back({symbol, fn->second});
        else
          program_->enums[index]->methods.push_back({symbol, fn->second});
      }
    }
  }

  std::unordered_map<std::string, const FunctionBlob*> by_hash_;
  std::unordered_map<std::string, uint32_t> index_;
  std::unordered_map<std::string, bool> verified_;
  std::vector<Entry> entries_;
  std::unique_ptr<Program> program_;
  std::map<std::string, uint32_t> symbols_, globals_;
  std::map<std::vector<uint8_t>, uint32_t> types_;
};

}  // namespace

Result<LinkedProgram> ProgramFromBlobs(const FunctionHash& entry,
                                       const std::vector<FunctionBlob>& blobs,
                                       const std::vector<ImplEntry>& impls,
                                       const std::vector<FunctionHash>& roots,
                                       const std::vector<ValueType>& value_types) {
  Linker linker(blobs);
  return linker.Link(entry, impls, roots, value_types);
}

}  // namespace shapex::engine
