// ExecutorSession: the client side of a direct connection to one executor (ipc::Connection over a
// socket the supervisor leased to us, or any socket an executor serves).
//
//   ASSIGN_OR_RETURN(auto session, ExecutorSession::Connect(std::move(socket)));
//   ASSIGN_OR_RETURN(engine::ProgramBlobs blobs, engine::BuildProgramBlobs(program));
//   ASSIGN_OR_RETURN(ipc::WireValue v, session.Call(program, blobs, "add", {Int(10), Int(32)}));
//
//   // Pipelining: many calls in flight, answers matched by call id in any order.
//   ASSIGN_OR_RETURN(uint64_t a, session.Start(request_a));
//   ASSIGN_OR_RETURN(uint64_t b, session.Start(request_b));
//   ASSIGN_OR_RETURN(ipc::RemoteCallResponse rb, session.Wait(b));
//
// Arguments of 1 MiB or more are copied once into reused shared-memory segments (SegmentPool)
// and passed by descriptor; SharedVec arguments are passed with no copy at all.
// Code is sent only when the executor lacks it. The session remembers which blobs the executor
// has (it told us in a negotiation, or we sent them and the call succeeded); a call whose blobs
// are all known goes out with no code and no negotiation round trip. If the executor lost some
// (its cache is bounded), the call fails with a missing-blob error and is retried once after a
// negotiation. Every response's error keeps its kind (FunctionNotFound, RuntimeError, ...).
// Not thread-safe.
#ifndef SHAPEX_CLIENT_EXECUTOR_SESSION_H_
#define SHAPEX_CLIENT_EXECUTOR_SESSION_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/blob_cache.h"
#include "shapex/engine/program.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/shared_vec.h"
#include "shapex/ipc/wire_value.h"

namespace shapex {

struct ExecutorSessionOptions {
  ipc::ConnectionOptions connection;
  std::chrono::milliseconds call_timeout{60000};
};

struct ExecutorSessionStats {
  uint64_t calls = 0;
  uint64_t negotiations = 0;
  uint64_t blobs_sent = 0;
  uint64_t code_bytes_sent = 0;  // encoded size of the blobs sent
  uint64_t retries = 0;          // calls re-sent after the executor lost blobs
};

class ExecutorSession {
 public:
  // Performs the client handshake on `socket`.
  static Result<ExecutorSession> Connect(ipc::UnixSocket socket,
                                         const ExecutorSessionOptions& options = {});
  // Uses an established connection.
  explicit ExecutorSession(ipc::Connection connection,
                           const ExecutorSessionOptions& options = {});

  // Calls `function` of `program` (blobs = BuildProgramBlobs(program)) and waits for the value.
  // The error of a failed call is returned with its kind and message (trace: use CallRaw).
  Result<ipc::WireValue> Call(const engine::Program& program, const engine::ProgramBlobs& blobs,
                              std::string_view function, std::vector<ipc::WireValue> arguments);
  // Sends `request` (negotiating code as described above) and waits for its response.
  Result<ipc::RemoteCallResponse> CallRaw(ipc::RemoteCallRequest request);

  // Pipelined use: Start sends the call and returns its id; Wait returns its response, keeping
  // responses to other calls that arrive first. Start negotiates synchronously when needed.
  Result<uint64_t> Start(ipc::RemoteCallRequest request);
  Result<ipc::RemoteCallResponse> Wait(uint64_t call_id);
  // Asks the executor to cancel a call (it still answers it, see docs/wire-protocol.md). If the
  // connection is lost before the answer (the executor was killed to stop the call), Wait
  // reports the call as Cancelled instead of failing.
  Status Cancel(uint64_t call_id);

  // Batches (pmap, docs/wire-protocol.md "CallBatch"): StartBatch sends `batch` (its code
  // negotiated as for a call) and returns its id, WaitBatch its answer, with Wait's rules. A
  // failure that answers the whole batch (a call's error, e.g. one that does not decode)
  // comes back as a batch answer whose only result is that error.
  Result<uint64_t> StartBatch(ipc::RemoteCallBatch batch);
  Result<ipc::RemoteCallBatchResponse> WaitBatch(uint64_t call_id);

  // Says Goodbye and waits (briefly) for the executor's.
  void Close();

  const ExecutorSessionStats& stats() const { return stats_; }
  ipc::Connection& connection() { return connection_; }

 private:
  struct Pending {
    bool stripped_without_asking = false;  // blobs left out on our own knowledge
    // Large arguments copied into pooled segments stay untouched until the call is answered.
    std::vector<std::shared_ptr<const ipc::SegmentView>> segments;
  };
  // Strips the blobs the executor has, negotiating if some are unknown.
  Result<ipc::RemoteCallRequest> Negotiate(ipc::RemoteCallRequest request, bool* asked);
  // Sends the call; large arguments go in segments from pool_ (executors accept read-only
  // segments), which `*segments` keeps until the answer.
  Status SendCall(uint64_t call_id, ipc::RemoteCallRequest request,
                  std::vector<std::shared_ptr<const ipc::SegmentView>>* segments);
  // Receives one response frame and files it under its call id.
  Status ReceiveOne(std::chrono::steady_clock::time_point deadline);

  ipc::Connection connection_;
  ExecutorSessionOptions options_;
  std::unique_ptr<ipc::SegmentPool> pool_ = std::make_unique<ipc::SegmentPool>();
  uint64_t next_call_id_ = 1;
  std::unordered_set<engine::FunctionHash, engine::FunctionHashHasher> peer_has_;
  std::map<uint64_t, Pending> pending_;
  std::map<uint64_t, ipc::RemoteCallResponse> arrived_;
  std::map<uint64_t, ipc::RemoteCallBatchResponse> arrived_batches_;
  std::map<uint64_t, ipc::BlobNegotiationResponse> negotiation_replies_;
  std::unordered_set<uint64_t> cancelled_;
  // Calls answered by an error (a failed wait, an answer that did not decode): a response that
  // comes for one later is dropped, so no call is answered twice.
  std::unordered_set<uint64_t> abandoned_;
  ExecutorSessionStats stats_;
};

}  // namespace shapex

#endif  // SHAPEX_CLIENT_EXECUTOR_SESSION_H_
