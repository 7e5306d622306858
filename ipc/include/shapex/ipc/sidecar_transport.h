// Messages on a Connection, with large values passed as shared-memory descriptors instead of
// bytes (docs/wire-protocol.md, "Sidecars on a connection").
//
//   RETURN_IF_ERROR(SendMessage(conn, call_id, WireMessage{std::move(request)}));
//   IncomingFrame frame;
//   RETURN_IF_ERROR(conn.Receive(&frame, timeout));
//   ASSIGN_OR_RETURN(WireMessage message, DecodeIncoming(&frame));
//
// Sending: every string, typed array or matrix of at least `threshold` bytes in a call's
// arguments/captures or a response's value becomes a sidecar. Typed arrays and matrices that
// already live in a segment (SharedVec) are passed as their segment's read-only descriptor, with
// no copy at all; other large values are copied once into one new sealed segment shared by the
// whole message. The frame is kMessageWithFds: an FdTable (protocol.h), then the message.
//
// Receiving: each descriptor is checked before it is mapped: it must be a memfd carrying all four
// immutability seals, or, only if `accept_read_only_segments`, a size-sealed memfd with
// F_SEAL_FUTURE_WRITE that arrived opened O_RDONLY (what SharedVec sends; accept it only from a
// more trusted peer, because its owner can still change the bytes). Every slice must lie inside
// its segment and every descriptor must be used. Typed arrays and matrices then point into the
// read-only mapping (WireBuffer::segment, no copy); strings are copied out. Any violation is a
// ProtocolError and every descriptor is closed.
#ifndef SHAPEX_IPC_SIDECAR_TRANSPORT_H_
#define SHAPEX_IPC_SIDECAR_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/segment_reserve.h"
#include "shapex/ipc/shared_vec.h"
#include "shapex/ipc/sidecar.h"

namespace shapex::ipc {

struct SidecarTransportOptions {
  size_t threshold = kSidecarThreshold;
  // Receiving: also accept read-only descriptors of owner-writable segments (see above).
  bool accept_read_only_segments = false;
  // Sending: copy large values into segments from this pool (already faulted in, reused) and
  // pass them read-only, instead of into a new sealed segment. Only for a peer that accepts
  // read-only segments; the OutgoingMessage must then live until the peer is done with the
  // values (normally: until the call's response), since the pool reuses the memory after.
  SegmentPool* pool = nullptr;
  // Sending without a pool: write the sealed segment into spare pages from this reserve (its
  // owner calls Replenish when idle) instead of into a new memfd.
  SegmentReserve* reserve = nullptr;
};

// An encoded frame, ready for Connection::Send.
struct OutgoingMessage {
  FrameType type = FrameType::kMessage;
  std::vector<uint8_t> payload;
  std::vector<ScopedFd> owned_fds;  // segments made for this message (closed when it dies)
  std::vector<std::shared_ptr<const SegmentView>> pooled;  // pool segments used by the message
  std::vector<int> fds;             // what to pass, in FdTable order
  // The copied values' own bytes (or borrowed views), taken from the message: freed with this
  // object, i.e. after the send rather than before it (freeing 64 MiB takes milliseconds).
  std::vector<Sidecar> sources;

  uint64_t sidecar_bytes = 0;  // bytes passed by descriptor
  uint64_t copied_bytes = 0;   // of those, bytes copied into a new segment
};

Result<OutgoingMessage> PrepareOutgoing(WireMessage message,
                                        const SidecarTransportOptions& options = {});

// PrepareOutgoing + SendPrepared. Not for options.pool (use the two steps and keep the message).
Status SendMessage(Connection& connection, uint64_t call_id, WireMessage message,
                   const SidecarTransportOptions& options = {});
Status SendPrepared(Connection& connection, uint64_t call_id, const OutgoingMessage& message);

// Decodes a kMessage or kMessageWithFds frame (taking its descriptors).
Result<WireMessage> DecodeIncoming(IncomingFrame* frame,
                                   const SidecarTransportOptions& options = {});

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_SIDECAR_TRANSPORT_H_
