#include "shapex/ipc/sidecar_transport.h"

#include <fcntl.h>
#include <fmt/core.h>

#include <unordered_map>

#include "shapex/core/errno_status.h"
#include "shapex/ipc/protocol.h"
#include "shapex/ipc/shared_memory.h"

namespace shapex::ipc {
namespace {

constexpr uint64_t kSliceAlign = 64;

// The values of a message that may hold sidecars.
std::vector<WireValue*> ValueRoots(WireMessage* message) {
  std::vector<WireValue*> roots;
  if (auto* call = std::get_if<RemoteCallRequest>(message)) {
    for (WireValue& v : call->arguments) roots.push_back(&v);
    if (call->captures) {
      for (WireValue& v : *call->captures) roots.push_back(&v);
    }
    for (auto& [name, v] : call->globals) roots.push_back(&v);
  } else if (auto* response = std::get_if<RemoteCallResponse>(message)) {
    if (auto* value = std::get_if<WireValue>(&response->result)) roots.push_back(value);
  } else if (auto* batch = std::get_if<RemoteCallBatch>(message)) {
    for (std::vector<WireValue>& item : batch->items)
      for (WireValue& v : item) roots.push_back(&v);
    for (auto& [name, v] : batch->call.globals) roots.push_back(&v);
  } else if (auto* results = std::get_if<RemoteCallBatchResponse>(message)) {
    for (RemoteCallResponse& r : results->results)
      if (auto* value = std::get_if<WireValue>(&r.result)) roots.push_back(value);
  }
  return roots;
}

// Passed as its segment's descriptor (not copied): bytes in a shared segment, as opposed to
// inline bytes or bytes borrowed from the sender's memory (SegmentView::fd == -1).
bool InSegment(const Sidecar& s) { return s.segment && s.segment->fd >= 0; }

// A received segment, mapped read-only, with its descriptor.
struct MappedSegment {
  ScopedFd fd;
  SharedMapping mapping;
  bool sealed = false;  // immutable (all four seals), not merely read-only to us
};

Result<std::shared_ptr<MappedSegment>> MapReceived(ScopedFd fd, bool accept_read_only) {
  auto segment = std::make_shared<MappedSegment>();
  Result<size_t> sealed = CheckSegment(fd.get(), ImmutableSeals());
  size_t size = 0;
  if (sealed.has_value()) {
    size = *sealed;
    segment->sealed = true;
  } else {
    if (!accept_read_only) return sealed.error();
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0) return ErrnoStatus("fcntl(F_GETFL)");
    if ((flags & O_ACCMODE) != O_RDONLY) {
      return ProtocolError("a writable segment arrived on a writable descriptor");
    }
    ASSIGN_OR_RETURN(size, CheckSegment(fd.get(), FixedSizeSeals() | F_SEAL_FUTURE_WRITE));
  }
  ASSIGN_OR_RETURN(segment->mapping,
                   SharedMapping::Map(fd.get(), size, SharedMapping::Access::kReadOnly));
  segment->fd = std::move(fd);
  return segment;
}

}  // namespace

Result<OutgoingMessage> PrepareOutgoing(WireMessage message,
                                        const SidecarTransportOptions& options) {
  OutgoingMessage out;
  std::vector<Sidecar> sidecars =
      ExtractSidecars(ValueRoots(&message), ExtractOptions{options.threshold, false});
  if (sidecars.empty()) {
    out.payload = EncodeMessage(message);
    return out;
  }
  FdTable table;
  table.slices.resize(sidecars.size());
  // Segment sidecars: one descriptor per distinct segment.
  std::unordered_map<int, uint32_t> fd_index;
  uint64_t packed_size = 0;
  for (size_t i = 0; i < sidecars.size(); ++i) {
    const Sidecar& s = sidecars[i];
    if (InSegment(s)) {
      auto [it, added] = fd_index.emplace(s.segment->fd, static_cast<uint32_t>(out.fds.size()));
      if (added) out.fds.push_back(s.segment->fd);
      table.slices[i] = {it->second, s.segment->offset, s.segment->bytes.size()};
      out.sidecar_bytes += s.segment->bytes.size();
    } else {
      packed_size = (packed_size + kSliceAlign - 1) / kSliceAlign * kSliceAlign;
      table.slices[i] = {0, packed_size, s.data().size()};
      packed_size += s.data().size();
    }
  }
  // Inline sidecars: copied once into one segment (the next descriptor), from the pool or new
  // and sealed.
  std::vector<SealedSegment::Piece> pieces;
  for (size_t i = 0; i < sidecars.size() && packed_size > 0; ++i) {
    const Sidecar& s = sidecars[i];
    if (InSegment(s)) continue;
    table.slices[i].fd_index = static_cast<uint32_t>(out.fds.size());
    pieces.push_back({table.slices[i].offset, s.data()});
    out.sidecar_bytes += s.data().size();
    out.copied_bytes += s.data().size();
  }
  if (packed_size > 0 && options.pool != nullptr) {
    ASSIGN_OR_RETURN(SharedRegion region, SharedRegion::Create(packed_size, options.pool));
    SealedSegment::CopyPieces(region.bytes(), pieces);
    out.fds.push_back(region.view()->fd);
    out.pooled.push_back(region.view());
  } else if (packed_size > 0) {
    ScopedFd fd;
    if (options.reserve != nullptr) {
      ASSIGN_OR_RETURN(fd, options.reserve->WriteSealed(packed_size, pieces));
    } else {
      ASSIGN_OR_RETURN(SealedSegment sealed,
                       SealedSegment::CreateByWriting(packed_size, pieces, "shapex-sidecars"));
      ASSIGN_OR_RETURN(fd, sealed.ShareFd());
    }
    out.fds.push_back(fd.get());
    out.owned_fds.push_back(std::move(fd));
  }
  for (Sidecar& s : sidecars) {
    if (!InSegment(s)) out.sources.push_back(std::move(s));
  }
  if (out.fds.size() > kMaxFdsPerFrame) {
    return ResourceExhausted(fmt::format("message needs {} segments, at most {} per frame",
                                         out.fds.size(), kMaxFdsPerFrame));
  }
  table.fd_count = static_cast<uint32_t>(out.fds.size());
  EncodeFdTable(table, &out.payload);
  std::vector<uint8_t> encoded = EncodeMessage(message);
  out.payload.insert(out.payload.end(), encoded.begin(), encoded.end());
  out.type = FrameType::kMessageWithFds;
  return out;
}

Status SendMessage(Connection& connection, uint64_t call_id, WireMessage message,
                   const SidecarTransportOptions& options) {
  if (options.pool != nullptr) {
    return InvalidArgument("SendMessage cannot keep pooled segments alive; use SendPrepared");
  }
  ASSIGN_OR_RETURN(OutgoingMessage out, PrepareOutgoing(std::move(message), options));
  return SendPrepared(connection, call_id, out);
}

Status SendPrepared(Connection& connection, uint64_t call_id, const OutgoingMessage& message) {
  return connection.Send(message.type, call_id, message.payload, message.fds);
}

Result<WireMessage> DecodeIncoming(IncomingFrame* frame, const SidecarTransportOptions& options) {
  std::vector<ScopedFd> fds = std::move(frame->fds);
  frame->fds.clear();
  if (frame->type == FrameType::kMessage) {
    if (!fds.empty()) return ProtocolError("descriptors came with a plain message");
    return DecodeMessage(frame->payload());
  }
  if (frame->type != FrameType::kMessageWithFds) {
    return ProtocolError(fmt::format("frame type {:#x} does not carry a message",
                                     static_cast<int>(frame->type)));
  }
  std::span<const uint8_t> body;
  ASSIGN_OR_RETURN(FdTable table, DecodeFdTable(frame->payload(), &body));
  if (fds.size() != table.fd_count) {
    return ProtocolError(fmt::format("frame announces {} descriptors, {} came", table.fd_count,
                                     fds.size()));
  }
  ASSIGN_OR_RETURN(WireMessage message, DecodeMessage(body));
  std::vector<std::shared_ptr<MappedSegment>> segments;
  for (ScopedFd& fd : fds) {
    ASSIGN_OR_RETURN(auto segment, MapReceived(std::move(fd), options.accept_read_only_segments));
    segments.push_back(std::move(segment));
  }
  std::vector<bool> used(segments.size());
  std::vector<Sidecar> sidecars(table.slices.size());
  for (size_t i = 0; i < table.slices.size(); ++i) {
    const FdSlice& slice = table.slices[i];
    const std::shared_ptr<MappedSegment>& segment = segments[slice.fd_index];
    uint64_t size = segment->mapping.size();
    if (slice.offset > size || slice.length > size - slice.offset) {
      return ProtocolError(fmt::format("sidecar {} ({} bytes at {}) lies outside its {}-byte "
                                       "segment",
                                       i, slice.length, slice.offset, size));
    }
    used[slice.fd_index] = true;
    auto view = std::make_shared<std::pair<std::shared_ptr<MappedSegment>, SegmentView>>(
        segment, SegmentView{segment->mapping.bytes().subspan(slice.offset, slice.length),
                             segment->fd.get(), slice.offset, segment->sealed});
    sidecars[i].id = static_cast<uint32_t>(i);
    sidecars[i].segment = std::shared_ptr<const SegmentView>(view, &view->second);
  }
  for (size_t i = 0; i < used.size(); ++i) {
    if (!used[i]) return ProtocolError(fmt::format("descriptor {} holds no sidecar", i));
  }
  RETURN_IF_ERROR(ReassembleSidecars(ValueRoots(&message), std::move(sidecars)));
  return message;
}

}  // namespace shapex::ipc
