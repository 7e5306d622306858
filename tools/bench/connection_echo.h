// The call ring's bare echo, shared by ipc_bench and call_bench so both measure the same floor:
// a forked child answers every message frame of an ipc::Connection with the same frame.
//
//   ConnectionEcho echo(Transport::kCallRing, max_spin);
//   Stats s = echo.Measure(20000);   // 64-byte payloads, one round trip per sample
//   echo.Stop();
#ifndef SHAPEX_TOOLS_BENCH_CONNECTION_ECHO_H_
#define SHAPEX_TOOLS_BENCH_CONNECTION_ECHO_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "shapex/ipc/connection.h"
#include "shapex/ipc/unix_socket.h"
#include "tools/bench/ipc_bench_util.h"

namespace ipc_bench {

class ConnectionEcho {
 public:
  ConnectionEcho(shapex::ipc::Transport transport, std::chrono::nanoseconds max_spin) {
    using namespace shapex::ipc;
    auto pair = UnixSocket::Pair();
    DieIf(pair.error(), "socketpair");
    ConnectionOptions options;
    options.transport = transport;
    options.ring.max_spin = max_spin;
    child_ = Spawn([&] {
      pair->first.Close();
      auto server = Connection::Accept(std::move(pair->second), options);
      if (!server.has_value()) return 1;
      IncomingFrame in;
      for (;;) {
        Status s = server->Receive(&in, std::chrono::seconds(60));
        if (!s.ok()) return 2;
        if (in.type == FrameType::kGoodbye) return 0;
        if (!server->Send(in.type, in.call_id, in.payload()).ok()) return 3;
      }
    });
    pair->second.Close();
    auto client = Connection::Connect(std::move(pair->first), options);
    DieIf(client.error(), "connect");
    client_.emplace(std::move(*client));
  }
  ConnectionEcho(const ConnectionEcho&) = delete;
  ConnectionEcho& operator=(const ConnectionEcho&) = delete;
  ~ConnectionEcho() { Stop(); }

  pid_t child() const { return child_; }

  // `iterations` round trips of a 64-byte message frame (after Measure's own warm-up).
  Stats Measure(int iterations) {
    using namespace shapex::ipc;
    std::vector<uint8_t> payload(64, 7);
    IncomingFrame in;
    return ipc_bench::Measure(iterations, [&](int i) {
      DieIf(client_->Send(FrameType::kMessage, static_cast<uint64_t>(i), payload), "send");
      DieIf(client_->Receive(&in, std::chrono::seconds(10)), "receive");
      if (in.call_id != static_cast<uint64_t>(i) || in.payload().size() != payload.size()) {
        Die("echo returned the wrong frame");
      }
    });
  }

  void Stop() {
    if (child_ <= 0) return;
    client_->Shutdown();
    Reap(child_, "echo");
    child_ = -1;
  }

 private:
  pid_t child_ = -1;
  std::optional<shapex::ipc::Connection> client_;
};

}  // namespace ipc_bench

#endif  // SHAPEX_TOOLS_BENCH_CONNECTION_ECHO_H_
