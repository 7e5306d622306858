#include "shapex/client/executor_session.h"

#include <fmt/core.h>

#include <utility>

#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/sidecar_transport.h"

namespace shapex {

using ipc::RemoteCallRequest;
using ipc::RemoteCallResponse;
using Clock = std::chrono::steady_clock;

Result<ExecutorSession> ExecutorSession::Connect(ipc::UnixSocket socket,
                                                 const ExecutorSessionOptions& options) {
  ASSIGN_OR_RETURN(ipc::Connection connection,
                   ipc::Connection::Connect(std::move(socket), options.connection));
  return ExecutorSession(std::move(connection), options);
}

ExecutorSession::ExecutorSession(ipc::Connection connection,
                                 const ExecutorSessionOptions& options)
    : connection_(std::move(connection)), options_(options) {}

Result<ipc::WireValue> ExecutorSession::Call(const engine::Program& program,
                                             const engine::ProgramBlobs& blobs,
                                             std::string_view function,
                                             std::vector<ipc::WireValue> arguments) {
  ASSIGN_OR_RETURN(RemoteCallRequest request,
                   ipc::BuildCallRequest(program, blobs, function, std::move(arguments)));
  ASSIGN_OR_RETURN(RemoteCallResponse response, CallRaw(std::move(request)));
  if (!response.ok()) return response.status();
  return std::move(std::get<ipc::WireValue>(response.result));
}

Result<RemoteCallResponse> ExecutorSession::CallRaw(RemoteCallRequest request) {
  std::vector<engine::FunctionHash> offered = ipc::OfferedHashes(request);
  bool all_known = true;
  for (const auto& h : offered) all_known = all_known && peer_has_.count(h) != 0;
  if (!all_known || offered.empty()) {
    ASSIGN_OR_RETURN(uint64_t id, Start(std::move(request)));
    return Wait(id);
  }
  // The blobs are left out on our own knowledge, so a retry with them must stay possible: send
  // a copy without them (the blobs themselves are not copied) and keep the request.
  std::optional<std::vector<engine::FunctionBlob>> blobs = std::move(request.blobs);
  request.blobs.emplace();
  RemoteCallRequest stripped = request;
  request.blobs = std::move(blobs);
  ASSIGN_OR_RETURN(uint64_t id, Start(std::move(stripped)));
  ASSIGN_OR_RETURN(RemoteCallResponse response, Wait(id));
  if (ipc::IsMissingBlobError(response)) {
    // The executor evicted code we assumed it had: ask, then send what it lacks.
    ++stats_.retries;
    for (const auto& h : offered) peer_has_.erase(h);
    ASSIGN_OR_RETURN(id, Start(std::move(request)));
    return Wait(id);
  }
  return response;
}

Result<RemoteCallRequest> ExecutorSession::Negotiate(RemoteCallRequest request, bool* asked) {
  *asked = false;
  std::vector<engine::FunctionHash> offered = ipc::OfferedHashes(request);
  std::vector<engine::FunctionHash> unknown;
  for (const auto& h : offered) {
    if (peer_has_.count(h) == 0) unknown.push_back(h);
  }
  if (unknown.empty()) return ipc::BuildCallRequestNegotiated(std::move(request), offered);
  *asked = true;
  ++stats_.negotiations;
  uint64_t id = next_call_id_++;
  RETURN_IF_ERROR(
      ipc::SendMessage(connection_, id, ipc::BlobNegotiationRequest{std::move(unknown)}));
  auto deadline = Clock::now() + options_.call_timeout;
  while (negotiation_replies_.count(id) == 0) RETURN_IF_ERROR(ReceiveOne(deadline));
  ipc::BlobNegotiationResponse reply = std::move(negotiation_replies_[id]);
  negotiation_replies_.erase(id);
  for (const auto& h : reply.known_hashes) peer_has_.insert(h);
  std::vector<engine::FunctionHash> known;
  for (const auto& h : offered) {
    if (peer_has_.count(h) != 0) known.push_back(h);
  }
  return ipc::BuildCallRequestNegotiated(std::move(request), known);
}

Result<uint64_t> ExecutorSession::Start(RemoteCallRequest request) {
  bool asked = false;
  ASSIGN_OR_RETURN(RemoteCallRequest stripped, Negotiate(std::move(request), &asked));
  uint64_t id = next_call_id_++;
  Pending pending{!asked, {}};
  RETURN_IF_ERROR(SendCall(id, std::move(stripped), &pending.segments));
  pending_[id] = std::move(pending);
  return id;
}

Status ExecutorSession::SendCall(uint64_t call_id, RemoteCallRequest request,
                                 std::vector<std::shared_ptr<const ipc::SegmentView>>* segments) {
  ++stats_.calls;
  if (request.blobs) {
    for (const engine::FunctionBlob& blob : *request.blobs) {
      ++stats_.blobs_sent;
      stats_.code_bytes_sent += engine::EncodeBlob(blob).size();
    }
  }
  // Calls run in order on the executor: once this one is linked there, its blobs are cached.
  std::vector<engine::FunctionHash> sent = ipc::OfferedHashes(request);
  ipc::SidecarTransportOptions send;
  send.pool = pool_.get();
  ASSIGN_OR_RETURN(ipc::OutgoingMessage out, ipc::PrepareOutgoing(std::move(request), send));
  RETURN_IF_ERROR(ipc::SendPrepared(connection_, call_id, out));
  *segments = std::move(out.pooled);
  for (const auto& h : sent) peer_has_.insert(h);
  return Status::Ok();
}

Result<RemoteCallResponse> ExecutorSession::Wait(uint64_t call_id) {
  if (pending_.count(call_id) == 0 && arrived_.count(call_id) == 0) {
    return InvalidArgument(fmt::format("no call {} in flight", call_id));
  }
  auto deadline = Clock::now() + options_.call_timeout;
  while (arrived_.count(call_id) == 0) {
    Status s = ReceiveOne(deadline);
    if (s.ok()) continue;
    // Whatever ends the wait answers the call: it is no longer in flight, and an answer the
    // executor sends for it later is dropped (every call is answered exactly once).
    pending_.erase(call_id);
    abandoned_.insert(call_id);
    if (cancelled_.erase(call_id) != 0 && s.kind() == ErrorKind::kIoError) {
      return RemoteCallResponse::Failure(ErrorKind::kCancelled,
                                         fmt::format("call {} was cancelled", call_id));
    }
    return s;
  }
  cancelled_.erase(call_id);
  RemoteCallResponse response = std::move(arrived_[call_id]);
  arrived_.erase(call_id);
  pending_.erase(call_id);
  return response;
}

Result<uint64_t> ExecutorSession::StartBatch(ipc::RemoteCallBatch batch) {
  bool asked = false;
  ASSIGN_OR_RETURN(batch.call, Negotiate(std::move(batch.call), &asked));
  uint64_t id = next_call_id_++;
  Pending pending{!asked, {}};
  ++stats_.calls;
  if (batch.call.blobs) {
    for (const engine::FunctionBlob& blob : *batch.call.blobs) {
      ++stats_.blobs_sent;
      stats_.code_bytes_sent += engine::EncodeBlob(blob).size();
    }
  }
  std::vector<engine::FunctionHash> sent = ipc::OfferedHashes(batch.call);
  ipc::SidecarTransportOptions send;
  send.pool = pool_.get();
  ASSIGN_OR_RETURN(ipc::OutgoingMessage out,
                   ipc::PrepareOutgoing(ipc::WireMessage{std::move(batch)}, send));
  RETURN_IF_ERROR(ipc::SendPrepared(connection_, id, out));
  pending.segments = std::move(out.pooled);
  for (const auto& h : sent) peer_has_.insert(h);
  pending_[id] = std::move(pending);
  return id;
}

Result<ipc::RemoteCallBatchResponse> ExecutorSession::WaitBatch(uint64_t call_id) {
  if (pending_.count(call_id) == 0 && arrived_.count(call_id) == 0 &&
      arrived_batches_.count(call_id) == 0) {
    return InvalidArgument(fmt::format("no batch {} in flight", call_id));
  }
  auto deadline = Clock::now() + options_.call_timeout;
  while (arrived_batches_.count(call_id) == 0 && arrived_.count(call_id) == 0) {
    Status s = ReceiveOne(deadline);
    if (s.ok()) continue;
    pending_.erase(call_id);
    abandoned_.insert(call_id);
    if (cancelled_.erase(call_id) != 0 && s.kind() == ErrorKind::kIoError) {
      ipc::RemoteCallBatchResponse cancelled;
      cancelled.results.push_back(RemoteCallResponse::Failure(
          ErrorKind::kCancelled, fmt::format("call {} was cancelled", call_id)));
      return cancelled;
    }
    return s;
  }
  cancelled_.erase(call_id);
  pending_.erase(call_id);
  ipc::RemoteCallBatchResponse response;
  if (auto it = arrived_.find(call_id); it != arrived_.end()) {
    // One answer for the whole batch (e.g. the executor's answer did not decode).
    response.results.push_back(std::move(it->second));
    arrived_.erase(it);
    return response;
  }
  auto it = arrived_batches_.find(call_id);
  response = std::move(it->second);
  arrived_batches_.erase(it);
  return response;
}

Status ExecutorSession::Cancel(uint64_t call_id) {
  if (pending_.count(call_id) == 0) return InvalidArgument("no such call in flight");
  cancelled_.insert(call_id);
  return connection_.Send(ipc::FrameType::kCancel, call_id, {});
}

Status ExecutorSession::ReceiveOne(Clock::time_point deadline) {
  ipc::IncomingFrame frame;
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return TimeoutError("timed out waiting for the executor");
  RETURN_IF_ERROR(connection_.Receive(&frame, left));
  switch (frame.type) {
    case ipc::FrameType::kGoodbye:
      return IoError("the executor closed the connection");
    case ipc::FrameType::kCancel:
      return ProtocolError("executors do not send Cancel");
    default:
      break;
  }
  uint64_t id = frame.call_id;
  Result<ipc::WireMessage> decoded = ipc::DecodeIncoming(&frame);
  if (!decoded.has_value()) {
    // A malformed answer (garbage, a forged segment) to a call in flight is that call's answer,
    // not an error for whichever call we happen to be waiting for.
    if (pending_.count(id) == 0 || arrived_.count(id) != 0) return decoded.error();
    abandoned_.insert(id);  // an answer that may follow is not a second one
    arrived_[id] = RemoteCallResponse::Failure(
        ErrorKind::kProtocolError,
        fmt::format("the executor's answer does not decode: {}", decoded.error().message()));
    return Status::Ok();
  }
  ipc::WireMessage& message = *decoded;
  if (auto* response = std::get_if<RemoteCallResponse>(&message)) {
    if (abandoned_.count(id) != 0) return Status::Ok();  // answered already (see Wait)
    if (pending_.count(id) == 0 || arrived_.count(id) != 0) {
      return ProtocolError(
          fmt::format("response to call {}, which is not in flight or was answered already", id));
    }
    arrived_[id] = std::move(*response);
    return Status::Ok();
  }
  if (auto* batch = std::get_if<ipc::RemoteCallBatchResponse>(&message)) {
    if (abandoned_.count(id) != 0) return Status::Ok();
    if (pending_.count(id) == 0 || arrived_batches_.count(id) != 0 || arrived_.count(id) != 0) {
      return ProtocolError(
          fmt::format("response to batch {}, which is not in flight or was answered already", id));
    }
    arrived_batches_[id] = std::move(*batch);
    return Status::Ok();
  }
  if (auto* reply = std::get_if<ipc::BlobNegotiationResponse>(&message)) {
    negotiation_replies_[id] = std::move(*reply);
    return Status::Ok();
  }
  return ProtocolError("the executor sent a message that is neither a response nor a reply");
}

void ExecutorSession::Close() {
  if (!connection_.valid()) return;
  connection_.Shutdown();
  ipc::IncomingFrame frame;
  // Drain until the executor's Goodbye or end of stream (bounded).
  for (int i = 0; i < 1000; ++i) {
    if (!connection_.Receive(&frame, std::chrono::milliseconds(200)).ok()) break;
    if (frame.type == ipc::FrameType::kGoodbye) break;
  }
  connection_.Close();
}

}  // namespace shapex
