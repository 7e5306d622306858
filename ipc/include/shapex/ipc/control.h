// Control messages: what a client says to the supervisor (lease an executor, status, stop) and
// what the supervisor says to its zygote and executors (spawn, serve this client, preload these
// blobs, exit). docs/wire-protocol.md ("Control messages") is the normative description.
//
//   ControlMessage lease("lease");
//   lease.hashes = offered;                                   // code the client is about to use
//   RETURN_IF_ERROR(SendControl(connection, lease));
//   IncomingFrame frame;
//   RETURN_IF_ERROR(connection.Receive(&frame, timeout));
//   ASSIGN_OR_RETURN(ControlMessage reply, DecodeControlFrame(&frame, &fds));   // fds: owned
//   if (reply.op == "granted") ... reply.Int("executor_pid") ...
//
// A control message is an operation name plus named integers and texts, a list of hashes and a
// list of encoded blobs. Decoding is bounded and total: any byte string gives a message or a
// ProtocolError. Control connections use the socket transport; descriptors travel in
// kMessageWithFds frames whose descriptor table has no slices.
#ifndef SHAPEX_IPC_CONTROL_H_
#define SHAPEX_IPC_CONTROL_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/engine/blob.h"
#include "shapex/ipc/connection.h"

namespace shapex::ipc {

inline constexpr size_t kMaxControlFields = 256;
inline constexpr size_t kMaxControlText = 1 << 20;
// Blob bytes one control message carries at most (preload, done): well inside the 64 MiB frame
// limit of control connections. Senders leave out what does not fit (it is only a cache).
inline constexpr size_t kMaxControlBlobBytes = size_t{32} << 20;

struct ControlMessage {
  ControlMessage() = default;
  explicit ControlMessage(std::string op_name) : op(std::move(op_name)) {}

  std::string op;
  std::vector<std::pair<std::string, int64_t>> ints;
  std::vector<std::pair<std::string, std::string>> texts;
  std::vector<engine::FunctionHash> hashes;
  std::vector<std::vector<uint8_t>> blobs;  // engine::EncodeBlob bytes

  int64_t Int(std::string_view key, int64_t fallback = 0) const;
  std::string Text(std::string_view key, std::string_view fallback = {}) const;
  ControlMessage& Set(std::string key, int64_t value);
  ControlMessage& Set(std::string key, std::string value);
};

// Options of a control connection: the socket transport (control messages are few and may
// carry descriptors; a call ring would only cost memory and a spinning reader).
ConnectionOptions ControlConnectionOptions();

// An "error" message carrying a Status (kind name and message), and back.
ControlMessage ControlError(const Status& status);
Status ControlErrorStatus(const ControlMessage& message);

std::vector<uint8_t> EncodeControl(const ControlMessage& message);
Result<ControlMessage> DecodeControl(std::span<const uint8_t> bytes);

// Sends `message` on `connection` (with `fds`, which the caller keeps).
Status SendControl(Connection& connection, const ControlMessage& message,
                   std::span<const int> fds = {});
// Decodes a received kMessage / kMessageWithFds frame; its descriptors move to `*fds`.
Result<ControlMessage> DecodeControlFrame(IncomingFrame* frame, std::vector<ScopedFd>* fds);
// The same for a frame given as type, payload and the descriptors that came with it.
Result<ControlMessage> DecodeControlPayload(FrameType type, std::span<const uint8_t> payload,
                                            std::vector<ScopedFd> received,
                                            std::vector<ScopedFd>* fds);
// A whole frame (header + payload) carrying `message`; with descriptors, the payload starts with
// their table (the descriptors themselves travel beside the bytes).
std::vector<uint8_t> EncodeControlFrame(const ControlMessage& message, size_t fd_count);
// Receive + DecodeControlFrame. IoError when the peer closed (or said Goodbye).
Result<ControlMessage> ReceiveControl(Connection& connection, std::vector<ScopedFd>* fds,
                                      std::chrono::nanoseconds timeout);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_CONTROL_H_
