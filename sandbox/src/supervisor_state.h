// The supervisor's state and event handlers (supervisor.cc), and its status report
// (supervisor_status.cc). Private to sandbox/.
//
// Every peer is an ipc::AsyncChannel on one epoll loop. Connection states:
//   client:   handshake pending (deadline) -> active (reading; writing through a bounded
//             output buffer with a write deadline) -> dropped or closed
//   executor: starting (deadline for "ready") -> idle -> granting (store look-up on the worker)
//             -> leased (owned by one client) -> exiting; killed when its client leaves
//             without releasing it, or `release_timeout` after a released lease's client left
//   zygote:   one channel; its loss stops the supervisor
#ifndef SHAPEX_SANDBOX_SRC_SUPERVISOR_STATE_H_
#define SHAPEX_SANDBOX_SRC_SUPERVISOR_STATE_H_

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "shapex/core/scoped_fd.h"
#include "shapex/engine/blob.h"
#include "shapex/ipc/async_channel.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/unix_socket.h"
#include "shapex/sandbox/blob_store.h"
#include "shapex/sandbox/supervisor.h"
#include "cgroup.h"
#include "store_worker.h"
#include "zygote.h"

namespace shapex::sandbox {

using SteadyClock = std::chrono::steady_clock;

struct PendingLease {
  std::vector<engine::FunctionHash> hashes;
  SteadyClock::time_point queued;
  SteadyClock::time_point deadline;
};

// Why a client connection was dropped (the keys of status's "dropped").
enum class DropReason {
  kHandshakeTimeout,
  kPendingHandshakes,
  kTooManyClients,
  kProtocolError,
  kUnreadReplies,
  kWriteTimeout,
  kQueuedLeases,
  kCount
};
const char* DropReasonName(DropReason reason);

struct ExecutorEntry {
  enum State { kStarting, kIdle, kGranting, kLeased, kExiting };
  pid_t pid = -1;
  uint64_t serial = 0;  // never reused (pids may be)
  ScopedFd pidfd;
  ipc::AsyncChannel control;
  State state = kStarting;
  uint32_t interest = 0;   // events registered with epoll
  int client_id = -1;      // kGranting, kLeased
  bool released = false;   // the client said it ended the lease
  PendingLease granting;   // kGranting: the lease being granted
  uint64_t grant_seq = 0;  // which StartGrant a FinishGrant belongs to
  std::optional<SteadyClock::time_point> deadline;  // start, or a released orphan's "done"
  bool killed = false;
  uint64_t leases = 0;
  uint64_t calls = 0;
  int64_t spawn_ns = 0;
  std::unordered_set<engine::FunctionHash, engine::FunctionHashHasher> preloaded;
};

struct ClientEntry {
  int id = 0;
  ipc::AsyncChannel conn;
  SteadyClock::time_point accepted;
  pid_t peer_pid = 0;
  bool reading = true;            // EPOLLIN wanted (off while replies pile up)
  uint32_t interest = 0;          // events registered with epoll
  std::deque<PendingLease> queued;
  std::set<pid_t> leases;         // executors granted or being granted to it
  uint64_t requests = 0;
  // Set by a request handler that decided to drop this client: its channel is still being
  // read then, so the drop happens once OnReadable returns.
  std::optional<std::pair<DropReason, std::string>> drop;  // why
};


struct SupervisorStats {
  uint64_t spawned = 0, spawn_failures = 0, crashes = 0, seccomp_kills = 0, kills = 0;
  uint64_t leases_requested = 0, leases_granted = 0, leases_lost = 0, leases_released = 0;
  uint64_t lease_wait_timeouts = 0, orphaned_kills = 0, executor_start_timeouts = 0;
  uint64_t calls = 0, errors = 0, code_bytes_received = 0, blobs_preloaded = 0;
  uint64_t refused_peers = 0, connections = 0;
  uint64_t dropped[static_cast<size_t>(DropReason::kCount)] = {};
};

struct Supervisor::State {
  using Clock = SteadyClock;

  // First, so that it is destroyed last (Teardown needs the zygote gone).
  std::optional<ExecutorCgroups> cgroups;
  // Executors the cgroup OOM killer ended, oldest first (bounded): `exit_reason` answers.
  std::deque<pid_t> oom_killed;
  SupervisorOptions options;
  std::string socket_path;
  ScopedFd lock_fd;            // flock(LOCK_EX) on socket_path + ".lock" while we serve
  bool socket_activated = false;
  struct stat socket_stat {};  // the inode we bound (unlinked at exit only if still ours)
  ipc::UnixListener listener;
  ZygoteHandle zygote;
  ipc::AsyncChannel zygote_channel;
  uint32_t zygote_interest = 0;
  bool zygote_lost = false;
  ScopedFd epoll_fd;
  std::map<pid_t, ExecutorEntry> executors;
  std::map<uint64_t, pid_t> executor_by_serial;
  uint64_t next_serial = 1;
  std::map<int, ClientEntry> clients;
  int next_client_id = 1;
  std::deque<int> round_robin;  // clients with queued leases, served in turn
  size_t queued_total = 0;
  std::unique_ptr<StoreWorker> store;
  ScopedFd signal_fd;
  Clock::time_point started;
  std::optional<Clock::time_point> idle_since;
  Clock::time_point next_log_check;
  size_t spawning = 0;
  int64_t next_token = 1;
  bool stopping = false;
  SupervisorStats stats;
  std::map<std::string, uint64_t> errors_by_kind;
  std::vector<int64_t> spawn_ns_samples;  // SpawnJailed: clone3 + jail steps + ready
  std::vector<int64_t> clone_ns_samples;  // the clone3 call alone (the kernel's part)
  std::vector<int> read_again;            // clients with buffered bytes left unread

  size_t MaxLeasesPerClient() const;
  void Watch(int fd, uint32_t events, uint64_t token, bool add);
  void Unwatch(int fd);
  // Registers the events `fd` should wake the loop for; one epoll_ctl, only when they change.
  void SetInterest(int fd, uint32_t want, uint64_t token, uint32_t* current);
  void RearmZygote();                  // readable; writable while output is queued
  void RearmExecutor(ExecutorEntry& e);

  void FillPool();
  void OnZygote();
  void OnZygoteMessage(ipc::ControlMessage& m, std::vector<ScopedFd>& fds);
  void OnExecutor(uint64_t serial, uint32_t events);
  void OnExecutorMessage(ExecutorEntry& e, ipc::ControlMessage& m);
  void RemoveExecutor(pid_t pid);
  void OnLeaseDone(ExecutorEntry& e, ipc::ControlMessage& m);
  void OnExecutorReaped(pid_t pid, const ipc::ControlMessage& exited);
  // `exit_reason`: ResourceExhausted when `pid` was OOM-killed in its cgroup, else OK.
  Status ExitReason(pid_t pid) const;
  void OnListener();
  void OnClient(int id, uint32_t events);
  void OnClientMessage(ClientEntry& c, ipc::ControlMessage& m);
  void UpdateClientInterest(ClientEntry& c);
  void DropClient(int id, std::optional<DropReason> reason, const std::string& why);
  void ServeQueue();
  void StartGrant(ExecutorEntry& e, ClientEntry& c, PendingLease lease);
  void FinishGrant(pid_t pid, uint64_t serial, uint64_t seq, std::vector<std::vector<uint8_t>> blobs,
                   std::vector<engine::FunctionHash> hashes);
  void SendToExecutor(ExecutorEntry& e, const ipc::ControlMessage& m,
                      std::vector<ScopedFd> fds = {});
  void KillExecutorProcess(ExecutorEntry& e);
  // Deadlines: drops, lease-wait timeouts, start timeouts, orphan kills. Returns the next one.
  std::optional<Clock::time_point> Expire(Clock::time_point now);
  void BeginStop();
  bool Idle() const;
  // Joins the store's thread, closes the zygote's channel and reaps it (idempotent).
  void Shutdown();
  void CheckLog(bool reopen);
  std::string StatusJson() const;
  std::string StatusText() const;  // the human form of `shapex status`
};

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SRC_SUPERVISOR_STATE_H_
