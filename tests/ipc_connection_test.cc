#include "shapex/ipc/connection.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "shapex/engine/blob.h"
#include "shapex/ipc/frame.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/protocol.h"
#include "shapex/ipc/shared_memory.h"
#include "testing/open_fds.h"
#include "testing/status_matchers.h"

namespace shapex::ipc {
namespace {

using ::shapex_testing::CountOpenFds;
using ::shapex_testing::IsError;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }
std::string Text(std::span<const uint8_t> b) { return {b.begin(), b.end()}; }

struct Pair {
  Connection client;
  Connection server;
};

// Connects a client and a server over a socketpair (the server runs Accept on a thread).
Result<Pair> MakePair(const ConnectionOptions& client_options = {},
                      const ConnectionOptions& server_options = {}) {
  ASSIGN_OR_RETURN(auto sockets, UnixSocket::Pair());
  auto server = std::async(std::launch::async, [&, s = std::move(sockets.second)]() mutable {
    return Connection::Accept(std::move(s), server_options);
  });
  Result<Connection> client = Connection::Connect(std::move(sockets.first), client_options);
  Result<Connection> accepted = server.get();
  if (!client.has_value()) return client.error();
  if (!accepted.has_value()) return accepted.error();
  return Pair{std::move(*client), std::move(*accepted)};
}

// Encodes a kMessageWithFds payload: a table naming `fd_count` descriptors, then `text`.
std::vector<uint8_t> FdPayload(uint32_t fd_count, std::string_view text) {
  FdTable table;
  table.fd_count = fd_count;
  std::vector<uint8_t> out;
  EncodeFdTable(table, &out);
  out.insert(out.end(), text.begin(), text.end());
  return out;
}

class ConnectionTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override { fds_before_ = CountOpenFds(); }
  void TearDown() override { EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak"; }
  ConnectionOptions Options() const {
    ConnectionOptions o;
    o.transport = GetParam();
    o.ring.capacity = 4096;  // small, so the socket path is exercised too
    return o;
  }
  size_t fds_before_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Transports, ConnectionTest,
                         ::testing::Values(Transport::kCallRing, Transport::kSocket),
                         [](const auto& info) {
                           return info.param == Transport::kCallRing ? "Ring" : "Socket";
                         });

TEST_P(ConnectionTest, HandshakeStatesVersionsAndTransport) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(Options(), Options()));
  EXPECT_EQ(pair.client.transport(), GetParam());
  EXPECT_EQ(pair.server.transport(), GetParam());
  EXPECT_EQ(pair.server.peer_handshake().protocol_version, kWireProtocolVersion);
  EXPECT_EQ(pair.client.peer_handshake().vm_version, engine::kVmVersion);
  EXPECT_EQ(pair.server.peer_credentials().uid, getuid());
}

TEST_P(ConnectionTest, FramesArriveInOrderWhateverTheirSize) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(Options(), Options()));
  // Small frames take the ring, the 100 KiB one the socket (announced in the ring).
  std::vector<std::vector<uint8_t>> sent = {Bytes("one"), std::vector<uint8_t>(100 << 10, 7),
                                            Bytes("three"), {}, std::vector<uint8_t>(5000, 9)};
  for (size_t i = 0; i < sent.size(); ++i) {
    ASSERT_OK(pair.client.Send(FrameType::kMessage, i + 1, sent[i]));
  }
  IncomingFrame in;
  for (size_t i = 0; i < sent.size(); ++i) {
    ASSERT_OK(pair.server.Receive(&in, seconds(5)));
    EXPECT_EQ(in.type, FrameType::kMessage);
    EXPECT_EQ(in.call_id, i + 1);
    EXPECT_TRUE(std::equal(in.payload().begin(), in.payload().end(), sent[i].begin(),
                           sent[i].end()))
        << "frame " << i;
  }
  if (GetParam() == Transport::kCallRing) {
    EXPECT_EQ(pair.client.stats().frames_sent_ring, 3u);
    EXPECT_EQ(pair.client.stats().frames_sent_socket, 2u);
  } else {
    EXPECT_EQ(pair.client.stats().frames_sent_socket, 5u);
  }
}

TEST_P(ConnectionTest, PipelinedCallsGetOutOfOrderRepliesMatchedById) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(Options(), Options()));
  constexpr int kCalls = 64;
  std::thread server([&] {
    IncomingFrame in;
    std::vector<std::pair<uint64_t, std::string>> pending;
    for (int i = 0; i < kCalls; ++i) {
      ASSERT_OK(pair.server.Receive(&in, seconds(10)));
      pending.emplace_back(in.call_id, Text(in.payload()));
    }
    // Answer last call first.
    for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
      ASSERT_OK(pair.server.Send(FrameType::kMessage, it->first, Bytes("re:" + it->second)));
    }
  });
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_OK(pair.client.Send(FrameType::kMessage, 1000 + i, Bytes(std::to_string(i))));
  }
  IncomingFrame in;
  std::vector<bool> seen(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_OK(pair.client.Receive(&in, seconds(10)));
    int call = static_cast<int>(in.call_id) - 1000;
    ASSERT_GE(call, 0);
    ASSERT_LT(call, kCalls);
    EXPECT_EQ(Text(in.payload()), "re:" + std::to_string(call));
    EXPECT_EQ(call, kCalls - 1 - i) << "replies come back in the server's order";
    seen[call] = true;
  }
  server.join();
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), kCalls);
}

TEST_P(ConnectionTest, DescriptorsTravelWithTheirFrame) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(Options(), Options()));
  for (size_t count : {size_t{1}, size_t{3}, size_t{40}, kMaxFdsPerFrame}) {
    std::vector<SealedSegment> segments;
    std::vector<int> fds;
    for (size_t i = 0; i < count; ++i) {
      std::vector<uint8_t> content(16, static_cast<uint8_t>(i));
      ASSERT_OK_AND_ASSIGN(auto seg, SealedSegment::CreateFrom(content));
      fds.push_back(seg.fd());
      segments.push_back(std::move(seg));
    }
    ASSERT_OK(pair.client.Send(FrameType::kMessage, 1, Bytes("before")));
    ASSERT_OK(pair.client.Send(FrameType::kMessageWithFds, 2,
                               FdPayload(static_cast<uint32_t>(count), "with"), fds));
    ASSERT_OK(pair.client.Send(FrameType::kMessage, 3, Bytes("after")));
    IncomingFrame in;
    ASSERT_OK(pair.server.Receive(&in, seconds(5)));
    EXPECT_EQ(in.call_id, 1u);
    EXPECT_TRUE(in.fds.empty());
    ASSERT_OK(pair.server.Receive(&in, seconds(5)));
    EXPECT_EQ(in.type, FrameType::kMessageWithFds);
    ASSERT_EQ(in.fds.size(), count);
    for (size_t i = 0; i < count; ++i) {
      ASSERT_OK_AND_ASSIGN(auto view, MapSealed(std::move(in.fds[i]), 16));
      EXPECT_EQ(view.bytes()[0], static_cast<uint8_t>(i)) << "descriptor order";
    }
    ASSERT_OK(pair.server.Receive(&in, seconds(5)));
    EXPECT_EQ(Text(in.payload()), "after");
  }
}

TEST_P(ConnectionTest, OversizePayloadIsRefusedAndTheConnectionCarriesOn) {
  ConnectionOptions options = Options();
  options.max_frame_payload = 1 << 16;
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(options, options));
  std::vector<uint8_t> big((1 << 16) + 1);
  EXPECT_THAT(pair.client.Send(FrameType::kMessage, 1, big), IsError(ErrorKind::kResourceExhausted));
  ASSERT_OK(pair.client.Send(FrameType::kMessage, 2, Bytes("fine")));
  IncomingFrame in;
  ASSERT_OK(pair.server.Receive(&in, seconds(5)));
  EXPECT_EQ(in.call_id, 2u);
}

TEST_P(ConnectionTest, ApplicationCannotSendHandshakeFrames) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(Options(), Options()));
  EXPECT_THAT(pair.client.Send(FrameType::kHello, 0, {}), IsError(ErrorKind::kInvalidArgument));
  EXPECT_THAT(pair.client.Send(FrameType::kSocketFrame, 0, {}),
              IsError(ErrorKind::kInvalidArgument));
  int fd = 0;
  EXPECT_THAT(pair.client.Send(FrameType::kMessage, 0, {}, std::span<const int>(&fd, 1)),
              IsError(ErrorKind::kInvalidArgument));
}

TEST_P(ConnectionTest, CancelAndGoodbyeCloseInOrder) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(Options(), Options()));
  ASSERT_OK(pair.client.Send(FrameType::kMessage, 5, Bytes("call")));
  ASSERT_OK(pair.client.Send(FrameType::kCancel, 5, {}));
  pair.client.Shutdown();
  IncomingFrame in;
  ASSERT_OK(pair.server.Receive(&in, seconds(5)));
  EXPECT_EQ(in.type, FrameType::kMessage);
  ASSERT_OK(pair.server.Receive(&in, seconds(5)));
  EXPECT_EQ(in.type, FrameType::kCancel);
  EXPECT_EQ(in.call_id, 5u);
  ASSERT_OK(pair.server.Receive(&in, seconds(5)));
  EXPECT_EQ(in.type, FrameType::kGoodbye);
  // The server may still answer; then it says goodbye too.
  ASSERT_OK(pair.server.Send(FrameType::kMessage, 5, Bytes("cancelled")));
  pair.server.Shutdown();
  ASSERT_OK(pair.client.Receive(&in, seconds(5)));
  EXPECT_EQ(Text(in.payload()), "cancelled");
  ASSERT_OK(pair.client.Receive(&in, seconds(5)));
  EXPECT_EQ(in.type, FrameType::kGoodbye);
  EXPECT_THAT(pair.client.Receive(&in, seconds(5)), IsError(ErrorKind::kIoError));
  EXPECT_THAT(pair.server.Receive(&in, seconds(5)), IsError(ErrorKind::kIoError));
}

TEST_P(ConnectionTest, ReceiveTimesOutWithoutKillingTheConnection) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(Options(), Options()));
  IncomingFrame in;
  EXPECT_THAT(pair.server.Receive(&in, milliseconds(20)), IsError(ErrorKind::kTimeout));
  ASSERT_OK(pair.client.Send(FrameType::kMessage, 1, Bytes("late")));
  ASSERT_OK(pair.server.Receive(&in, seconds(5)));
  EXPECT_EQ(Text(in.payload()), "late");
}

TEST_P(ConnectionTest, PeerProcessDeathIsNoticedWhileWaiting) {
  ASSERT_OK_AND_ASSIGN(auto sockets, UnixSocket::Pair());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    sockets.first.Close();
    ConnectionOptions options;
    Result<Connection> server = Connection::Accept(std::move(sockets.second), options);
    if (!server.has_value()) _exit(1);
    IncomingFrame in;
    if (!server->Receive(&in, seconds(10)).ok()) _exit(2);
    // Die without a word, as a crashing executor would.
    kill(getpid(), SIGKILL);
    _exit(3);
  }
  sockets.second.Close();
  {
    ASSERT_OK_AND_ASSIGN(Connection client, Connection::Connect(std::move(sockets.first), Options()));
    ASSERT_OK(client.Send(FrameType::kMessage, 1, Bytes("crash please")));
    IncomingFrame in;
    // The peer's death ends the wait long before the 30 s timeout.
    EXPECT_THAT(client.Receive(&in, seconds(30)), IsError(ErrorKind::kIoError));
    EXPECT_THAT(client.Send(FrameType::kMessage, 2, Bytes("x")), IsError(ErrorKind::kIoError));
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// ---- handshake failures -------------------------------------------------------------------

class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = CountOpenFds(); }
  void TearDown() override { EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak"; }
  size_t fds_before_ = 0;
};

TEST_F(HandshakeTest, ProtocolVersionMismatchIsReportedOnBothSides) {
  ConnectionOptions client;
  client.protocol_version = kWireProtocolVersion + 1;
  ASSERT_OK_AND_ASSIGN(auto sockets, UnixSocket::Pair());
  auto server = std::async(std::launch::async, [s = std::move(sockets.second)]() mutable {
    return Connection::Accept(std::move(s));
  });
  Result<Connection> c = Connection::Connect(std::move(sockets.first), client);
  Result<Connection> s = server.get();
  ASSERT_FALSE(c.has_value());
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(c.error().kind(), ErrorKind::kProtocolError);
  EXPECT_EQ(s.error().kind(), ErrorKind::kProtocolError);
  std::string expected = fmt::format("protocol {}", kWireProtocolVersion + 1);
  EXPECT_THAT(c.error().message(), ::testing::HasSubstr("server refused the connection"));
  EXPECT_THAT(c.error().message(), ::testing::HasSubstr(expected));
  EXPECT_THAT(s.error().message(), ::testing::HasSubstr(expected));
}

TEST_F(HandshakeTest, VmVersionMismatchIsRefused) {
  ConnectionOptions client;
  client.vm_version = engine::kVmVersion + 7;
  Result<Pair> pair = MakePair(client, {});
  ASSERT_FALSE(pair.has_value());
  EXPECT_EQ(pair.error().kind(), ErrorKind::kProtocolError);
  EXPECT_THAT(pair.error().message(), ::testing::HasSubstr("VM"));
}

TEST_F(HandshakeTest, SocketOnlyServerRefusesARing) {
  ConnectionOptions server;
  server.transport = Transport::kSocket;
  Result<Pair> pair = MakePair({}, server);
  ASSERT_FALSE(pair.has_value());
  EXPECT_THAT(pair.error().message(), ::testing::HasSubstr("socket transport only"));
}

// A raw peer that sends `bytes` (with `fds`) instead of a proper Hello.
Status AcceptFromRawPeer(std::span<const uint8_t> bytes, std::span<const int> fds = {}) {
  ASSIGN_OR_RETURN(auto sockets, UnixSocket::Pair());
  RETURN_IF_ERROR(sockets.first.SendAll(bytes, fds, 1000));
  (void)sockets.first.ShutdownWrite();
  ConnectionOptions options;
  options.handshake_timeout = milliseconds(500);
  Result<Connection> server = Connection::Accept(std::move(sockets.second), options);
  if (server.has_value()) return InternalError("accepted a bad Hello");
  return server.error();
}

std::vector<uint8_t> Frame(FrameType type, std::span<const uint8_t> payload) {
  FrameWriter writer;
  auto encoded = writer.Encode(static_cast<uint8_t>(type), 0, payload);
  return {encoded->begin(), encoded->end()};
}

TEST_F(HandshakeTest, BadHellosAreProtocolErrors) {
  Handshake good{kWireProtocolVersion, engine::kVmVersion, 0, kDefaultMaxFramePayload};
  std::vector<uint8_t> hello = EncodeHandshake(good);
  // Garbage, a truncated frame, a wrong type, a wrong magic, unknown flags.
  EXPECT_THAT(AcceptFromRawPeer(Bytes("GET / HTTP/1.1\r\n\r\n")),
              IsError(ErrorKind::kProtocolError));
  std::vector<uint8_t> frame = Frame(FrameType::kHello, hello);
  EXPECT_THAT(AcceptFromRawPeer(std::span(frame).first(10)), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(AcceptFromRawPeer(Frame(FrameType::kMessage, hello)),
              IsError(ErrorKind::kProtocolError));
  std::vector<uint8_t> bad_magic = hello;
  bad_magic[0] ^= 1;
  EXPECT_THAT(AcceptFromRawPeer(Frame(FrameType::kHello, bad_magic)),
              IsError(ErrorKind::kProtocolError));
  Handshake flags = good;
  flags.flags = 0x80;
  EXPECT_THAT(AcceptFromRawPeer(Frame(FrameType::kHello, EncodeHandshake(flags))),
              IsError(ErrorKind::kProtocolError));
  // A ring announced, but no descriptor came.
  Handshake ring = good;
  ring.flags = Handshake::kFlagCallRing;
  EXPECT_THAT(AcceptFromRawPeer(Frame(FrameType::kHello, EncodeHandshake(ring))),
              IsError(ErrorKind::kProtocolError));
  // A ring announced with a descriptor that is not a sealed ring segment (a pipe; an unsealed
  // memfd).
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  EXPECT_THAT(AcceptFromRawPeer(Frame(FrameType::kHello, EncodeHandshake(ring)),
                                std::span<const int>(p, 1)),
              IsError(ErrorKind::kProtocolError));
  close(p[0]);
  close(p[1]);
  ASSERT_OK_AND_ASSIGN(ScopedFd memfd, CreateMemfd(CallRing::SegmentSize(4096)));
  int m = memfd.get();
  EXPECT_THAT(AcceptFromRawPeer(Frame(FrameType::kHello, EncodeHandshake(ring)),
                                std::span<const int>(&m, 1)),
              IsError(ErrorKind::kProtocolError));
  // Descriptors with a socket-only Hello.
  EXPECT_THAT(AcceptFromRawPeer(frame, std::span<const int>(&m, 1)),
              IsError(ErrorKind::kProtocolError));
}

TEST_F(HandshakeTest, SilentPeerTimesOut) {
  ASSERT_OK_AND_ASSIGN(auto sockets, UnixSocket::Pair());
  ConnectionOptions options;
  options.handshake_timeout = milliseconds(50);
  Result<Connection> server = Connection::Accept(std::move(sockets.second), options);
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().kind(), ErrorKind::kTimeout);
}

// ---- hostile traffic after the handshake ----------------------------------------------------

class HostilePeerTest : public HandshakeTest {};

// Completes a socket-transport handshake by hand and returns the raw client socket.
Result<std::pair<UnixSocket, Connection>> RawClientAndServer() {
  ASSIGN_OR_RETURN(auto sockets, UnixSocket::Pair());
  Handshake hello{kWireProtocolVersion, engine::kVmVersion, 0, kDefaultMaxFramePayload};
  RETURN_IF_ERROR(sockets.first.SendAll(Frame(FrameType::kHello, EncodeHandshake(hello))));
  ASSIGN_OR_RETURN(Connection server, Connection::Accept(std::move(sockets.second)));
  // Drain the Welcome.
  std::vector<uint8_t> buf(kFrameHeaderSize + Handshake::kSize);
  size_t got = 0;
  while (got < buf.size()) {
    ASSIGN_OR_RETURN(bool readable, sockets.first.WaitReadable(1000));
    if (!readable) return TimeoutError("no Welcome");
    ASSIGN_OR_RETURN(IoResult r, sockets.first.RecvMsg(std::span(buf).subspan(got), nullptr));
    got += r.bytes;
  }
  return std::make_pair(std::move(sockets.first), std::move(server));
}

TEST_F(HostilePeerTest, EachBadStreamIsATypedErrorOnThatConnectionOnly) {
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
    size_t fds;
  };
  std::vector<uint8_t> oversize = {0xff, 0xff, 0xff, 0x7f, 0x10, 0, 0, 0, 0, 0, 0, 0, 0};
  std::vector<uint8_t> unknown_type = Frame(static_cast<FrameType>(0x99), Bytes("x"));
  std::vector<uint8_t> late_hello = Frame(FrameType::kHello, Bytes("again"));
  std::vector<uint8_t> truncated = Frame(FrameType::kMessage, Bytes("abcdef"));
  truncated.resize(truncated.size() - 2);
  std::vector<uint8_t> too_few_fds = Frame(FrameType::kMessageWithFds, FdPayload(3, "x"));
  std::vector<uint8_t> stray_fds = Frame(FrameType::kMessage, Bytes("no fds expected"));
  std::vector<uint8_t> bad_table = Frame(FrameType::kMessageWithFds, Bytes("\x00"));
  std::vector<Case> cases = {
      {"oversize header", oversize, 0},     {"unknown type", unknown_type, 0},
      {"late hello", late_hello, 0},        {"truncated frame", truncated, 0},
      {"too few descriptors", too_few_fds, 1}, {"stray descriptors", stray_fds, 2},
      {"bad descriptor table", bad_table, 1},
  };
  // A healthy connection lives beside the hostile ones the whole time.
  ASSERT_OK_AND_ASSIGN(auto healthy, MakePair());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_OK_AND_ASSIGN(auto raw, RawClientAndServer());
    std::vector<ScopedFd> owned;
    std::vector<int> fds;
    for (size_t i = 0; i < c.fds; ++i) {
      ASSERT_OK_AND_ASSIGN(ScopedFd fd, CreateMemfd(16));
      fds.push_back(fd.get());
      owned.push_back(std::move(fd));
    }
    ASSERT_OK(raw.first.SendAll(c.bytes, fds, 1000));
    ASSERT_OK(raw.first.ShutdownWrite());
    IncomingFrame in;
    Status s = raw.second.Receive(&in, seconds(5));
    EXPECT_THAT(s, IsError(ErrorKind::kProtocolError)) << s.ToString();
    // Sticky: the connection stays failed.
    EXPECT_THAT(raw.second.Receive(&in, seconds(5)), IsError(ErrorKind::kProtocolError));
    ASSERT_OK(healthy.client.Send(FrameType::kMessage, 1, Bytes(c.name)));
    ASSERT_OK(healthy.server.Receive(&in, seconds(5)));
    EXPECT_EQ(Text(in.payload()), c.name);
  }
}

TEST_F(HostilePeerTest, DescriptorFloodIsRefusedAndClosed) {
  ASSERT_OK_AND_ASSIGN(auto raw, RawClientAndServer());
  ASSERT_OK_AND_ASSIGN(ScopedFd memfd, CreateMemfd(16));
  std::vector<int> fds(250, memfd.get());
  // 250 descriptors on one byte: the receiver takes at most 16 per message (MSG_CTRUNC).
  std::vector<uint8_t> frame = Frame(FrameType::kMessageWithFds, FdPayload(64, ""));
  ASSERT_OK(raw.first.SendAll(std::span(frame).first(1), fds, 1000));
  IncomingFrame in;
  EXPECT_THAT(raw.second.Receive(&in, seconds(5)), IsError(ErrorKind::kProtocolError));
}

}  // namespace
}  // namespace shapex::ipc
