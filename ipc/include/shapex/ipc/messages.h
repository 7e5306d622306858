// Remote-call messages and their MessagePack encoding (docs/wire-protocol.md, "Messages"): the
// seed's RemoteCallRequest / RemoteCallResponse and its WireMessage envelope
// (BlobNegotiation, BlobNegotiationReply, Call, CallResponse, Sidecar).
//
//   std::vector<uint8_t> bytes = EncodeMessage(WireMessage{request});
//   ASSIGN_OR_RETURN(WireMessage msg, DecodeMessage(bytes));
//   if (auto* call = std::get_if<RemoteCallRequest>(&msg)) ...
//
// Code travels as content-addressed blobs (engine/blob.h) encoded with engine::EncodeBlob inside
// a MessagePack bin; DecodeMessage decodes them with engine::DecodeBlob but does not verify
// hashes (engine::ProgramFromBlobs does, on the callee). Encoding is deterministic; decoding
// has the guarantees of value_codec.h (hostile input -> ProtocolError, never a crash).
// See remote_call.h for building requests and executing them.
#ifndef SHAPEX_IPC_MESSAGES_H_
#define SHAPEX_IPC_MESSAGES_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/status.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/sidecar.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::ipc {

inline constexpr uint32_t kWireProtocolVersion = 1;
inline constexpr uint32_t kMaxBlobsPerMessage = 100000;
inline constexpr uint32_t kMaxHashesPerMessage = 1 << 20;
inline constexpr uint32_t kMaxTraceFrames = 1024;
inline constexpr uint32_t kMaxArguments = 255;
inline constexpr uint32_t kMaxNameBytes = 1 << 16;  // function names, messages, file names
inline constexpr uint32_t kMaxGlobals = 1 << 16;
// What a call printed travels back with its response, up to this many bytes (the executor
// drops the rest and says so in a last line).
inline constexpr uint32_t kMaxOutputBytes = 4 << 20;

// Per-call limits a caller asks for (LANGUAGE.md "Limits per call"). 0 = the callee's default.
struct CallLimits {
  uint64_t fuel = 0;        // instructions
  uint64_t memory = 0;      // VM heap bytes
  uint32_t stack = 0;       // call frames
  uint64_t timeout_ms = 0;  // wall clock
  friend bool operator==(const CallLimits&, const CallLimits&) = default;
};

// "Call this function with these arguments."
struct RemoteCallRequest {
  std::string function_name;                          // for name lookup and messages
  std::optional<uint32_t> function_id;                // the caller's proto index (informational)
  std::optional<engine::FunctionHash> function_hash;  // the entry; preferred over the name
  std::vector<WireValue> arguments;
  std::optional<std::vector<WireValue>> captures;          // present: call a closure of the entry
  std::optional<std::vector<engine::FunctionBlob>> blobs;  // absent or stripped: callee has them
  std::vector<engine::ImplEntry> impls;                    // methods of the types the blobs use
  std::optional<CallLimits> limits;                        // absent: the callee's defaults
  // Module globals the code reads, by name, with the caller's values at the time of the call
  // (send-copy, like captures: the callee's assignments are not seen by the caller). Top-level
  // statements never run on the callee, so globals not listed here start unset there (the
  // caller lists every global the code uses whose let/var has run, None ones included).
  std::vector<std::pair<std::string, WireValue>> globals;
  // Functions the values above name (function and closure values in arguments, captures and
  // globals) besides the entry: link roots, so the callee links their code too. Their blobs
  // travel like the entry's (in `blobs`, or known to the callee).
  std::vector<engine::FunctionHash> roots;
};
// The values of one request form one document (wire_value.h, WireEncoder): written and read in
// the order arguments, captures, globals, so a Ref may point from a global into an argument.

// `defaults` with each limit the request sets (non-zero) put in its place; a requested memory
// limit is capped at `defaults.memory` (the callee's maximum).
engine::Limits EffectiveLimits(const std::optional<CallLimits>& requested,
                               const engine::Limits& defaults);

struct RemoteCallError {
  ErrorKind kind = ErrorKind::kRuntimeError;  // never kOk
  std::string message;
  std::vector<engine::TraceFrame> trace;  // innermost frame first
};

// A returned value or a typed error.
struct RemoteCallResponse {
  std::variant<WireValue, RemoteCallError> result;
  // What the call printed (print), for the caller to print where the call was made.
  std::string output;
  // Instructions the call used (its Vm's fuel), so the caller can charge them to its own budget.
  std::optional<uint64_t> fuel_used;

  static RemoteCallResponse Success(WireValue v) { return {std::move(v), {}, {}}; }
  // `kind` must not be kOk (it becomes kInternal).
  static RemoteCallResponse Failure(ErrorKind kind, std::string message,
                                    std::vector<engine::TraceFrame> trace = {});
  bool ok() const { return result.index() == 0; }
  const WireValue& value() const { return std::get<0>(result); }
  const RemoteCallError& error() const { return std::get<1>(result); }
  // The error as a Status (OK for a value).
  Status status() const;
};

// "Which of these blobs do you already have?"
struct BlobNegotiationRequest {
  std::vector<engine::FunctionHash> offered_hashes;
};
// "These ones" (a subset of the offer, in offer order).
struct BlobNegotiationResponse {
  std::vector<engine::FunctionHash> known_hashes;
};

// Most items one CallBatch may carry.
inline constexpr uint32_t kMaxBatchItems = 1 << 16;

// "Call this function once per item" (docs/wire-protocol.md, "CallBatch"): what pmap sends. The
// template is everything of a Call but its arguments: the entry, its code (blobs, impls, roots),
// the limits and the globals, sent once for all the items. Each item is a call of its own, in
// a fresh VM, exactly as if `call` had been sent with `arguments` = the item's values: the
// item's values and then `call.globals` form one document (one memo; the item first). The
// callee runs the items in order and stops after the first one that fails.
struct RemoteCallBatch {
  RemoteCallRequest call;                     // arguments empty, captures absent
  std::vector<std::vector<WireValue>> items;  // each item's arguments
  // Present: the fuel all the items may use together (the caller's remaining fuel); item i runs
  // with at most this minus what items 0..i-1 used. When nothing is left, the callee stops
  // before the item (its answer then has fewer results than items, none an error).
  std::optional<uint64_t> fuel_budget;
};

// The results of a batch's items, in item order: one per item that ran. Shorter than the
// batch when the callee stopped early: after a failing item (the last result, an error), or
// before an item it did not run (fuel budget used up, or the answer got big); the caller runs
// the items with no result some other way.
struct RemoteCallBatchResponse {
  std::vector<RemoteCallResponse> results;
  // CPU time the callee spent on the items (its thread's CPU clock), for the caller's chunk
  // sizing: unlike wall time it does not grow when the machine is busy. 0: not measured.
  uint64_t cpu_ns = 0;
};

// The envelope of everything on the wire. Alternative order = wire tag order - 1.
using WireMessage = std::variant<BlobNegotiationRequest, BlobNegotiationResponse, RemoteCallRequest,
                                 RemoteCallResponse, Sidecar, RemoteCallBatch,
                                 RemoteCallBatchResponse>;

std::vector<uint8_t> EncodeMessage(const WireMessage& message);
Result<WireMessage> DecodeMessage(std::span<const uint8_t> bytes);

// ErrorKind <-> its wire name ("RuntimeError"); false for kOk or an unknown name.
bool ErrorKindFromName(std::string_view name, ErrorKind* out);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_MESSAGES_H_
