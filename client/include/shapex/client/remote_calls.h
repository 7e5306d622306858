// RemoteCalls: runs the @remote calls a Vm makes in an executor leased from the supervisor.
// This is what `shapex run` does (LANGUAGE.md "Running"); `--local` simply does not install it.
//
//   RemoteCalls remote(*program, options);
//   engine::Vm vm(*program, limits);
//   remote.Install(vm);
//   Status s = vm.RunMain(args);     // @remote calls go to the executor; the rest runs here
//
// Per call: the callee (a @remote function, or a closure over one) and the arguments become
// WireValues; a closure's captured values and the module globals the callee's code uses are
// copied along (send-copy: assignments made remotely are not seen here). Code travels once per
// executor (ExecutorSession negotiation). What the call printed is printed through this Vm, at
// the point of the call, so output looks the same as with --local. The result becomes a value of
// this Vm; an error keeps its kind and message, and its trace is the remote frames followed by
// the caller's frames here.
//
// pmap(xs, f) where f is @remote, or a closure whose code reaches a @remote function, is spread
// over up to `max_parallel` executors (RemoteMapHandler; any other pmap stays local and needs no
// supervisor): the calls f(xs[i]) go out item i to executor i mod n, and results are taken in item order, printing each call's output
// as it is taken. The first failing item in order wins: its output and error are reported, and
// the executors still running later items are killed (so nothing after it has any effect
// here). A closure is shipped with copies of its captures, like any remote closure.
//
// Executors are leased on first use and kept until this object dies. A call that loses its
// executor (ExecutorCrashed) or runs past the call timeout (Timeout: the executor is killed)
// fails with that error; the next call leases a new executor.
//
// Thread-safety: as the Vm, single-threaded. The Program must outlive this object, and this
// object must outlive the Vms it is installed in (or have the handler removed first).
#ifndef SHAPEX_CLIENT_REMOTE_CALLS_H_
#define SHAPEX_CLIENT_REMOTE_CALLS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "shapex/client/client.h"
#include "shapex/core/status.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/program.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/wire_value.h"

namespace shapex {

struct RemoteCallsOptions {
  ClientOptions client;     // supervisor socket, autostart, transport, call timeout
  ipc::CallLimits limits;   // sent with every call (0 = the executor's default)
  // Executors one pmap spreads over (0: one per CPU of this machine).
  size_t max_parallel = 0;
  // Calls in flight per executor during a pmap. 1 (the default) is always safe. More overlaps
  // the round trips, but a request and a response that both overflow the connection's buffers
  // (the ring plus the socket: inline values near 1 MiB, or megabytes of printed output) would
  // block both sides until the send timeout, so raise it only for small calls.
  size_t window = 1;
};

struct RemoteCallsStats {
  uint64_t calls = 0;
  uint64_t leases = 0;
  uint64_t batches = 0;       // pmaps spread over executors
  size_t max_executors = 0;   // the most executors one pmap used
};

class RemoteCalls {
 public:
  RemoteCalls(const engine::Program& program, RemoteCallsOptions options);
  ~RemoteCalls();
  RemoteCalls(const RemoteCalls&) = delete;
  RemoteCalls& operator=(const RemoteCalls&) = delete;

  // Routes `vm`'s @remote calls and pmaps here (Vm::SetRemoteCallHandler, SetRemoteMapHandler).
  void Install(engine::Vm& vm);

  const RemoteCallsStats& stats() const { return stats_; }

 private:
  // What every call of one entry function needs, computed on its first call.
  struct Entry {
    ipc::RemoteCallRequest request;  // name, id, hash, blobs, impls; no arguments
    std::vector<uint32_t> globals;   // global slots the entry's code (transitively) uses
    bool reaches_remote = false;     // the entry or a function it reaches is @remote
  };

  Status Call(engine::Vm& vm, const engine::Value& callee, std::span<const engine::Value> args,
              engine::Value* result);
  Status Map(engine::Vm& vm, const engine::Value& callee, std::span<const engine::Value> items,
             std::vector<engine::Value>* results, bool* handled);
  // Blobs, proto index and type registry (no supervisor needed).
  Status PrepareBlobs();
  // PrepareBlobs, then the client (connecting to, or starting, the supervisor).
  Status Prepare();
  Result<Entry*> EntryFor(const ipc::WireValue& callee);
  Result<Entry*> EntryForHash(const engine::FunctionHash& hash);
  // The request for callee(args): the entry's template plus arguments, captures and globals.
  Result<ipc::RemoteCallRequest> BuildRequest(engine::Vm& vm, const ipc::WireValue& callee,
                                              const Entry& entry,
                                              std::span<const engine::Value> args);
  // Prints the call's output through `vm`, then gives its value as a `vm` value or its error
  // (with the remote trace set on `vm`).
  Status Finish(engine::Vm& vm, const ipc::RemoteCallResponse& response, engine::Value* result);
  // Makes sure at least `n` executors are leased (at least one, or the lease error).
  Status EnsureLeases(size_t n, const ipc::RemoteCallRequest& sample);

  const engine::Program& program_;
  RemoteCallsOptions options_;
  std::optional<engine::ProgramBlobs> blobs_;
  ipc::ProtoIndex protos_;
  std::unordered_map<const engine::Proto*, uint32_t> proto_index_;
  std::unique_ptr<ipc::TypeRegistry> types_;
  std::optional<Client> client_;
  std::vector<Lease> leases_;  // leases_[0] takes single calls
  std::map<engine::FunctionHash, Entry> entries_;
  RemoteCallsStats stats_;
};

}  // namespace shapex

#endif  // SHAPEX_CLIENT_REMOTE_CALLS_H_
