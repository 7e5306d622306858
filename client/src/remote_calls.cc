#include "shapex/client/remote_calls.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "shapex/ipc/remote_call.h"

namespace shapex {

RemoteCalls::RemoteCalls(const engine::Program& program, RemoteCallsOptions options)
    : program_(program), options_(std::move(options)) {}

RemoteCalls::~RemoteCalls() {
  if (lease_) lease_->session.Close();
}

void RemoteCalls::Install(engine::Vm& vm) {
  vm.SetRemoteCallHandler([this](engine::Vm& v, const engine::Value& callee,
                                 std::span<const engine::Value> args, engine::Value* result) {
    return Call(v, callee, args, result);
  });
}

Status RemoteCalls::Prepare() {
  if (!blobs_) {
    ASSIGN_OR_RETURN(engine::ProgramBlobs blobs, engine::BuildProgramBlobs(program_));
    blobs_ = std::move(blobs);
    protos_ = ipc::MakeProtoIndex(blobs_->proto_hashes);
    types_ = std::make_unique<ipc::TypeRegistry>(program_);
  }
  if (!client_) {
    ASSIGN_OR_RETURN(Client client, Client::Connect(options_.client));
    client_.emplace(std::move(client));
  }
  return Status::Ok();
}

Result<RemoteCalls::Entry*> RemoteCalls::EntryFor(const ipc::WireValue& callee) {
  const auto* hash = std::get_if<engine::FunctionHash>(&callee.data);
  if (hash == nullptr) return ArgumentError("malformed function value");
  auto found = entries_.find(*hash);
  if (found != entries_.end()) return &found->second;
  // The request template: a function value of the same entry (captures are per call).
  ipc::WireValue function = callee;
  function.kind = ipc::WireKind::kFunction;
  function.children.clear();
  ASSIGN_OR_RETURN(ipc::RemoteCallRequest request,
                   ipc::BuildValueCallRequest(*blobs_, function, {}));
  Entry entry;
  for (const engine::FunctionBlob& blob : *request.blobs) {
    auto proto = protos_.find(blob.hash);
    if (proto == protos_.end()) continue;
    for (uint32_t slot : engine::GlobalsUsedBy(*program_.protos[proto->second]))
      entry.globals.push_back(slot);
  }
  std::sort(entry.globals.begin(), entry.globals.end());
  entry.globals.erase(std::unique(entry.globals.begin(), entry.globals.end()),
                      entry.globals.end());
  entry.request = std::move(request);
  return &entries_.emplace(*hash, std::move(entry)).first->second;
}

Status RemoteCalls::Call(engine::Vm& vm, const engine::Value& callee,
                         std::span<const engine::Value> args, engine::Value* result) {
  RETURN_IF_ERROR(Prepare());
  ipc::ToWireContext to_wire{&program_, blobs_->proto_hashes};
  ASSIGN_OR_RETURN(ipc::WireValue callee_wire, ipc::ToWire(callee, to_wire));
  if (callee_wire.kind != ipc::WireKind::kFunction &&
      callee_wire.kind != ipc::WireKind::kClosure) {
    return ArgumentError("cannot call a " + ipc::DescribeWire(callee_wire) + " remotely");
  }
  ASSIGN_OR_RETURN(Entry * entry, EntryFor(callee_wire));

  ipc::RemoteCallRequest request = entry->request;
  for (size_t i = 0; i < args.size(); ++i) {
    Result<ipc::WireValue> w = ipc::ToWire(args[i], to_wire);
    if (!w) {
      return Status(w.error().kind(),
                    fmt::format("argument {} of {}: {}", i + 1, request.function_name,
                                w.error().message()));
    }
    request.arguments.push_back(std::move(*w));
  }
  if (callee_wire.kind == ipc::WireKind::kClosure) request.captures = callee_wire.children;
  for (uint32_t slot : entry->globals) {
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

  if (!lease_) {
    ASSIGN_OR_RETURN(Lease lease, client_->LeaseExecutor(ipc::OfferedHashes(request)));
    lease_.emplace(std::move(lease));
    ++stats_.leases;
  }
  ++stats_.calls;
  Result<ipc::RemoteCallResponse> response = client_->CallOn(*lease_, std::move(request));
  if (!response.has_value()) {
    // The executor is gone (crashed, or killed for a timeout): the next call leases another.
    lease_.reset();
    return response.error();
  }
  if (!response->output.empty()) vm.Print(response->output);
  if (!response->ok()) {
    vm.SetRemoteErrorTrace(response->error().trace);
    return response->status();
  }
  ipc::FromWireContext from_wire{&vm, &protos_, types_.get()};
  ASSIGN_OR_RETURN(*result, ipc::FromWire(response->value(), from_wire));
  return Status::Ok();
}

}  // namespace shapex
