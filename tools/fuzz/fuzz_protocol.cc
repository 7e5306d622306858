// libFuzzer target: the connection protocol's decoders (protocol.h) and a whole server-side
// Connection (connection.h) reading a hostile byte stream.
//
// Input: byte 0 picks the mode, the rest is the data.
//   0  DecodeHandshake; a record that decodes must re-encode to the same bytes
//   1  DecodeFdTable; a table that decodes must re-encode to the bytes it consumed
//   2+ the data is what a client sends on a socket: Connection::Accept (socket transport), then
//      Receive and DecodeIncoming until the first error; every error must be a typed Status
//
//   ./build/fuzz/tools/fuzz_protocol -runs=1000000 tests/fuzz/protocol/
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fuzz_check.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/protocol.h"
#include "shapex/ipc/sidecar_transport.h"

using namespace shapex;
using namespace shapex::ipc;

namespace {

using shapex_fuzz::Check;

void FuzzConnection(std::span<const uint8_t> data) {
  auto pair = UnixSocket::Pair();
  Check(pair.has_value(), "socketpair");
  // Inputs are at most a few KiB (libFuzzer's default max_len), below the socket buffer.
  if (!data.empty() && !pair->first.SendAll(data, {}, 1000).ok()) return;
  (void)pair->first.ShutdownWrite();
  ConnectionOptions options;
  options.handshake_timeout = std::chrono::milliseconds(200);
  options.max_frame_payload = 1 << 16;
  Result<Connection> server = Connection::Accept(std::move(pair->second), options);
  if (!server.has_value()) {
    Check(server.error().kind() != ErrorKind::kOk, "failed Accept without an error");
    return;
  }
  IncomingFrame frame;
  for (int i = 0; i < 64; ++i) {
    Status s = server->Receive(&frame, std::chrono::milliseconds(200));
    if (!s.ok()) return;
    if (frame.type == FrameType::kMessage || frame.type == FrameType::kMessageWithFds) {
      (void)DecodeIncoming(&frame);
    }
  }
}

}  // namespace

// Once, before any input: a peer that closed must give EPIPE, not kill the fuzzer.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> data(bytes + 1, size - 1);
  switch (bytes[0]) {
    case 0: {
      Result<Handshake> h = DecodeHandshake(data);
      if (h.has_value()) {
        std::vector<uint8_t> again = EncodeHandshake(*h);
        Check(std::equal(again.begin(), again.end(), data.begin(), data.end()),
              "handshake does not re-encode to its bytes");
      }
      break;
    }
    case 1: {
      std::span<const uint8_t> rest;
      Result<FdTable> table = DecodeFdTable(data, &rest);
      if (table.has_value()) {
        std::vector<uint8_t> again;
        EncodeFdTable(*table, &again);
        Check(again.size() + rest.size() == data.size(), "table size mismatch");
        Check(std::equal(again.begin(), again.end(), data.begin()),
              "fd table does not re-encode to its bytes");
        for (const FdSlice& s : table->slices) Check(s.fd_index < table->fd_count, "fd index");
      }
      (void)PeekFdCount(data);
      break;
    }
    default:
      FuzzConnection(data);
      break;
  }
  return 0;
}
