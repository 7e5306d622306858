// The one place ipc touches msgpack-c directly: a byte sink for msgpack::packer, an untrusted
// unpack that cannot throw, over-allocate or recurse without bound, and small readers that
// turn a msgpack::object into a checked C++ value or a ProtocolError.
#ifndef SHAPEX_IPC_SRC_MSGPACK_IO_H_
#define SHAPEX_IPC_SRC_MSGPACK_IO_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <msgpack.hpp>
#include <span>
#include <string_view>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/blob.h"

namespace shapex::ipc::internal {

// Appends packed bytes to a vector (the Stream msgpack::packer writes to).
class ByteSink {
 public:
  explicit ByteSink(std::vector<uint8_t>* out) : out_(out) {}
  void write(const char* data, size_t size) {
    out_->insert(out_->end(), reinterpret_cast<const uint8_t*>(data),
                 reinterpret_cast<const uint8_t*>(data) + size);
  }

 private:
  std::vector<uint8_t>* out_;
};

// msgpack::packer plus an exact float64: msgpack-c's pack_double writes integral doubles as
// integers (and -0.0 as 0), which would turn a Number into an Int.
class Packer : public msgpack::packer<ByteSink> {
 public:
  explicit Packer(ByteSink& sink) : msgpack::packer<ByteSink>(sink), sink_(sink) {}
  void pack_float64(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    char buf[9];
    buf[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
    sink_.write(buf, sizeof buf);
  }

 private:
  ByteSink& sink_;
};

void PackBin(Packer& pk, std::span<const uint8_t> bytes);
void PackStr(Packer& pk, std::string_view text);
void PackHash(Packer& pk, const engine::FunctionHash& hash);

// Parses exactly one MessagePack object spanning all of `bytes`, nested at most `max_depth`
// containers deep. Before msgpack-c allocates anything, a first pass checks the nesting, the
// declared sizes against the kMax* limits of value_codec.h, and that all containers together
// declare no more elements than the input has bytes (each element takes at least one), so
// memory stays proportional to the input. The second pass (msgpack::unpack with an
// unpack_limit) builds the object tree; str and bin objects point into `bytes`, which must
// outlive the handle. ProtocolError on any problem, including any msgpack-c exception.
Result<msgpack::object_handle> UnpackUntrusted(std::span<const uint8_t> bytes, int max_depth);
// The same, with the object tree built in `zone` (which the caller clears and reuses: no
// allocation per message once its first chunk is big enough).
Result<msgpack::object> UnpackUntrustedInto(msgpack::zone& zone, std::span<const uint8_t> bytes,
                                            int max_depth);

using Items = std::span<const msgpack::object>;

// Readers: ProtocolError("<what>: ...") when the object has the wrong type or is out of range.
Result<Items> ReadArray(const msgpack::object& o, std::string_view what, size_t min_size = 0,
                        size_t max_size = SIZE_MAX);
Result<uint64_t> ReadUint(const msgpack::object& o, std::string_view what,
                          uint64_t max = UINT64_MAX);
Result<int64_t> ReadInt(const msgpack::object& o, std::string_view what);
Result<bool> ReadBool(const msgpack::object& o, std::string_view what);
Result<std::string_view> ReadStr(const msgpack::object& o, std::string_view what, size_t max_size);
Result<std::span<const uint8_t>> ReadBin(const msgpack::object& o, std::string_view what,
                                         size_t max_size);
Result<engine::FunctionHash> ReadHash(const msgpack::object& o, std::string_view what);
inline bool IsNil(const msgpack::object& o) { return o.type == msgpack::type::NIL; }
std::string_view MsgpackTypeName(const msgpack::object& o);

}  // namespace shapex::ipc::internal

#endif  // SHAPEX_IPC_SRC_MSGPACK_IO_H_
