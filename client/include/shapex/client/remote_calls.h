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
// One executor is leased on the first call and kept until this object dies. A call that loses
// its executor (ExecutorCrashed) or runs past the call timeout (Timeout: the executor is killed)
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
};

struct RemoteCallsStats {
  uint64_t calls = 0;
  uint64_t leases = 0;
};

class RemoteCalls {
 public:
  RemoteCalls(const engine::Program& program, RemoteCallsOptions options);
  ~RemoteCalls();
  RemoteCalls(const RemoteCalls&) = delete;
  RemoteCalls& operator=(const RemoteCalls&) = delete;

  // Routes `vm`'s @remote calls here (Vm::SetRemoteCallHandler).
  void Install(engine::Vm& vm);

  const RemoteCallsStats& stats() const { return stats_; }

 private:
  // What every call of one entry function needs, computed on its first call.
  struct Entry {
    ipc::RemoteCallRequest request;  // name, id, hash, blobs, impls; no arguments
    std::vector<uint32_t> globals;   // global slots the entry's code (transitively) uses
  };

  Status Call(engine::Vm& vm, const engine::Value& callee, std::span<const engine::Value> args,
              engine::Value* result);
  Status Prepare();
  Result<Entry*> EntryFor(const ipc::WireValue& callee);

  const engine::Program& program_;
  RemoteCallsOptions options_;
  std::optional<engine::ProgramBlobs> blobs_;
  ipc::ProtoIndex protos_;
  std::unique_ptr<ipc::TypeRegistry> types_;
  std::optional<Client> client_;
  std::optional<Lease> lease_;
  std::map<engine::FunctionHash, Entry> entries_;
  RemoteCallsStats stats_;
};

}  // namespace shapex

#endif  // SHAPEX_CLIENT_REMOTE_CALLS_H_
