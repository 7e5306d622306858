// WireMessage <-> MessagePack, as specified in docs/wire-protocol.md ("Messages"). Every message
// is an array [version, tag, fields...]; messages that carry values carry one schema table for
// all of them.
#include "shapex/ipc/messages.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include <type_traits>

#include "msgpack_io.h"
#include "shapex/ipc/value_codec.h"
#include "value_codec_internal.h"

namespace shapex::ipc {
namespace {

using internal::Items;
using internal::Packer;

// Wire tags of the envelope alternatives. Never renumber.
enum MessageTag : uint64_t {
  kTagBlobNegotiation = 1,
  kTagBlobNegotiationReply = 2,
  kTagCall = 3,
  kTagCallResponse = 4,
  kTagSidecar = 5,
  kTagCallBatch = 6,
  kTagCallBatchResponse = 7,
};
constexpr uint64_t kResultValue = 0;
constexpr uint64_t kResultError = 1;

constexpr ErrorKind kAllErrorKinds[] = {
    ErrorKind::kCompileError,
    ErrorKind::kRuntimeError,
    ErrorKind::kArgumentError,
    ErrorKind::kFunctionNotFound,
    ErrorKind::kMissingModuleFunction,
    ErrorKind::kResourceExhausted,
    ErrorKind::kTimeout,
    ErrorKind::kExecutorCrashed,
    ErrorKind::kCancelled,
    ErrorKind::kSandboxError,
    ErrorKind::kProtocolError,
    ErrorKind::kIoError,
    ErrorKind::kInvalidArgument,
    ErrorKind::kInternal,
};

void Head(Packer& pk, MessageTag tag, uint32_t fields) {
  pk.pack_array(2 + fields);
  pk.pack_uint32(kWireProtocolVersion);
  pk.pack_uint64(tag);
}

void PackHashes(Packer& pk, const std::vector<engine::FunctionHash>& hashes) {
  pk.pack_array(static_cast<uint32_t>(hashes.size()));
  for (const engine::FunctionHash& h : hashes) internal::PackHash(pk, h);
}

void PackValues(Packer& pk, const std::vector<WireValue>& values,
                const internal::SchemaTableWriter& schemas) {
  pk.pack_array(static_cast<uint32_t>(values.size()));
  for (const WireValue& v : values) internal::PackValue(pk, v, schemas);
}

void PackTrace(Packer& pk, const std::vector<engine::TraceFrame>& trace) {
  pk.pack_array(static_cast<uint32_t>(trace.size()));
  for (const engine::TraceFrame& f : trace) {
    // [function, file, line] or, with where the frame stopped,
    // [function, file, line, hash or nil, pc, skipped].
    bool extended = f.has_hash || f.skipped != 0;
    pk.pack_array(extended ? 6 : 3);
    internal::PackStr(pk, f.function);
    internal::PackStr(pk, f.file);
    pk.pack_uint32(f.line);
    if (!extended) continue;
    if (f.has_hash) {
      internal::PackHash(pk, f.hash);
    } else {
      pk.pack_nil();
    }
    pk.pack_uint32(f.pc);
    pk.pack_uint64(f.skipped);
  }
}

// function_name, function_id, function_hash (as in a Call).
void PackCallee(Packer& pk, const RemoteCallRequest& r) {
  internal::PackStr(pk, r.function_name);
  if (r.function_id) {
    pk.pack_uint32(*r.function_id);
  } else {
    pk.pack_nil();
  }
  if (r.function_hash) {
    internal::PackHash(pk, *r.function_hash);
  } else {
    pk.pack_nil();
  }
}

// blobs, impls, limits (as in a Call).
void PackCode(Packer& pk, const RemoteCallRequest& r) {
  if (r.blobs) {
    pk.pack_array(static_cast<uint32_t>(r.blobs->size()));
    for (const engine::FunctionBlob& b : *r.blobs) internal::PackBin(pk, engine::EncodeBlob(b));
  } else {
    pk.pack_nil();
  }
  pk.pack_array(static_cast<uint32_t>(r.impls.size()));
  for (const engine::ImplEntry& impl : r.impls) {
    pk.pack_array(3);
    internal::PackHash(pk, impl.type_schema);
    internal::PackStr(pk, impl.method);
    internal::PackHash(pk, impl.function);
  }
  if (r.limits) {
    pk.pack_array(4);
    pk.pack_uint64(r.limits->fuel);
    pk.pack_uint64(r.limits->memory);
    pk.pack_uint32(r.limits->stack);
    pk.pack_uint64(r.limits->timeout_ms);
  } else {
    pk.pack_nil();
  }
}

void PackRequest(Packer& pk, const RemoteCallRequest& r) {
  internal::SchemaTableWriter schemas;
  for (const WireValue& v : r.arguments) schemas.Collect(v);
  if (r.captures)
    for (const WireValue& v : *r.captures) schemas.Collect(v);
  for (const auto& [name, v] : r.globals) schemas.Collect(v);
  Head(pk, kTagCall, !r.roots.empty() ? 11 : r.globals.empty() ? 9 : 10);
  PackCallee(pk, r);
  schemas.Pack(pk);
  PackValues(pk, r.arguments, schemas);
  if (r.captures) {
    PackValues(pk, *r.captures, schemas);
  } else {
    pk.pack_nil();
  }
  PackCode(pk, r);
  if (!r.globals.empty() || !r.roots.empty()) {
    pk.pack_array(static_cast<uint32_t>(r.globals.size()));
    for (const auto& [name, v] : r.globals) {
      pk.pack_array(2);
      internal::PackStr(pk, name);
      internal::PackValue(pk, v, schemas);
    }
  }
  if (!r.roots.empty()) PackHashes(pk, r.roots);
}

// The optional tail of a response: output (may be empty only when fuel_used follows), then
// fuel_used.
uint32_t TailFields(const RemoteCallResponse& r) {
  return r.fuel_used ? 2 : r.output.empty() ? 0 : 1;
}

void PackTail(Packer& pk, const RemoteCallResponse& r) {
  if (TailFields(r) >= 1) internal::PackStr(pk, r.output);
  if (r.fuel_used) pk.pack_uint64(*r.fuel_used);
}

void PackResponse(Packer& pk, const RemoteCallResponse& r) {
  if (r.ok()) {
    internal::SchemaTableWriter schemas;
    schemas.Collect(r.value());
    Head(pk, kTagCallResponse, 3 + TailFields(r));
    pk.pack_uint64(kResultValue);
    schemas.Pack(pk);
    internal::PackValue(pk, r.value(), schemas);
    PackTail(pk, r);
    return;
  }
  const RemoteCallError& e = r.error();
  Head(pk, kTagCallResponse, 4 + TailFields(r));
  pk.pack_uint64(kResultError);
  internal::PackStr(pk, ErrorKindName(e.kind));
  internal::PackStr(pk, e.message);
  PackTrace(pk, e.trace);
  PackTail(pk, r);
}

// CallBatch: [function_name, function_id, function_hash, schemas, blobs, impls, limits, globals,
// roots, items, fuel_budget] (docs/wire-protocol.md, "CallBatch").
void PackBatch(Packer& pk, const RemoteCallBatch& b) {
  const RemoteCallRequest& r = b.call;
  internal::SchemaTableWriter schemas;
  for (const std::vector<WireValue>& item : b.items)
    for (const WireValue& v : item) schemas.Collect(v);
  for (const auto& [name, v] : r.globals) schemas.Collect(v);
  Head(pk, kTagCallBatch, 11);
  PackCallee(pk, r);
  schemas.Pack(pk);
  PackCode(pk, r);
  pk.pack_array(static_cast<uint32_t>(r.globals.size()));
  for (const auto& [name, v] : r.globals) {
    pk.pack_array(2);
    internal::PackStr(pk, name);
    internal::PackValue(pk, v, schemas);
  }
  PackHashes(pk, r.roots);
  pk.pack_array(static_cast<uint32_t>(b.items.size()));
  for (const std::vector<WireValue>& item : b.items) PackValues(pk, item, schemas);
  if (b.fuel_budget) {
    pk.pack_uint64(*b.fuel_budget);
  } else {
    pk.pack_nil();
  }
}

// CallBatchResponse: [schemas, results, cpu_ns], each result [0, value, output, fuel_used] or
// [1, kind, message, trace, output, fuel_used] (fuel_used uint or nil).
void PackBatchResponse(Packer& pk, const RemoteCallBatchResponse& b) {
  internal::SchemaTableWriter schemas;
  for (const RemoteCallResponse& r : b.results)
    if (r.ok()) schemas.Collect(r.value());
  Head(pk, kTagCallBatchResponse, 3);
  schemas.Pack(pk);
  pk.pack_array(static_cast<uint32_t>(b.results.size()));
  for (const RemoteCallResponse& r : b.results) {
    if (r.ok()) {
      pk.pack_array(4);
      pk.pack_uint64(kResultValue);
      internal::PackValue(pk, r.value(), schemas);
    } else {
      const RemoteCallError& e = r.error();
      pk.pack_array(6);
      pk.pack_uint64(kResultError);
      internal::PackStr(pk, ErrorKindName(e.kind));
      internal::PackStr(pk, e.message);
      PackTrace(pk, e.trace);
    }
    internal::PackStr(pk, r.output);
    if (r.fuel_used) {
      pk.pack_uint64(*r.fuel_used);
    } else {
      pk.pack_nil();
    }
  }
  pk.pack_uint64(b.cpu_ns);
}

// ---- decoding ----

Result<std::vector<engine::FunctionHash>> ReadHashes(const msgpack::object& o,
                                                     std::string_view what) {
  ASSIGN_OR_RETURN(Items items, internal::ReadArray(o, what, 0, kMaxHashesPerMessage));
  std::vector<engine::FunctionHash> out;
  out.reserve(items.size());
  for (const msgpack::object& item : items) {
    ASSIGN_OR_RETURN(engine::FunctionHash h, internal::ReadHash(item, what));
    out.push_back(h);
  }
  return out;
}

Result<std::vector<WireValue>> ReadValues(const msgpack::object& o, std::string_view what,
                                          const internal::SchemaList& schemas) {
  ASSIGN_OR_RETURN(Items items, internal::ReadArray(o, what, 0, kMaxArguments));
  std::vector<WireValue> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    Result<WireValue> v = internal::ReadValue(items[i], schemas);
    if (!v) return ProtocolError(fmt::format("{} {}: {}", what, i + 1, v.error().message()));
    out.push_back(std::move(*v));
  }
  return out;
}

Result<std::string> ReadText(const msgpack::object& o, std::string_view what) {
  ASSIGN_OR_RETURN(std::string_view s, internal::ReadStr(o, what, kMaxNameBytes));
  return std::string(s);
}

// function_name, function_id, function_hash (as in a Call).
Status ReadCallee(const msgpack::object& name, const msgpack::object& id,
                  const msgpack::object& hash, RemoteCallRequest* r) {
  ASSIGN_OR_RETURN(r->function_name, ReadText(name, "function name"));
  if (!internal::IsNil(id)) {
    ASSIGN_OR_RETURN(uint64_t v, internal::ReadUint(id, "function id", UINT32_MAX));
    r->function_id = static_cast<uint32_t>(v);
  }
  if (!internal::IsNil(hash)) {
    ASSIGN_OR_RETURN(engine::FunctionHash h, internal::ReadHash(hash, "function hash"));
    r->function_hash = h;
  }
  return Status::Ok();
}

// blobs, impls, limits (as in a Call).
Status ReadCode(const msgpack::object& blobs_field, const msgpack::object& impls_field,
                const msgpack::object& limits_field, RemoteCallRequest* r) {
  if (!internal::IsNil(blobs_field)) {
    ASSIGN_OR_RETURN(Items blobs,
                     internal::ReadArray(blobs_field, "blobs", 0, kMaxBlobsPerMessage));
    r->blobs.emplace();
    r->blobs->reserve(blobs.size());
    for (size_t i = 0; i < blobs.size(); ++i) {
      ASSIGN_OR_RETURN(std::span<const uint8_t> bytes,
                       internal::ReadBin(blobs[i], "blob", kMaxBinBytes));
      Result<engine::FunctionBlob> blob = engine::DecodeBlob(bytes);
      if (!blob) return ProtocolError(fmt::format("blob {}: {}", i + 1, blob.error().message()));
      r->blobs->push_back(std::move(*blob));
    }
  }
  ASSIGN_OR_RETURN(Items impls,
                   internal::ReadArray(impls_field, "impls", 0, kMaxHashesPerMessage));
  for (const msgpack::object& o : impls) {
    ASSIGN_OR_RETURN(Items e, internal::ReadArray(o, "impl", 3, 3));
    engine::ImplEntry impl;
    ASSIGN_OR_RETURN(impl.type_schema, internal::ReadHash(e[0], "impl type schema"));
    ASSIGN_OR_RETURN(impl.method, ReadText(e[1], "impl method"));
    ASSIGN_OR_RETURN(impl.function, internal::ReadHash(e[2], "impl function"));
    r->impls.push_back(std::move(impl));
  }
  if (!internal::IsNil(limits_field)) {
    ASSIGN_OR_RETURN(Items l, internal::ReadArray(limits_field, "limits", 4, 4));
    CallLimits limits;
    ASSIGN_OR_RETURN(limits.fuel, internal::ReadUint(l[0], "fuel limit"));
    ASSIGN_OR_RETURN(limits.memory, internal::ReadUint(l[1], "memory limit"));
    ASSIGN_OR_RETURN(uint64_t stack, internal::ReadUint(l[2], "stack limit", UINT32_MAX));
    limits.stack = static_cast<uint32_t>(stack);
    ASSIGN_OR_RETURN(limits.timeout_ms, internal::ReadUint(l[3], "timeout", uint64_t{1} << 40));
    r->limits = limits;
  }
  return Status::Ok();
}

// An array of at least `min` [name, value] globals.
Status ReadGlobals(const msgpack::object& o, uint32_t min, const internal::SchemaList& schemas,
                   RemoteCallRequest* r) {
  ASSIGN_OR_RETURN(Items globals, internal::ReadArray(o, "globals", min, kMaxGlobals));
  r->globals.reserve(globals.size());
  for (size_t i = 0; i < globals.size(); ++i) {
    ASSIGN_OR_RETURN(Items g, internal::ReadArray(globals[i], "global", 2, 2));
    ASSIGN_OR_RETURN(std::string name, ReadText(g[0], "global name"));
    Result<WireValue> v = internal::ReadValue(g[1], schemas);
    if (!v) return ProtocolError(fmt::format("global {}: {}", name, v.error().message()));
    r->globals.emplace_back(std::move(name), std::move(*v));
  }
  return Status::Ok();
}

Result<RemoteCallRequest> ReadRequest(Items f) {
  if (f.size() < 9 || f.size() > 11) return ProtocolError("call: wrong number of fields");
  RemoteCallRequest r;
  RETURN_IF_ERROR(ReadCallee(f[0], f[1], f[2], &r));
  ASSIGN_OR_RETURN(internal::SchemaList schemas, internal::ReadSchemaTable(f[3]));
  ASSIGN_OR_RETURN(r.arguments, ReadValues(f[4], "argument", schemas));
  if (!internal::IsNil(f[5])) {
    ASSIGN_OR_RETURN(std::vector<WireValue> captures, ReadValues(f[5], "capture", schemas));
    r.captures = std::move(captures);
  }
  RETURN_IF_ERROR(ReadCode(f[6], f[7], f[8], &r));
  // Empty only when roots follow.
  if (f.size() >= 10) RETURN_IF_ERROR(ReadGlobals(f[9], f.size() == 11 ? 0 : 1, schemas, &r));
  if (f.size() == 11) {
    ASSIGN_OR_RETURN(r.roots, ReadHashes(f[10], "roots"));
    if (r.roots.empty()) return ProtocolError("call: empty roots field");
  }
  return r;
}

// CallBatch (see PackBatch).
Result<RemoteCallBatch> ReadBatch(Items f) {
  if (f.size() != 11) return ProtocolError("call batch: wrong number of fields");
  RemoteCallBatch b;
  RETURN_IF_ERROR(ReadCallee(f[0], f[1], f[2], &b.call));
  ASSIGN_OR_RETURN(internal::SchemaList schemas, internal::ReadSchemaTable(f[3]));
  RETURN_IF_ERROR(ReadCode(f[4], f[5], f[6], &b.call));
  RETURN_IF_ERROR(ReadGlobals(f[7], 0, schemas, &b.call));
  ASSIGN_OR_RETURN(b.call.roots, ReadHashes(f[8], "roots"));
  ASSIGN_OR_RETURN(Items items, internal::ReadArray(f[9], "items", 0, kMaxBatchItems));
  b.items.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    Result<std::vector<WireValue>> args = ReadValues(items[i], "argument", schemas);
    if (!args) return ProtocolError(fmt::format("item {}: {}", i + 1, args.error().message()));
    b.items.push_back(std::move(*args));
  }
  if (!internal::IsNil(f[10])) {
    ASSIGN_OR_RETURN(uint64_t budget, internal::ReadUint(f[10], "fuel budget"));
    b.fuel_budget = budget;
  }
  return b;
}

Result<std::vector<engine::TraceFrame>> ReadTrace(const msgpack::object& field) {
  std::vector<engine::TraceFrame> out;
  ASSIGN_OR_RETURN(Items trace, internal::ReadArray(field, "trace", 0, kMaxTraceFrames));
  for (const msgpack::object& o : trace) {
    ASSIGN_OR_RETURN(Items fr, internal::ReadArray(o, "trace frame", 3, 6));
    if (fr.size() != 3 && fr.size() != 6) return ProtocolError("trace frame: wrong number of fields");
    engine::TraceFrame frame;
    ASSIGN_OR_RETURN(frame.function, ReadText(fr[0], "trace function"));
    ASSIGN_OR_RETURN(frame.file, ReadText(fr[1], "trace file"));
    ASSIGN_OR_RETURN(uint64_t line, internal::ReadUint(fr[2], "trace line", UINT32_MAX));
    frame.line = static_cast<uint32_t>(line);
    if (fr.size() == 6) {
      if (!internal::IsNil(fr[3])) {
        ASSIGN_OR_RETURN(frame.hash, internal::ReadHash(fr[3], "trace hash"));
        frame.has_hash = true;
      }
      ASSIGN_OR_RETURN(uint64_t pc, internal::ReadUint(fr[4], "trace pc", UINT32_MAX));
      frame.pc = static_cast<uint32_t>(pc);
      ASSIGN_OR_RETURN(frame.skipped, internal::ReadUint(fr[5], "trace skipped"));
    }
    out.push_back(std::move(frame));
  }
  return out;
}

// The optional tail (see TailFields) in `tail`.
Status ReadTail(Items tail, RemoteCallResponse* r) {
  if (tail.empty()) return Status::Ok();
  if (tail.size() > 2) return ProtocolError("call response: wrong number of fields");
  ASSIGN_OR_RETURN(std::string_view s,
                   internal::ReadStr(tail[0], "output", kMaxOutputBytes + 1024));
  if (s.empty() && tail.size() == 1) return ProtocolError("call response: empty output field");
  r->output = std::string(s);
  if (tail.size() == 2) {
    ASSIGN_OR_RETURN(uint64_t used, internal::ReadUint(tail[1], "fuel used"));
    r->fuel_used = used;
  }
  return Status::Ok();
}

Result<RemoteCallResponse> ReadResponse(Items f) {
  if (f.empty()) return ProtocolError("call response: missing result");
  ASSIGN_OR_RETURN(uint64_t which, internal::ReadUint(f[0], "call result kind", kResultError));
  if (which == kResultValue) {
    if (f.size() < 3 || f.size() > 5)
      return ProtocolError("call response: wrong number of fields");
    ASSIGN_OR_RETURN(internal::SchemaList schemas, internal::ReadSchemaTable(f[1]));
    ASSIGN_OR_RETURN(WireValue v, internal::ReadValue(f[2], schemas));
    RemoteCallResponse r = RemoteCallResponse::Success(std::move(v));
    RETURN_IF_ERROR(ReadTail(f.subspan(3), &r));
    return r;
  }
  if (f.size() < 4 || f.size() > 6) return ProtocolError("call error: wrong number of fields");
  RemoteCallError e;
  ASSIGN_OR_RETURN(std::string kind, ReadText(f[1], "error kind"));
  if (!ErrorKindFromName(kind, &e.kind)) return ProtocolError("unknown error kind '" + kind + "'");
  ASSIGN_OR_RETURN(e.message, ReadText(f[2], "error message"));
  ASSIGN_OR_RETURN(e.trace, ReadTrace(f[3]));
  RemoteCallResponse r{std::move(e), {}, {}};
  RETURN_IF_ERROR(ReadTail(f.subspan(4), &r));
  return r;
}

// CallBatchResponse (see PackBatchResponse).
Result<RemoteCallBatchResponse> ReadBatchResponse(Items f) {
  if (f.size() != 3) return ProtocolError("call batch response: wrong number of fields");
  ASSIGN_OR_RETURN(internal::SchemaList schemas, internal::ReadSchemaTable(f[0]));
  ASSIGN_OR_RETURN(Items results, internal::ReadArray(f[1], "results", 0, kMaxBatchItems));
  RemoteCallBatchResponse b;
  b.results.reserve(results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    auto context = [&](const Status& s) {
      return ProtocolError(fmt::format("result {}: {}", i + 1, s.message()));
    };
    Result<Items> r = internal::ReadArray(results[i], "result", 4, 6);
    if (!r) return context(r.error());
    Result<uint64_t> which = internal::ReadUint((*r)[0], "result kind", kResultError);
    if (!which) return context(which.error());
    RemoteCallResponse out;
    if (*which == kResultValue) {
      if (r->size() != 4) return context(ProtocolError("wrong number of fields"));
      Result<WireValue> v = internal::ReadValue((*r)[1], schemas);
      if (!v) return context(v.error());
      out = RemoteCallResponse::Success(std::move(*v));
    } else {
      if (r->size() != 6) return context(ProtocolError("wrong number of fields"));
      RemoteCallError e;
      Result<std::string> kind = ReadText((*r)[1], "error kind");
      if (!kind) return context(kind.error());
      if (!ErrorKindFromName(*kind, &e.kind))
        return context(ProtocolError("unknown error kind '" + *kind + "'"));
      Result<std::string> message = ReadText((*r)[2], "error message");
      if (!message) return context(message.error());
      e.message = std::move(*message);
      Result<std::vector<engine::TraceFrame>> trace = ReadTrace((*r)[3]);
      if (!trace) return context(trace.error());
      e.trace = std::move(*trace);
      out = RemoteCallResponse{std::move(e), {}, {}};
    }
    Items tail = r->subspan(r->size() - 2);
    Result<std::string_view> output = internal::ReadStr(tail[0], "output", kMaxOutputBytes + 1024);
    if (!output) return context(output.error());
    out.output = std::string(*output);
    if (!internal::IsNil(tail[1])) {
      Result<uint64_t> used = internal::ReadUint(tail[1], "fuel used");
      if (!used) return context(used.error());
      out.fuel_used = *used;
    }
    b.results.push_back(std::move(out));
  }
  ASSIGN_OR_RETURN(b.cpu_ns, internal::ReadUint(f[2], "cpu time"));
  return b;
}

Result<Sidecar> ReadSidecar(Items f) {
  if (f.size() != 3) return ProtocolError("sidecar: wrong number of fields");
  Sidecar s;
  ASSIGN_OR_RETURN(uint64_t id, internal::ReadUint(f[0], "sidecar id", UINT32_MAX));
  ASSIGN_OR_RETURN(uint64_t kind, internal::ReadUint(f[1], "sidecar kind", 2));
  ASSIGN_OR_RETURN(std::span<const uint8_t> bytes,
                   internal::ReadBin(f[2], "sidecar", kMaxBinBytes));
  s.id = static_cast<uint32_t>(id);
  s.kind = static_cast<SidecarKind>(kind);
  s.bytes.assign(bytes.begin(), bytes.end());
  return s;
}

}  // namespace

RemoteCallResponse RemoteCallResponse::Failure(ErrorKind kind, std::string message,
                                               std::vector<engine::TraceFrame> trace) {
  if (kind == ErrorKind::kOk) kind = ErrorKind::kInternal;
  return {RemoteCallError{kind, std::move(message), std::move(trace)}, {}, {}};
}

Status RemoteCallResponse::status() const {
  if (ok()) return Status::Ok();
  return Status(error().kind, error().message);
}

bool ErrorKindFromName(std::string_view name, ErrorKind* out) {
  for (ErrorKind k : kAllErrorKinds) {
    if (ErrorKindName(k) == name) {
      *out = k;
      return true;
    }
  }
  return false;
}

std::vector<uint8_t> EncodeMessage(const WireMessage& message) {
  std::vector<uint8_t> out;
  out.reserve(256);  // a small call or answer fits: no growth while packing
  internal::ByteSink sink(&out);
  Packer pk(sink);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, BlobNegotiationRequest>) {
          Head(pk, kTagBlobNegotiation, 1);
          PackHashes(pk, m.offered_hashes);
        } else if constexpr (std::is_same_v<T, BlobNegotiationResponse>) {
          Head(pk, kTagBlobNegotiationReply, 1);
          PackHashes(pk, m.known_hashes);
        } else if constexpr (std::is_same_v<T, RemoteCallRequest>) {
          PackRequest(pk, m);
        } else if constexpr (std::is_same_v<T, RemoteCallResponse>) {
          PackResponse(pk, m);
        } else if constexpr (std::is_same_v<T, RemoteCallBatch>) {
          PackBatch(pk, m);
        } else if constexpr (std::is_same_v<T, RemoteCallBatchResponse>) {
          PackBatchResponse(pk, m);
        } else {
          static_assert(std::is_same_v<T, Sidecar>);
          Head(pk, kTagSidecar, 3);
          pk.pack_uint32(m.id);
          pk.pack_uint8(static_cast<uint8_t>(m.kind));
          internal::PackBin(pk, m.data());
        }
      },
      message);
  return out;
}

namespace {

// One object-tree zone per thread, reused by DecodeMessage (a decoded message copies out
// everything it keeps, so the tree dies with the call). A nested decode gets its own.
struct ReusableZone {
  msgpack::zone zone;
  bool in_use = false;
};
thread_local ReusableZone reusable_zone;

class ZoneLease {
 public:
  ZoneLease() {
    if (!reusable_zone.in_use) {
      reusable_zone.in_use = true;
      zone_ = &reusable_zone.zone;
    } else {
      own_.emplace();
      zone_ = &*own_;
    }
  }
  ~ZoneLease() {
    if (own_) return;
    reusable_zone.zone.clear();
    reusable_zone.in_use = false;
  }
  msgpack::zone& zone() { return *zone_; }

 private:
  msgpack::zone* zone_;
  std::optional<msgpack::zone> own_;
};

}  // namespace

Result<WireMessage> DecodeMessage(std::span<const uint8_t> bytes) {
  ZoneLease zone;
  // Values sit two levels below the message array (message -> argument list -> value), three
  // in a batch (message -> items -> item -> value); ReadValue bounds the values' own depth.
  ASSIGN_OR_RETURN(msgpack::object root,
                   internal::UnpackUntrustedInto(zone.zone(), bytes,
                                                 kMaxWireDepth + kMaxEnvelopeDepth + 1));
  ASSIGN_OR_RETURN(Items m, internal::ReadArray(root, "message", 2));
  ASSIGN_OR_RETURN(uint64_t version, internal::ReadUint(m[0], "protocol version"));
  if (version != kWireProtocolVersion)
    return ProtocolError(fmt::format("unsupported protocol version {} (this build speaks {})",
                                     version, kWireProtocolVersion));
  ASSIGN_OR_RETURN(uint64_t tag, internal::ReadUint(m[1], "message tag"));
  Items f = m.subspan(2);
  switch (tag) {
    case kTagBlobNegotiation:
    case kTagBlobNegotiationReply: {
      if (f.size() != 1) return ProtocolError("negotiation: wrong number of fields");
      ASSIGN_OR_RETURN(std::vector<engine::FunctionHash> hashes, ReadHashes(f[0], "hash"));
      if (tag == kTagBlobNegotiation) return WireMessage{BlobNegotiationRequest{std::move(hashes)}};
      return WireMessage{BlobNegotiationResponse{std::move(hashes)}};
    }
    case kTagCall: {
      ASSIGN_OR_RETURN(RemoteCallRequest r, ReadRequest(f));
      return WireMessage{std::move(r)};
    }
    case kTagCallResponse: {
      ASSIGN_OR_RETURN(RemoteCallResponse r, ReadResponse(f));
      return WireMessage{std::move(r)};
    }
    case kTagSidecar: {
      ASSIGN_OR_RETURN(Sidecar s, ReadSidecar(f));
      return WireMessage{std::move(s)};
    }
    case kTagCallBatch: {
      ASSIGN_OR_RETURN(RemoteCallBatch b, ReadBatch(f));
      return WireMessage{std::move(b)};
    }
    case kTagCallBatchResponse: {
      ASSIGN_OR_RETURN(RemoteCallBatchResponse b, ReadBatchResponse(f));
      return WireMessage{std::move(b)};
    }
    default:
      return ProtocolError(fmt::format("unknown message tag {}", tag));
  }
}

engine::Limits EffectiveLimits(const std::optional<CallLimits>& requested,
                               const engine::Limits& defaults) {
  engine::Limits limits = defaults;
  if (!requested) return limits;
  if (requested->fuel != 0) limits.fuel = requested->fuel;
  if (requested->memory != 0) {
    limits.memory = static_cast<size_t>(std::min<uint64_t>(requested->memory, defaults.memory));
  }
  if (requested->stack != 0) limits.stack = requested->stack;
  if (requested->timeout_ms != 0) {
    limits.timeout = static_cast<double>(requested->timeout_ms) / 1000;
  }
  return limits;
}

}  // namespace shapex::ipc
