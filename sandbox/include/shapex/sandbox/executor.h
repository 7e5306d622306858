// The executor loop: what runs inside a jailed executor process. It serves one client connection
// at a time (the server side of ipc::Connection) and answers blob negotiations and remote calls.
//
//   ExecutorOptions options;                       // per-call limits, cache size, ...
//   ExecutorStats stats;
//   Status s = ServeConnection(std::move(socket), options, &stats);   // until Goodbye / EOF
//
// Protocol (docs/wire-protocol.md, "Connection protocol" and "Executor"):
// - BlobNegotiation → BlobNegotiationReply with the offered hashes this executor has cached;
//   the reply carries the request's call id.
// - Call → CallResponse with the same call id: the blobs are verified and linked, the function
//   runs in a VM reset to a new one's state (Vm::Reset; nothing survives from one call to the
//   next but the verified blobs in the BlobCache and the linked programs in the LinkCache)
//   with the options' limits, and the result or typed error goes back.
//   Large arguments arrive as segment descriptors (read-only segments from the client are
//   accepted); large results go back in sealed segments, copied into spare pages that the
//   executor prepares after answering (ipc::SegmentReserve), while the client reads the result.
// - A message that does not decode gets a ProtocolError response for its call id; the
//   connection carries on. Cancel frames are acknowledged by the rule that every call gets one
//   response: calls run one at a time to completion, so a Cancel always names a call already
//   answered and is ignored. A running call is cancelled by killing the executor (supervisor).
// - Goodbye: answer Goodbye and return OK. End of stream: return the IoError.
// Not thread-safe; one connection at a time.
#ifndef SHAPEX_SANDBOX_EXECUTOR_H_
#define SHAPEX_SANDBOX_EXECUTOR_H_

#include <cstddef>
#include <array>
#include <cstdint>
#include <vector>

#include "shapex/core/status.h"
#include "shapex/engine/blob_cache.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/segment_reserve.h"
#include "shapex/ipc/unix_socket.h"

namespace shapex::sandbox {

struct ExecutorOptions {
  engine::Limits limits;  // applied to every call
  size_t cache_entries = 4096;
  ipc::ConnectionOptions connection;
  // How long to wait for the next frame before giving up on an idle client (0 = forever).
  std::chrono::milliseconds idle_timeout{0};
  // Spare pages for large results (prepared after each answer that used them).
  ipc::SegmentReserveOptions segments;
};

struct ExecutorStats {
  uint64_t calls = 0;
  uint64_t errors = 0;             // calls answered with an error
  uint64_t negotiations = 0;
  uint64_t blobs_received = 0;     // blobs that came with calls
  uint64_t code_bytes_received = 0;  // their encoded size
  uint64_t bad_messages = 0;       // messages that did not decode
  uint64_t result_segments = 0;    // answers that sent a sealed segment
  std::array<uint64_t, 16> errors_by_kind{};  // indexed by ErrorKind
};

// The executor's state across connections: the blob cache survives a client's disconnect, so a
// recycled executor that serves the same client again needs no code.
class Executor {
 public:
  explicit Executor(const ExecutorOptions& options);

  // Handshake as the server on `socket`, then serve until Goodbye (OK) or a connection error.
  Status ServeConnection(ipc::UnixSocket socket);
  // Serve an established connection.
  Status Serve(ipc::Connection& connection);

  // Adds blobs (already verified by the caller) to the cache, e.g. from the supervisor's store.
  void Preload(const std::vector<engine::FunctionBlob>& blobs) { cache_.InsertBlobs(blobs); }
  // The cached blobs whose hashes are not in `known` (to report newly learned code).
  template <class Set>
  std::vector<engine::FunctionBlob> CachedBlobsExcept(const Set& known) {
    std::vector<engine::FunctionBlob> out;
    for (const engine::FunctionHash& h : cache_.KnownHashes()) {
      if (known.count(h) != 0) continue;
      if (const engine::FunctionBlob* blob = cache_.Get(h)) out.push_back(*blob);
    }
    return out;
  }

  const ExecutorStats& stats() const { return stats_; }
  // The call id of the frame being handled (its response carries it); 0 before the first.
  uint64_t current_call_id() const { return current_call_id_; }
  const engine::BlobCache& cache() const { return cache_; }
  const ipc::SegmentReserveStats& segment_stats() const { return segments_.stats(); }

 private:
  Status HandleMessage(ipc::Connection& connection, ipc::IncomingFrame& frame);
  Status SendResponse(ipc::Connection& connection, uint64_t call_id,
                      ipc::RemoteCallResponse response);
  // A batch's answer (CallBatchResponse).
  Status SendBatchResponse(ipc::Connection& connection, uint64_t call_id,
                           ipc::RemoteCallBatchResponse response);

  ExecutorOptions options_;
  engine::BlobCache cache_;
  ipc::LinkCache links_;
  ExecutorStats stats_;
  ipc::SegmentReserve segments_;
  uint64_t current_call_id_ = 0;
};

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_EXECUTOR_H_
