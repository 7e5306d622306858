// Byte-level encoding of blobs (docs/blob-format.md): canonical bodies, the transport/disk
// envelope, SHA-256, and group hashing. Every read is bounds-checked; malformed input is a
// ProtocolError, never a crash.
#include "blob_body.h"

#include <openssl/evp.h>

#include <cstring>

#include <fmt/format.h>

#include "shapex/engine/opcodes.h"

namespace shapex::engine {
namespace {

constexpr char kBodyMagic[4] = {'S', 'X', 'F', 'N'};
constexpr char kBlobMagic[4] = {'S', 'X', 'B', 'L'};
constexpr char kGroupTag[4] = {'S', 'X', 'G', 'R'};
constexpr uint32_t kMaxString = 1 << 20;
constexpr uint32_t kMaxCode = 1 << 20;
constexpr int kMaxTypeDepth = 16;

class Writer {
 public:
  void Bytes(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  void Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Bytes(s.data(), s.size());
  }
  void Hash(const FunctionHash& h) { Bytes(h.data(), h.size()); }
  std::vector<uint8_t> Take() { return std::move(out_); }

 private:
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
};

// Reader: every method returns false (and records the first error) when the input is short.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  bool Bytes(void* p, size_t n, const char* what) {
    if (in_.size() - pos_ < n) return Fail(fmt::format("truncated {}", what));
    if (n == 0) return true;  // p may be null for an empty destination
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool U8(uint8_t* v, const char* what) { return Bytes(v, 1, what); }
  bool U16(uint16_t* v, const char* what) { return Le(v, what); }
  bool U32(uint32_t* v, const char* what) { return Le(v, what); }
  bool U64(uint64_t* v, const char* what) { return Le(v, what); }
  bool Str(std::string* s, const char* what) {
    uint32_t n;
    if (!U32(&n, what)) return false;
    if (n > kMaxString || n > in_.size() - pos_) return Fail(fmt::format("bad length of {}", what));
    s->assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool Hash(FunctionHash* h, const char* what) { return Bytes(h->data(), h->size(), what); }
  // A count of elements that each take at least `min_size` bytes.
  bool Count(uint32_t* n, size_t min_size, const char* what) {
    if (!U32(n, what)) return false;
    if (static_cast<uint64_t>(*n) * min_size > in_.size() - pos_)
      return Fail(fmt::format("bad count of {}", what));
    return true;
  }
  bool Done() const { return pos_ == in_.size(); }
  bool Fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  template <class T>
  bool Le(T* v, const char* what) {
    uint8_t b[sizeof(T)];
    if (!Bytes(b, sizeof(T), what)) return false;
    uint64_t r = 0;
    for (size_t i = 0; i < sizeof(T); ++i) r |= static_cast<uint64_t>(b[i]) << (8 * i);
    *v = static_cast<T>(r);
    return true;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  std::string error_;
};

void WriteType(Writer& w, const TypeSpec& t) {
  w.U8(static_cast<uint8_t>(t.kind));
  switch (t.kind) {
    case TypeSpec::Kind::kVec: w.U8(static_cast<uint8_t>(t.elem)); break;
    case TypeSpec::Kind::kStruct:
    case TypeSpec::Kind::kEnum: w.U32(t.index); break;
    case TypeSpec::Kind::kOption:
    case TypeSpec::Kind::kResult:
      for (const TypeSpec& a : t.args) WriteType(w, a);
      break;
    default: break;
  }
}

bool ReadType(Reader& r, TypeSpec* t, int depth) {
  if (depth > kMaxTypeDepth) return r.Fail("type annotation nested too deeply");
  uint8_t kind;
  if (!r.U8(&kind, "type kind")) return false;
  if (kind > static_cast<uint8_t>(TypeSpec::Kind::kResult)) return r.Fail("unknown type kind");
  t->kind = static_cast<TypeSpec::Kind>(kind);
  switch (t->kind) {
    case TypeSpec::Kind::kVec: {
      uint8_t e;
      if (!r.U8(&e, "element kind")) return false;
      if (e >= kNumElemKinds) return r.Fail("unknown element kind");
      t->elem = static_cast<ElemKind>(e);
      return true;
    }
    case TypeSpec::Kind::kStruct:
    case TypeSpec::Kind::kEnum: return r.U32(&t->index, "type index");
    case TypeSpec::Kind::kOption:
    case TypeSpec::Kind::kResult:
      t->args.resize(t->kind == TypeSpec::Kind::kOption ? 1 : 2);
      for (TypeSpec& a : t->args)
        if (!ReadType(r, &a, depth + 1)) return false;
      return true;
    default: return true;
  }
}

void WriteSchema(Writer& w, const TypeSchema& s) {
  w.U8(s.kind);
  w.Str(s.name);
  w.U32(static_cast<uint32_t>(s.names.size()));
  for (const auto& n : s.names) w.Str(n);
  if (s.kind == TypeSchema::kEnum)
    for (uint32_t a : s.arity) w.U32(a);
}

bool ReadSchema(Reader& r, TypeSchema* s) {
  uint8_t kind;
  uint32_t n;
  if (!r.U8(&kind, "schema kind")) return false;
  if (kind != TypeSchema::kStruct && kind != TypeSchema::kEnum) return r.Fail("unknown schema kind");
  s->kind = static_cast<TypeSchema::Kind>(kind);
  if (!r.Str(&s->name, "type name") || !r.Count(&n, 4, "fields")) return false;
  s->names.resize(n);
  for (auto& name : s->names)
    if (!r.Str(&name, "field name")) return false;
  if (s->kind == TypeSchema::kEnum) {
    s->arity.resize(n);
    for (uint32_t& a : s->arity) {
      if (!r.U32(&a, "variant arity")) return false;
      if (a > 255) return r.Fail("variant arity too large");
    }
  }
  return true;
}

}  // namespace

FunctionHash Sha256(std::span<const uint8_t> bytes) {
  FunctionHash h{};
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), h.data(), &len, EVP_sha256(), nullptr);
  return h;
}

std::string HashToHex(const FunctionHash& h) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (uint8_t b : h) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

bool HashFromHex(std::string_view hex, FunctionHash* out) {
  if (hex.size() != 64) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::vector<uint8_t> EncodeSchema(const TypeSchema& schema) {
  Writer w;
  WriteSchema(w, schema);
  return w.Take();
}

std::vector<uint8_t> EncodeBody(const BlobBody& b) {
  Writer w;
  w.Bytes(kBodyMagic, 4);
  w.U16(kBlobFormatVersion);
  w.U16(kVmVersion);
  w.U32(b.num_params);
  w.U32(b.num_required);
  w.U32(b.num_regs);
  w.U8(b.flags);
  w.U32(b.group_size);
  w.U32(b.group_index);
  w.U32(static_cast<uint32_t>(b.param_types.size()));
  for (const TypeSpec& t : b.param_types) WriteType(w, t);
  WriteType(w, b.return_type);
  w.U32(static_cast<uint32_t>(b.code.size()));
  for (uint32_t word : b.code) w.U32(word);
  w.U32(static_cast<uint32_t>(b.constants.size()));
  for (const BlobConstant& c : b.constants) {
    w.U8(c.tag);
    if (c.tag == BlobConstant::kInt) {
      w.U64(static_cast<uint64_t>(c.i));
    } else if (c.tag == BlobConstant::kNumber) {
      uint64_t bits;
      std::memcpy(&bits, &c.n, 8);
      w.U64(bits);
    } else {
      w.Str(c.s);
    }
  }
  w.U32(static_cast<uint32_t>(b.fn_refs.size()));
  for (const BlobFnRef& f : b.fn_refs) {
    w.U8(f.in_group ? 1 : 0);
    if (f.in_group) w.U32(f.index);
    else w.Hash(f.hash);
  }
  w.U32(static_cast<uint32_t>(b.natives.size()));
  for (const auto& s : b.natives) w.Str(s);
  w.U32(static_cast<uint32_t>(b.captures.size()));
  for (const CaptureDesc& c : b.captures) {
    w.U8(c.from_parent_local ? 1 : 0);
    w.U8(c.index);
  }
  for (const auto* list : {&b.symbols, &b.globals}) {
    w.U32(static_cast<uint32_t>(list->size()));
    for (const auto& s : *list) w.Str(s);
  }
  w.U32(static_cast<uint32_t>(b.types.size()));
  for (const TypeSchema& s : b.types) WriteSchema(w, s);
  return w.Take();
}

Result<BlobBody> DecodeBody(std::span<const uint8_t> canonical) {
  Reader r(canonical);
  BlobBody b;
  char magic[4];
  uint16_t format = 0, vm = 0;
  uint32_t n = 0;
  auto fail = [&]() -> Status { return ProtocolError("malformed function blob: " + r.error()); };
  if (!r.Bytes(magic, 4, "magic")) return fail();
  if (std::memcmp(magic, kBodyMagic, 4) != 0) return ProtocolError("not a function blob (bad magic)");
  if (!r.U16(&format, "format version") || !r.U16(&vm, "VM version")) return fail();
  if (format != kBlobFormatVersion)
    return ProtocolError(fmt::format("unsupported blob format version {}", format));
  if (vm != kVmVersion) return ProtocolError(fmt::format("blob needs VM version {}, have {}", vm, kVmVersion));
  if (!r.U32(&b.num_params, "num_params") || !r.U32(&b.num_required, "num_required") ||
      !r.U32(&b.num_regs, "num_regs") || !r.U8(&b.flags, "flags") ||
      !r.U32(&b.group_size, "group size") || !r.U32(&b.group_index, "group index"))
    return fail();
  if (b.group_size == 0 || b.group_index >= b.group_size) return ProtocolError("malformed function blob: bad group index");
  if (!r.Count(&n, 1, "parameter types")) return fail();
  b.param_types.resize(n);
  for (TypeSpec& t : b.param_types)
    if (!ReadType(r, &t, 0)) return fail();
  if (!ReadType(r, &b.return_type, 0)) return fail();
  if (!r.Count(&n, 4, "code")) return fail();
  if (n > kMaxCode) return ProtocolError("malformed function blob: code too long");
  b.code.resize(n);
  for (uint32_t& word : b.code)
    if (!r.U32(&word, "code")) return fail();
  if (!r.Count(&n, 5, "constants")) return fail();
  b.constants.resize(n);
  for (BlobConstant& c : b.constants) {
    uint8_t tag;
    if (!r.U8(&tag, "constant tag")) return fail();
    if (tag == BlobConstant::kInt || tag == BlobConstant::kNumber) {
      uint64_t bits;
      if (!r.U64(&bits, "constant")) return fail();
      c.tag = static_cast<BlobConstant::Tag>(tag);
      if (tag == BlobConstant::kInt) c.i = static_cast<int64_t>(bits);
      else std::memcpy(&c.n, &bits, 8);
    } else if (tag == BlobConstant::kString) {
      c.tag = BlobConstant::kString;
      if (!r.Str(&c.s, "string constant")) return fail();
    } else {
      return ProtocolError("malformed function blob: unknown constant tag");
    }
  }
  if (!r.Count(&n, 5, "function references")) return fail();
  b.fn_refs.resize(n);
  for (BlobFnRef& f : b.fn_refs) {
    uint8_t kind;
    if (!r.U8(&kind, "reference kind")) return fail();
    if (kind > 1) return ProtocolError("malformed function blob: unknown reference kind");
    f.in_group = kind == 1;
    if (f.in_group ? !r.U32(&f.index, "group index") : !r.Hash(&f.hash, "hash")) return fail();
    if (f.in_group && f.index >= b.group_size) return ProtocolError("malformed function blob: group reference out of range");
  }
  if (!r.Count(&n, 4, "natives")) return fail();
  b.natives.resize(n);
  for (auto& s : b.natives)
    if (!r.Str(&s, "native name")) return fail();
  if (!r.Count(&n, 2, "captures")) return fail();
  b.captures.resize(n);
  for (CaptureDesc& c : b.captures) {
    uint8_t local;
    if (!r.U8(&local, "capture") || !r.U8(&c.index, "capture index")) return fail();
    if (local > 1) return ProtocolError("malformed function blob: bad capture flag");
    c.from_parent_local = local == 1;
  }
  for (auto* list : {&b.symbols, &b.globals}) {
    if (!r.Count(&n, 4, "names")) return fail();
    list->resize(n);
    for (auto& s : *list)
      if (!r.Str(&s, "name")) return fail();
  }
  if (!r.Count(&n, 10, "types")) return fail();
  b.types.resize(n);
  for (TypeSchema& s : b.types)
    if (!ReadSchema(r, &s)) return fail();
  if (!r.Done()) return ProtocolError("malformed function blob: trailing bytes");
  return b;
}

std::vector<FunctionHash> GroupMemberHashes(const std::vector<std::vector<uint8_t>>& members) {
  Writer w;
  for (const auto& m : members) {
    w.U32(static_cast<uint32_t>(m.size()));
    w.Bytes(m.data(), m.size());
  }
  std::vector<uint8_t> all = w.Take();
  FunctionHash digest = Sha256(all);
  std::vector<FunctionHash> out;
  for (uint32_t k = 0; k < members.size(); ++k) {
    Writer m;
    m.Bytes(kGroupTag, 4);
    m.Hash(digest);
    m.U32(k);
    out.push_back(Sha256(m.Take()));
  }
  return out;
}

std::vector<uint8_t> EncodeBlob(const FunctionBlob& blob) {
  Writer w;
  w.Bytes(kBlobMagic, 4);
  w.U16(kBlobFormatVersion);
  w.Hash(blob.hash);
  w.U32(static_cast<uint32_t>(blob.canonical.size()));
  w.Bytes(blob.canonical.data(), blob.canonical.size());
  w.U32(static_cast<uint32_t>(blob.group.size()));
  for (const FunctionHash& h : blob.group) w.Hash(h);
  w.Str(blob.debug.name);
  w.Str(blob.debug.source_file);
  w.U32(static_cast<uint32_t>(blob.debug.lines.size()));
  for (uint32_t l : blob.debug.lines) w.U32(l);
  w.U32(static_cast<uint32_t>(blob.debug.param_names.size()));
  for (const auto& p : blob.debug.param_names) w.Str(p);
  return w.Take();
}

Result<FunctionBlob> DecodeBlob(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  FunctionBlob blob;
  char magic[4];
  uint16_t format;
  uint32_t n;
  auto fail = [&]() -> Status { return ProtocolError("malformed blob: " + r.error()); };
  if (!r.Bytes(magic, 4, "magic")) return fail();
  if (std::memcmp(magic, kBlobMagic, 4) != 0) return ProtocolError("not a shapex blob (bad magic)");
  if (!r.U16(&format, "format version")) return fail();
  if (format != kBlobFormatVersion)
    return ProtocolError(fmt::format("unsupported blob format version {}", format));
  if (!r.Hash(&blob.hash, "hash") || !r.Count(&n, 1, "canonical bytes")) return fail();
  blob.canonical.resize(n);
  if (!r.Bytes(blob.canonical.data(), n, "canonical bytes")) return fail();
  if (!r.Count(&n, 32, "group")) return fail();
  blob.group.resize(n);
  for (FunctionHash& h : blob.group)
    if (!r.Hash(&h, "group hash")) return fail();
  if (!r.Str(&blob.debug.name, "name") || !r.Str(&blob.debug.source_file, "source file") ||
      !r.Count(&n, 4, "line table"))
    return fail();
  blob.debug.lines.resize(n);
  for (uint32_t& l : blob.debug.lines)
    if (!r.U32(&l, "line")) return fail();
  if (!r.Count(&n, 4, "parameter names")) return fail();
  blob.debug.param_names.resize(n);
  for (auto& p : blob.debug.param_names)
    if (!r.Str(&p, "parameter name")) return fail();
  if (!r.Done()) return ProtocolError("malformed blob: trailing bytes");
  return blob;
}

RemapKind ExtraRemapKind(Op op) {
  switch (op) {
    case Op::kGETFIELD:
    case Op::kSETFIELD:
    case Op::kINVOKE: return RemapKind::kSymbol;
    case Op::kNEWSTRUCT:
    case Op::kMATCHSTRUCT: return RemapKind::kStruct;
    case Op::kNEWENUM:
    case Op::kMATCHENUM: return RemapKind::kEnum;
    default: return RemapKind::kNone;
  }
}

}  // namespace shapex::engine
