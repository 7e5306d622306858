#include "msgpack_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <string>

#include "shapex/ipc/value_codec.h"

namespace shapex::ipc::internal {
namespace {

// First pass over untrusted bytes: visits every object without building anything and stops at
// the first size, depth or type the second pass must never see.
class PrescanVisitor : public msgpack::null_visitor {
 public:
  PrescanVisitor(size_t input_size, int max_depth)
      : input_size_(input_size), max_depth_(max_depth) {}

  bool start_array(uint32_t n) { return Open(n, n, kMaxArrayItems, "array"); }
  bool start_map(uint32_t n) { return Open(uint64_t{n} * 2, n, kMaxMapPairs, "map"); }
  bool end_array() { return Close(); }
  bool end_map() { return Close(); }
  bool visit_str(const char*, uint32_t size) {
    return size <= kMaxStringBytes || Fail(fmt::format("string of {} bytes is too long", size));
  }
  bool visit_bin(const char*, uint32_t size) {
    return size <= kMaxBinBytes || Fail(fmt::format("bin of {} bytes is too long", size));
  }
  bool visit_ext(const char*, uint32_t) { return Fail("ext objects are not used"); }
  void parse_error(size_t, size_t) {
    if (error_.empty()) error_ = "malformed MessagePack";
  }
  void insufficient_bytes(size_t, size_t) {
    if (error_.empty()) error_ = "truncated input";
  }
  const std::string& error() const { return error_; }

 private:
  bool Open(uint64_t elements, uint32_t declared, uint32_t limit, const char* what) {
    if (++depth_ > max_depth_) return Fail(fmt::format("nested deeper than {} levels", max_depth_));
    if (declared > limit) return Fail(fmt::format("{} of {} entries is too large", what, declared));
    declared_ += elements;
    if (declared_ > input_size_)
      return Fail(fmt::format("{} of {} entries is larger than the input", what, declared));
    return true;
  }
  bool Close() {
    --depth_;
    return true;
  }
  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  size_t input_size_;
  int max_depth_;
  int depth_ = 0;
  uint64_t declared_ = 0;  // elements declared by all containers so far
  std::string error_;
};

// str and bin objects reference the caller's buffer instead of being copied into the zone.
bool ReferenceStrAndBin(msgpack::type::object_type type, size_t, void*) {
  return type == msgpack::type::STR || type == msgpack::type::BIN;
}

}  // namespace

void PackBin(Packer& pk, std::span<const uint8_t> bytes) {
  pk.pack_bin(static_cast<uint32_t>(bytes.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(bytes.data()),
                   static_cast<uint32_t>(bytes.size()));
}

void PackStr(Packer& pk, std::string_view text) {
  pk.pack_str(static_cast<uint32_t>(text.size()));
  pk.pack_str_body(text.data(), static_cast<uint32_t>(text.size()));
}

void PackHash(Packer& pk, const engine::FunctionHash& hash) { PackBin(pk, hash); }

namespace {

// The first pass of UnpackUntrusted (nesting, declared sizes), then the limits msgpack-c
// itself enforces in the second.
Result<msgpack::unpack_limit> Prescan(std::span<const uint8_t> bytes, int max_depth) {
  if (bytes.empty()) return ProtocolError("empty input");
  if (bytes.size() > kMaxDecodeBytes)
    return ProtocolError(fmt::format("input of {} bytes is too large", bytes.size()));
  const char* data = reinterpret_cast<const char*>(bytes.data());
  PrescanVisitor prescan(bytes.size(), max_depth);
  size_t off = 0;
  bool parsed = false;
  try {
    parsed = msgpack::parse(data, bytes.size(), off, prescan);
  } catch (const std::exception& e) {
    return ProtocolError(fmt::format("malformed MessagePack: {}", e.what()));
  }
  if (!parsed) {
    return ProtocolError(prescan.error().empty() ? "malformed MessagePack" : prescan.error());
  }
  if (off != bytes.size())
    return ProtocolError(fmt::format("{} trailing bytes", bytes.size() - off));
  // Defence in depth: the same limits again, enforced by msgpack-c itself.
  size_t n = bytes.size();
  return msgpack::unpack_limit(
      std::min<size_t>(kMaxArrayItems, n), std::min<size_t>(kMaxMapPairs, n),
      std::min<size_t>(kMaxStringBytes, n), std::min<size_t>(kMaxBinBytes, n),
      /*ext=*/0, static_cast<size_t>(max_depth));
}

}  // namespace

Result<msgpack::object_handle> UnpackUntrusted(std::span<const uint8_t> bytes, int max_depth) {
  ASSIGN_OR_RETURN(msgpack::unpack_limit limit, Prescan(bytes, max_depth));
  const char* data = reinterpret_cast<const char*>(bytes.data());
  try {
    size_t off = 0;
    msgpack::object_handle handle =
        msgpack::unpack(data, bytes.size(), off, ReferenceStrAndBin, nullptr, limit);
    if (off != bytes.size()) return ProtocolError("trailing bytes");
    return handle;
  } catch (const std::exception& e) {
    return ProtocolError(fmt::format("malformed MessagePack: {}", e.what()));
  } catch (...) {
    return ProtocolError("malformed MessagePack");
  }
}

Result<msgpack::object> UnpackUntrustedInto(msgpack::zone& zone, std::span<const uint8_t> bytes,
                                            int max_depth) {
  ASSIGN_OR_RETURN(msgpack::unpack_limit limit, Prescan(bytes, max_depth));
  const char* data = reinterpret_cast<const char*>(bytes.data());
  try {
    size_t off = 0;
    bool referenced = false;
    msgpack::object object = msgpack::unpack(zone, data, bytes.size(), off, referenced,
                                             ReferenceStrAndBin, nullptr, limit);
    if (off != bytes.size()) return ProtocolError("trailing bytes");
    return object;
  } catch (const std::exception& e) {
    return ProtocolError(fmt::format("malformed MessagePack: {}", e.what()));
  } catch (...) {
    return ProtocolError("malformed MessagePack");
  }
}

std::string_view MsgpackTypeName(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "str";
    case msgpack::type::BIN:
      return "bin";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "unknown";
}

namespace {
Status WrongType(const msgpack::object& o, std::string_view what, std::string_view expected) {
  return ProtocolError(fmt::format("{}: expected {}, got {}", what, expected, MsgpackTypeName(o)));
}
}  // namespace

Result<Items> ReadArray(const msgpack::object& o, std::string_view what, size_t min_size,
                        size_t max_size) {
  if (o.type != msgpack::type::ARRAY) return WrongType(o, what, "array");
  size_t n = o.via.array.size;
  if (n < min_size || n > max_size)
    return ProtocolError(
        fmt::format("{}: array of {} entries, expected {}..{}", what, n, min_size, max_size));
  return Items(o.via.array.ptr, n);
}

Result<uint64_t> ReadUint(const msgpack::object& o, std::string_view what, uint64_t max) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return WrongType(o, what, "unsigned integer");
  if (o.via.u64 > max)
    return ProtocolError(fmt::format("{}: {} is larger than {}", what, o.via.u64, max));
  return o.via.u64;
}

Result<int64_t> ReadInt(const msgpack::object& o, std::string_view what) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  if (o.type != msgpack::type::POSITIVE_INTEGER) return WrongType(o, what, "integer");
  if (o.via.u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return ProtocolError(fmt::format("{}: {} does not fit in an int", what, o.via.u64));
  return static_cast<int64_t>(o.via.u64);
}

Result<bool> ReadBool(const msgpack::object& o, std::string_view what) {
  if (o.type != msgpack::type::BOOLEAN) return WrongType(o, what, "bool");
  return o.via.boolean;
}

Result<std::string_view> ReadStr(const msgpack::object& o, std::string_view what, size_t max_size) {
  if (o.type != msgpack::type::STR) return WrongType(o, what, "str");
  if (o.via.str.size > max_size)
    return ProtocolError(fmt::format("{}: {} bytes is too long", what, o.via.str.size));
  return std::string_view(o.via.str.ptr, o.via.str.size);
}

Result<std::span<const uint8_t>> ReadBin(const msgpack::object& o, std::string_view what,
                                         size_t max_size) {
  if (o.type != msgpack::type::BIN) return WrongType(o, what, "bin");
  if (o.via.bin.size > max_size)
    return ProtocolError(fmt::format("{}: {} bytes is too long", what, o.via.bin.size));
  return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(o.via.bin.ptr), o.via.bin.size);
}

Result<engine::FunctionHash> ReadHash(const msgpack::object& o, std::string_view what) {
  ASSIGN_OR_RETURN(std::span<const uint8_t> bytes, ReadBin(o, what, 32));
  if (bytes.size() != 32)
    return ProtocolError(fmt::format("{}: a hash has 32 bytes, not {}", what, bytes.size()));
  engine::FunctionHash h;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

}  // namespace shapex::ipc::internal
