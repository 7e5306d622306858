// `shapex serve` under systemd (issue 11, "systemd"), without systemd: the test plays the service
// manager. It binds and listens on the socket, passes it as descriptor 3 with LISTEN_FDS=1 and
// LISTEN_PID=<the server's pid> (sd_listen_fds(3)), and binds a datagram socket named by
// NOTIFY_SOCKET (a path, or '@' + an abstract name; sd_notify(3)). The server must announce
// "READY=1" once it serves, serve on the socket it was given (same inode, so it did not bind its
// own), send "STOPPING=1" and exit 0 on SIGTERM, and leave the socket path alone: under socket
// activation the path belongs to the service manager.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "testing/processes.h"
#include "testing/status_matchers.h"
#include "testing/wire_test_util.h"

#ifndef SHAPEX_BIN
#error "SHAPEX_BIN must name the shapex binary"
#endif

namespace shapex::sandbox {
namespace {

using ipc::WireValue;
using ipc::testing::WireTestProgram;
using ::testing::Contains;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The lines of the datagrams received so far (a datagram may carry several, "READY=1\nMAINPID=").
using NotifyLines = std::vector<std::string>;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// An AF_UNIX address for `name`: a path, or '@' + an abstract name.
socklen_t UnixAddress(const std::string& name, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, name.data(), name.size());
  if (name[0] == '@') addr->sun_path[0] = '\0';
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                (name[0] == '@' ? 0 : 1));
}

class SocketActivationTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shapex-activation-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    ASSERT_EQ(mkdir((dir_ + "/run").c_str(), 0700), 0);
    socket_ = dir_ + "/run/sock";
    notify_name_ = GetParam() ? "@shapex-activation-test-" + std::to_string(getpid()) + "-" +
                                    std::filesystem::path(dir_).filename().string()
                              : dir_ + "/notify";

    sockaddr_un addr;
    notify_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(notify_, 0);
    ASSERT_EQ(bind(notify_, reinterpret_cast<sockaddr*>(&addr), UnixAddress(notify_name_, &addr)),
              0)
        << std::strerror(errno);

    // What the service manager does for a ListenStream= socket (a blocking socket, as systemd
    // passes it unless NonBlocking=yes).
    listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener_, 0);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), UnixAddress(socket_, &addr)), 0)
        << std::strerror(errno);
    ASSERT_EQ(listen(listener_, SOMAXCONN), 0);
    struct stat st;
    ASSERT_EQ(stat(socket_.c_str(), &st), 0);
    socket_inode_ = st.st_ino;
  }

  void TearDown() override {
    if (server_ > 0) {
      kill(server_, SIGKILL);
      waitpid(server_, nullptr, 0);
    }
    shapex_testing::KillProcessesWhoseCmdlineContains(socket_);
    if (notify_ >= 0) close(notify_);
    if (listener_ >= 0) close(listener_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts `shapex serve` the way systemd starts a socket-activated Type=notify service.
  void StartServer() {
    std::string store = dir_ + "/store";
    std::string log = dir_ + "/serve.log";
    std::string state = "XDG_STATE_HOME=" + dir_ + "/state";
    std::string notify = "NOTIFY_SOCKET=" + notify_name_;
    server_ = fork();
    ASSERT_GE(server_, 0);
    if (server_ == 0) {
      int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(126);
      // Descriptor 3 is the listening socket, not close-on-exec (dup2 clears the flag; if it
      // already is 3, clear it by hand).
      if (listener_ == 3) {
        if (fcntl(3, F_SETFD, 0) != 0) _exit(126);
      } else if (dup2(listener_, 3) != 3) {
        _exit(126);
      }
      char pid[32];
      std::snprintf(pid, sizeof(pid), "%d", static_cast<int>(getpid()));
      setenv("LISTEN_PID", pid, 1);
      setenv("LISTEN_FDS", "1", 1);
      unsetenv("LISTEN_FDNAMES");
      putenv(const_cast<char*>(notify.c_str()));
      putenv(const_cast<char*>(state.c_str()));
      unsetenv("SHAPEX_SOCKET");
      unsetenv("SHAPEX_IDLE_EXIT");
      execl(SHAPEX_BIN, SHAPEX_BIN, "serve", "--socket", socket_.c_str(), "--store", store.c_str(),
            "--pool", "1", static_cast<char*>(nullptr));
      _exit(127);
    }
  }

  // Reads datagrams into lines_ until one of them is `line`, the server exits, or `timeout`.
  bool WaitForNotify(const std::string& line, milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      for (const std::string& l : lines_) {
        if (l == line) return true;
      }
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{notify_, POLLIN, 0};
      int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 50)));
      if (ready > 0) {
        char buffer[4096];
        ssize_t n = recv(notify_, buffer, sizeof(buffer), 0);
        if (n > 0) {
          std::string datagram(buffer, static_cast<size_t>(n));
          datagrams_.push_back(datagram);
          size_t pos = 0;
          for (size_t nl; (nl = datagram.find('\n', pos)) != std::string::npos; pos = nl + 1) {
            lines_.push_back(datagram.substr(pos, nl - pos));
          }
          if (pos < datagram.size()) lines_.push_back(datagram.substr(pos));
        }
        continue;
      }
      if (server_exited_) continue;  // still drain what it sent before exiting
      int status = 0;
      if (waitpid(server_, &status, WNOHANG) == server_) {
        server_status_ = status;
        server_exited_ = true;
        server_ = -1;
        deadline = std::min(deadline, Clock::now() + milliseconds(200));
      }
    }
  }

  std::string Datagrams() const {
    std::string all;
    for (const std::string& d : datagrams_) all += "[" + d + "] ";
    return all;
  }

  std::string ServerLog() const { return ReadAll(dir_ + "/serve.log"); }

  std::string dir_, socket_, notify_name_;
  int notify_ = -1, listener_ = -1;
  ino_t socket_inode_ = 0;
  pid_t server_ = -1;
  bool server_exited_ = false;
  int server_status_ = 0;
  std::vector<std::string> datagrams_;
  NotifyLines lines_;
};

// Waits up to `timeout` for the server to exit (reaping it); false if it still runs.
bool WaitForExit(pid_t pid, milliseconds timeout, int* status) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (waitpid(pid, status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

TEST_P(SocketActivationTest, ServesThePassedSocketAnnouncesReadyAndStoppingAndKeepsThePath) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const pid_t server = server_;
  ASSERT_TRUE(WaitForNotify("READY=1", std::chrono::seconds(10)))
      << "no READY=1 within 10 s; datagrams: " << Datagrams()
      << (server_exited_ ? " (the server exited, status " + std::to_string(server_status_) + ")"
                         : std::string())
      << "\nserver log:\n"
      << ServerLog();
  ASSERT_FALSE(server_exited_) << "the server exited after READY=1\n" << ServerLog();

  {
    // It serves now (no retry), on the very socket we passed.
    ClientOptions options;
    options.socket_path = socket_;
    options.start_supervisor = false;
    ASSERT_OK_AND_ASSIGN(Client client, Client::Connect(options));
    ASSERT_OK_AND_ASSIGN(std::string json, client.StatusJson());
    EXPECT_EQ(shapex_testing::SupervisorPidFromStatus(json), server)
        << "the process the service manager started must be the supervisor: " << json;
    struct stat st;
    ASSERT_EQ(stat(socket_.c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, socket_inode_) << "the server bound a socket of its own";
    WireTestProgram program("function add(a: int, b: int) -> int { a + b }");
    // Non-fatal: the stop below is checked either way.
    Result<WireValue> sum = client.Call(program.program(), program.blobs(), "add",
                                        {WireValue::Int(10), WireValue::Int(32)});
    EXPECT_TRUE(sum.has_value() && *sum == WireValue::Int(42))
        << (sum.has_value() ? ipc::DescribeWire(*sum) : sum.error().ToString());
  }

  // systemctl stop: SIGTERM to the main process.
  ASSERT_EQ(kill(server, SIGTERM), 0);
  EXPECT_TRUE(WaitForNotify("STOPPING=1", std::chrono::seconds(10)))
      << "no STOPPING=1; datagrams: " << Datagrams() << "\nserver log:\n"
      << ServerLog();
  int status = server_status_;
  if (!server_exited_) {
    ASSERT_TRUE(WaitForExit(server, std::chrono::seconds(10), &status))
        << "the server still runs 10 s after SIGTERM\n"
        << ServerLog();
    server_ = -1;
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n"
                                                             << ServerLog();
  EXPECT_THAT(lines_, Contains("READY=1"));

  // The path is the service manager's: still there, still our socket, still accepting (systemd
  // would start the service again on the next connection).
  struct stat st;
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0) << "the server unlinked the activated socket";
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_ino, socket_inode_);
}

INSTANTIATE_TEST_SUITE_P(NotifySocket, SocketActivationTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Abstract" : "Path";
                         });

}  // namespace
}  // namespace shapex::sandbox
