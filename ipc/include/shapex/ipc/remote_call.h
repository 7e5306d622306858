// Remote calls, both ends (the seed's build_call_request, handle_negotiation,
// build_call_request_negotiated and execute_remote_call).
//
// Caller:
//   ASSIGN_OR_RETURN(engine::ProgramBlobs pb, engine::BuildProgramBlobs(*program));
//   ASSIGN_OR_RETURN(RemoteCallRequest req, BuildCallRequest(*program, pb, "add", {a, b}));
//   send(EncodeMessage(BlobNegotiationRequest{OfferedHashes(req)}));
//   ... reply with known_hashes ...
//   send(EncodeMessage(BuildCallRequestNegotiated(std::move(req), reply.known_hashes)));
// Callee:
//   reply = HandleNegotiation(cache, offer);
//   RemoteCallResponse resp = ExecuteRemoteCall(request, limits, &cache);
//
// ExecuteRemoteCall never throws or crashes on a hostile request: every failure becomes a
// typed error response (FunctionNotFound, ArgumentError, MissingModuleFunction, ProtocolError,
// RuntimeError, ResourceExhausted, Timeout, ...) carrying the Vm's trace when code ran.
#ifndef SHAPEX_IPC_REMOTE_CALL_H_
#define SHAPEX_IPC_REMOTE_CALL_H_

#include <list>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <string_view>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/blob_cache.h"
#include "shapex/engine/program.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc {

// A request for the named function of `program` (`blobs` = BuildProgramBlobs(program)): the
// function's hash and proto index plus the minimal blob set (the function, everything it
// references, and the methods of the types it uses). A top-level function name is looked up in
// the program; any other name (e.g. "Point.len") must match exactly one blob.
// FunctionNotFound when nothing, or more than one function ("ambiguous"), matches.
Result<RemoteCallRequest> BuildCallRequest(const engine::Program& program,
                                           const engine::ProgramBlobs& blobs,
                                           std::string_view function_name,
                                           std::vector<WireValue> arguments);

// A request that calls a function or closure value (kFunction or kClosure, e.g. from ToWire):
// by its hash, with a closure's captures. FunctionNotFound when the hash is not in `blobs`,
// ArgumentError when `callee` is not a function or closure.
Result<RemoteCallRequest> BuildValueCallRequest(const engine::ProgramBlobs& blobs,
                                                const WireValue& callee,
                                                std::vector<WireValue> arguments);

// The hashes of the blobs `request` carries, to offer in a BlobNegotiationRequest.
std::vector<engine::FunctionHash> OfferedHashes(const RemoteCallRequest& request);

// The callee's answer to an offer: the offered hashes it has cached (does not refresh them).
// Whether a failed call failed only because the executor lacks some of the code (the linker's
// words for a missing blob, engine/src/linker.cc): a client that left blobs out on its own
// knowledge sends them and calls again.
bool IsMissingBlobError(const RemoteCallResponse& response);

BlobNegotiationResponse HandleNegotiation(const engine::BlobCache& cache,
                                          const BlobNegotiationRequest& request);

// `request` without the blobs whose hashes are in `known_hashes`.
RemoteCallRequest BuildCallRequestNegotiated(RemoteCallRequest request,
                                             std::span<const engine::FunctionHash> known_hashes);

// Runs a request on this machine: resolves the entry (function_hash, else the unique blob named
// function_name), links the blobs (engine::ProgramFromBlobs verifies them), rebuilds the
// arguments (and captures) in a fresh Vm with `limits`, calls, and sends the result back.
RemoteCallResponse ExecuteRemoteCall(const RemoteCallRequest& request,
                                     const engine::Limits& limits);

// The same for a connection with a blob cache: the request's blobs are added to `cache`, and
// blobs the request omits (stripped after negotiation) are taken from it.
RemoteCallResponse ExecuteRemoteCall(const RemoteCallRequest& request, const engine::Limits& limits,
                                     engine::BlobCache* cache);

// Linked programs by entry hash and impls (LRU), so a warm call neither gathers blobs nor links
// and verifies again: with content hashes the same key always links to the same program. Each
// entry keeps the program's ProtoIndex and TypeRegistry (which outlive every Vm using them).
class LinkCache {
 public:
  struct Entry {
    std::string key;
    engine::LinkedProgram linked;
    ProtoIndex protos;
    std::unique_ptr<TypeRegistry> types;
  };
  explicit LinkCache(size_t max_entries = 256);
  Entry* Find(const std::string& key);
  Entry* Insert(std::string key, engine::LinkedProgram linked);
  size_t size() const { return entries_.size(); }
  // The reusable Vm for calls of `entry`: one Vm is kept, for the entry called last, so the
  // next call of the same entry resets it (Vm::Reset) instead of building one. Asking for
  // another entry drops it.
  std::shared_ptr<engine::Vm>* VmSlot(const Entry* entry);
  // After a response went out: frees what the kept Vm's last call allocated (unless a response
  // still borrows from it), so an idle executor holds no call's memory.
  void ReleaseCallMemory();
  static std::string KeyFor(const engine::FunctionHash& entry,
                            const std::vector<engine::ImplEntry>& impls,
                            const std::vector<engine::FunctionHash>& roots = {});

 private:
  size_t max_entries_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  const Entry* vm_entry_ = nullptr;
  std::shared_ptr<engine::Vm> vm_;  // runs vm_entry_'s program (dropped before it is evicted)
};

// ExecuteRemoteCall with a blob cache and a link cache (the executor's warm path). A request
// whose entry hash was linked before and that brings no new blobs runs without relinking.
// Typed arrays and matrices of 1 MiB or more in the result are borrowed from the call's Vm
// (ToWireContext::borrow_threshold), which the response keeps alive: send the response, then
// drop it, before the next call on `links` (which may evict the program they belong to).
RemoteCallResponse ExecuteRemoteCall(const RemoteCallRequest& request, const engine::Limits& limits,
                                     engine::BlobCache* cache, LinkCache* links);

// Where a call's time went, for call_bench's breakdown (steady clock, nanoseconds; only
// measured when asked for).
struct ExecuteTimes {
  uint64_t lookup_ns = 0;  // value types, link-cache key and lookup (or linking, when cold)
  uint64_t setup_ns = 0;   // Vm reset (or construction) and output capture
  uint64_t run_ns = 0;     // arguments rebuilt, the call, the result converted for the wire
};
RemoteCallResponse ExecuteRemoteCall(const RemoteCallRequest& request, const engine::Limits& limits,
                                     engine::BlobCache* cache, LinkCache* links,
                                     ExecuteTimes* times);

// A batch's answer stops growing (the items after go unanswered) once it holds about this much.
inline constexpr size_t kBatchResponseBytes = 64 << 10;

// Runs a batch (pmap's items, docs/wire-protocol.md "CallBatch") with a blob cache and a link
// cache: links once, then runs each item in order as ExecuteRemoteCall would run `batch.call`
// with that item's arguments (a fresh Vm, the globals copied in after the item's values). Stops
// after the first failing item, before an item when the fuel budget is used up, and after an
// item once the answer holds more than `max_response_bytes`. A batch that does not link is
// answered with that error as item 0's result.
RemoteCallBatchResponse ExecuteRemoteBatch(const RemoteCallBatch& batch,
                                           const engine::Limits& limits, engine::BlobCache* cache,
                                           LinkCache* links,
                                           size_t max_response_bytes = kBatchResponseBytes);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_REMOTE_CALL_H_
