// RemoteCalls: runs the @remote calls a Vm makes in an executor leased from the supervisor, or,
// with `in_process`, through the executor's own code in this process (what `shapex run --local`
// does: the same copies at the same points, the same limits, no sandbox). LANGUAGE.md
// "Running", docs/language.md "What crosses a remote call".
//
//   RemoteCalls remote(*program, options);
//   engine::Vm vm(*program, limits);
//   remote.Install(vm);
//   Status s = vm.RunMain(args);     // @remote calls go to the executor; the rest runs here
//
// Per call: the arguments, a closure callee's captured variables and the module globals the
// code uses are copied into one document (ipc::WireEncoder: sharing and cycles survive), and
// the functions those values name travel as code with the callee's (link roots). Code travels
// once per executor (ExecutorSession negotiation). The call gets what is left of this Vm's fuel
// and call depth, and the fuel it used is charged here. What the call printed is printed
// through this Vm, at the point of the call. The result becomes a value of this Vm; an error
// keeps its kind and message, and its trace is the remote frames, named with this program's
// debug info (the executor's names are used only for code this program lacks), followed by the
// caller's frames here.
//
// pmap(xs, f) where f is a @remote function is spread over up to `max_parallel` executors
// (RemoteMapHandler) in batches (CallBatch: the function, its code and the globals once, then
// many items; the chunk size adapts, starting at one item and growing while batches come back
// fast), several batches in flight per executor, results taken in item order, printing each
// call's output as it is taken. Each item is still a call of its own (its own copies, fuel
// charged as one call after another would be). The first failing item in order wins: its
// output and error are reported, and the executors still running later items are killed. Any other pmap (a closure,
// a local function) runs item by item here, and its calls into @remote functions copy at those
// calls, exactly as without pmap.
//
// Progress: when `progress_fd` (stderr by default) is a terminal, a pmap that has run for one
// second shows `pmap DONE/TOTAL` there, redrawn ten times a second by a thread of this object
// and erased (carriage return, clear line) when the pmap ends and whenever the program prints.
// Both ways a pmap runs report it (spread over executors, or item by item here, as with
// --local), through the Vm's MapProgress hook. Nothing is written when it is not a terminal.
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
#include "shapex/engine/blob_cache.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/wire_value.h"

namespace shapex {

struct RemoteCallsOptions {
  ClientOptions client;     // supervisor socket, autostart, transport, call timeout
  // Sent with every call: memory (per Vm) and timeout; fuel only when the calling Vm has no
  // fuel limit of its own (otherwise a call gets what is left), stack never (a call gets the
  // calling Vm's remaining depth). 0 = the executor's default.
  ipc::CallLimits limits;
  // Executors one pmap spreads over (0: one per CPU of this machine).
  size_t max_parallel = 0;
  // Calls in flight per executor during a pmap. 1 (the default) is always safe. More overlaps
  // the round trips, but a request and a response that both overflow the connection's buffers
  // (the ring plus the socket: inline values near 1 MiB, or megabytes of printed output) would
  // block both sides until the send timeout, so raise it only for small calls.
  size_t window = 1;
  // Run calls in this process through the executor's code (ipc::ExecuteRemoteCall on the
  // encoded request) instead of leasing executors: no supervisor, no sandbox, same results.
  bool in_process = false;
  // The executor defaults an in-process call runs with (what `shapex serve` gives executors).
  engine::Limits in_process_defaults;
  // Where a long pmap shows its progress line if this descriptor is a terminal (see above);
  // -1: never. Default: stderr.
  int progress_fd = 2;
};

struct RemoteCallsStats {
  uint64_t calls = 0;
  uint64_t leases = 0;
  uint64_t batches = 0;       // pmaps spread over executors
  uint64_t batch_messages = 0;  // CallBatch messages those pmaps sent (calls counts items)
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

  // Calls `callee` (a function or closure of the program) remotely whether or not it is
  // @remote, from outside any running call (what `shapex call` does). On an error, *trace gets
  // the remote frames, named as in a trace of `vm`.
  Status Invoke(engine::Vm& vm, const engine::Value& callee, std::span<const engine::Value> args,
                engine::Value* result, std::vector<engine::TraceFrame>* trace);

  // The limits sent with the calls from now on (RemoteCallsOptions::limits).
  void SetLimits(const ipc::CallLimits& limits) { options_.limits = limits; }

  const RemoteCallsStats& stats() const { return stats_; }

 private:
  // What every call needs to know about one function's code, computed once.
  struct Code {
    engine::BlobSet set;             // the function, what it reaches, its types' methods
    std::vector<uint32_t> globals;   // global slots that code uses
  };

  Status Call(engine::Vm& vm, const engine::Value& callee, std::span<const engine::Value> args,
              engine::Value* result);
  Status Map(engine::Vm& vm, const engine::Value& callee, std::span<const engine::Value> items,
             std::vector<engine::Value>* results, bool* handled);
  // Blobs, proto index and type registry (no supervisor needed).
  Status PrepareBlobs();
  // PrepareBlobs, then the client (connecting to, or starting, the supervisor).
  Status Prepare();
  // The content hash of a function or closure value of the program.
  Result<engine::FunctionHash> HashOf(const engine::Value& callee);
  Result<const Code*> CodeFor(const engine::FunctionHash& hash);
  // The request for callee(args). Copying the values is charged to `vm`'s fuel unless
  // `charge` is false.
  Result<ipc::RemoteCallRequest> BuildRequest(engine::Vm& vm, const engine::Value& callee,
                                              std::span<const engine::Value> args,
                                              bool charge = true);
  // What a request needs besides its arguments (and captures), already in request->arguments:
  // the globals the code uses (written with `encoder`, after the values it wrote), the code's
  // blobs, impls and link roots. `seed` names functions and types of values written with
  // another encoder (a batch's item), taken into account as if written with this one.
  struct Seed {
    std::vector<engine::FunctionHash> functions;
    std::vector<const engine::StructType*> structs;
    std::vector<const engine::EnumType*> enums;
  };
  Status CompleteRequest(engine::Vm& vm, ipc::WireEncoder& encoder,
                         const engine::FunctionHash& hash, const Code* code,
                         const engine::Proto& proto, const Seed& seed,
                         ipc::RemoteCallRequest* request);
  // The per-call limits of a call made now from `vm` (what is left of its fuel and depth).
  Result<ipc::CallLimits> LimitsNow(engine::Vm& vm) const;
  // pmap over the leased executors in batches (docs/wire-protocol.md "CallBatch").
  Status MapBatched(engine::Vm& vm, const engine::Value& callee, const engine::FunctionHash& hash,
                    std::span<const engine::Value> items, std::vector<engine::Value>* results);
  // callee(item) as one call on lease `e`, as Call would make it (charges, output, trace).
  Status CallOnLease(engine::Vm& vm, const engine::Value& callee,
                     const engine::FunctionHash& hash, const engine::Value& item, size_t e,
                     engine::Value* result);
  // Runs one request: on a leased executor (lease `e`), or in this process.
  Result<ipc::RemoteCallResponse> Run(ipc::RemoteCallRequest request);
  // Prints the call's output through `vm`, charges the fuel it used, then gives its value as a
  // `vm` value or its error (with the remote trace in *trace).
  Status Finish(engine::Vm& vm, const ipc::RemoteCallResponse& response,
                const engine::FunctionHash& entry, const engine::Proto* entry_proto,
                engine::Value* result, std::vector<engine::TraceFrame>* trace);
  // Names remote frames with this program's debug info where it has their code.
  void NameFrames(std::vector<engine::TraceFrame>* frames, const engine::FunctionHash& entry,
                  const engine::Proto* entry_proto) const;
  // Makes sure at least `n` executors are leased (at least one, or the lease error).
  Status EnsureLeases(size_t n, const ipc::RemoteCallRequest& sample);

  const engine::Program& program_;
  RemoteCallsOptions options_;
  std::optional<engine::ProgramBlobs> blobs_;
  ipc::ProtoIndex protos_;
  std::unique_ptr<ipc::TypeRegistry> types_;
  std::optional<Client> client_;
  std::vector<Lease> leases_;  // leases_[0] takes single calls
  std::map<engine::FunctionHash, Code> code_;
  // In-process executor state: the blobs it has seen and the programs it linked.
  std::unique_ptr<engine::BlobCache> local_cache_;
  std::unique_ptr<ipc::LinkCache> local_links_;
  RemoteCallsStats stats_;
  // The pmap progress line, when progress_fd is a terminal (made by Install).
  std::unique_ptr<engine::MapProgress> progress_;
};

}  // namespace shapex

#endif  // SHAPEX_CLIENT_REMOTE_CALLS_H_
