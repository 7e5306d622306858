#include "shapex/client/remote_calls.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <string>
#include <thread>
#include <utility>

#include "shapex/ipc/remote_call.h"

namespace shapex {

RemoteCalls::RemoteCalls(const engine::Program& program, RemoteCallsOptions options)
    : program_(program), options_(std::move(options)) {
  if (options_.max_parallel == 0)
    options_.max_parallel = std::max<size_t>(1, std::thread::hardware_concurrency());
  options_.window = std::max<size_t>(1, options_.window);
}

RemoteCalls::~RemoteCalls() {
  for (Lease& lease : leases_) client_->Release(lease);
}

void RemoteCalls::Install(engine::Vm& vm) {
  vm.SetRemoteCallHandler([this](engine::Vm& v, const engine::Value& callee,
                                 std::span<const engine::Value> args, engine::Value* result) {
    return Call(v, callee, args, result);
  });
  vm.SetRemoteMapHandler([this](engine::Vm& v, const engine::Value& callee,
                                std::span<const engine::Value> items,
                                std::vector<engine::Value>* results, bool* handled) {
    return Map(v, callee, items, results, handled);
  });
}

Status RemoteCalls::PrepareBlobs() {
  if (!blobs_) {
    ASSIGN_OR_RETURN(engine::ProgramBlobs blobs, engine::BuildProgramBlobs(program_));
    blobs_ = std::move(blobs);
    protos_ = ipc::MakeProtoIndex(blobs_->proto_hashes);
    types_ = std::make_unique<ipc::TypeRegistry>(program_);
    for (size_t i = 0; i < program_.protos.size(); ++i)
      proto_index_[program_.protos[i].get()] = static_cast<uint32_t>(i);
  }
  return Status::Ok();
}

Status RemoteCalls::Prepare() {
  RETURN_IF_ERROR(PrepareBlobs());
  if (!client_) {
    ASSIGN_OR_RETURN(Client client, Client::Connect(options_.client));
    client_.emplace(std::move(client));
  }
  return Status::Ok();
}

Result<RemoteCalls::Entry*> RemoteCalls::EntryFor(const ipc::WireValue& callee) {
  if (callee.kind != ipc::WireKind::kFunction && callee.kind != ipc::WireKind::kClosure)
    return ArgumentError("cannot call a " + ipc::DescribeWire(callee) + " remotely");
  const auto* hash = std::get_if<engine::FunctionHash>(&callee.data);
  if (hash == nullptr) return ArgumentError("malformed function value");
  return EntryForHash(*hash);
}

Result<RemoteCalls::Entry*> RemoteCalls::EntryForHash(const engine::FunctionHash& hash) {
  auto found = entries_.find(hash);
  if (found != entries_.end()) return &found->second;
  // The request template: a function value of the entry (captures are per call).
  ipc::WireValue function;
  function.kind = ipc::WireKind::kFunction;
  function.data = hash;
  ASSIGN_OR_RETURN(ipc::RemoteCallRequest request,
                   ipc::BuildValueCallRequest(*blobs_, function, {}));
  Entry entry;
  if (request.blobs) {
    for (const engine::FunctionBlob& blob : *request.blobs) {
      auto proto = protos_.find(blob.hash);
      if (proto == protos_.end()) continue;
      const engine::Proto& p = *program_.protos[proto->second];
      entry.reaches_remote |= p.remote;
      for (uint32_t slot : engine::GlobalsUsedBy(p)) entry.globals.push_back(slot);
    }
  }
  std::sort(entry.globals.begin(), entry.globals.end());
  entry.globals.erase(std::unique(entry.globals.begin(), entry.globals.end()),
                      entry.globals.end());
  entry.request = std::move(request);
  return &entries_.emplace(hash, std::move(entry)).first->second;
}

Result<ipc::RemoteCallRequest> RemoteCalls::BuildRequest(engine::Vm& vm,
                                                         const ipc::WireValue& callee,
                                                         const Entry& entry,
                                                         std::span<const engine::Value> args) {
  ipc::ToWireContext to_wire{&program_, blobs_->proto_hashes};
  // Large arrays are read straight from this Vm's buffers when they are copied into the
  // session's segments: the Vm does not run until the call is answered.
  to_wire.borrow_threshold = ipc::kSidecarThreshold;
  ipc::RemoteCallRequest request = entry.request;
  for (size_t i = 0; i < args.size(); ++i) {
    Result<ipc::WireValue> w = ipc::ToWire(args[i], to_wire);
    if (!w) {
      return Status(w.error().kind(), fmt::format("argument {} of {}: {}", i + 1,
                                                  request.function_name, w.error().message()));
    }
    request.arguments.push_back(std::move(*w));
  }
  if (callee.kind == ipc::WireKind::kClosure) request.captures = callee.children;
  for (uint32_t slot : entry.globals) {
    const engine::Value& value = vm.global(slot);
    if (value.type == engine::Type::kNone) continue;  // None there too
    Result<ipc::WireValue> w = ipc::ToWire(value, to_wire);
    if (!w) {
      return Status(w.error().kind(),
                    fmt::format("global {} (used by {}): {}", program_.global_names[slot],
                                request.function_name, w.error().message()));
    }
    request.globals.emplace_back(program_.global_names[slot], std::move(*w));
  }
  if (options_.limits != ipc::CallLimits{}) request.limits = options_.limits;
  return request;
}

Status RemoteCalls::Finish(engine::Vm& vm, const ipc::RemoteCallResponse& response,
                           engine::Value* result) {
  if (!response.output.empty()) vm.Print(response.output);
  if (!response.ok()) {
    vm.SetRemoteErrorTrace(response.error().trace);
    return response.status();
  }
  ipc::FromWireContext from_wire{&vm, &protos_, types_.get()};
  ASSIGN_OR_RETURN(*result, ipc::FromWire(response.value(), from_wire));
  return Status::Ok();
}

Status RemoteCalls::EnsureLeases(size_t n, const ipc::RemoteCallRequest& sample) {
  std::vector<engine::FunctionHash> code = ipc::OfferedHashes(sample);
  while (leases_.size() < n) {
    // Only the first lease may wait: holding one executor while queueing for another could
    // wait forever on a supervisor with a smaller pool.
    Result<Lease> lease = client_->LeaseExecutor(code, /*wait=*/leases_.empty());
    if (!lease.has_value()) {
      // Fewer executors than wanted (a busy supervisor) is fine; none is the error.
      if (!leases_.empty()) return Status::Ok();
      return lease.error();
    }
    leases_.push_back(std::move(*lease));
    ++stats_.leases;
  }
  return Status::Ok();
}

Status RemoteCalls::Call(engine::Vm& vm, const engine::Value& callee,
                         std::span<const engine::Value> args, engine::Value* result) {
  RETURN_IF_ERROR(Prepare());
  ASSIGN_OR_RETURN(ipc::WireValue callee_wire,
                   ipc::ToWire(callee, ipc::ToWireContext{&program_, blobs_->proto_hashes}));
  ASSIGN_OR_RETURN(Entry * entry, EntryFor(callee_wire));
  ASSIGN_OR_RETURN(ipc::RemoteCallRequest request, BuildRequest(vm, callee_wire, *entry, args));
  RETURN_IF_ERROR(EnsureLeases(1, request));
  ++stats_.calls;
  Result<ipc::RemoteCallResponse> response = client_->CallOn(leases_[0], std::move(request));
  if (!response.has_value()) {
    // The executor is gone (crashed, or killed for a timeout): the next call leases another.
    leases_.erase(leases_.begin());
    return response.error();
  }
  return Finish(vm, *response, result);
}

Status RemoteCalls::Map(engine::Vm& vm, const engine::Value& callee,
                        std::span<const engine::Value> items, std::vector<engine::Value>* results,
                        bool* handled) {
  // Decline before anything that needs a supervisor or sendable captures: a pmap of a local
  // function stays entirely local, as with --local.
  *handled = false;
  const engine::Proto* proto = engine::CalleeProto(callee);
  if (proto == nullptr || !PrepareBlobs().ok()) return Status::Ok();
  auto index = proto_index_.find(proto);
  if (index == proto_index_.end() || index->second >= blobs_->proto_hashes.size())
    return Status::Ok();
  Result<Entry*> found = EntryForHash(blobs_->proto_hashes[index->second]);
  if (!found.has_value() || !(*found)->reaches_remote) return Status::Ok();
  Entry* entry = *found;
  *handled = true;
  RETURN_IF_ERROR(Prepare());
  ASSIGN_OR_RETURN(ipc::WireValue callee_wire,
                   ipc::ToWire(callee, ipc::ToWireContext{&program_, blobs_->proto_hashes}));
  // Requests are built as they are sent (the Vm does not run meanwhile, so every item sees
  // the same globals), so memory stays proportional to the calls in flight.
  auto build = [&](size_t i) {
    return BuildRequest(vm, callee_wire, *entry, std::span<const engine::Value>(&items[i], 1));
  };
  RETURN_IF_ERROR(EnsureLeases(std::min(items.size(), options_.max_parallel), entry->request));
  const size_t n = std::min(items.size(), leases_.size());
  ++stats_.batches;
  stats_.max_executors = std::max(stats_.max_executors, n);

  // Item i runs on executor i mod n; each executor has at most `window` calls in flight, and
  // answers are taken in item order, so the oldest call in flight on executor i mod n is i.
  std::vector<uint64_t> call_ids(items.size());
  std::vector<size_t> next(n);  // per executor: the next item to send
  for (size_t e = 0; e < n; ++e) next[e] = e;
  std::vector<bool> busy(n, false);  // has calls in flight
  auto send_more = [&](size_t e, size_t upto) -> Status {
    while (next[e] < items.size() && next[e] <= upto) {
      size_t i = next[e];
      ASSIGN_OR_RETURN(ipc::RemoteCallRequest request, build(i));
      Result<uint64_t> started = leases_[e].session.Start(std::move(request));
      if (!started.has_value()) {
        // The executor went away while we were sending to it.
        if (started.error().kind() != ErrorKind::kIoError) return started.error();
        return ExecutorCrashedError(fmt::format("executor {} died during pmap: {}",
                                                leases_[e].executor_pid,
                                                started.error().message()));
      }
      call_ids[i] = *started;
      ++stats_.calls;
      busy[e] = true;
      next[e] += n;
    }
    return Status::Ok();
  };
  // Drops the executors that still run calls (killing them, so later items stop) and gives
  // `error`.
  auto fail = [&](Status error) {
    for (size_t e = n; e-- > 0;) {
      if (!busy[e]) continue;
      (void)client_->KillExecutor(leases_[e].executor_pid);
      client_->Release(leases_[e]);
      leases_.erase(leases_.begin() + static_cast<std::ptrdiff_t>(e));
    }
    return error;
  };
  for (size_t e = 0; e < n; ++e) {
    Status sent = send_more(e, e + (options_.window - 1) * n);
    if (!sent.ok()) return fail(sent);
  }
  results->resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    size_t e = i % n;
    Result<ipc::RemoteCallResponse> response = client_->WaitOn(leases_[e], call_ids[i]);
    if (!response.has_value()) return fail(response.error());
    busy[e] = next[e] - n > i;  // calls after i are still in flight there
    Status sent = send_more(e, i + options_.window * n);
    if (!sent.ok()) return fail(sent);
    Status done = Finish(vm, *response, &(*results)[i]);
    if (!done.ok()) return fail(done);
  }
  return Status::Ok();
}

}  // namespace shapex
