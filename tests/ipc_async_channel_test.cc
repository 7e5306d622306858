#include "shapex/ipc/async_channel.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "shapex/engine/blob.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/frame.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/protocol.h"
#include "testing/status_matchers.h"

namespace shapex::ipc {
namespace {

using ::shapex_testing::IsError;
using ::testing::HasSubstr;
using Role = AsyncChannel::Role;

// Both ends as AsyncChannels on a socket pair.
struct ChannelPair {
  AsyncChannel client, server;
};

ChannelPair MakePair(const AsyncChannelLimits& server_limits = {}) {
  auto sockets = UnixSocket::Pair();
  EXPECT_TRUE(sockets.has_value());
  ChannelPair p;
  auto server = AsyncChannel::Start(std::move(sockets->second), Role::kServer, server_limits);
  auto client = AsyncChannel::Start(std::move(sockets->first), Role::kClient);
  EXPECT_TRUE(server.has_value() && client.has_value());
  p.server = std::move(*server);
  p.client = std::move(*client);
  return p;
}

// Reads everything `ch` has now; the messages it delivered.
std::vector<ControlMessage> Pump(AsyncChannel& ch, Status* status = nullptr,
                                 size_t max_messages = 1000) {
  std::vector<ControlMessage> got;
  Status s = ch.OnReadable(max_messages, [&](ControlMessage& m, std::vector<ScopedFd>&) {
    got.push_back(m);
  });
  if (status != nullptr) *status = s;
  return got;
}

// A client's Hello frame, as a blocking client would send it (socket transport).
std::vector<uint8_t> HelloFrame() {
  Handshake h;
  h.protocol_version = kWireProtocolVersion;
  h.vm_version = engine::kVmVersion;
  h.max_frame_payload = kDefaultMaxFramePayload;
  std::vector<uint8_t> payload = EncodeHandshake(h);
  auto header = EncodeFrameHeader(
      {static_cast<uint32_t>(payload.size()), static_cast<uint8_t>(FrameType::kHello), 0});
  std::vector<uint8_t> frame(header.begin(), header.end());
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

// A blocking Connection::Connect with `options` against a server-side AsyncChannel that this
// test serves from another thread meanwhile; the server's status and the client's result.
std::pair<Status, Result<Connection>> ConnectBlocking(const ConnectionOptions& options) {
  auto sockets = UnixSocket::Pair();
  EXPECT_TRUE(sockets.has_value());
  auto server = AsyncChannel::Start(std::move(sockets->second), Role::kServer);
  EXPECT_TRUE(server.has_value());
  Status server_status;
  std::thread serve([&] {
    for (int i = 0; i < 200 && server_status.ok(); ++i) {
      pollfd pfd{server->fd(), POLLIN, 0};
      ::poll(&pfd, 1, 10);
      Pump(*server, &server_status);
    }
  });
  Result<Connection> client = Connection::Connect(std::move(sockets->first), options);
  serve.join();
  return {server_status, std::move(client)};
}

TEST(AsyncChannelTest, HandshakeThenMessagesBothWaysInOrder) {
  ChannelPair p = MakePair();
  EXPECT_FALSE(p.server.handshake_done());
  // The client may queue requests before the Welcome; they follow its Hello.
  ASSERT_OK(p.client.Send(ControlMessage("status")));
  ASSERT_OK(p.client.Send(ControlMessage("stop")));
  std::vector<ControlMessage> got = Pump(p.server);
  EXPECT_TRUE(p.server.handshake_done());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].op, "status");
  EXPECT_EQ(got[1].op, "stop");
  ControlMessage reply("status");
  reply.Set("json", std::string("{}"));
  ASSERT_OK(p.server.Send(reply));
  got = Pump(p.client);
  EXPECT_TRUE(p.client.handshake_done());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].Text("json"), "{}");
}

TEST(AsyncChannelTest, TalksToABlockingConnection) {
  auto sockets = UnixSocket::Pair();
  ASSERT_TRUE(sockets.has_value());
  ASSERT_OK_AND_ASSIGN(AsyncChannel server,
                       AsyncChannel::Start(std::move(sockets->second), Role::kServer));
  // A blocking client's handshake needs the server to answer meanwhile: do its half by hand.
  ASSERT_OK(sockets->first.SendAll(HelloFrame()));
  Pump(server);
  EXPECT_TRUE(server.handshake_done());
  uint8_t welcome[kFrameHeaderSize];
  ASSERT_EQ(::recv(sockets->first.fd(), welcome, sizeof welcome, MSG_PEEK), kFrameHeaderSize);
  EXPECT_EQ(welcome[4], static_cast<uint8_t>(FrameType::kWelcome));
}

TEST(AsyncChannelTest, DescriptorsTravelWithTheirMessage) {
  ChannelPair p = MakePair();
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  ScopedFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  std::vector<ScopedFd> fds;
  fds.push_back(std::move(write_end));
  ASSERT_OK(p.client.Send(ControlMessage("spawned"), std::move(fds)));
  std::vector<ScopedFd> received;
  Status s = p.server.OnReadable(10, [&](ControlMessage& m, std::vector<ScopedFd>& f) {
    EXPECT_EQ(m.op, "spawned");
    for (ScopedFd& fd : f) received.push_back(std::move(fd));
  });
  ASSERT_OK(s);
  ASSERT_EQ(received.size(), 1u);
  ASSERT_EQ(::write(received[0].get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(read_end.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(AsyncChannelTest, AtMostMaxMessagesPerCallTheRestStaysBuffered) {
  ChannelPair p = MakePair();
  for (int i = 0; i < 10; ++i) ASSERT_OK(p.client.Send(ControlMessage("status")));
  EXPECT_EQ(Pump(p.server, nullptr, 4).size(), 4u);
  EXPECT_TRUE(p.server.has_buffered_bytes());
  EXPECT_EQ(Pump(p.server, nullptr, 4).size(), 4u);
  EXPECT_EQ(Pump(p.server, nullptr, 4).size(), 2u);
  EXPECT_FALSE(p.server.has_buffered_bytes());
}

TEST(AsyncChannelTest, UnreadRepliesAreBoundedAndReported) {
  AsyncChannelLimits limits;
  limits.max_output_bytes = 64 << 10;
  ChannelPair p = MakePair(limits);
  Pump(p.server);
  ControlMessage big("status");
  big.Set("json", std::string(16 << 10, 'x'));
  Status s;
  int sent = 0;
  // The client never reads: the socket buffer fills, then our bounded output buffer.
  while ((s = p.server.Send(big)).ok()) ++sent;
  EXPECT_THAT(s, IsError(ErrorKind::kResourceExhausted));
  EXPECT_GT(sent, 0);
  EXPECT_TRUE(p.server.wants_write());
  EXPECT_GT(p.server.output_bytes(), limits.max_output_bytes);
  EXPECT_TRUE(p.server.output_pending_since().has_value());
  // Once the client reads, everything arrives, in order.
  size_t received = 0;
  for (int round = 0; round < 1000 && (p.server.wants_write() || received < sent + 1u); ++round) {
    ASSERT_OK(p.server.Flush());
    received += Pump(p.client).size();
  }
  EXPECT_EQ(received, static_cast<size_t>(sent) + 1);
  EXPECT_FALSE(p.server.output_pending_since().has_value());
}

TEST(AsyncChannelTest, AnOversizeFrameIsAProtocolErrorBeforeItArrives) {
  AsyncChannelLimits limits;
  limits.max_frame_payload = 1 << 10;
  ChannelPair p = MakePair(limits);
  Pump(p.server);
  ControlMessage huge("lease");
  huge.hashes.resize(1000);  // ~35 KB
  ASSERT_OK(p.client.Send(huge));
  Status s;
  Pump(p.server, &s);
  EXPECT_THAT(s, IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(p.server.error(), IsError(ErrorKind::kProtocolError));  // sticky
}

TEST(AsyncChannelTest, AVersionMismatchIsRejectedWithTheReason) {
  ConnectionOptions old;
  old.transport = Transport::kSocket;
  old.protocol_version = kWireProtocolVersion + 1;
  old.handshake_timeout = std::chrono::milliseconds(2000);
  auto [server_status, client] = ConnectBlocking(old);
  EXPECT_THAT(server_status, IsError(ErrorKind::kProtocolError));
  ASSERT_FALSE(client.has_value());
  EXPECT_THAT(client.error().message(), HasSubstr("version mismatch"));
}

TEST(AsyncChannelTest, ARingOfferIsRefusedOnAControlConnection) {
  ConnectionOptions ring;  // the default offers a call ring
  ring.handshake_timeout = std::chrono::milliseconds(2000);
  auto [server_status, client] = ConnectBlocking(ring);
  EXPECT_THAT(server_status, IsError(ErrorKind::kProtocolError));
  EXPECT_FALSE(client.has_value());
}

TEST(AsyncChannelTest, APeerThatLeavesIsAnIoErrorAndMidFrameAProtocolError) {
  ChannelPair p = MakePair();
  Pump(p.server);
  p.client.Close();
  Status s;
  Pump(p.server, &s);
  EXPECT_THAT(s, IsError(ErrorKind::kIoError));

  auto sockets = UnixSocket::Pair();
  ASSERT_TRUE(sockets.has_value());
  ASSERT_OK_AND_ASSIGN(AsyncChannel server,
                       AsyncChannel::Start(std::move(sockets->second), Role::kServer));
  const uint8_t half_hello[7] = {24, 0, 0, 0, 1, 0, 0};
  ASSERT_OK(sockets->first.SendAll(half_hello));
  Pump(server, &s);
  EXPECT_OK(s);  // half a frame: nothing yet, no waiting either
  EXPECT_FALSE(server.handshake_done());
  sockets->first.Close();
  Pump(server, &s);
  EXPECT_THAT(s, IsError(ErrorKind::kProtocolError));
}

TEST(AsyncChannelTest, ADescriptorNoFrameAnnouncedIsAProtocolError) {
  // Bytes of a plain Message frame, with a descriptor attached by hand.
  std::vector<uint8_t> frame = EncodeControlFrame(ControlMessage("status"), 0);
  int stray = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(stray, 0);
  auto sockets = UnixSocket::Pair();
  ASSERT_TRUE(sockets.has_value());
  ASSERT_OK_AND_ASSIGN(AsyncChannel server,
                       AsyncChannel::Start(std::move(sockets->second), Role::kServer));
  ASSERT_OK(sockets->first.SendAll(HelloFrame()));
  ASSERT_OK(sockets->first.SendAll(frame, std::span<const int>(&stray, 1)));
  ::close(stray);
  Status s;
  Pump(server, &s);
  EXPECT_THAT(s, IsError(ErrorKind::kProtocolError));
}

}  // namespace
}  // namespace shapex::ipc
