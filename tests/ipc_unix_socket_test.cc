#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "shapex/ipc/unix_socket.h"
#include "testing/open_fds.h"
#include "testing/status_matchers.h"

namespace shapex::ipc {
namespace {

using ::shapex_testing::CountOpenFds;
using ::shapex_testing::IsError;

bool IsCloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }
bool IsNonBlocking(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class UnixSocketTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = CountOpenFds(); }
  void TearDown() override { EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak"; }

  // Receives exactly `size` bytes (waiting as needed), collecting descriptors.
  static std::string RecvExactly(UnixSocket& socket, size_t size, std::vector<ScopedFd>* fds) {
    std::string out;
    std::vector<uint8_t> buf(size);
    while (out.size() < size) {
      auto r = socket.RecvMsg(std::span(buf).first(size - out.size()), fds);
      EXPECT_OK(r);
      if (!r.has_value() || r->state == IoResult::State::kPeerClosed) break;
      if (r->state == IoResult::State::kWouldBlock) {
        EXPECT_OK(socket.WaitReadable(5000));
        continue;
      }
      out.append(reinterpret_cast<char*>(buf.data()), r->bytes);
    }
    return out;
  }

  // Sends `count` duplicates of stdin's /dev/null with a raw sendmsg (bypassing any cap).
  static void RawSendFds(int socket_fd, int count) {
    std::vector<int> dups;
    for (int i = 0; i < count; ++i) dups.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
    std::vector<char> control(CMSG_SPACE(count * sizeof(int)));
    char byte = 'x';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(count * sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), dups.data(), count * sizeof(int));
    EXPECT_EQ(sendmsg(socket_fd, &msg, MSG_NOSIGNAL), 1);
    for (int fd : dups) close(fd);
  }

  std::string TempSocketPath() {
    char dir_template[] = "/tmp/shapex_sock_XXXXXX";
    char* dir = mkdtemp(dir_template);
    EXPECT_NE(dir, nullptr);
    dir_ = dir;
    return dir_ + "/s";
  }
  void RemoveTemp() {
    if (dir_.empty()) return;
    unlink((dir_ + "/s").c_str());
    rmdir(dir_.c_str());
  }

  size_t fds_before_ = 0;
  std::string dir_;
};

TEST_F(UnixSocketTest, PairIsNonBlockingCloexecAndCarriesOwnCredentials) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  auto& [a, b] = *pair;
  for (UnixSocket* s : {&a, &b}) {
    EXPECT_TRUE(IsCloexec(s->fd()));
    EXPECT_TRUE(IsNonBlocking(s->fd()));
    EXPECT_EQ(s->peer_credentials().pid, getpid());
    EXPECT_EQ(s->peer_credentials().uid, getuid());
    EXPECT_EQ(s->peer_credentials().gid, getgid());
  }
}

TEST_F(UnixSocketTest, SendAndReceiveBytes) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  auto& [a, b] = *pair;
  std::vector<uint8_t> buf(64);
  auto empty = b.RecvMsg(buf, nullptr);
  ASSERT_OK(empty);
  EXPECT_EQ(empty->state, IoResult::State::kWouldBlock);

  ASSERT_OK(a.SendAll(AsBytes("hello world")));
  EXPECT_EQ(RecvExactly(b, 11, nullptr), "hello world");
  EXPECT_THAT(a.SendMsg({}), IsError(ErrorKind::kInvalidArgument));
}

TEST_F(UnixSocketTest, PeerCloseIsReportedNotSignalled) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  auto& [a, b] = *pair;
  b.Close();
  // MSG_NOSIGNAL: no SIGPIPE kills the test, the state says what happened.
  auto sent = a.SendMsg(AsBytes("x"));
  ASSERT_OK(sent);
  EXPECT_EQ(sent->state, IoResult::State::kPeerClosed);
  EXPECT_THAT(a.SendAll(AsBytes("x")), IsError(ErrorKind::kIoError));

  auto pair2 = UnixSocket::Pair();
  ASSERT_OK(pair2);
  ASSERT_OK(pair2->first.ShutdownWrite());
  std::vector<uint8_t> buf(8);
  auto got = pair2->second.RecvMsg(buf, nullptr);
  ASSERT_OK(got);
  EXPECT_EQ(got->state, IoResult::State::kPeerClosed);
}

TEST_F(UnixSocketTest, FullSocketBufferWouldBlockThenDrains) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  auto& [a, b] = *pair;
  std::vector<uint8_t> chunk(64 * 1024, 5);
  size_t sent = 0;
  for (;;) {
    auto r = a.SendMsg(chunk);
    ASSERT_OK(r);
    if (r->state == IoResult::State::kWouldBlock) break;
    sent += r->bytes;
  }
  EXPECT_GT(sent, 0u);
  auto writable = a.WaitWritable(0);
  ASSERT_OK(writable);
  EXPECT_FALSE(*writable);
  // A reader thread drains while SendAll pushes 4 MiB through partial writes.
  std::vector<uint8_t> big(4 << 20, 7);
  size_t total = sent + big.size();
  std::thread reader([&] { EXPECT_EQ(RecvExactly(b, total, nullptr).size(), total); });
  EXPECT_OK(a.SendAll(big, {}, 10000));
  reader.join();
}

TEST_F(UnixSocketTest, PassesDescriptorsThatWork) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  auto& [a, b] = *pair;
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  ScopedFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  int to_send[] = {read_end.get(), write_end.get()};
  auto sent = a.SendMsg(AsBytes("fd"), to_send);
  ASSERT_OK(sent);
  ASSERT_EQ(sent->bytes, 2u);

  std::vector<ScopedFd> received;
  EXPECT_EQ(RecvExactly(b, 2, &received), "fd");
  ASSERT_EQ(received.size(), 2u);
  for (const ScopedFd& fd : received) EXPECT_TRUE(IsCloexec(fd.get()));  // MSG_CMSG_CLOEXEC
  ASSERT_EQ(write(received[1].get(), "z", 1), 1);
  char c = 0;
  ASSERT_EQ(read(read_end.get(), &c, 1), 1);
  EXPECT_EQ(c, 'z');
}

TEST_F(UnixSocketTest, FdFloodIsProtocolErrorAndEveryFdIsClosed) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  auto& [a, b] = *pair;
  size_t baseline = CountOpenFds();
  RawSendFds(a.fd(), 250);
  EXPECT_EQ(CountOpenFds(), baseline);  // the sender closed its copies; the kernel holds them
  std::vector<ScopedFd> received;
  std::vector<uint8_t> buf(16);
  EXPECT_THAT(b.RecvMsg(buf, &received), IsError(ErrorKind::kProtocolError));
  EXPECT_TRUE(received.empty());
  EXPECT_EQ(CountOpenFds(), baseline);
}

TEST_F(UnixSocketTest, ExactlyTheCapIsAccepted) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  RawSendFds(pair->first.fd(), 4);
  std::vector<ScopedFd> received;
  std::vector<uint8_t> buf(16);
  EXPECT_OK(pair->second.RecvMsg(buf, &received, /*max_fds=*/4));
  EXPECT_EQ(received.size(), 4u);
  RawSendFds(pair->first.fd(), 5);
  EXPECT_THAT(pair->second.RecvMsg(buf, &received, /*max_fds=*/4),
              IsError(ErrorKind::kProtocolError));
  EXPECT_EQ(received.size(), 4u);  // the rejected message added nothing
}

TEST_F(UnixSocketTest, DescriptorsOnAConnectionThatRefusesThemAreClosed) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  size_t baseline = CountOpenFds();
  RawSendFds(pair->first.fd(), 3);
  std::vector<uint8_t> buf(16);
  EXPECT_THAT(pair->second.RecvMsg(buf, nullptr), IsError(ErrorKind::kProtocolError));
  EXPECT_EQ(CountOpenFds(), baseline);
}

TEST_F(UnixSocketTest, ControlTruncationIsProtocolErrorWithoutLeaks) {
  // With RLIMIT_NOFILE nearly exhausted the kernel installs only some of the descriptors and
  // sets MSG_CTRUNC: the ones that did arrive must be closed.
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  size_t baseline = CountOpenFds();
  RawSendFds(pair->first.fd(), 8);
  rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  int highest = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (fcntl(fd, F_GETFD) != -1) highest = fd;
  }
  highest += 2;  // make sure there is room for at least two fillers
  rlimit tight = old_limit;
  tight.rlim_cur = highest + 1;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  // Fill every free slot below the limit, then free exactly two.
  std::vector<ScopedFd> fillers;
  for (;;) {
    ScopedFd fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!fd) break;
    fillers.push_back(std::move(fd));
  }
  ASSERT_GE(fillers.size(), 2u);
  fillers.pop_back();
  fillers.pop_back();
  std::vector<ScopedFd> received;
  std::vector<uint8_t> buf(16);
  auto result = pair->second.RecvMsg(buf, &received);
  fillers.clear();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
  EXPECT_THAT(result, IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(result.error().message(), ::testing::HasSubstr("MSG_CTRUNC"));
  EXPECT_TRUE(received.empty());
  EXPECT_EQ(CountOpenFds(), baseline);
}

TEST_F(UnixSocketTest, TooManyFdsToSendIsInvalidArgument) {
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  std::vector<int> fds(UnixSocket::kMaxFdsPerSend + 1, 0);
  EXPECT_THAT(pair->first.SendMsg(AsBytes("x"), fds), IsError(ErrorKind::kInvalidArgument));
}

TEST_F(UnixSocketTest, ListenConnectAcceptReadsPeerCredentialsOfTheChild) {
  std::string path = TempSocketPath();
  {
    auto listener = UnixListener::Listen(path);
    ASSERT_OK(listener);
    EXPECT_TRUE(IsCloexec(listener->fd()));
    auto none = listener->Accept();
    ASSERT_OK(none);
    EXPECT_FALSE(none->has_value());

    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto conn = UnixSocket::Connect(path);
      if (!conn.has_value()) _exit(1);
      if (conn->peer_credentials().pid != getppid()) _exit(2);
      if (!conn->SendAll(AsBytes("hi")).ok()) _exit(3);
      _exit(0);
    }
    auto pending = listener->WaitPending(5000);
    ASSERT_OK(pending);
    ASSERT_TRUE(*pending);
    auto accepted = listener->Accept();
    ASSERT_OK(accepted);
    ASSERT_TRUE(accepted->has_value());
    UnixSocket& conn = **accepted;
    EXPECT_TRUE(IsCloexec(conn.fd()));
    EXPECT_TRUE(IsNonBlocking(conn.fd()));
    EXPECT_EQ(conn.peer_credentials().pid, child);
    EXPECT_EQ(conn.peer_credentials().uid, getuid());
    EXPECT_EQ(RecvExactly(conn, 2, nullptr), "hi");
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    // A second listener on the same path fails (the path exists).
    EXPECT_THAT(UnixListener::Listen(path), IsError(ErrorKind::kIoError));
  }
  RemoveTemp();
}

TEST_F(UnixSocketTest, AbstractNamespaceAndManyConnections) {
  std::string name = "@shapex-test-" + std::to_string(getpid());
  auto listener = UnixListener::Listen(name);
  ASSERT_OK(listener);
  std::vector<UnixSocket> clients;
  for (int i = 0; i < 50; ++i) {
    auto c = UnixSocket::Connect(name);
    ASSERT_OK(c);
    clients.push_back(std::move(*c));
  }
  std::vector<UnixSocket> servers;
  for (int i = 0; i < 50; ++i) {
    auto s = listener->Accept();
    ASSERT_OK(s);
    ASSERT_TRUE(s->has_value());
    servers.push_back(std::move(**s));
  }
  for (int i = 0; i < 50; ++i) {
    std::string msg = "m" + std::to_string(i);
    ASSERT_OK(clients[i].SendAll(AsBytes(msg)));
    EXPECT_EQ(RecvExactly(servers[i], msg.size(), nullptr), msg);
  }
  // A misbehaving peer on one connection does not disturb the others.
  RawSendFds(clients[0].fd(), 100);
  std::vector<uint8_t> buf(8);
  std::vector<ScopedFd> fds;
  EXPECT_THAT(servers[0].RecvMsg(buf, &fds), IsError(ErrorKind::kProtocolError));
  ASSERT_OK(clients[1].SendAll(AsBytes("ok")));
  EXPECT_EQ(RecvExactly(servers[1], 2, nullptr), "ok");
}

TEST_F(UnixSocketTest, AddressErrors) {
  EXPECT_THAT(UnixSocket::Connect(std::string(200, 'a')), IsError(ErrorKind::kInvalidArgument));
  EXPECT_THAT(UnixSocket::Connect(""), IsError(ErrorKind::kInvalidArgument));
  EXPECT_THAT(UnixSocket::Connect("/nonexistent/shapex.sock"), IsError(ErrorKind::kIoError));
}

TEST_F(UnixSocketTest, AdoptTakesAStreamSocketAndRefusesOthers) {
  int raw[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, raw), 0);
  ScopedFd other(raw[1]);
  auto adopted = UnixSocket::Adopt(ScopedFd(raw[0]));
  ASSERT_OK(adopted);
  EXPECT_TRUE(IsCloexec(adopted->fd()));
  EXPECT_TRUE(IsNonBlocking(adopted->fd()));

  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, raw), 0);
  ScopedFd dgram_other(raw[1]);
  EXPECT_THAT(UnixSocket::Adopt(ScopedFd(raw[0])), IsError(ErrorKind::kInvalidArgument));
}

}  // namespace
}  // namespace shapex::ipc
