#include "shapex/sandbox/supervisor.h"

#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "shapex/core/errno_status.h"
#include "shapex/core/log.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/supervisor_socket.h"
#include "shapex/sandbox/blob_store.h"
#include "supervisor_state.h"
#include "zygote.h"

namespace shapex::sandbox {

using ipc::ControlMessage;
using std::chrono::nanoseconds;

namespace {

// A slow client must not hold up the event loop for long during its handshake.
ipc::ConnectionOptions ControlOptions() {
  ipc::ConnectionOptions options = ipc::ControlConnectionOptions();
  options.handshake_timeout = std::chrono::milliseconds(2000);
  return options;
}

// Reads every complete control message buffered on `connection` (never blocks). `handle`
// returns false to stop early. IoError/ProtocolError when the connection is finished.
template <class Handle>
Status DrainControl(ipc::Connection& connection, Handle handle) {
  for (;;) {
    std::vector<ScopedFd> fds;
    Result<ControlMessage> m = ipc::ReceiveControl(connection, &fds, nanoseconds(0));
    if (!m.has_value()) {
      if (m.error().kind() == ErrorKind::kTimeout) return Status::Ok();
      return m.error();
    }
    if (!handle(*m, fds)) return Status::Ok();
  }
}

}  // namespace

Supervisor::Supervisor(std::unique_ptr<State> state) : state_(std::move(state)) {}
Supervisor::~Supervisor() = default;
const std::string& Supervisor::socket_path() const { return state_->socket_path; }

Result<std::unique_ptr<Supervisor>> Supervisor::Start(const SupervisorOptions& options) {
  auto state = std::make_unique<State>();
  state->options = options;
  if (state->options.pool_size == 0) {
    state->options.pool_size = std::max(1u, std::thread::hardware_concurrency());
  }
  if (options.sandbox == SandboxMode::kFull) {
    RETURN_IF_ERROR(ProbeJailSupport());
  } else {
    SHAPEX_LOG(WARN, "{}", kSandboxNoneWarning);
  }
  if (options.socket_path.empty()) {
    ASSIGN_OR_RETURN(state->socket_path, ipc::DefaultSupervisorSocketPath());
  } else {
    state->socket_path = options.socket_path;
  }
  RETURN_IF_ERROR(ipc::PrepareSocketDirectory(state->socket_path));
  // A socket file nobody answers on is stale (a supervisor that crashed): replace it.
  if (ipc::UnixSocket::Connect(state->socket_path).has_value()) {
    return IoError(fmt::format("a supervisor already listens on {}", state->socket_path));
  }
  ::unlink(state->socket_path.c_str());
  if (options.store_dir != "none") {
    BlobStoreOptions store;
    store.dir = options.store_dir.empty() ? BlobStore::DefaultDir() : options.store_dir;
    store.max_bytes = options.store_max_bytes;
    Result<BlobStore> opened = BlobStore::Open(store);
    if (opened.has_value()) {
      state->store.emplace(std::move(*opened));
    } else {
      SHAPEX_LOG(WARN, "no persistent blob store: {}", opened.error().ToString());
    }
  }
  // The zygote first: it must be forked while this process is small and single-threaded.
  ZygoteOptions zygote;
  zygote.mode = options.sandbox;
  zygote.executor = options.executor;
  zygote.limits = options.limits;
  ASSIGN_OR_RETURN(state->zygote, StartZygote(zygote));
  ASSIGN_OR_RETURN(state->listener, ipc::UnixListener::Listen(state->socket_path));
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return ErrnoStatus("sigprocmask");
  state->signal_fd = ScopedFd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!state->signal_fd) return ErrnoStatus("signalfd");
  ::signal(SIGPIPE, SIG_IGN);
  state->started = State::Clock::now();
  auto supervisor = std::unique_ptr<Supervisor>(new Supervisor(std::move(state)));
  supervisor->state_->FillPool();
  return supervisor;
}

void Supervisor::State::FillPool() {
  if (stopping) return;
  size_t live = spawning;
  for (const auto& [pid, e] : executors) {
    if (e.state != ExecutorEntry::kExiting) ++live;
  }
  while (live < options.pool_size) {
    ControlMessage spawn("spawn");
    spawn.Set("token", next_token++);
    if (!ipc::SendControl(zygote.channel, spawn).ok()) return;
    ++spawning;
    ++live;
  }
}

void Supervisor::State::OnZygote() {
  Status s = DrainControl(zygote.channel, [&](ControlMessage& m, std::vector<ScopedFd>& fds) {
    if (m.op == "spawned" && fds.size() == 2) {
      --spawning;
      ++stats.spawned;
      ExecutorEntry e;
      e.pid = static_cast<pid_t>(m.Int("pid"));
      e.spawn_ns = m.Int("spawn_ns");
      e.pidfd = std::move(fds[1]);
      if (stopping) {  // too late to be useful
        KillExecutorProcess(e);
        return true;
      }
      Result<ipc::UnixSocket> socket = ipc::UnixSocket::Adopt(std::move(fds[0]));
      if (socket.has_value()) {
        Result<ipc::Connection> control = ipc::Connection::Connect(std::move(*socket), ControlOptions());
        if (control.has_value()) {
          e.control = std::move(*control);
          spawn_ns_samples.push_back(e.spawn_ns);
          clone_ns_samples.push_back(m.Int("clone_ns"));
          pid_t pid = e.pid;
          executors.emplace(pid, std::move(e));
          // "ready" may have arrived with the handshake's bytes: poll would not report it.
          just_connected.push_back(pid);
          return true;
        }
        SHAPEX_LOG(WARN, "executor {} did not answer: {}", e.pid, control.error().ToString());
      }
      KillExecutorProcess(e);
    } else if (m.op == "spawned") {
      // Without its two descriptors the executor is of no use (and the zygote reaps it).
      --spawning;
      ++stats.spawn_failures;
      SHAPEX_LOG(WARN, "zygote reported a spawn with {} descriptors, expected 2", fds.size());
    } else if (m.op == "error") {
      --spawning;
      ++stats.spawn_failures;
      SHAPEX_LOG(WARN, "could not spawn an executor: {}", ipc::ControlErrorStatus(m).ToString());
    } else if (m.op == "exited") {
      int sig = static_cast<int>(m.Int("signal"));
      if (sig != 0 && sig != SIGKILL) ++stats.crashes;
      if (sig == SIGSYS) ++stats.seccomp_kills;
    }
    return true;
  });
  if (!s.ok()) {
    SHAPEX_LOG(ERROR, "the zygote is gone: {}", s.ToString());
    zygote_lost = true;
    stopping = true;
  }
  std::vector<pid_t> connected = std::move(just_connected);
  just_connected.clear();
  for (pid_t pid : connected) OnExecutor(pid);
}

void Supervisor::State::KillExecutorProcess(const ExecutorEntry& e) {
  if (e.pidfd) ::syscall(SYS_pidfd_send_signal, e.pidfd.get(), SIGKILL, nullptr, 0);
}

void Supervisor::State::OnExecutor(pid_t pid) {
  auto it = executors.find(pid);
  if (it == executors.end()) return;
  ExecutorEntry& e = it->second;
  Status s = DrainControl(e.control, [&](ControlMessage& m, std::vector<ScopedFd>&) {
    if (m.op == "ready") {
      e.state = ExecutorEntry::kIdle;
    } else if (m.op == "done") {
      OnLeaseDone(e, m);
    }
    return true;
  });
  if (!s.ok()) {
    // The executor is gone (crashed, killed or exited): forget it, keep the pool full.
    if (e.state == ExecutorEntry::kLeased) ++stats.leases_lost;
    KillExecutorProcess(e);
    executors.erase(it);
  }
  ServeQueue();
  FillPool();
}

void Supervisor::State::OnLeaseDone(ExecutorEntry& e, const ControlMessage& m) {
  e.calls += static_cast<uint64_t>(m.Int("calls"));
  stats.calls += static_cast<uint64_t>(m.Int("calls"));
  stats.errors += static_cast<uint64_t>(m.Int("errors"));
  stats.code_bytes_received += static_cast<uint64_t>(m.Int("code_bytes"));
  for (const auto& [key, value] : m.ints) {
    if (key.rfind("err.", 0) == 0) errors_by_kind[key.substr(4)] += static_cast<uint64_t>(value);
  }
  if (store && !m.blobs.empty()) {
    std::vector<engine::FunctionBlob> blobs;
    for (const auto& bytes : m.blobs) {
      Result<engine::FunctionBlob> blob = engine::DecodeBlob(bytes);
      if (blob.has_value()) blobs.push_back(std::move(*blob));
    }
    // PutBlobs verifies every hash itself: an executor cannot plant a wrong blob.
    Status put = store->PutBlobs(blobs);
    if (!put.ok()) SHAPEX_LOG(WARN, "blob store: {}", put.ToString());
  }
  e.client_id = -1;
  if (e.leases >= options.leases_per_executor || stopping) {
    (void)ipc::SendControl(e.control, ControlMessage("exit"));
    e.state = ExecutorEntry::kExiting;
  } else {
    e.state = ExecutorEntry::kIdle;
  }
}

void Supervisor::State::OnListener() {
  for (;;) {
    Result<std::optional<ipc::UnixSocket>> accepted = listener.Accept();
    if (!accepted.has_value() || !accepted->has_value()) return;
    ipc::UnixSocket socket = std::move(**accepted);
    if (socket.peer_credentials().uid != ::geteuid()) {
      ++stats.refused_peers;
      SHAPEX_LOG(WARN, "refused a connection from uid {} (pid {})",
                 socket.peer_credentials().uid, socket.peer_credentials().pid);
      continue;  // closing the socket is the whole answer
    }
    Result<ipc::Connection> connection = ipc::Connection::Accept(std::move(socket), ControlOptions());
    if (!connection.has_value()) continue;
    ClientEntry c;
    c.id = next_client_id++;
    c.conn = std::move(*connection);
    int id = c.id;
    clients.emplace(id, std::move(c));
    // A request may have come with the handshake's bytes: poll would not report it.
    OnClient(id);
  }
}

void Supervisor::State::OnClient(int id) {
  auto it = clients.find(id);
  if (it == clients.end()) return;
  ClientEntry& c = it->second;
  Status s = DrainControl(c.conn, [&](ControlMessage& m, std::vector<ScopedFd>&) {
    if (m.op == "lease") {
      // Executors that will be free without anyone releasing one: idle or coming up.
      size_t coming = spawning;
      for (const auto& [pid, e] : executors) {
        if (e.state == ExecutorEntry::kIdle || e.state == ExecutorEntry::kStarting) ++coming;
      }
      if (m.Int("wait", 1) == 0 && queue.size() >= coming && !stopping) {
        // A lease that could only be served once some client releases an executor was asked
        // not to wait (e.g. a pmap that wants another executor while holding one).
        (void)ipc::SendControl(c.conn, ipc::ControlError(ResourceExhausted(
                                           "no executor is idle right now")));
      } else if (queue.size() >= options.max_queued_leases || stopping) {
        (void)ipc::SendControl(c.conn, ipc::ControlError(ResourceExhausted(
                                           stopping ? "the supervisor is stopping"
                                                    : "every executor is busy and the lease "
                                                      "queue is full")));
      } else {
        queue.push_back({id, std::move(m.hashes)});
        ++stats.leases_requested;
      }
    } else if (m.op == "status") {
      ControlMessage reply("status");
      reply.Set("json", StatusJson());
      reply.Set("text", StatusText());
      (void)ipc::SendControl(c.conn, reply);
    } else if (m.op == "kill") {
      auto e = executors.find(static_cast<pid_t>(m.Int("executor_pid")));
      if (e != executors.end() && e->second.client_id == id) {
        KillExecutorProcess(e->second);
        ++stats.kills;
        (void)ipc::SendControl(c.conn, ControlMessage("killed"));
      } else {
        (void)ipc::SendControl(c.conn, ipc::ControlError(InvalidArgument(
                                           "that executor is not leased to this client")));
      }
    } else if (m.op == "stop") {
      stopping = true;
      (void)ipc::SendControl(c.conn, ControlMessage("stopping"));
    } else {
      (void)ipc::SendControl(c.conn, ipc::ControlError(ProtocolError("unknown request " + m.op)));
    }
    return true;
  });
  if (!s.ok()) {
    std::erase_if(queue, [&](const QueuedLease& q) { return q.client_id == id; });
    clients.erase(it);
  }
  ServeQueue();
}

void Supervisor::State::ServeQueue() {
  while (!queue.empty()) {
    auto idle = std::find_if(executors.begin(), executors.end(), [](const auto& kv) {
      return kv.second.state == ExecutorEntry::kIdle;
    });
    if (idle == executors.end()) return;
    QueuedLease lease = std::move(queue.front());
    queue.pop_front();
    auto client = clients.find(lease.client_id);
    if (client == clients.end()) continue;
    Status s = Grant(idle->second, client->second, lease.hashes);
    if (!s.ok()) {
      SHAPEX_LOG(WARN, "lease of executor {} failed: {}", idle->first, s.ToString());
      (void)ipc::SendControl(client->second.conn, ipc::ControlError(s));
    }
  }
}

Status Supervisor::State::Grant(ExecutorEntry& e, ClientEntry& c,
                                const std::vector<engine::FunctionHash>& hashes) {
  if (store && !hashes.empty()) {
    ControlMessage preload("preload");
    size_t preload_bytes = 0;
    for (const engine::FunctionHash& h : store->FilterKnown(hashes)) {
      if (e.preloaded.count(h) != 0) continue;
      Result<std::optional<engine::FunctionBlob>> blob = store->Get(h);
      if (blob.has_value() && blob->has_value()) {
        std::vector<uint8_t> bytes = engine::EncodeBlob(**blob);
        // What does not fit the message is negotiated and sent by the client instead.
        if (preload_bytes + bytes.size() > ipc::kMaxControlBlobBytes) continue;
        preload_bytes += bytes.size();
        preload.blobs.push_back(std::move(bytes));
        e.preloaded.insert(h);
      }
    }
    if (!preload.blobs.empty()) {
      stats.blobs_preloaded += preload.blobs.size();
      RETURN_IF_ERROR(ipc::SendControl(e.control, preload));
    }
  }
  ASSIGN_OR_RETURN(auto pair, ipc::UnixSocket::Pair());
  int executor_end = pair.second.fd();
  RETURN_IF_ERROR(ipc::SendControl(e.control, ControlMessage("serve"),
                                   std::span<const int>(&executor_end, 1)));
  e.state = ExecutorEntry::kLeased;
  e.client_id = c.id;
  ++e.leases;
  ++stats.leases_granted;
  ControlMessage granted("granted");
  granted.Set("executor_pid", e.pid);
  int client_end = pair.first.fd();
  return ipc::SendControl(c.conn, granted, std::span<const int>(&client_end, 1));
}

Status Supervisor::Run() {
  State& s = *state_;
  State::Clock::time_point grace_deadline{};
  bool listener_closed = false;
  for (;;) {
    if (s.stopping && !listener_closed) {
      listener_closed = true;
      s.listener = ipc::UnixListener();
      ::unlink(s.socket_path.c_str());
      grace_deadline = State::Clock::now() + s.options.grace;
      for (auto& [pid, e] : s.executors) {
        if (e.state != ExecutorEntry::kLeased) {
          (void)ipc::SendControl(e.control, ControlMessage("exit"));
          e.state = ExecutorEntry::kExiting;
        }
      }
      for (const QueuedLease& q : s.queue) {
        auto c = s.clients.find(q.client_id);
        if (c != s.clients.end()) {
          (void)ipc::SendControl(c->second.conn,
                                 ipc::ControlError(ResourceExhausted("the supervisor is stopping")));
        }
      }
      s.queue.clear();
    }
    if (s.stopping) {
      if (s.executors.empty()) break;
      if (State::Clock::now() >= grace_deadline) {
        for (auto& [pid, e] : s.executors) s.KillExecutorProcess(e);
      }
    }
    std::vector<pollfd> fds;
    std::vector<std::pair<char, long>> who;  // 'l'istener, 's'ignal, 'z'ygote, 'e'xecutor, 'c'lient
    auto add = [&](int fd, char kind, long id) {
      fds.push_back({fd, POLLIN, 0});
      who.emplace_back(kind, id);
    };
    if (s.listener.valid()) add(s.listener.fd(), 'l', 0);
    add(s.signal_fd.get(), 's', 0);
    if (!s.zygote_lost) add(s.zygote.channel.socket_fd(), 'z', 0);
    for (auto& [pid, e] : s.executors) add(e.control.socket_fd(), 'e', pid);
    for (auto& [id, c] : s.clients) add(c.conn.socket_fd(), 'c', id);
    int timeout_ms = s.stopping ? 50 : -1;
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      return ErrnoStatus("poll");
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      switch (who[i].first) {
        case 'l': s.OnListener(); break;
        case 's': {
          signalfd_siginfo info;
          while (::read(s.signal_fd.get(), &info, sizeof info) == sizeof info) s.stopping = true;
          break;
        }
        case 'z': s.OnZygote(); break;
        case 'e': s.OnExecutor(static_cast<pid_t>(who[i].second)); break;
        case 'c': s.OnClient(static_cast<int>(who[i].second)); break;
      }
    }
  }
  // Closing the channel ends the zygote (and with it any executor left).
  s.zygote.channel.Close();
  int status = 0;
  ::waitpid(s.zygote.pid, &status, 0);
  if (s.zygote_lost) return InternalError("the zygote died");
  return Status::Ok();
}

}  // namespace shapex::sandbox
