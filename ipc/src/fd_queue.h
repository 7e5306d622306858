// The descriptor queue of a stream connection (Connection and AsyncChannel): descriptors ride on
// a frame's first bytes and wait here, in arrival order, until their frame is complete and
// claims as many as its payload announces. Private to ipc/.
#ifndef SHAPEX_IPC_SRC_FD_QUEUE_H_
#define SHAPEX_IPC_SRC_FD_QUEUE_H_

#include <deque>
#include <vector>

#include <fmt/core.h>

#include "shapex/core/scoped_fd.h"
#include "shapex/core/status.h"
#include "shapex/ipc/protocol.h"
#include "shapex/ipc/unix_socket.h"

namespace shapex::ipc::internal {

// More than one frame's worth plus one recvmsg's worth cannot be claimed by anything.
inline constexpr size_t kMaxQueuedFds = kMaxFdsPerFrame + kDefaultMaxFdsPerMessage;

// Appends the descriptors one read brought; ProtocolError (and an emptied queue) when the peer
// sent more than any frame can claim.
inline Status EnqueueReceivedFds(std::vector<ScopedFd>* received, std::deque<ScopedFd>* queue) {
  for (ScopedFd& fd : *received) queue->push_back(std::move(fd));
  received->clear();
  if (queue->size() <= kMaxQueuedFds) return Status::Ok();
  queue->clear();
  return ProtocolError(fmt::format("peer sent more than {} descriptors at once", kMaxQueuedFds));
}

// Moves the first `count` queued descriptors to `*out`; ProtocolError (and an emptied queue)
// when fewer arrived.
inline Status ClaimQueuedFds(size_t count, std::deque<ScopedFd>* queue,
                             std::vector<ScopedFd>* out) {
  if (queue->size() < count) {
    size_t arrived = queue->size();
    queue->clear();
    return ProtocolError(fmt::format("frame announces {} descriptors, {} arrived", count, arrived));
  }
  for (size_t i = 0; i < count; ++i) {
    out->push_back(std::move(queue->front()));
    queue->pop_front();
  }
  return Status::Ok();
}

}  // namespace shapex::ipc::internal

#endif  // SHAPEX_IPC_SRC_FD_QUEUE_H_
