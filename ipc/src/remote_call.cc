#include "shapex/ipc/remote_call.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <set>
#include <unordered_set>

#include "shapex/ipc/type_registry.h"
#include "value_codec_internal.h"

namespace shapex::ipc {
namespace {

using HashSet = std::unordered_set<engine::FunctionHash, engine::FunctionHashHasher>;

RemoteCallRequest FromBlobSet(std::string name, engine::BlobSet set,
                              std::vector<WireValue> arguments) {
  RemoteCallRequest r;
  r.function_name = std::move(name);
  r.function_hash = set.entry;
  r.arguments = std::move(arguments);
  r.blobs = std::move(set.blobs);
  r.impls = std::move(set.impls);
  return r;
}

// The entry: the request's hash, else the one blob named function_name.
Result<engine::FunctionHash> ResolveEntry(const RemoteCallRequest& request,
                                          const std::vector<engine::FunctionBlob>& blobs) {
  if (request.function_hash) return *request.function_hash;
  const engine::FunctionBlob* found = nullptr;
  for (const engine::FunctionBlob& b : blobs) {
    if (b.debug.name != request.function_name) continue;
    if (found != nullptr && found->hash != b.hash)
      return FunctionNotFoundError(
          fmt::format("function name '{}' is ambiguous", request.function_name));
    found = &b;
  }
  if (found == nullptr)
    return FunctionNotFoundError(fmt::format("no function named '{}'", request.function_name));
  return found->hash;
}

// The struct and enum types the request's values use, once each (by content), and a key that
// names that set for the link cache.
void CollectValueTypes(const WireValue& v, std::vector<engine::ValueType>* out,
                       std::set<const WireTypeSchema*>* seen, std::set<std::string>* keys) {
  if (v.kind == WireKind::kStruct || v.kind == WireKind::kEnum) {
    const WireTypeRef* t = std::get_if<WireTypeRef>(&v.data);
    if (t != nullptr && t->schema != nullptr && seen->insert(t->schema.get()).second &&
        keys->insert(internal::SchemaKey(*t->schema)).second) {
      const WireTypeSchema& s = *t->schema;
      out->push_back(engine::ValueType{s.kind == WireTypeSchema::Kind::kEnum, s.name, s.names,
                                       s.arity});
    }
  }
  for (const WireValue& child : v.children) CollectValueTypes(child, out, seen, keys);
}

// The struct and enum types the request's values use (what the linker checks against the
// code), and a key naming them for the link cache. `items` are a batch's arguments (the
// request's own are empty then).
std::vector<engine::ValueType> ValueTypesOf(const RemoteCallRequest& request,
                                            std::span<const std::vector<WireValue>> items,
                                            std::string* key) {
  std::vector<engine::ValueType> out;
  std::set<const WireTypeSchema*> seen;
  std::set<std::string> keys;
  for (const WireValue& v : request.arguments) CollectValueTypes(v, &out, &seen, &keys);
  for (const std::vector<WireValue>& item : items)
    for (const WireValue& v : item) CollectValueTypes(v, &out, &seen, &keys);
  if (request.captures)
    for (const WireValue& v : *request.captures) CollectValueTypes(v, &out, &seen, &keys);
  for (const auto& [name, v] : request.globals) CollectValueTypes(v, &out, &seen, &keys);
  key->clear();
  for (const std::string& k : keys) {
    *key += std::to_string(k.size());
    *key += ':';
    *key += k;
  }
  return out;
}

RemoteCallResponse FailureFrom(const Status& status, std::vector<engine::TraceFrame> trace = {}) {
  // The bytecode verifier reports InvalidArgument; to a caller, a blob it rejects is malformed.
  ErrorKind kind =
      status.kind() == ErrorKind::kInvalidArgument ? ErrorKind::kProtocolError : status.kind();
  return RemoteCallResponse::Failure(kind, status.message(), std::move(trace));
}

// A request's linked program: a LinkCache entry's (`entry` set), or one of its own.
struct LinkedCall {
  LinkCache::Entry* entry = nullptr;
  const engine::LinkedProgram* linked = nullptr;
  const ProtoIndex* protos = nullptr;
  TypeRegistry* types = nullptr;
  std::optional<engine::LinkedProgram> own_linked;
  ProtoIndex own_protos;
  std::unique_ptr<TypeRegistry> own_types;

  void Use(LinkCache::Entry* e) {
    entry = e;
    linked = &e->linked;
    protos = &e->protos;
    types = e->types.get();
  }
};

// Links what `request` calls, for values of `items` (a batch's; none for one call). Warm path:
// the entry was linked before and the request brings no new code; content hashes make this
// exact (the same entry hash and impls always link to the same program). Otherwise the blobs
// sent, plus everything cached, are verified and linked; the verified ones enter the cache and
// the program enters `links`. The error is the resolver's or the linker's.
Status LinkRequest(const RemoteCallRequest& request,
                   std::span<const std::vector<WireValue>> items, engine::BlobCache* cache,
                   LinkCache* links, LinkedCall* out) {
  std::string types_key;
  std::vector<engine::ValueType> value_types = ValueTypesOf(request, items, &types_key);
  std::string key;
  if (links != nullptr && cache != nullptr && request.function_hash) {
    bool nothing_new = true;
    if (request.blobs) {
      for (const engine::FunctionBlob& b : *request.blobs) {
        nothing_new = nothing_new && cache->Contains(b.hash);
      }
    }
    key = LinkCache::KeyFor(*request.function_hash, request.impls, request.roots) + '|' +
          types_key;
    if (nothing_new) {
      if (LinkCache::Entry* e = links->Find(key)) {
        out->Use(e);
        return Status::Ok();
      }
    }
  }
  static const std::vector<engine::FunctionBlob> kNoBlobs;
  const std::vector<engine::FunctionBlob>& sent = request.blobs ? *request.blobs : kNoBlobs;
  // With a cache, the blob set is what was sent plus everything cached (the linker takes only
  // what the entry reaches).
  std::vector<engine::FunctionBlob> merged;
  if (cache != nullptr) {
    merged = sent;
    HashSet have;
    for (const engine::FunctionBlob& b : sent) have.insert(b.hash);
    for (const engine::FunctionHash& h : cache->KnownHashes()) {
      if (have.count(h)) continue;
      if (const engine::FunctionBlob* b = cache->Get(h)) merged.push_back(*b);
    }
  }
  const std::vector<engine::FunctionBlob>& blobs = cache != nullptr ? merged : sent;
  ASSIGN_OR_RETURN(engine::FunctionHash entry, ResolveEntry(request, blobs));
  ASSIGN_OR_RETURN(engine::LinkedProgram linked,
                   engine::ProgramFromBlobs(entry, blobs, request.impls, request.roots,
                                            value_types));
  if (cache != nullptr) {
    // Only blobs the linker verified (their hashes recomputed) enter the cache.
    HashSet verified(linked.proto_hashes.begin(), linked.proto_hashes.end());
    for (const engine::FunctionBlob& b : sent)
      if (verified.count(b.hash)) cache->Insert(b);
  }
  if (links != nullptr && !key.empty() &&
      linked.proto_hashes[linked.entry] == *request.function_hash) {
    LinkCache::Entry* e = links->Insert(std::move(key), std::move(linked));
    out->Use(e);
    return Status::Ok();
  }
  out->own_linked = std::move(linked);
  out->own_protos = MakeProtoIndex(out->own_linked->proto_hashes);
  out->own_types = std::make_unique<TypeRegistry>(*out->own_linked->program);  // outlives the Vm
  out->linked = &*out->own_linked;
  out->protos = &out->own_protos;
  out->types = out->own_types.get();
  return Status::Ok();
}

// Splits a call's time into ExecuteTimes' stages; does nothing when nobody asked.
class StageClock {
 public:
  explicit StageClock(ExecuteTimes* out) : out_(out) {
    if (out_ != nullptr) last_ = std::chrono::steady_clock::now();
  }
  void Lap(uint64_t ExecuteTimes::*stage) {
    if (out_ == nullptr) return;
    auto now = std::chrono::steady_clock::now();
    out_->*stage += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count());
    last_ = now;
  }

 private:
  ExecuteTimes* out_;
  std::chrono::steady_clock::time_point last_;
};

// Everything after linking: rebuild the arguments, call, send the result back. With `borrow`
// (the program and types outlive the response: a LinkCache entry), large typed arrays and
// matrices in the result are not copied: they point into the call's Vm, which the response
// keeps alive until it is sent and destroyed.
// With `reuse` (a LinkCache entry's Vm slot), the last call's Vm is reset and run again when
// nothing borrows from it any more; otherwise a new Vm is made and kept there.
// `arguments` stand for request.arguments (a batch item's, with the batch's request).
RemoteCallResponse Run(const RemoteCallRequest& request, std::span<const WireValue> arguments,
                       const engine::LinkedProgram& linked,
                       const ProtoIndex& protos, TypeRegistry& types,
                       const engine::Limits& limits, bool borrow,
                       std::shared_ptr<engine::Vm>* reuse = nullptr,
                       StageClock* clock = nullptr) {
  const engine::Program& program = *linked.program;
  const engine::Proto& entry = *program.protos[linked.entry];
  if (entry.is_closure && !request.captures)
    return RemoteCallResponse::Failure(
        ErrorKind::kArgumentError,
        fmt::format("'{}' is a closure: the request carries no captured values", entry.name));
  if (!entry.is_closure && request.captures)
    return RemoteCallResponse::Failure(ErrorKind::kArgumentError,
                                       fmt::format("'{}' is not a closure", entry.name));

  std::shared_ptr<engine::Vm> vm_owner;
  if (reuse != nullptr && *reuse != nullptr && reuse->use_count() == 1 &&
      (*reuse)->Reset(limits)) {
    vm_owner = *reuse;
  } else {
    vm_owner = std::make_shared<engine::Vm>(program, limits);
    if (reuse != nullptr) *reuse = vm_owner;
  }
  engine::Vm& vm = *vm_owner;
  // Rebuilding the values is work the call pays for, like its instructions.
  FromWireContext ctx{&vm, &protos, &types, /*charge_fuel=*/true};
  WireDecoder decoder(ctx);
  engine::Vm::RootScope roots(vm);  // the collector may run before the call starts
  // What the call prints goes back with the response, up to kMaxOutputBytes.
  std::string output;
  size_t dropped = 0;
  vm.SetOutput([&](std::string_view text) {
    size_t room = kMaxOutputBytes - output.size();
    output.append(text.substr(0, room));
    dropped += text.size() - std::min(room, text.size());
  });
  if (clock != nullptr) clock->Lap(&ExecuteTimes::setup_ns);
  auto finish = [&](RemoteCallResponse response) {
    vm.SetOutput([](std::string_view) {});  // the Vm may outlive `output` (borrowed result)
    if (dropped > 0) output += fmt::format("\n[shapex: {} more bytes of output dropped]\n", dropped);
    response.output = std::move(output);
    response.fuel_used = vm.instructions_executed();
    if (clock != nullptr) clock->Lap(&ExecuteTimes::run_ns);
    return response;
  };
  auto failed = [&](const Status& status) {
    // A value that cannot be rebuilt is a bad argument, whatever the reason, unless a limit
    // stopped it.
    ErrorKind kind = status.kind() == ErrorKind::kResourceExhausted ? status.kind()
                                                                     : ErrorKind::kArgumentError;
    return finish(RemoteCallResponse::Failure(kind, status.message()));
  };

  // One document, read in the order it was written: arguments, captures, globals.
  std::vector<engine::Value> args;
  for (size_t i = 0; i < arguments.size(); ++i) {
    Result<engine::Value> v = decoder.Decode(arguments[i]);
    if (!v) return failed(Status(v.error().kind(), fmt::format("argument {}: {}", i + 1,
                                                              v.error().message())));
    roots.Add(*v);
    args.push_back(*v);
  }
  engine::Value callee = engine::Value::None();
  if (request.captures) {
    Result<engine::Value> c = decoder.DecodeClosure(linked.entry, *request.captures);
    if (!c) return failed(Status(c.error().kind(), "closure: " + c.error().message()));
    roots.Add(*c);
    callee = *c;
  }
  // The caller's values of the globals the code uses. Globals it does not send stay unset (their
  // let had not run when the call was made): reading one is a RuntimeError.
  for (size_t i = 0; i < request.globals.size(); ++i) {
    const auto& [name, wire] = request.globals[i];
    Result<engine::Value> v = decoder.Decode(wire);
    if (!v) return failed(Status(v.error().kind(), fmt::format("global {}: {}", name,
                                                              v.error().message())));
    roots.Add(*v);
    auto slot = std::find(program.global_names.begin(), program.global_names.end(), name);
    if (slot == program.global_names.end()) continue;  // not used by the linked code
    vm.SetGlobal(static_cast<size_t>(slot - program.global_names.begin()), *v);
  }

  engine::Value result;
  Status called = request.captures ? vm.CallValue(callee, args, &result)
                                   : vm.CallFunction(linked.entry, args, &result);
  if (!called.ok()) {
    // Each frame says which code it was in, so the caller can name it with its own debug info.
    std::vector<engine::TraceFrame> trace = vm.trace();
    for (engine::TraceFrame& f : trace) {
      if (f.proto >= linked.proto_hashes.size()) continue;
      f.hash = linked.proto_hashes[f.proto];
      f.has_hash = true;
    }
    if (trace.size() > kMaxTraceFrames) trace.resize(kMaxTraceFrames);
    return finish(FailureFrom(called, std::move(trace)));
  }

  // A scalar result is one node: what ToWire would write and charge, without an encoder.
  switch (result.type) {
    case engine::Type::kNone:
    case engine::Type::kBool:
    case engine::Type::kInt:
    case engine::Type::kNumber:
      if (!vm.ChargeFuel(1)) {
        return finish(RemoteCallResponse::Failure(ErrorKind::kResourceExhausted,
                                                  "the result cannot be sent back: fuel exhausted"));
      }
      return finish(RemoteCallResponse::Success(
          result.type == engine::Type::kNone   ? WireValue::None()
          : result.type == engine::Type::kBool ? WireValue::Bool(result.as.b)
          : result.type == engine::Type::kInt  ? WireValue::Int(result.as.i)
                                               : WireValue::Number(result.as.n)));
    default:
      break;
  }
  ToWireContext to_wire{&program, linked.proto_hashes};
  to_wire.fuel = &vm;
  if (borrow) {
    to_wire.borrow_threshold = kSidecarThreshold;
    to_wire.borrow_owner = vm_owner;
  }
  Result<WireValue> wire = ToWire(result, to_wire);
  if (!wire) {
    ErrorKind kind = wire.error().kind() == ErrorKind::kResourceExhausted
                         ? ErrorKind::kResourceExhausted
                         : ErrorKind::kRuntimeError;
    return finish(RemoteCallResponse::Failure(
        kind, "the result cannot be sent back: " + wire.error().message()));
  }
  return finish(RemoteCallResponse::Success(std::move(*wire)));
}

}  // namespace

Result<RemoteCallRequest> BuildCallRequest(const engine::Program& program,
                                           const engine::ProgramBlobs& blobs,
                                           std::string_view function_name,
                                           std::vector<WireValue> arguments) {
  int index = program.FindFunction(std::string(function_name));
  if (index >= 0 && static_cast<size_t>(index) < blobs.proto_hashes.size()) {
    ASSIGN_OR_RETURN(engine::BlobSet set,
                     engine::MinimalBlobsByHash(blobs, blobs.proto_hashes[index]));
    RemoteCallRequest r =
        FromBlobSet(std::string(function_name), std::move(set), std::move(arguments));
    r.function_id = static_cast<uint32_t>(index);
    return r;
  }
  // Not a top-level function ("Point.len", ...): the name must pick exactly one blob.
  ASSIGN_OR_RETURN(engine::BlobSet set, engine::MinimalBlobs(blobs, function_name));
  return FromBlobSet(std::string(function_name), std::move(set), std::move(arguments));
}

Result<RemoteCallRequest> BuildValueCallRequest(const engine::ProgramBlobs& blobs,
                                                const WireValue& callee,
                                                std::vector<WireValue> arguments) {
  if (callee.kind != WireKind::kFunction && callee.kind != WireKind::kClosure)
    return ArgumentError("cannot call a " + DescribeWire(callee) + " remotely");
  const engine::FunctionHash* hash = std::get_if<engine::FunctionHash>(&callee.data);
  if (hash == nullptr) return ArgumentError("malformed function value");
  ASSIGN_OR_RETURN(engine::BlobSet set, engine::MinimalBlobsByHash(blobs, *hash));
  std::string name;
  for (const engine::FunctionBlob& b : set.blobs)
    if (b.hash == *hash) name = b.debug.name;
  RemoteCallRequest r = FromBlobSet(std::move(name), std::move(set), std::move(arguments));
  auto it = std::find(blobs.proto_hashes.begin(), blobs.proto_hashes.end(), *hash);
  if (it != blobs.proto_hashes.end())
    r.function_id = static_cast<uint32_t>(it - blobs.proto_hashes.begin());
  if (callee.kind == WireKind::kClosure) r.captures = callee.children;
  return r;
}

std::vector<engine::FunctionHash> OfferedHashes(const RemoteCallRequest& request) {
  std::vector<engine::FunctionHash> out;
  if (request.blobs)
    for (const engine::FunctionBlob& b : *request.blobs) out.push_back(b.hash);
  return out;
}

bool IsMissingBlobError(const RemoteCallResponse& response) {
  if (response.ok()) return false;
  const RemoteCallError& e = response.error();
  return (e.kind == ErrorKind::kProtocolError &&
          e.message.find("missing dependency") != std::string::npos) ||
         (e.kind == ErrorKind::kFunctionNotFound &&
          e.message.find("is missing") != std::string::npos);
}

BlobNegotiationResponse HandleNegotiation(const engine::BlobCache& cache,
                                          const BlobNegotiationRequest& request) {
  return BlobNegotiationResponse{cache.FilterKnown(request.offered_hashes)};
}

RemoteCallRequest BuildCallRequestNegotiated(RemoteCallRequest request,
                                             std::span<const engine::FunctionHash> known_hashes) {
  if (request.blobs) {
    HashSet known(known_hashes.begin(), known_hashes.end());
    std::erase_if(*request.blobs,
                  [&](const engine::FunctionBlob& b) { return known.count(b.hash) != 0; });
  }
  return request;
}

RemoteCallResponse ExecuteRemoteCall(const RemoteCallRequest& request,
                                     const engine::Limits& limits) {
  return ExecuteRemoteCall(request, limits, nullptr);
}

LinkCache::LinkCache(size_t max_entries) : max_entries_(std::max<size_t>(1, max_entries)) {}

LinkCache::Entry* LinkCache::Find(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, it->second);
  return &*it->second;
}

LinkCache::Entry* LinkCache::Insert(std::string key, engine::LinkedProgram linked) {
  if (Entry* existing = Find(key)) return existing;
  entries_.emplace_front();
  Entry& e = entries_.front();
  e.key = std::move(key);
  e.linked = std::move(linked);
  e.protos = MakeProtoIndex(e.linked.proto_hashes);
  e.types = std::make_unique<TypeRegistry>(*e.linked.program);
  index_[e.key] = entries_.begin();
  while (entries_.size() > max_entries_) {
    if (vm_entry_ == &entries_.back()) {
      vm_.reset();
      vm_entry_ = nullptr;
    }
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
  return &e;
}

std::shared_ptr<engine::Vm>* LinkCache::VmSlot(const Entry* entry) {
  if (vm_entry_ != entry) {
    vm_.reset();
    vm_entry_ = entry;
  }
  return &vm_;
}

void LinkCache::ReleaseCallMemory() {
  if (vm_ != nullptr && vm_.use_count() == 1 && !vm_->Reset(vm_->limits())) vm_.reset();
}

std::string LinkCache::KeyFor(const engine::FunctionHash& entry,
                              const std::vector<engine::ImplEntry>& impls,
                              const std::vector<engine::FunctionHash>& roots) {
  std::string key(entry.begin(), entry.end());
  key += static_cast<char>(roots.size() & 0xff);
  key += static_cast<char>((roots.size() >> 8) & 0xff);
  key += static_cast<char>((roots.size() >> 16) & 0xff);
  for (const engine::FunctionHash& root : roots) key.append(root.begin(), root.end());
  for (const engine::ImplEntry& impl : impls) {
    key.append(impl.type_schema.begin(), impl.type_schema.end());
    key += impl.method;
    key.push_back('\0');
    key.append(impl.function.begin(), impl.function.end());
  }
  return key;
}

RemoteCallResponse ExecuteRemoteCall(const RemoteCallRequest& request, const engine::Limits& limits,
                                     engine::BlobCache* cache) {
  return ExecuteRemoteCall(request, limits, cache, nullptr);
}

RemoteCallResponse ExecuteRemoteCall(const RemoteCallRequest& request, const engine::Limits& limits,
                                     engine::BlobCache* cache, LinkCache* links) {
  return ExecuteRemoteCall(request, limits, cache, links, nullptr);
}

RemoteCallResponse ExecuteRemoteCall(const RemoteCallRequest& request, const engine::Limits& limits,
                                     engine::BlobCache* cache, LinkCache* links,
                                     ExecuteTimes* times) {
  StageClock clock(times);
  LinkedCall link;
  Status linked = LinkRequest(request, {}, cache, links, &link);
  if (!linked.ok()) return FailureFrom(linked);
  clock.Lap(&ExecuteTimes::lookup_ns);
  if (link.entry != nullptr) {
    return Run(request, request.arguments, *link.linked, *link.protos, *link.types, limits,
               /*borrow=*/true, links->VmSlot(link.entry), &clock);
  }
  return Run(request, request.arguments, *link.linked, *link.protos, *link.types, limits,
             /*borrow=*/false, nullptr, &clock);
}

}  // namespace shapex::ipc

// ---- batches (pmap) ----

namespace shapex::ipc {
namespace {

// Roughly how many bytes `v` takes on the wire (to keep a batch's answer small).
size_t EstimateWireBytes(const WireValue& v) {
  size_t n = 9;
  if (const auto* s = std::get_if<std::string>(&v.data)) n += s->size();
  if (const auto* b = std::get_if<WireBuffer>(&v.data)) n += b->data().size();
  for (const WireValue& c : v.children) n += EstimateWireBytes(c);
  return n;
}

}  // namespace

RemoteCallBatchResponse ExecuteRemoteBatch(const RemoteCallBatch& batch,
                                           const engine::Limits& limits, engine::BlobCache* cache,
                                           LinkCache* links, size_t max_response_bytes) {
  RemoteCallBatchResponse out;
  if (batch.items.empty()) return out;
  const RemoteCallRequest& call = batch.call;
  // Link once, as ExecuteRemoteCall does for one call, for the values of every item.
  LinkedCall link;
  Status linked = LinkRequest(call, batch.items, cache, links, &link);
  if (!linked.ok()) {
    out.results.push_back(FailureFrom(linked));
    return out;
  }

  engine::Limits base = EffectiveLimits(call.limits, limits);
  timespec cpu_start{};
  bool timed = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_start) == 0;
  uint64_t used = 0;
  size_t bytes = 0;
  out.results.reserve(batch.items.size());
  std::shared_ptr<engine::Vm> vm;
  for (const std::vector<WireValue>& item : batch.items) {
    engine::Limits item_limits = base;
    if (batch.fuel_budget) {
      if (used >= *batch.fuel_budget) break;  // nothing left: the caller runs the rest
      uint64_t left = *batch.fuel_budget - used;
      item_limits.fuel = item_limits.fuel == 0 ? left : std::min<uint64_t>(item_limits.fuel, left);
    }
    // What Run does for a single call with the item's arguments (the batch's globals copied in
    // after them, one document), in one Vm reset between items (no result borrows from it).
    RemoteCallResponse r = Run(call, item, *link.linked, *link.protos, *link.types,
                               item_limits, /*borrow=*/false, &vm);
    used += r.fuel_used.value_or(0);
    bytes += r.output.size() + (r.ok() ? EstimateWireBytes(r.value()) : r.error().message.size());
    bool failed = !r.ok();
    out.results.push_back(std::move(r));
    if (failed || bytes > max_response_bytes) break;
  }
  timespec cpu_end{};
  if (timed && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_end) == 0) {
    int64_t ns = (cpu_end.tv_sec - cpu_start.tv_sec) * int64_t{1000000000} +
                 (cpu_end.tv_nsec - cpu_start.tv_nsec);
    out.cpu_ns = static_cast<uint64_t>(std::max<int64_t>(ns, 1));
  }
  return out;
}

}  // namespace shapex::ipc
