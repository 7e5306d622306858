#include "shapex/sandbox/executor.h"

#include <fmt/core.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <utility>

#include "shapex/engine/blob.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/sidecar_transport.h"

namespace shapex::sandbox {

using ipc::FrameType;

Executor::Executor(const ExecutorOptions& options)
    : options_(options), cache_(options.cache_entries), segments_(options.segments) {}

Status Executor::ServeConnection(ipc::UnixSocket socket) {
  ASSIGN_OR_RETURN(ipc::Connection connection,
                   ipc::Connection::Accept(std::move(socket), options_.connection));
  return Serve(connection);
}

Status Executor::Serve(ipc::Connection& connection) {
#ifdef __GLIBC__
  // An executor process serves one lease. A pmap batch allocates and frees a few hundred KiB
  // per message (its items, their results, the decoder's zone); with glibc's defaults each such
  // free returns pages to the kernel and the next batch faults them in again (a quarter of the
  // executor's CPU on 200,000 small items). Keep freed memory for reuse instead.
  static const bool tuned = [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    return true;
  }();
  (void)tuned;
#endif
  ipc::IncomingFrame frame;
  auto timeout = options_.idle_timeout.count() > 0
                     ? std::chrono::nanoseconds(options_.idle_timeout)
                     : std::chrono::nanoseconds(std::chrono::hours(24 * 365));
  for (;;) {
    RETURN_IF_ERROR(connection.Receive(&frame, timeout));
    switch (frame.type) {
      case FrameType::kMessage:
      case FrameType::kMessageWithFds:
        RETURN_IF_ERROR(HandleMessage(connection, frame));
        break;
      case FrameType::kCancel:
        break;  // the call was answered already (calls run to completion, one at a time)
      case FrameType::kGoodbye:
        connection.Shutdown();
        return Status::Ok();
      default:
        return ProtocolError(fmt::format("executor got frame type {:#x}",
                                         static_cast<int>(frame.type)));
    }
  }
}

Status Executor::HandleMessage(ipc::Connection& connection, ipc::IncomingFrame& frame) {
  ipc::SidecarTransportOptions receive;
  receive.accept_read_only_segments = true;  // the client is the more trusted side
  uint64_t call_id = frame.call_id;
  current_call_id_ = call_id;
  Result<ipc::WireMessage> message = ipc::DecodeIncoming(&frame, receive);
  if (!message.has_value()) {
    ++stats_.bad_messages;
    ++stats_.errors;
    ++stats_.errors_by_kind[static_cast<size_t>(message.error().kind()) % 16];
    return ipc::SendMessage(connection, call_id,
                            ipc::RemoteCallResponse::Failure(message.error().kind(),
                                                             message.error().message()));
  }
  if (auto* offer = std::get_if<ipc::BlobNegotiationRequest>(&*message)) {
    ++stats_.negotiations;
    return ipc::SendMessage(connection, call_id, ipc::HandleNegotiation(cache_, *offer));
  }
  if (auto* call = std::get_if<ipc::RemoteCallRequest>(&*message)) {
    ++stats_.calls;
    if (call->blobs) {
      stats_.blobs_received += call->blobs->size();
      for (const engine::FunctionBlob& blob : *call->blobs) {
        stats_.code_bytes_received += engine::EncodeBlob(blob).size();
      }
    }
    ipc::RemoteCallResponse response = ipc::ExecuteRemoteCall(
        *call, ipc::EffectiveLimits(call->limits, options_.limits), &cache_, &links_);
    if (!response.ok()) {
      ++stats_.errors;
      ++stats_.errors_by_kind[static_cast<size_t>(response.error().kind) % 16];
    }
    // The request's segments are unmapped before the answer goes out.
    message = ipc::WireMessage();
    Status sent = SendResponse(connection, call_id, std::move(response));
    links_.ReleaseCallMemory();  // while the caller reads the answer
    return sent;
  }
  if (auto* batch = std::get_if<ipc::RemoteCallBatch>(&*message)) {
    if (batch->call.blobs) {
      stats_.blobs_received += batch->call.blobs->size();
      for (const engine::FunctionBlob& blob : *batch->call.blobs) {
        stats_.code_bytes_received += engine::EncodeBlob(blob).size();
      }
    }
    ipc::RemoteCallBatchResponse response =
        ipc::ExecuteRemoteBatch(*batch, options_.limits, &cache_, &links_);
    stats_.calls += response.results.size();
    if (!response.results.empty() && !response.results.back().ok()) {
      ++stats_.errors;
      ++stats_.errors_by_kind[static_cast<size_t>(response.results.back().error().kind) % 16];
    }
    message = ipc::WireMessage();
    return SendBatchResponse(connection, call_id, std::move(response));
  }
  ++stats_.bad_messages;
  ++stats_.errors;
  ++stats_.errors_by_kind[static_cast<size_t>(ErrorKind::kProtocolError)];
  return ipc::SendMessage(connection, call_id,
                          ipc::RemoteCallResponse::Failure(
                              ErrorKind::kProtocolError, "executors accept only calls and "
                                                         "blob negotiations"));
}

Status Executor::SendBatchResponse(ipc::Connection& connection, uint64_t call_id,
                                   ipc::RemoteCallBatchResponse response) {
  ipc::SidecarTransportOptions send;
  send.reserve = &segments_;
  Result<ipc::OutgoingMessage> out =
      ipc::PrepareOutgoing(ipc::WireMessage{std::move(response)}, send);
  if (!out.has_value()) {
    // The first item's answer stands for the batch: it failed, the caller runs no other.
    ++stats_.errors;
    ++stats_.errors_by_kind[static_cast<size_t>(ErrorKind::kResourceExhausted)];
    ipc::RemoteCallBatchResponse failed;
    failed.results.push_back(ipc::RemoteCallResponse::Failure(
        ErrorKind::kResourceExhausted,
        fmt::format("the result could not be sent: {}", out.error().message())));
    return ipc::SendMessage(connection, call_id, std::move(failed));
  }
  RETURN_IF_ERROR(ipc::SendPrepared(connection, call_id, *out));
  if (!out->owned_fds.empty()) {
    ++stats_.result_segments;
    segments_.Replenish();
  }
  return Status::Ok();
}

Status Executor::SendResponse(ipc::Connection& connection, uint64_t call_id,
                              ipc::RemoteCallResponse response) {
  ipc::SidecarTransportOptions send;
  send.reserve = &segments_;
  bool sealed = false;
  {
    Result<ipc::OutgoingMessage> out =
        ipc::PrepareOutgoing(ipc::WireMessage{std::move(response)}, send);
    if (!out.has_value()) {
      // E.g. a result beyond RLIMIT_FSIZE or no memory for its segment: the call fails, the
      // executor carries on.
      ++stats_.errors;
      ++stats_.errors_by_kind[static_cast<size_t>(ErrorKind::kResourceExhausted)];
      return ipc::SendMessage(
          connection, call_id,
          ipc::RemoteCallResponse::Failure(
              ErrorKind::kResourceExhausted,
              fmt::format("the result could not be sent: {}", out.error().message())));
    }
    RETURN_IF_ERROR(ipc::SendPrepared(connection, call_id, *out));
    sealed = !out->owned_fds.empty();
  }  // the result's own bytes are freed here, after the answer went out
  if (sealed) {
    ++stats_.result_segments;
    // While the client reads the result: drop our references to earlier segments and prepare
    // spare pages for the next large result.
    segments_.Replenish();
  }
  return Status::Ok();
}

}  // namespace shapex::sandbox
