#include "zygote.h"

#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <unordered_set>
#include <vector>

#include "shapex/core/errno_status.h"
#include "shapex/core/log.h"
#include "shapex/engine/blob.h"
#include "shapex/ipc/control.h"

namespace shapex::sandbox {
namespace {

using ipc::ControlMessage;
using std::chrono::nanoseconds;

constexpr nanoseconds kForever = std::chrono::hours(24 * 365);

ServeClientFn serve_client_for_testing = nullptr;

// Spawns one executor, in `cgroup` if given; replies "spawned" or "error" on `channel`.
void Spawn(ipc::Connection& channel, const ZygoteOptions& options, const SeccompProgram& seccomp,
           int64_t token, ScopedFd cgroup, std::map<pid_t, JailedProcess>* children) {
  auto start = std::chrono::steady_clock::now();
  auto fail = [&](const Status& status) {
    ControlMessage error = ipc::ControlError(status);
    error.Set("token", token);
    (void)ipc::SendControl(channel, error);
  };
  Result<std::pair<ipc::UnixSocket, ipc::UnixSocket>> pair = ipc::UnixSocket::Pair();
  if (!pair.has_value()) return fail(pair.error());
  JailOptions jail;
  jail.mode = options.mode;
  jail.limits = options.limits;
  jail.keep_fds = {pair->second.fd()};
  jail.cgroup_fd = cgroup.get();
  ipc::UnixSocket& executor_end = pair->second;
  const ExecutorOptions& executor_options = options.executor;
  auto body = [&]() { return ExecutorProcessMain(std::move(executor_end), executor_options); };
  Result<JailedProcess> child = SpawnJailed(jail, seccomp, body);
  // Fail-safe: a kernel that refuses the cgroup gets the executor without it, and the
  // supervisor learns why (it then turns cgroup limits off).
  std::string cgroup_error;
  if (!child.has_value() && cgroup) {
    cgroup_error = child.error().message();
    jail.cgroup_fd = -1;
    child = SpawnJailed(jail, seccomp, body);
  }
  cgroup.reset();
  if (!child.has_value()) return fail(child.error());
  pair->second.Close();
  auto spawn_ns = std::chrono::duration_cast<nanoseconds>(std::chrono::steady_clock::now() - start);
  ControlMessage spawned("spawned");
  spawned.Set("token", token);
  spawned.Set("pid", child->pid());
  spawned.Set("spawn_ns", spawn_ns.count());
  spawned.Set("clone_ns", child->timings().steps[static_cast<size_t>(JailStep::kNamespaces)].count());
  spawned.Set("jail_ns", child->timings().total.count());
  if (!cgroup_error.empty()) spawned.Set("cgroup_error", cgroup_error);
  int fds[2] = {pair->first.fd(), child->pidfd()};
  Status sent = ipc::SendControl(channel, spawned, fds);
  if (!sent.ok()) return;  // the supervisor is gone; the child dies with us
  pid_t pid = child->pid();
  children->emplace(pid, std::move(*child));
}

int ZygoteMain(ipc::UnixSocket socket, const ZygoteOptions& options) {
  // Executors are our children; we reap them. Nothing else runs here.
  Result<ipc::Connection> channel = ipc::Connection::Accept(std::move(socket), ipc::ControlConnectionOptions());
  if (!channel.has_value()) return 1;
  Result<SeccompProgram> seccomp = SeccompProgram::BuildExecutorPolicy();
  if (!seccomp.has_value()) {
    (void)ipc::SendControl(*channel, ipc::ControlError(seccomp.error()));
    return 1;
  }
  std::map<pid_t, JailedProcess> children;
  for (;;) {
    // Drained before every wait, not only when poll says so: requests that came with the
    // handshake's bytes are already buffered, and poll would not report them.
    for (;;) {
      std::vector<ScopedFd> received;
      Result<ControlMessage> m = ipc::ReceiveControl(*channel, &received, nanoseconds(0));
      if (!m.has_value()) {
        if (m.error().kind() == ErrorKind::kTimeout) break;
        return 0;  // the supervisor closed the channel: children die with us
      }
      if (m->op == "spawn") {
        ScopedFd cgroup = received.size() == 1 ? std::move(received[0]) : ScopedFd();
        Spawn(*channel, options, *seccomp, m->Int("token"), std::move(cgroup), &children);
      }
    }
    std::vector<pollfd> fds;
    fds.push_back({channel->socket_fd(), POLLIN, 0});
    std::vector<pid_t> pids;
    for (auto& [pid, child] : children) {
      fds.push_back({child.pidfd(), POLLIN, 0});
      pids.push_back(pid);
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      auto it = children.find(pids[i - 1]);
      Result<ExitInfo> exit = it->second.Wait();
      ControlMessage exited("exited");
      exited.Set("pid", pids[i - 1]);
      if (exit.has_value()) {
        exited.Set("exit_code", exit->exited ? exit->exit_code : -1);
        exited.Set("signal", exit->exited ? 0 : exit->signal);
      }
      children.erase(it);
      (void)ipc::SendControl(*channel, exited);
    }
  }
}

}  // namespace

Result<ZygoteHandle> StartZygote(const ZygoteOptions& options) {
  ASSIGN_OR_RETURN(auto pair, ipc::UnixSocket::Pair());
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork (zygote)");
  if (pid == 0) {
    pair.first.Close();
    // Keep stdio (the log) and the channel only: nothing of the supervisor leaks to executors.
    int keep = pair.second.fd();
    if (keep > 3) ::syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u);
    ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u);
    ::signal(SIGPIPE, SIG_IGN);
    _exit(ZygoteMain(std::move(pair.second), options));
  }
  pair.second.Close();
  ZygoteHandle handle;
  handle.pid = pid;
  handle.socket = std::move(pair.first);
  return handle;
}

void SetServeClientForTesting(ServeClientFn serve) { serve_client_for_testing = serve; }

int ExecutorProcessMain(ipc::UnixSocket control_socket, const ExecutorOptions& options) {
  Result<ipc::Connection> control =
      ipc::Connection::Accept(std::move(control_socket), ipc::ControlConnectionOptions());
  if (!control.has_value()) return 10;
  if (!ipc::SendControl(*control, ControlMessage("ready")).ok()) return 11;
  Executor executor(options);
  std::unordered_set<engine::FunctionHash, engine::FunctionHashHasher> reported;
  for (;;) {
    std::vector<ScopedFd> fds;
    Result<ControlMessage> m = ipc::ReceiveControl(*control, &fds, kForever);
    if (!m.has_value()) return 0;  // the supervisor went away
    if (m->op == "exit") return 0;
    if (m->op == "preload") {
      std::vector<engine::FunctionBlob> blobs;
      for (const auto& bytes : m->blobs) {
        Result<engine::FunctionBlob> blob = engine::DecodeBlob(bytes);
        if (!blob.has_value()) return 12;
        blobs.push_back(std::move(*blob));
      }
      // Never trust the channel either: only blobs whose hashes verify enter the cache (all at
      // once, which recursion groups need; else one by one, dropping what fails).
      if (!engine::VerifyBlobHashes(blobs).ok()) {
        std::vector<engine::FunctionBlob> good;
        for (auto& blob : blobs) {
          if (engine::VerifyBlobHashes(std::span(&blob, 1)).ok()) good.push_back(std::move(blob));
        }
        blobs = std::move(good);
      }
      for (const auto& blob : blobs) reported.insert(blob.hash);
      executor.Preload(blobs);
      continue;
    }
    if (m->op != "serve" || fds.size() != 1) return 13;
    Result<ipc::UnixSocket> client = ipc::UnixSocket::Adopt(std::move(fds[0]));
    ExecutorStats before = executor.stats();
    if (client.has_value()) {
      (void)(serve_client_for_testing != nullptr
                 ? serve_client_for_testing(executor, std::move(*client), options)
                 : executor.ServeConnection(std::move(*client)));
    }
    const ExecutorStats& after = executor.stats();
    ControlMessage done("done");
    done.Set("calls", static_cast<int64_t>(after.calls - before.calls));
    done.Set("errors", static_cast<int64_t>(after.errors - before.errors));
    done.Set("code_bytes", static_cast<int64_t>(after.code_bytes_received -
                                                before.code_bytes_received));
    for (size_t k = 1; k < after.errors_by_kind.size(); ++k) {
      uint64_t n = after.errors_by_kind[k] - before.errors_by_kind[k];
      if (n == 0) continue;
      done.Set(fmt::format("err.{}", ErrorKindName(static_cast<ErrorKind>(k))),
               static_cast<int64_t>(n));
    }
    size_t blob_bytes = 0;
    for (const engine::FunctionBlob& blob : executor.CachedBlobsExcept(reported)) {
      std::vector<uint8_t> bytes = engine::EncodeBlob(blob);
      if (blob_bytes + bytes.size() > ipc::kMaxControlBlobBytes) continue;  // next time, maybe
      blob_bytes += bytes.size();
      done.blobs.push_back(std::move(bytes));
      reported.insert(blob.hash);
    }
    if (!ipc::SendControl(*control, done).ok()) return 0;
  }
}

}  // namespace shapex::sandbox
