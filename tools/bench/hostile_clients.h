// HostileLoad: careless or hostile clients of one `shapex serve`, kept connected in the
// background while something else (a test, control_bench) checks that honest clients are still
// served. Issue 11's acceptance load, by default:
//
//   silent          200 connections that connect and send nothing
//   half_hello      200 connections that send the first 7 bytes of a Hello frame, then nothing
//   unread_replies  1 connection: a complete Hello, then 1,000 `status` requests, never reading
//   lease_flood     1 connection: a complete Hello, then 300 `lease` requests (no `wait`), never
//                   reading (so never using a grant)
//   huge_offer      1 connection: a complete Hello, then one `lease` offering 2^20 random hashes
//                   (a ~35 MB frame; the supervisor may refuse it)
//
//   shapex::bench::HostileLoad load({.socket_path = socket});   // connects in the background
//   load.WaitUntilConnected(std::chrono::seconds(10));          // optional
//   ... honest calls ...
//   load.Stop();                                                // or let the destructor do it
//   for (const HostileClassStats& c : load.Stats()) ... c.name, c.dropped ...
//
// Guarantees:
// - Raw non-blocking AF_UNIX sockets (SOCK_CLOEXEC: children started meanwhile inherit none).
//   A connect that fails (EAGAIN when the listen backlog is full, ECONNREFUSED, EMFILE, ...) is
//   retried later, never fatal; the constructor raises RLIMIT_NOFILE's soft limit to the hard one.
// - One background thread owns every socket: it connects, writes what each socket accepts
//   (MSG_NOSIGNAL | MSG_DONTWAIT) until its script is written, never reads, and notices a peer
//   that closed (POLLHUP / POLLRDHUP / POLLERR, EPIPE / ECONNRESET on write). Such a connection
//   counts as dropped and its socket is closed; it is not reopened. Nothing blocks on the peer.
// - Stop() (idempotent, also run by the destructor) joins the thread and closes every socket.
// - Stats() and WaitUntilConnected() may be called from any thread.
//
// The wire bytes come from ipc/ (frame header, handshake, control messages), so they follow
// docs/wire-protocol.md ("Connection protocol", "Control messages").
#ifndef SHAPEX_TOOLS_BENCH_HOSTILE_CLIENTS_H_
#define SHAPEX_TOOLS_BENCH_HOSTILE_CLIENTS_H_

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "shapex/engine/blob.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/frame.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/protocol.h"

namespace shapex::bench {

struct HostileLoadOptions {
  std::string socket_path;
  int silent = 200;
  int half_hello = 200;
  int unread_status_requests = 1000;  // 0: no unread_replies connection
  int flood_leases = 300;             // 0: no lease_flood connection
  size_t offer_hashes = size_t{1} << 20;  // 0: no huge_offer connection
  // Pause before retrying connects after one failed (the rest wait for the next round).
  std::chrono::milliseconds connect_retry{10};
};

// One class of hostile connection, as the background thread last saw it.
struct HostileClassStats {
  std::string name;        // silent, half_hello, unread_replies, lease_flood, huge_offer
  int connections = 0;     // how many this class opens
  int connected = 0;       // how many connect() accepted so far
  int dropped = 0;         // connected, then closed by the peer (EOF, HUP, reset)
  int fully_written = 0;   // wrote their whole script (Hello, requests) before any drop
  int connect_failures = 0;  // failed connect() attempts (each retried later)
  uint64_t bytes_written = 0;
};

class HostileLoad {
 public:
  enum Class : size_t { kSilent, kHalfHello, kUnreadReplies, kLeaseFlood, kHugeOffer, kClasses };

  explicit HostileLoad(HostileLoadOptions options) : options_(std::move(options)) {
    RaiseFdLimit();
    BuildScripts();
    const int counts[kClasses] = {options_.silent, options_.half_hello,
                                  options_.unread_status_requests > 0 ? 1 : 0,
                                  options_.flood_leases > 0 ? 1 : 0,
                                  options_.offer_hashes > 0 ? 1 : 0};
    static constexpr const char* kNames[kClasses] = {"silent", "half_hello", "unread_replies",
                                                     "lease_flood", "huge_offer"};
    for (size_t c = 0; c < kClasses; ++c) {
      stats_[c].name = kNames[c];
      stats_[c].connections = counts[c];
    }
    // The three that stream requests first, then silent and half-Hello ones interleaved, so both
    // reach the supervisor even if the backlog fills early.
    for (size_t c : {kUnreadReplies, kLeaseFlood, kHugeOffer}) {
      if (counts[c] > 0) conns_.push_back(Conn{static_cast<Class>(c)});
    }
    for (int i = 0; i < std::max(counts[kSilent], counts[kHalfHello]); ++i) {
      if (i < counts[kSilent]) conns_.push_back(Conn{kSilent});
      if (i < counts[kHalfHello]) conns_.push_back(Conn{kHalfHello});
    }
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
    thread_ = std::thread([this] { Loop(); });
  }

  ~HostileLoad() { Stop(); }
  HostileLoad(const HostileLoad&) = delete;
  HostileLoad& operator=(const HostileLoad&) = delete;

  // Closes every connection (the supervisor sees them all end). Idempotent.
  void Stop() {
    if (!thread_.joinable()) return;
    stop_.store(true);
    if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
    thread_.join();
    for (Conn& c : conns_) CloseConn(c);
    for (int& fd : wake_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }

  // Waits until every connection has connected once (or the load stopped); false on timeout.
  bool WaitUntilConnected(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return stopped_ || AllConnectedLocked(); });
  }

  // A snapshot, one entry per class, in the order of `Class`.
  std::vector<HostileClassStats> Stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::vector<HostileClassStats>(stats_.begin(), stats_.end());
  }

  // One line per class, for logs and test failure messages.
  std::string Describe() const {
    std::string out;
    for (const HostileClassStats& s : Stats()) {
      out += s.name + ": " + std::to_string(s.connected) + "/" + std::to_string(s.connections) +
             " connected, " + std::to_string(s.dropped) + " dropped, " +
             std::to_string(s.fully_written) + " fully written, " +
             std::to_string(s.bytes_written) + " bytes, " + std::to_string(s.connect_failures) +
             " connect failures\n";
    }
    return out;
  }

  // Raises the soft RLIMIT_NOFILE to the hard limit (hundreds of sockets stay open).
  static void RaiseFdLimit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
      limit.rlim_cur = limit.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
  }

  // Appends one frame (header + payload) to `out`.
  static void AppendFrame(ipc::FrameType type, const std::vector<uint8_t>& payload,
                          std::vector<uint8_t>* out) {
    auto header = ipc::EncodeFrameHeader(ipc::FrameHeader{
        static_cast<uint32_t>(payload.size()), static_cast<uint8_t>(type), 0});
    out->insert(out->end(), header.begin(), header.end());
    out->insert(out->end(), payload.begin(), payload.end());
  }

  // A client's Hello frame for the socket transport (what a control connection sends first).
  static std::vector<uint8_t> HelloFrame() {
    ipc::Handshake hello;
    hello.protocol_version = ipc::kWireProtocolVersion;
    hello.vm_version = engine::kVmVersion;
    hello.flags = 0;
    hello.max_frame_payload = ipc::kDefaultMaxFramePayload;
    std::vector<uint8_t> frame;
    AppendFrame(ipc::FrameType::kHello, ipc::EncodeHandshake(hello), &frame);
    return frame;
  }

 private:
  enum State { kConnecting, kOpen, kClosed };
  struct Conn {
    Class cls;
    State state = kConnecting;
    int fd = -1;
    size_t sent = 0;  // bytes of scripts_[cls] written
  };

  void BuildScripts() {
    std::vector<uint8_t> hello = HelloFrame();
    scripts_[kHalfHello].assign(hello.begin(), hello.begin() + 7);
    // Hello, then `n` times the control message `request`.
    auto script = [&](const ipc::ControlMessage& request, int n) {
      std::vector<uint8_t> frame;
      AppendFrame(ipc::FrameType::kMessage, ipc::EncodeControl(request), &frame);
      std::vector<uint8_t> bytes = hello;
      bytes.reserve(hello.size() + frame.size() * static_cast<size_t>(std::max(n, 0)));
      for (int i = 0; i < n; ++i) bytes.insert(bytes.end(), frame.begin(), frame.end());
      return bytes;
    };
    if (options_.unread_status_requests > 0) {
      scripts_[kUnreadReplies] =
          script(ipc::ControlMessage("status"), options_.unread_status_requests);
    }
    if (options_.flood_leases > 0) {
      scripts_[kLeaseFlood] = script(ipc::ControlMessage("lease"), options_.flood_leases);
    }
    if (options_.offer_hashes > 0) {
      ipc::ControlMessage offer("lease");
      offer.hashes.resize(options_.offer_hashes);
      std::mt19937_64 rng(0x5eed);
      for (engine::FunctionHash& h : offer.hashes) {
        for (size_t i = 0; i + 8 <= h.size(); i += 8) {
          uint64_t r = rng();
          std::memcpy(h.data() + i, &r, 8);
        }
      }
      std::vector<uint8_t> payload = ipc::EncodeControl(offer);
      offer = ipc::ControlMessage();
      scripts_[kHugeOffer] = hello;
      scripts_[kHugeOffer].reserve(hello.size() + ipc::kFrameHeaderSize + payload.size());
      AppendFrame(ipc::FrameType::kMessage, payload, &scripts_[kHugeOffer]);
    }
  }

  bool AllConnectedLocked() const {
    for (const HostileClassStats& s : stats_) {
      if (s.connected < s.connections) return false;
    }
    return true;
  }

  // Tries one connect; true if the socket is connected (or failed for a reason a retry will not
  // change right now, which the caller treats the same way: wait for the next round).
  bool TryConnect(Conn& c) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Failed(c);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, options_.socket_path.c_str(), sizeof(addr.sun_path) - 1);
    int rc;
    do {
      rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    } while (rc != 0 && errno == EINTR);
    // AF_UNIX connects complete at once; EINPROGRESS is not expected but would still end in a
    // connected socket (a write then fails or succeeds like on any other).
    if (rc != 0 && errno != EINPROGRESS) {
      ::close(fd);
      return Failed(c);
    }
    c.fd = fd;
    c.state = kOpen;
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_[c.cls].connected;
    if (scripts_[c.cls].empty()) ++stats_[c.cls].fully_written;
    cv_.notify_all();
    return true;
  }

  bool Failed(Conn& c) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_[c.cls].connect_failures;
    return false;
  }

  // Writes what the socket accepts of the connection's script.
  void WriteSome(Conn& c) {
    const std::vector<uint8_t>& script = scripts_[c.cls];
    uint64_t written = 0;
    while (c.state == kOpen && c.sent < script.size()) {
      ssize_t n = ::send(c.fd, script.data() + c.sent, script.size() - c.sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.sent += static_cast<size_t>(n);
        written += static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Dropped(c);  // EPIPE, ECONNRESET, ENOTCONN: the peer is gone
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_[c.cls].bytes_written += written;
    if (c.state == kOpen && written > 0 && c.sent == script.size()) ++stats_[c.cls].fully_written;
  }

  void Dropped(Conn& c) {
    CloseConn(c);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_[c.cls].dropped;
  }

  static void CloseConn(Conn& c) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    c.state = kClosed;
  }

  void Loop() {
    using Clock = std::chrono::steady_clock;
    Clock::time_point next_connect = Clock::now();
    std::vector<pollfd> fds;
    std::vector<Conn*> owners;
    while (!stop_.load()) {
      bool connecting = false;
      if (Clock::now() >= next_connect) {
        for (Conn& c : conns_) {
          if (c.state != kConnecting) continue;
          if (!TryConnect(c)) {
            // Backlog full (or worse): the others would fail the same way; try again later.
            connecting = true;
            next_connect = Clock::now() + options_.connect_retry;
            break;
          }
          WriteSome(c);
        }
      } else {
        for (const Conn& c : conns_) connecting = connecting || c.state == kConnecting;
      }
      fds.clear();
      owners.clear();
      fds.push_back(pollfd{wake_[0], POLLIN, 0});
      owners.push_back(nullptr);
      for (Conn& c : conns_) {
        if (c.state != kOpen) continue;
        // Never POLLIN: we do not read, so unread replies must not wake us. HUP and ERR are
        // always reported; RDHUP says the peer closed or shut down its side.
        short events = POLLRDHUP;
        if (c.sent < scripts_[c.cls].size()) events |= POLLOUT;
        fds.push_back(pollfd{c.fd, events, 0});
        owners.push_back(&c);
      }
      int timeout_ms = -1;
      if (connecting) {
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_connect -
                                                                          Clock::now());
        timeout_ms = static_cast<int>(std::max<int64_t>(1, wait.count() + 1));
      }
      if (wake_[0] < 0 && (timeout_ms < 0 || timeout_ms > 100)) timeout_ms = 100;  // no wake pipe
      int ready = ::poll(fds.data(), fds.size(), timeout_ms);
      if (ready < 0) {
        if (errno == EINTR) continue;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // ENOMEM: try again
        continue;
      }
      for (size_t i = 1; i < fds.size() && ready > 0; ++i) {
        if (fds[i].revents == 0) continue;
        --ready;
        Conn& c = *owners[i];
        if (fds[i].revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) {
          Dropped(c);
        } else if (fds[i].revents & POLLOUT) {
          WriteSome(c);
        }
      }
    }
  }

  HostileLoadOptions options_;
  std::array<std::vector<uint8_t>, kClasses> scripts_;  // what each class writes after connect
  std::vector<Conn> conns_;                             // owned by the thread until Stop()
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::array<HostileClassStats, kClasses> stats_;
  bool stopped_ = false;
};

}  // namespace shapex::bench

#endif  // SHAPEX_TOOLS_BENCH_HOSTILE_CLIENTS_H_
