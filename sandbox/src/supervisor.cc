#include "shapex/sandbox/supervisor.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <unordered_set>
#include <utility>

#include "shapex/core/errno_status.h"
#include "shapex/core/log.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/supervisor_socket.h"
#include "shapex/sandbox/blob_store.h"
#include "supervisor_state.h"
#include "systemd.h"
#include "zygote.h"

namespace shapex::sandbox {

using ipc::ControlMessage;
using std::chrono::milliseconds;

namespace {

// epoll tokens: kind in the top byte, an id (client id, executor serial) below.
enum TokenKind : uint64_t { kListener = 1, kSignal, kZygote, kStore, kClient, kExecutor };
constexpr uint64_t Token(TokenKind kind, uint64_t id = 0) { return (uint64_t{kind} << 56) | id; }

constexpr uint32_t kIn = EPOLLIN;
constexpr uint32_t kOut = EPOLLOUT;
// Always readable (a peer's hang-up shows as input); writable while output is queued.
uint32_t Interest(bool write) { return kIn | (write ? kOut : 0u); }

constexpr size_t kMessagesPerWake = 16;   // per client and loop iteration
constexpr size_t kAcceptsPerWake = 64;
constexpr size_t kReadingHighWater = 64 << 10;  // stop reading a client with this much unread
constexpr milliseconds kLogCheckInterval{1000};
constexpr milliseconds kLockWait{300};  // a client's probe holds the lock for microseconds

ipc::AsyncChannelLimits ClientLimits(const SupervisorOptions& o) {
  ipc::AsyncChannelLimits limits;
  limits.max_frame_payload = o.max_request_bytes;
  limits.max_output_bytes = o.max_output_bytes;
  return limits;
}

// Executors and the zygote send blobs (up to kMaxControlBlobBytes plus encoding).
ipc::AsyncChannelLimits TrustedPeerLimits() {
  ipc::AsyncChannelLimits limits;
  limits.max_frame_payload = ipc::kDefaultMaxFramePayload;
  limits.max_output_bytes = size_t{256} << 20;
  limits.max_read_bytes = size_t{4} << 20;
  return limits;
}

int TimeoutMs(std::optional<SteadyClock::time_point> deadline, SteadyClock::time_point now) {
  if (!deadline) return -1;
  auto ms = std::chrono::duration_cast<milliseconds>(*deadline - now).count() + 1;
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
}

void EarliestOf(std::optional<SteadyClock::time_point>* a, SteadyClock::time_point b) {
  if (!*a || b < **a) *a = b;
}

// Raises the soft descriptor limit to the hard one: every client costs one descriptor.
void RaiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Takes the exclusive lock that decides who serves `socket_path`, waiting up to kLockWait (a
// client testing the lock holds it for an instant).
Result<ScopedFd> TakeServeLock(const std::string& socket_path) {
  std::string path = ipc::ServeLockPath(socket_path);
  ScopedFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return ErrnoStatus("open", path);
  auto deadline = SteadyClock::now() + kLockWait;
  for (;;) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return fd;
    if (errno != EWOULDBLOCK && errno != EINTR) return ErrnoStatus("flock", path);
    if (SteadyClock::now() >= deadline) {
      return SandboxError(fmt::format("a supervisor already serves {}", socket_path));
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
}

bool SameInode(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

const char* DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kHandshakeTimeout: return "handshake_timeout";
    case DropReason::kPendingHandshakes: return "too_many_pending_handshakes";
    case DropReason::kTooManyClients: return "too_many_clients";
    case DropReason::kProtocolError: return "protocol_error";
    case DropReason::kUnreadReplies: return "unread_replies";
    case DropReason::kWriteTimeout: return "write_timeout";
    case DropReason::kQueuedLeases: return "queued_leases";
    case DropReason::kCount: break;
  }
  return "unknown";
}

Supervisor::Supervisor(std::unique_ptr<State> state) : state_(std::move(state)) {}

Supervisor::~Supervisor() {
  if (state_) state_->Shutdown();
}

void Supervisor::State::Shutdown() {
  store.reset();  // joins the worker before anything it may touch goes away
  // Closing the channel ends the zygote (and with it any executor left).
  zygote_channel.Close();
  if (zygote.pid > 0) {
    int status = 0;
    ::waitpid(zygote.pid, &status, 0);
    zygote.pid = -1;
  }
  // Executor cgroups (their processes killed if any is left), then our own layout.
  if (cgroups) cgroups->Teardown();
}

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
  RaiseFdLimit();
  std::vector<ScopedFd> passed;
  if (options.systemd) passed = TakeSystemdListenFds();
  // Under socket activation systemd made the directory; its lock is taken where we may.
  Status directory = ipc::PrepareSocketDirectory(state->socket_path);
  if (passed.empty()) RETURN_IF_ERROR(directory);
  // One supervisor per socket path: whoever holds the lock serves; a socket file without the
  // lock's holder is stale.
  if (directory.ok()) {
    ASSIGN_OR_RETURN(state->lock_fd, TakeServeLock(state->socket_path));
  }
  if (!passed.empty()) {
    if (passed.size() > 1) SHAPEX_LOG(WARN, "systemd passed {} sockets; using the first", passed.size());
    ASSIGN_OR_RETURN(state->listener,
                     ipc::UnixListener::Adopt(std::move(passed[0]), state->socket_path));
    state->socket_activated = true;
  }
  std::optional<BlobStore> store;
  if (options.store_dir != "none") {
    BlobStoreOptions store_options;
    store_options.dir = options.store_dir.empty() ? BlobStore::DefaultDir() : options.store_dir;
    store_options.max_bytes = options.store_max_bytes;
    Result<BlobStore> opened = BlobStore::Open(store_options);
    if (opened.has_value()) {
      store.emplace(std::move(*opened));
    } else {
      SHAPEX_LOG(WARN, "no persistent blob store: {}", opened.error().ToString());
    }
  }
  // cgroups before the zygote: in the leaf layout the supervisor moves into a leaf of its own
  // cgroup, which must then hold no other process (the zygote is forked into the leaf).
  if (options.cgroups) {
    CgroupLimits limits;
    limits.memory_max = options.executor_memory_bytes;
    limits.pids_max = options.executor_pids;
    limits.cpus = options.executor_cpus;
    state->cgroups.emplace(ExecutorCgroups::Setup(limits));
  } else {
    state->cgroups.emplace(ExecutorCgroups::Disabled("turned off (serve --cgroups off)"));
  }
  // The zygote first: it must be forked while this process is small and single-threaded (the
  // store's thread starts after it).
  ZygoteOptions zygote;
  zygote.mode = options.sandbox;
  zygote.executor = options.executor;
  zygote.limits = options.limits;
  ASSIGN_OR_RETURN(state->zygote, StartZygote(zygote));
  // Signals become events, blocked before any thread exists (a thread that does not block
  // them would take SIGTERM's default action) and before anyone can connect.
  // A starter may have ignored some of them (nohup ignores SIGHUP): an ignored signal never
  // reaches a signalfd.
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return ErrnoStatus("sigprocmask");
  state->signal_fd = ScopedFd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!state->signal_fd) return ErrnoStatus("signalfd");
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<StoreWorker> worker;
  if (store) {
    ASSIGN_OR_RETURN(worker, StoreWorker::Start(std::move(*store)));
  }
  state->store = std::move(worker);
  auto supervisor = std::unique_ptr<Supervisor>(new Supervisor(std::move(state)));
  State& s = *supervisor->state_;
  ASSIGN_OR_RETURN(s.zygote_channel,
                   ipc::AsyncChannel::Start(std::move(s.zygote.socket),
                                            ipc::AsyncChannel::Role::kClient, TrustedPeerLimits()));
  if (!s.socket_activated) {
    // The lock is ours: a socket file still there was left by a supervisor that died.
    ::unlink(s.socket_path.c_str());
    ASSIGN_OR_RETURN(s.listener, ipc::UnixListener::Listen(s.socket_path, SOMAXCONN));
    if (::stat(s.socket_path.c_str(), &s.socket_stat) != 0) return ErrnoStatus("stat", s.socket_path);
  }
  s.epoll_fd = ScopedFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!s.epoll_fd) return ErrnoStatus("epoll_create1");
  s.Watch(s.listener.fd(), EPOLLIN, Token(kListener), true);
  s.Watch(s.signal_fd.get(), EPOLLIN, Token(kSignal), true);
  s.zygote_interest = Interest(s.zygote_channel.wants_write());
  s.Watch(s.zygote_channel.fd(), s.zygote_interest, Token(kZygote), true);
  if (s.store) s.Watch(s.store->event_fd(), EPOLLIN, Token(kStore), true);
  s.started = State::Clock::now();
  s.next_log_check = s.started;
  s.FillPool();
  return supervisor;
}

size_t Supervisor::State::MaxLeasesPerClient() const {
  if (options.max_leases_per_client != 0) return options.max_leases_per_client;
  return std::max<size_t>(1, options.pool_size - 1);
}

void Supervisor::State::Watch(int fd, uint32_t events, uint64_t token, bool add) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_fd.get(), add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0) {
    SHAPEX_LOG(ERROR, "epoll_ctl({}) on fd {}: {}", add ? "add" : "mod", fd, std::strerror(errno));
  }
}

void Supervisor::State::SetInterest(int fd, uint32_t want, uint64_t token, uint32_t* current) {
  if (want == *current) return;
  *current = want;
  Watch(fd, want, token, false);
}

void Supervisor::State::RearmZygote() {
  SetInterest(zygote_channel.fd(), Interest(zygote_channel.wants_write()), Token(kZygote),
              &zygote_interest);
}

void Supervisor::State::RearmExecutor(ExecutorEntry& e) {
  SetInterest(e.control.fd(), Interest(e.control.wants_write()), Token(kExecutor, e.serial),
              &e.interest);
}

void Supervisor::State::Unwatch(int fd) {
  if (fd >= 0) (void)::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, fd, nullptr);
}

// ---------------------------------------------------------------- zygote and executors

void Supervisor::State::FillPool() {
  if (stopping || zygote_lost) return;
  size_t live = spawning;
  for (const auto& [pid, e] : executors) {
    if (e.state != ExecutorEntry::kExiting && !e.killed) ++live;
  }
  while (live < options.pool_size) {
    int64_t token = next_token++;
    ControlMessage spawn("spawn");
    spawn.Set("token", token);
    std::vector<ScopedFd> fds;
    if (cgroups && cgroups->enabled()) {
      Result<ScopedFd> dir = cgroups->Create(token);  // an error turns cgroups off (logged)
      if (dir.has_value()) fds.push_back(std::move(*dir));
    }
    Status sent = zygote_channel.Send(spawn, std::move(fds));
    if (!sent.ok() && sent.kind() != ErrorKind::kResourceExhausted) {
      if (cgroups) cgroups->Abandon(token);
      return;
    }
    ++spawning;
    ++live;
  }
  RearmZygote();
}

void Supervisor::State::OnZygote() {
  Status s = zygote_channel.Flush();
  if (s.ok()) {
    s = zygote_channel.OnReadable(SIZE_MAX, [&](ControlMessage& m, std::vector<ScopedFd>& fds) {
      OnZygoteMessage(m, fds);
    });
  }
  if (!s.ok()) {
    SHAPEX_LOG(ERROR, "the zygote is gone: {}", s.ToString());
    Unwatch(zygote_channel.fd());
    zygote_channel.Close();
    zygote_lost = true;
    stopping = true;
    return;
  }
  RearmZygote();
}

void Supervisor::State::OnZygoteMessage(ControlMessage& m, std::vector<ScopedFd>& fds) {
  if (m.op == "spawned" && fds.size() == 2) {
    --spawning;
    ++stats.spawned;
    ExecutorEntry e;
    e.pid = static_cast<pid_t>(m.Int("pid"));
    e.serial = next_serial++;
    e.spawn_ns = m.Int("spawn_ns");
    e.pidfd = std::move(fds[1]);
    if (cgroups) {
      std::string refused = m.Text("cgroup_error");
      if (refused.empty()) {
        cgroups->Assign(m.Int("token"), e.pid);
      } else {
        cgroups->Abandon(m.Int("token"));
        cgroups->Disable("the kernel refused to start an executor in its cgroup: " + refused);
      }
    }
    if (stopping || executors.count(e.pid) != 0) {  // too late to be useful
      KillExecutorProcess(e);
      return;
    }
    Result<ipc::UnixSocket> socket = ipc::UnixSocket::Adopt(std::move(fds[0]));
    Result<ipc::AsyncChannel> channel =
        socket.has_value() ? ipc::AsyncChannel::Start(std::move(*socket),
                                                      ipc::AsyncChannel::Role::kClient,
                                                      TrustedPeerLimits())
                           : Result<ipc::AsyncChannel>(socket.error());
    if (!channel.has_value()) {
      SHAPEX_LOG(WARN, "executor {}: {}", e.pid, channel.error().ToString());
      KillExecutorProcess(e);
      return;
    }
    e.control = std::move(*channel);
    e.deadline = Clock::now() + options.executor_start_timeout;
    spawn_ns_samples.push_back(e.spawn_ns);
    clone_ns_samples.push_back(m.Int("clone_ns"));
    if (spawn_ns_samples.size() > 4096) spawn_ns_samples.erase(spawn_ns_samples.begin());
    if (clone_ns_samples.size() > 4096) clone_ns_samples.erase(clone_ns_samples.begin());
    e.interest = Interest(e.control.wants_write());
    Watch(e.control.fd(), e.interest, Token(kExecutor, e.serial), true);
    executor_by_serial[e.serial] = e.pid;
    pid_t pid = e.pid;
    executors.emplace(pid, std::move(e));
  } else if (m.op == "spawned") {
    // Without its two descriptors the executor is of no use (and the zygote reaps it).
    if (cgroups) cgroups->Assign(m.Int("token"), static_cast<pid_t>(m.Int("pid")));
    --spawning;
    ++stats.spawn_failures;
    SHAPEX_LOG(WARN, "zygote reported a spawn with {} descriptors, expected 2", fds.size());
  } else if (m.op == "error") {
    if (cgroups) cgroups->Abandon(m.Int("token"));
    --spawning;
    ++stats.spawn_failures;
    SHAPEX_LOG(WARN, "could not spawn an executor: {}", ipc::ControlErrorStatus(m).ToString());
  } else if (m.op == "exited") {
    OnExecutorReaped(static_cast<pid_t>(m.Int("pid")), m);
  }
}

void Supervisor::State::OnExecutorReaped(pid_t pid, const ControlMessage& exited) {
  int sig = static_cast<int>(exited.Int("signal"));
  if (sig != 0 && sig != SIGKILL) ++stats.crashes;
  if (sig == SIGSYS) ++stats.seccomp_kills;
  if (!cgroups || cgroups->Release(pid) == 0) return;
  SHAPEX_LOG(WARN, "executor {} exceeded its cgroup's memory.max ({} bytes): OOM-killed", pid,
             cgroups->limits().memory_max);
  oom_killed.push_back(pid);
  if (oom_killed.size() > 256) oom_killed.pop_front();
}

Status Supervisor::State::ExitReason(pid_t pid) const {
  // The kernel counts the kill in memory.events before the process dies, so a client that saw
  // its connection close finds it here, whether or not the zygote has reaped the executor yet.
  bool oom = std::find(oom_killed.begin(), oom_killed.end(), pid) != oom_killed.end() ||
             (cgroups && cgroups->OomKills(pid).value_or(0) > 0);
  if (!oom) return Status::Ok();
  return ResourceExhausted(fmt::format(
      "memory limit exceeded (cgroup): executor {} went over memory.max ({} bytes) and the "
      "kernel killed it",
      pid, cgroups ? cgroups->limits().memory_max : 0));
}

void Supervisor::State::KillExecutorProcess(ExecutorEntry& e) {
  if (e.pidfd) ::syscall(SYS_pidfd_send_signal, e.pidfd.get(), SIGKILL, nullptr, 0);
  e.killed = true;
}

void Supervisor::State::SendToExecutor(ExecutorEntry& e, const ControlMessage& m,
                                       std::vector<ScopedFd> fds) {
  Status s = e.control.Send(m, std::move(fds));
  if (!s.ok() && s.kind() != ErrorKind::kResourceExhausted) {
    SHAPEX_LOG(WARN, "executor {}: {}", e.pid, s.ToString());
    KillExecutorProcess(e);
    return;
  }
  RearmExecutor(e);
}

void Supervisor::State::OnExecutor(uint64_t serial, uint32_t events) {
  auto by_serial = executor_by_serial.find(serial);
  if (by_serial == executor_by_serial.end()) return;
  pid_t pid = by_serial->second;
  auto it = executors.find(pid);
  if (it == executors.end()) return;
  ExecutorEntry& e = it->second;
  Status s = Status::Ok();
  if ((events & EPOLLOUT) != 0) s = e.control.Flush();
  if (s.ok()) {
    // Everything buffered (at most 4 MiB read per wake): poll would not report what stays.
    s = e.control.OnReadable(SIZE_MAX, [&](ControlMessage& m, std::vector<ScopedFd>&) {
      OnExecutorMessage(e, m);
    });
  }
  if (!s.ok()) {
    // The executor is gone (crashed, killed or exited): forget it, keep the pool full.
    RemoveExecutor(pid);
  } else {
    RearmExecutor(e);
  }
  ServeQueue();
  FillPool();
}

void Supervisor::State::RemoveExecutor(pid_t pid) {
  auto it = executors.find(pid);
  if (it == executors.end()) return;
  ExecutorEntry& e = it->second;
  if (e.state == ExecutorEntry::kLeased && !e.released) ++stats.leases_lost;
  auto client = clients.find(e.client_id);
  if (client != clients.end()) {
    client->second.leases.erase(pid);
    if (e.state == ExecutorEntry::kGranting) {
      // The grant did not happen: the lease waits again, first in its client's queue.
      client->second.queued.push_front(std::move(e.granting));
      ++queued_total;
      if (std::find(round_robin.begin(), round_robin.end(), e.client_id) == round_robin.end()) {
        round_robin.push_front(e.client_id);
      }
    }
  }
  KillExecutorProcess(e);
  Unwatch(e.control.fd());
  executor_by_serial.erase(e.serial);
  executors.erase(it);
}

void Supervisor::State::OnExecutorMessage(ExecutorEntry& e, ControlMessage& m) {
  if (m.op == "ready" && e.state == ExecutorEntry::kStarting) {
    e.state = ExecutorEntry::kIdle;
    e.deadline.reset();
  } else if (m.op == "done" && e.state == ExecutorEntry::kLeased) {
    // One per lease: an executor (it runs untrusted code) cannot queue store work at will.
    OnLeaseDone(e, m);
  }
}

void Supervisor::State::OnLeaseDone(ExecutorEntry& e, ControlMessage& m) {
  e.calls += static_cast<uint64_t>(m.Int("calls"));
  stats.calls += static_cast<uint64_t>(m.Int("calls"));
  stats.errors += static_cast<uint64_t>(m.Int("errors"));
  stats.code_bytes_received += static_cast<uint64_t>(m.Int("code_bytes"));
  for (const auto& [key, value] : m.ints) {
    if (key.rfind("err.", 0) == 0) errors_by_kind[key.substr(4)] += static_cast<uint64_t>(value);
  }
  if (store && !m.blobs.empty()) {
    // Decoding, verifying and fsyncing run on the store's thread; PutBlobs verifies every
    // hash itself: an executor cannot plant a wrong blob.
    store->Post([blobs = std::move(m.blobs)](BlobStore& s) -> StoreWorker::Completion {
      std::vector<engine::FunctionBlob> decoded;
      for (const auto& bytes : blobs) {
        Result<engine::FunctionBlob> blob = engine::DecodeBlob(bytes);
        if (blob.has_value()) decoded.push_back(std::move(*blob));
      }
      Status put = s.PutBlobs(decoded);
      if (!put.ok()) SHAPEX_LOG(WARN, "blob store: {}", put.ToString());
      return nullptr;
    });
  }
  auto client = clients.find(e.client_id);
  if (client != clients.end()) client->second.leases.erase(e.pid);
  e.client_id = -1;
  e.released = false;
  e.deadline.reset();
  if (e.leases >= options.leases_per_executor || stopping) {
    SendToExecutor(e, ControlMessage("exit"));
    e.state = ExecutorEntry::kExiting;
  } else {
    e.state = ExecutorEntry::kIdle;
  }
}

// ---------------------------------------------------------------- clients

void Supervisor::State::OnListener() {
  for (size_t n = 0; n < kAcceptsPerWake; ++n) {
    Result<std::optional<ipc::UnixSocket>> accepted = listener.Accept();
    if (!accepted.has_value()) {
      // EMFILE and the like: the pending connection stays queued; try again next time.
      SHAPEX_LOG(WARN, "accept: {}", accepted.error().ToString());
      return;
    }
    if (!accepted->has_value()) return;
    ipc::UnixSocket socket = std::move(**accepted);
    if (socket.peer_credentials().uid != ::geteuid()) {
      ++stats.refused_peers;
      SHAPEX_LOG(WARN, "refused a connection from uid {} (pid {})",
                 socket.peer_credentials().uid, socket.peer_credentials().pid);
      continue;  // closing the socket is the whole answer
    }
    if (clients.size() >= options.max_clients) {
      ++stats.dropped[static_cast<size_t>(DropReason::kTooManyClients)];
      SHAPEX_LOG(WARN, "dropped a connection from pid {}: {} clients already",
                 socket.peer_credentials().pid, clients.size());
      continue;
    }
    size_t pending = 0;
    int oldest = -1;
    for (const auto& [id, c] : clients) {
      if (c.conn.handshake_done()) continue;
      ++pending;
      if (oldest < 0) oldest = id;  // ids grow with time
    }
    if (pending >= options.max_pending_handshakes && oldest >= 0) {
      DropClient(oldest, DropReason::kPendingHandshakes, "too many connections without a Hello");
    }
    Result<ipc::AsyncChannel> channel = ipc::AsyncChannel::Start(
        std::move(socket), ipc::AsyncChannel::Role::kServer, ClientLimits(options));
    if (!channel.has_value()) continue;
    ClientEntry c;
    c.id = next_client_id++;
    c.conn = std::move(*channel);
    c.accepted = Clock::now();
    c.peer_pid = c.conn.peer_credentials().pid;
    c.interest = EPOLLIN;
    int id = c.id;
    int fd = c.conn.fd();
    clients.emplace(id, std::move(c));
    ++stats.connections;
    Watch(fd, EPOLLIN, Token(kClient, static_cast<uint64_t>(id)), true);
  }
}

void Supervisor::State::DropClient(int id, std::optional<DropReason> reason,
                                   const std::string& why) {
  auto it = clients.find(id);
  if (it == clients.end()) return;
  ClientEntry& c = it->second;
  if (reason) {
    ++stats.dropped[static_cast<size_t>(*reason)];
    SHAPEX_LOG(WARN, "dropped client {} (pid {}): {}: {}", id, c.peer_pid,
               DropReasonName(*reason), why);
  }
  queued_total -= c.queued.size();
  // Its leases end with it: an executor it released may finish its report; any other is
  // killed now (also in the middle of an endless call) and replaced.
  for (pid_t pid : c.leases) {
    auto e = executors.find(pid);
    if (e == executors.end()) continue;
    ExecutorEntry& x = e->second;
    if (x.state == ExecutorEntry::kGranting) {
      x.state = ExecutorEntry::kIdle;  // the grant completes as a no-op
      x.client_id = -1;
    } else if (x.state == ExecutorEntry::kLeased && x.released) {
      if (!x.deadline) x.deadline = Clock::now() + options.release_timeout;
    } else if (x.state == ExecutorEntry::kLeased) {
      ++stats.orphaned_kills;
      KillExecutorProcess(x);
    }
  }
  Unwatch(c.conn.fd());
  clients.erase(it);
  std::erase(round_robin, id);
  std::erase(read_again, id);
}

void Supervisor::State::UpdateClientInterest(ClientEntry& c) {
  c.reading = c.conn.output_bytes() < kReadingHighWater;
  uint32_t want = (c.reading ? kIn : 0u) | (c.conn.wants_write() ? kOut : 0u);
  SetInterest(c.conn.fd(), want, Token(kClient, static_cast<uint64_t>(c.id)), &c.interest);
}

void Supervisor::State::OnClient(int id, uint32_t events) {
  auto it = clients.find(id);
  if (it == clients.end()) return;
  ClientEntry& c = it->second;
  Status s = Status::Ok();
  if ((events & EPOLLOUT) != 0 || c.conn.wants_write()) s = c.conn.Flush();
  std::erase(read_again, id);
  bool hangup = (events & (EPOLLHUP | EPOLLERR)) != 0;
  if (s.ok() && (c.reading || hangup)) {
    s = c.conn.OnReadable(kMessagesPerWake, [&](ControlMessage& m, std::vector<ScopedFd>&) {
      OnClientMessage(c, m);
    });
  }
  if (c.drop) {
    DropClient(id, c.drop->first, std::string(c.drop->second));
    ServeQueue();
    return;
  }
  if (!s.ok()) {
    bool gone = s.kind() == ErrorKind::kIoError;
    DropClient(id, gone ? std::nullopt : std::optional(DropReason::kProtocolError), s.message());
    ServeQueue();
    return;
  }
  if (c.conn.output_bytes() > options.max_output_bytes) {
    DropClient(id, DropReason::kUnreadReplies,
               fmt::format("{} bytes of replies unread", c.conn.output_bytes()));
    ServeQueue();
    return;
  }
  UpdateClientInterest(c);
  if (c.reading && c.conn.has_buffered_bytes()) read_again.push_back(id);
  ServeQueue();
}

void Supervisor::State::OnClientMessage(ClientEntry& c, ControlMessage& m) {
  if (c.drop) return;  // being dropped: the rest of its requests are not served
  ++c.requests;
  auto reply = [&](const ControlMessage& r, std::vector<ScopedFd> fds = {}) {
    (void)c.conn.Send(r, std::move(fds));  // overflow is judged after the batch
  };
  if (m.op == "lease") {
    ++stats.leases_requested;
    // Executors that will be free without anyone releasing one: idle or coming up.
    size_t coming = spawning;
    for (const auto& [pid, e] : executors) {
      if (e.state == ExecutorEntry::kIdle || e.state == ExecutorEntry::kStarting) ++coming;
    }
    if (stopping) {
      reply(ipc::ControlError(ResourceExhausted("the supervisor is stopping")));
    } else if (m.Int("wait", 1) == 0 &&
               (queued_total >= coming || c.leases.size() >= MaxLeasesPerClient())) {
      // A lease that could only be served once some client releases an executor was asked
      // not to wait (e.g. a pmap that wants another executor while holding one).
      reply(ipc::ControlError(ResourceExhausted("no executor is idle right now")));
    } else if (c.queued.size() >= options.max_queued_leases_per_client) {
      c.drop = {DropReason::kQueuedLeases,
                fmt::format("more than {} leases queued", options.max_queued_leases_per_client)};
    } else if (queued_total >= options.max_queued_leases) {
      reply(ipc::ControlError(ResourceExhausted(fmt::format(
          "all {} executors are leased and {} leases are already waiting", options.pool_size,
          queued_total))));
    } else {
      PendingLease lease;
      lease.hashes = std::move(m.hashes);
      if (lease.hashes.size() > options.max_preload_hashes) {
        lease.hashes.resize(options.max_preload_hashes);  // only a cache hint
      }
      lease.queued = Clock::now();
      milliseconds wait = options.lease_wait;
      if (int64_t asked = m.Int("wait_ms", 0); asked > 0) {
        wait = std::min(wait, milliseconds(asked));
      }
      lease.deadline = lease.queued + wait;
      c.queued.push_back(std::move(lease));
      ++queued_total;
      if (std::find(round_robin.begin(), round_robin.end(), c.id) == round_robin.end()) {
        round_robin.push_back(c.id);
      }
    }
  } else if (m.op == "release") {
    auto e = executors.find(static_cast<pid_t>(m.Int("executor_pid")));
    if (e != executors.end() && e->second.client_id == c.id) {
      e->second.released = true;
      ++stats.leases_released;
      // The client closed its connection to the executor, which now owes us `done`; one stuck
      // in a call (a hung system call, a native loop) would otherwise stay leased, counted
      // against this client, for as long as the client stays connected.
      if (e->second.state == ExecutorEntry::kLeased) {
        e->second.deadline = Clock::now() + options.release_timeout;
      }
    }
  } else if (m.op == "status") {
    ControlMessage r("status");
    r.Set("json", StatusJson());
    r.Set("text", StatusText());
    reply(r);
  } else if (m.op == "kill") {
    auto e = executors.find(static_cast<pid_t>(m.Int("executor_pid")));
    if (e != executors.end() && e->second.client_id == c.id &&
        e->second.state == ExecutorEntry::kLeased) {
      KillExecutorProcess(e->second);
      ++stats.kills;
      reply(ControlMessage("killed"));
    } else {
      reply(ipc::ControlError(InvalidArgument("that executor is not leased to this client")));
    }
  } else if (m.op == "exit_reason") {
    Status why = ExitReason(static_cast<pid_t>(m.Int("executor_pid")));
    ControlMessage r("exit_reason");
    r.Set("kind", why.ok() ? std::string() : std::string(ErrorKindName(why.kind())));
    r.Set("message", why.message());
    reply(r);
  } else if (m.op == "stop") {
    stopping = true;
    ControlMessage r("stopping");
    r.Set("pid", static_cast<int64_t>(::getpid()));
    reply(r);
  } else {
    reply(ipc::ControlError(ProtocolError("unknown request " + m.op)));
  }
}

// ---------------------------------------------------------------- leases

void Supervisor::State::ServeQueue() {
  if (stopping) return;
  size_t pass = round_robin.size();
  while (!round_robin.empty() && pass > 0) {
    auto idle = std::find_if(executors.begin(), executors.end(), [](const auto& kv) {
      return kv.second.state == ExecutorEntry::kIdle && !kv.second.killed;
    });
    if (idle == executors.end()) return;
    int id = round_robin.front();
    round_robin.pop_front();
    --pass;
    auto client = clients.find(id);
    if (client == clients.end() || client->second.queued.empty()) continue;
    ClientEntry& c = client->second;
    // Not now: at its lease limit, or not reading what we already sent it.
    std::optional<Clock::time_point> pending = c.conn.output_pending_since();
    bool stalled = pending && Clock::now() - *pending > milliseconds(250);
    if (c.leases.size() >= MaxLeasesPerClient() || stalled || !c.conn.handshake_done()) {
      round_robin.push_back(id);
      continue;
    }
    PendingLease lease = std::move(c.queued.front());
    c.queued.pop_front();
    --queued_total;
    if (!c.queued.empty()) round_robin.push_back(id);
    pass = round_robin.size();  // progress: look at everyone again
    StartGrant(idle->second, c, std::move(lease));
  }
}

void Supervisor::State::StartGrant(ExecutorEntry& e, ClientEntry& c, PendingLease lease) {
  e.state = ExecutorEntry::kGranting;
  e.client_id = c.id;
  c.leases.insert(e.pid);
  pid_t pid = e.pid;
  uint64_t serial = e.serial;
  uint64_t seq = ++e.grant_seq;
  if (!store || lease.hashes.empty()) {
    e.granting = std::move(lease);
    FinishGrant(pid, serial, seq, {}, {});
    return;
  }
  std::vector<engine::FunctionHash> wanted;
  for (const engine::FunctionHash& h : lease.hashes) {
    if (e.preloaded.count(h) == 0) wanted.push_back(h);
  }
  e.granting = std::move(lease);
  // Store look-ups and reads (one stat per hash, verified reads) run on the store's thread.
  // With each blob come the functions it needs to be linked (its group, what it references,
  // transitively), so a lease that names only an entry hash (`shapex call --hash`) can call it;
  // for a lease that offers a whole blob set they are already among the offered hashes.
  store->Post([this, pid, serial, seq, wanted = std::move(wanted), skip = e.preloaded,
               max_lookups = options.max_preload_hashes](BlobStore& s) {
    std::vector<std::vector<uint8_t>> blobs;
    std::vector<engine::FunctionHash> hashes;
    size_t bytes = 0;
    std::unordered_set<engine::FunctionHash, engine::FunctionHashHasher> queued(
        wanted.begin(), wanted.end());
    std::vector<engine::FunctionHash> queue = std::move(wanted);
    for (size_t i = 0; i < queue.size() && i < max_lookups; ++i) {
      const engine::FunctionHash h = queue[i];
      if (!s.Contains(h)) continue;  // one stat; only a known name is read
      Result<std::optional<engine::FunctionBlob>> blob = s.Get(h);
      if (!blob.has_value() || !blob->has_value()) continue;
      std::vector<uint8_t> encoded = engine::EncodeBlob(**blob);
      // What does not fit the message is negotiated and sent by the client instead.
      if (bytes + encoded.size() > ipc::kMaxControlBlobBytes) continue;
      bytes += encoded.size();
      blobs.push_back(std::move(encoded));
      hashes.push_back(h);
      Result<std::vector<engine::FunctionHash>> deps = engine::BlobDependencies(**blob);
      if (!deps.has_value()) continue;  // Get verified it, so this does not happen
      for (const engine::FunctionHash& d : *deps) {
        if (skip.count(d) == 0 && queued.insert(d).second) queue.push_back(d);
      }
    }
    return StoreWorker::Completion(
        [this, pid, serial, seq, blobs = std::move(blobs), hashes = std::move(hashes)]() mutable {
          FinishGrant(pid, serial, seq, std::move(blobs), std::move(hashes));
        });
  });
}

void Supervisor::State::FinishGrant(pid_t pid, uint64_t serial, uint64_t seq,
                                    std::vector<std::vector<uint8_t>> blobs,
                                    std::vector<engine::FunctionHash> hashes) {
  auto it = executors.find(pid);
  if (it == executors.end() || it->second.serial != serial) return;  // died: lease requeued
  ExecutorEntry& e = it->second;
  if (!blobs.empty() && !e.killed) {
    ControlMessage preload("preload");
    preload.blobs = std::move(blobs);
    stats.blobs_preloaded += preload.blobs.size();
    e.preloaded.insert(hashes.begin(), hashes.end());
    SendToExecutor(e, preload);
  }
  // The client left meanwhile (the executor went back to the pool, maybe to another grant).
  if (e.state != ExecutorEntry::kGranting || e.grant_seq != seq) {
    ServeQueue();
    return;
  }
  auto client = clients.find(e.client_id);
  if (client == clients.end() || e.killed) {
    e.state = ExecutorEntry::kIdle;
    e.client_id = -1;
    ServeQueue();
    return;
  }
  ClientEntry& c = client->second;
  // The two ends of the lease's connection, owned by the messages that carry them.
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    Status failed = ErrnoStatus("socketpair");
    SHAPEX_LOG(WARN, "lease of executor {} failed: {}", pid, failed.ToString());
    c.leases.erase(pid);
    e.state = ExecutorEntry::kIdle;
    e.client_id = -1;
    (void)c.conn.Send(ipc::ControlError(failed));
    UpdateClientInterest(c);
    return;
  }
  std::vector<ScopedFd> client_end, executor_end;
  client_end.emplace_back(ends[0]);
  executor_end.emplace_back(ends[1]);
  SendToExecutor(e, ControlMessage("serve"), std::move(executor_end));
  e.state = ExecutorEntry::kLeased;
  e.released = false;
  ++e.leases;
  ++stats.leases_granted;
  ControlMessage granted("granted");
  granted.Set("executor_pid", e.pid);
  Status s = c.conn.Send(granted, std::move(client_end));
  if (!s.ok() && s.kind() != ErrorKind::kResourceExhausted) {
    DropClient(c.id, std::nullopt, s.message());  // kills the executor it was just given
    return;
  }
  UpdateClientInterest(c);
}

// ---------------------------------------------------------------- deadlines and life cycle

std::optional<SteadyClock::time_point> Supervisor::State::Expire(Clock::time_point now) {
  std::optional<Clock::time_point> next;
  std::vector<std::pair<int, DropReason>> drops;
  for (auto& [id, c] : clients) {
    if (!c.conn.handshake_done()) {
      Clock::time_point d = c.accepted + options.handshake_timeout;
      if (now >= d) {
        drops.emplace_back(id, DropReason::kHandshakeTimeout);
        continue;
      }
      EarliestOf(&next, d);
    }
    if (std::optional<Clock::time_point> since = c.conn.output_pending_since()) {
      Clock::time_point d = *since + options.write_timeout;
      if (now >= d) {
        drops.emplace_back(id, DropReason::kWriteTimeout);
        continue;
      }
      EarliestOf(&next, d);
    }
    while (!c.queued.empty()) {
      // Leases are queued in order, with deadlines from at most two waits: check them all.
      auto late = std::find_if(c.queued.begin(), c.queued.end(),
                               [&](const PendingLease& l) { return now >= l.deadline; });
      if (late == c.queued.end()) break;
      double waited = std::chrono::duration<double>(now - late->queued).count();
      size_t leased = 0;
      for (const auto& [pid, e] : executors) {
        leased += e.state == ExecutorEntry::kLeased || e.state == ExecutorEntry::kGranting;
      }
      std::string cause =
          c.leases.size() >= MaxLeasesPerClient()
              ? fmt::format("this client already holds {} of {} executors (its limit); waited "
                            "{:.1f} s",
                            c.leases.size(), options.pool_size, waited)
              : fmt::format("all {} executors leased ({} busy); waited {:.1f} s",
                            options.pool_size, leased, waited);
      c.queued.erase(late);
      --queued_total;
      ++stats.lease_wait_timeouts;
      (void)c.conn.Send(ipc::ControlError(ResourceExhausted(cause)));
      UpdateClientInterest(c);
    }
    for (const PendingLease& l : c.queued) EarliestOf(&next, l.deadline);
  }
  for (auto [id, reason] : drops) {
    DropClient(id, reason, reason == DropReason::kHandshakeTimeout
                               ? fmt::format("no Hello within {} ms", options.handshake_timeout.count())
                               : fmt::format("replies unread for {} ms", options.write_timeout.count()));
  }
  for (auto& [pid, e] : executors) {
    if (!e.deadline || e.killed) continue;
    if (now >= *e.deadline) {
      if (e.state == ExecutorEntry::kStarting) {
        ++stats.executor_start_timeouts;
        SHAPEX_LOG(WARN, "executor {} did not become ready; killed", pid);
      } else {
        ++stats.orphaned_kills;
      }
      KillExecutorProcess(e);
      e.deadline.reset();
    } else {
      EarliestOf(&next, *e.deadline);
    }
  }
  // Idle exit: no client connection and no lease.
  if (options.idle_exit.count() > 0 && !stopping) {
    if (Idle()) {
      if (!idle_since) idle_since = now;
      Clock::time_point d = *idle_since + options.idle_exit;
      if (now >= d) {
        SHAPEX_LOG(INFO, "idle for {} ms: exiting", options.idle_exit.count());
        stopping = true;
      } else {
        EarliestOf(&next, d);
      }
    } else {
      idle_since.reset();
    }
  }
  if (!options.log_path.empty()) {
    if (now >= next_log_check) {
      CheckLog(false);
      next_log_check = now + kLogCheckInterval;
    }
    EarliestOf(&next, next_log_check);
  }
  return next;
}

bool Supervisor::State::Idle() const {
  if (!clients.empty()) return false;
  for (const auto& [pid, e] : executors) {
    if (e.state == ExecutorEntry::kLeased || e.state == ExecutorEntry::kGranting) return false;
  }
  return true;
}

void Supervisor::State::CheckLog(bool reopen) {
  struct stat st {};
  bool too_big = ::fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
                 static_cast<uint64_t>(st.st_size) > options.log_max_bytes;
  if (!reopen && !too_big) return;
  if (too_big) (void)::rename(options.log_path.c_str(), (options.log_path + ".1").c_str());
  int fd = ::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ::dup2(fd, STDERR_FILENO);
  ::close(fd);
}

void Supervisor::State::BeginStop() {
  Unwatch(listener.fd());
  listener = ipc::UnixListener();
  // Unlink only our own socket (a newer supervisor may own the path), never systemd's.
  struct stat now {};
  if (!socket_activated && ::stat(socket_path.c_str(), &now) == 0 && SameInode(now, socket_stat)) {
    ::unlink(socket_path.c_str());
  }
  (void)NotifySystemd("STOPPING=1");
  for (auto& [pid, e] : executors) {
    if (e.state != ExecutorEntry::kLeased) {
      SendToExecutor(e, ControlMessage("exit"));
      e.state = ExecutorEntry::kExiting;
    }
  }
  for (auto& [id, c] : clients) {
    for (size_t i = 0; i < c.queued.size(); ++i) {
      (void)c.conn.Send(ipc::ControlError(ResourceExhausted("the supervisor is stopping")));
    }
    c.queued.clear();
    UpdateClientInterest(c);
  }
  queued_total = 0;
  round_robin.clear();
}

Status Supervisor::Run() {
  State& s = *state_;
  State::Clock::time_point grace_deadline{};
  bool stop_begun = false;
  (void)NotifySystemd(fmt::format("READY=1\nMAINPID={}", ::getpid()));
  std::vector<epoll_event> events(256);
  for (;;) {
    auto now = State::Clock::now();
    std::optional<State::Clock::time_point> next = s.Expire(now);  // may decide to stop (idle)
    if (s.stopping && !stop_begun) {
      stop_begun = true;
      s.BeginStop();
      grace_deadline = now + s.options.grace;
    }
    if (s.stopping) {
      if (s.executors.empty()) break;
      if (now >= grace_deadline) {
        for (auto& [pid, e] : s.executors) {
          if (!e.killed) s.KillExecutorProcess(e);
        }
        if (now >= grace_deadline + milliseconds(2000)) break;  // the zygote reaps the rest
      }
      EarliestOf(&next, now >= grace_deadline ? now + milliseconds(50) : grace_deadline);
    }
    int timeout = s.read_again.empty() ? TimeoutMs(next, now) : 0;
    int n = ::epoll_wait(s.epoll_fd.get(), events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("epoll_wait");
    }
    std::vector<int> again = std::move(s.read_again);
    s.read_again.clear();
    for (int i = 0; i < n; ++i) {
      uint64_t token = events[i].data.u64;
      uint32_t ev = events[i].events;
      uint64_t id = token & ((uint64_t{1} << 56) - 1);
      switch (static_cast<TokenKind>(token >> 56)) {
        case kListener:
          if (s.listener.valid()) s.OnListener();
          break;
        case kSignal: {
          signalfd_siginfo info;
          while (::read(s.signal_fd.get(), &info, sizeof info) == sizeof info) {
            if (info.ssi_signo == SIGHUP) {
              if (!s.options.log_path.empty()) s.CheckLog(true);
              SHAPEX_LOG(INFO, "SIGHUP: log reopened");
            } else {
              s.stopping = true;
            }
          }
          break;
        }
        case kZygote: if (!s.zygote_lost) s.OnZygote(); break;
        case kStore: if (s.store) s.store->RunCompleted(); break;
        case kClient:
          std::erase(again, static_cast<int>(id));
          s.OnClient(static_cast<int>(id), ev);
          break;
        case kExecutor: s.OnExecutor(id, ev); break;
      }
    }
    for (int id : again) s.OnClient(id, 0);
  }
  s.Shutdown();
  if (s.zygote_lost) return InternalError("the zygote died");
  return Status::Ok();
}

}  // namespace shapex::sandbox
