// The supervisor's state and event handlers (supervisor.cc), and its status report
// (supervisor_status.cc). Private to sandbox/.
#ifndef SHAPEX_SANDBOX_SRC_SUPERVISOR_STATE_H_
#define SHAPEX_SANDBOX_SRC_SUPERVISOR_STATE_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "shapex/core/scoped_fd.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/blob_cache.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/control.h"
#include "shapex/ipc/unix_socket.h"
#include "shapex/sandbox/blob_store.h"
#include "shapex/sandbox/supervisor.h"
#include "zygote.h"

namespace shapex::sandbox {

struct ExecutorEntry {
  enum State { kStarting, kIdle, kLeased, kExiting };
  pid_t pid = -1;
  ScopedFd pidfd;
  ipc::Connection control;
  State state = kStarting;
  int client_id = -1;
  uint64_t leases = 0;
  uint64_t calls = 0;
  int64_t spawn_ns = 0;
  std::unordered_set<engine::FunctionHash, engine::FunctionHashHasher> preloaded;
};

struct ClientEntry {
  int id = 0;
  ipc::Connection conn;
};

struct QueuedLease {
  int client_id = 0;
  std::vector<engine::FunctionHash> hashes;
};

struct SupervisorStats {
  uint64_t spawned = 0, spawn_failures = 0, crashes = 0, seccomp_kills = 0, kills = 0;
  uint64_t leases_requested = 0, leases_granted = 0, leases_lost = 0;
  uint64_t calls = 0, errors = 0, code_bytes_received = 0, blobs_preloaded = 0;
  uint64_t refused_peers = 0;
};

struct Supervisor::State {
  using Clock = std::chrono::steady_clock;

  SupervisorOptions options;
  std::string socket_path;
  ipc::UnixListener listener;
  ZygoteHandle zygote;
  bool zygote_lost = false;
  std::map<pid_t, ExecutorEntry> executors;
  std::map<int, ClientEntry> clients;
  int next_client_id = 1;
  std::deque<QueuedLease> queue;
  std::optional<BlobStore> store;
  ScopedFd signal_fd;
  Clock::time_point started;
  size_t spawning = 0;
  int64_t next_token = 1;
  bool stopping = false;
  SupervisorStats stats;
  std::map<std::string, uint64_t> errors_by_kind;
  std::vector<int64_t> spawn_ns_samples;  // SpawnJailed: clone3 + jail steps + ready
  std::vector<int64_t> clone_ns_samples;  // the clone3 call alone (the kernel's part)
  std::vector<pid_t> just_connected;  // executors whose control connection is new

  void FillPool();
  void OnZygote();
  void OnExecutor(pid_t pid);
  void OnLeaseDone(ExecutorEntry& e, const ipc::ControlMessage& m);
  void OnListener();
  void OnClient(int id);
  void ServeQueue();
  Status Grant(ExecutorEntry& e, ClientEntry& c, const std::vector<engine::FunctionHash>& hashes);
  void KillExecutorProcess(const ExecutorEntry& e);
  std::string StatusJson() const;
  std::string StatusText() const;  // the human form of `shapex status`
};

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SRC_SUPERVISOR_STATE_H_
