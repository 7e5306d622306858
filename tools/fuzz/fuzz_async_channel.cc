// libFuzzer target: the supervisor's side of a control connection (ipc/async_channel.h) reading
// a hostile client's byte stream: the handshake, frames split anywhere, control messages.
//
// Input: the bytes a client sends. They are written to a socket pair and read by a server-side
// AsyncChannel with small limits, a few messages per call, until the stream ends or the channel
// fails. Every failure must be a typed, sticky Status; every delivered message must re-encode
// to bytes that decode to the same encoding.
//
//   ./build/fuzz/tools/fuzz_async_channel -runs=1000000 tests/fuzz/async_channel/
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fuzz_check.h"
#include "shapex/ipc/async_channel.h"
#include "shapex/ipc/control.h"

using namespace shapex;
using namespace shapex::ipc;

namespace {

using shapex_fuzz::Check;

}  // namespace

// Once, before any input: a peer that closed must give EPIPE, not kill the fuzzer.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  auto pair = UnixSocket::Pair();
  Check(pair.has_value(), "socketpair");
  // Inputs are at most a few KiB (libFuzzer's default max_len), below the socket buffer.
  if (size > 0 && !pair->first.SendAll(std::span(bytes, size), {}, 1000).ok()) return 0;
  (void)pair->first.ShutdownWrite();
  AsyncChannelLimits limits;
  limits.max_frame_payload = 1 << 16;
  limits.max_output_bytes = 1 << 16;
  limits.max_read_bytes = 1 << 12;
  Result<AsyncChannel> server =
      AsyncChannel::Start(std::move(pair->second), AsyncChannel::Role::kServer, limits);
  Check(server.has_value(), "Start failed on a socket pair");
  for (int i = 0; i < 256; ++i) {
    Status s = server->OnReadable(3, [&](ControlMessage& m, std::vector<ScopedFd>&) {
      std::vector<uint8_t> once_more = EncodeControl(m);
      Result<ControlMessage> again = DecodeControl(once_more);
      Check(again.has_value(), "a delivered message does not decode after re-encoding");
      Check(EncodeControl(*again) == once_more, "re-encoding is not stable");
      ControlMessage reply("status");
      reply.Set("json", std::string("{}"));
      (void)server->Send(reply);  // bounded output; the peer never reads
    });
    if (!s.ok()) {
      Check(s.kind() != ErrorKind::kOk, "failure without a kind");
      Check(!server->error().ok(), "an error that is not sticky");
      Check(server->OnReadable(1, [](ControlMessage&, std::vector<ScopedFd>&) {}).kind() ==
                s.kind(),
            "the sticky error changed");
      break;
    }
  }
  return 0;
}
