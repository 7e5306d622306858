#include "shapex/client/remote_calls.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/sidecar.h"

namespace shapex {
namespace {

// `pmap 37/100` on a terminal (RemoteCallsOptions::progress_fd). The Vm's thread only stores
// counts; a thread of our own draws the line from one second after a pmap begins, at most ten
// times a second, because an item may take longer than that (nothing would be drawn until it
// ended). Every write to the terminal is made under mu_, and the program's output is written
// under it too (Before/AfterOutput), with the line taken away first, so the two never share a
// line: the thread draws it again at its next tick.
class ProgressLine final : public engine::MapProgress {
 public:
  explicit ProgressLine(int fd) : fd_(fd) {}
  ~ProgressLine() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void Begin(size_t total) override {
    std::lock_guard<std::mutex> lock(mu_);
    total_ = total;
    done_.store(0, std::memory_order_relaxed);
    start_ = Clock::now();
    running_ = true;
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
    wake_.notify_all();
  }
  void Advance(size_t done) override { done_.store(done, std::memory_order_relaxed); }
  void End() override {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
    Erase();
  }
  void BeforeOutput() override {
    mu_.lock();
    Erase();
  }
  void AfterOutput() override { mu_.unlock(); }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDelay{1000};
  static constexpr std::chrono::milliseconds kTick{100};

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!quit_) {
      if (!running_) {
        wake_.wait(lock);
        continue;
      }
      Clock::time_point show_at = start_ + kDelay;
      if (Clock::now() < show_at) {
        wake_.wait_until(lock, show_at);
        continue;
      }
      Draw();
      wake_.wait_for(lock, kTick);
    }
  }
  // Under mu_.
  void Draw() {
    std::string line = fmt::format("pmap {}/{}", done_.load(std::memory_order_relaxed), total_);
    if (shown_ && line == drawn_) return;
    std::fflush(stdout);  // what the program printed before reaches the terminal first
    Write("\r\033[K" + line);
    drawn_ = std::move(line);
    shown_ = true;
  }
  void Erase() {
    if (!shown_) return;
    Write("\r\033[K");
    shown_ = false;
  }
  void Write(std::string_view text) {
    while (!text.empty()) {
      ssize_t n = ::write(fd_, text.data(), text.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a terminal that went away: no progress, nothing else lost
      text.remove_prefix(static_cast<size_t>(n));
    }
  }

  const int fd_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::thread thread_;
  bool quit_ = false;
  bool running_ = false;
  bool shown_ = false;
  size_t total_ = 0;
  std::atomic<size_t> done_{0};
  Clock::time_point start_;
  std::string drawn_;
};

}  // namespace

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
  if (options_.progress_fd >= 0 && ::isatty(options_.progress_fd) == 1) {
    if (!progress_) progress_ = std::make_unique<ProgressLine>(options_.progress_fd);
    vm.SetMapProgress(progress_.get());
  }
}

Status RemoteCalls::PrepareBlobs() {
  if (!blobs_) {
    ASSIGN_OR_RETURN(engine::ProgramBlobs blobs, engine::BuildProgramBlobs(program_));
    blobs_ = std::move(blobs);
    protos_ = ipc::MakeProtoIndex(blobs_->proto_hashes);
    types_ = std::make_unique<ipc::TypeRegistry>(program_);
  }
  return Status::Ok();
}

Status RemoteCalls::Prepare() {
  RETURN_IF_ERROR(PrepareBlobs());
  if (options_.in_process) {
    if (!local_cache_) {
      local_cache_ = std::make_unique<engine::BlobCache>();
      local_links_ = std::make_unique<ipc::LinkCache>();
    }
    return Status::Ok();
  }
  if (!client_) {
    ASSIGN_OR_RETURN(Client client, Client::Connect(options_.client));
    client_.emplace(std::move(client));
  }
  return Status::Ok();
}

Result<engine::FunctionHash> RemoteCalls::HashOf(const engine::Value& callee) {
  const engine::Proto* proto = engine::CalleeProto(callee);
  if (proto == nullptr) return ArgumentError("cannot call a " + engine::TypeName(callee) + " remotely");
  if (proto->index >= program_.protos.size() || program_.protos[proto->index].get() != proto ||
      proto->index >= blobs_->proto_hashes.size())
    return ArgumentError(fmt::format("function {} has no content hash here", proto->name));
  return blobs_->proto_hashes[proto->index];
}

Result<const RemoteCalls::Code*> RemoteCalls::CodeFor(const engine::FunctionHash& hash) {
  auto found = code_.find(hash);
  if (found != code_.end()) return &found->second;
  Code code;
  ASSIGN_OR_RETURN(code.set, engine::MinimalBlobsByHash(*blobs_, hash));
  for (const engine::FunctionBlob& blob : code.set.blobs) {
    auto proto = protos_.find(blob.hash);
    if (proto == protos_.end()) continue;
    for (uint32_t slot : engine::GlobalsUsedBy(*program_.protos[proto->second]))
      code.globals.push_back(slot);
  }
  std::sort(code.globals.begin(), code.globals.end());
  code.globals.erase(std::unique(code.globals.begin(), code.globals.end()), code.globals.end());
  return &code_.emplace(hash, std::move(code)).first->second;
}

Result<ipc::RemoteCallRequest> RemoteCalls::BuildRequest(engine::Vm& vm,
                                                         const engine::Value& callee,
                                                         std::span<const engine::Value> args) {
  ASSIGN_OR_RETURN(engine::FunctionHash hash, HashOf(callee));
  ASSIGN_OR_RETURN(const Code* code, CodeFor(hash));
  const engine::Proto& proto = *engine::CalleeProto(callee);
  ipc::RemoteCallRequest request;
  request.function_name = proto.name;
  request.function_id = proto.index;
  request.function_hash = hash;

  // One document: arguments, then the callee's captured variables, then globals.
  ipc::ToWireContext to_wire{&program_, blobs_->proto_hashes};
  // Large arrays are read straight from this Vm's buffers when they are copied into the
  // session's segments: the Vm does not run until the call is answered.
  to_wire.borrow_threshold = ipc::kSidecarThreshold;
  to_wire.fuel = &vm;  // copying is work the caller pays for
  ipc::WireEncoder encoder(to_wire);
  auto context = [&](const Status& error, const std::string& what) {
    return Status(error.kind(), fmt::format("{} of {}: {}", what, proto.name, error.message()));
  };
  for (size_t i = 0; i < args.size(); ++i) {
    Result<ipc::WireValue> w = encoder.Encode(args[i]);
    if (!w) return context(w.error(), fmt::format("argument {}", i + 1));
    request.arguments.push_back(std::move(*w));
  }
  if (callee.type == engine::Type::kClosure) {
    Result<std::vector<ipc::WireValue>> captures = encoder.EncodeCaptures(callee);
    if (!captures) return context(captures.error(), "a captured variable");
    request.captures = std::move(*captures);
  }
  // The globals the callee's code uses, and those of every function the values name (a global
  // may name more functions, so until nothing new turns up).
  std::vector<bool> sent(program_.global_names.size(), false);
  size_t functions_seen = 0;
  std::vector<const Code*> codes{code};
  for (;;) {
    const std::vector<engine::FunctionHash>& named = encoder.functions();
    for (; functions_seen < named.size(); ++functions_seen) {
      if (named[functions_seen] == hash) continue;
      ASSIGN_OR_RETURN(const Code* more, CodeFor(named[functions_seen]));
      codes.push_back(more);
    }
    std::set<uint32_t> slots;
    for (const Code* c : codes)
      for (uint32_t slot : c->globals)
        if (slot < sent.size() && !sent[slot]) slots.insert(slot);
    if (slots.empty()) break;
    for (uint32_t slot : slots) {
      sent[slot] = true;
      const engine::Value& value = vm.global(slot);
      if (value.IsUnset()) continue;  // its let has not run: unset there too
      Result<ipc::WireValue> w = encoder.Encode(value);
      if (!w) {
        return context(w.error(),
                       fmt::format("global {} (used by the code)", program_.global_names[slot]));
      }
      request.globals.emplace_back(program_.global_names[slot], std::move(*w));
    }
  }

  // The methods of the struct and enum types of the values travel too (a callee may call them
  // on a value it received, although its own code never names the type): their functions are
  // roots like function values.
  std::vector<engine::ImplEntry> value_impls;
  {
    std::set<engine::FunctionHash> type_hashes;
    for (const engine::StructType* t : encoder.struct_types())
      type_hashes.insert(engine::TypeSchemaHash(*t));
    for (const engine::EnumType* t : encoder.enum_types())
      type_hashes.insert(engine::TypeSchemaHash(*t));
    std::set<engine::FunctionHash> listed;
    for (const Code* c : codes) listed.insert(c->set.entry);
    for (const engine::ImplEntry& impl : blobs_->impls) {
      if (!type_hashes.count(impl.type_schema)) continue;
      value_impls.push_back(impl);
      if (listed.count(impl.function)) continue;
      ASSIGN_OR_RETURN(const Code* method, CodeFor(impl.function));
      listed.insert(impl.function);
      codes.push_back(method);
    }
    // A method's code may use globals not sent yet.
    for (size_t i = 0; i < codes.size(); ++i) {
      for (uint32_t slot : codes[i]->globals) {
        if (slot >= sent.size() || sent[slot]) continue;
        sent[slot] = true;
        const engine::Value& value = vm.global(slot);
        if (value.IsUnset()) continue;
        Result<ipc::WireValue> w = encoder.Encode(value);
        if (!w) {
          return context(w.error(),
                         fmt::format("global {} (used by the code)", program_.global_names[slot]));
        }
        request.globals.emplace_back(program_.global_names[slot], std::move(*w));
      }
    }
  }

  // Code: the callee's, plus that of every function the values name (link roots).
  request.blobs = code->set.blobs;
  request.impls = code->set.impls;
  std::set<engine::FunctionHash> have;
  for (const engine::FunctionBlob& b : *request.blobs) have.insert(b.hash);
  auto impl_key = [](const engine::ImplEntry& e) {
    return std::tie(e.type_schema, e.method, e.function);
  };
  for (const engine::ImplEntry& impl : value_impls) {
    bool known = std::any_of(request.impls.begin(), request.impls.end(),
                             [&](const engine::ImplEntry& e) { return impl_key(e) == impl_key(impl); });
    if (!known) request.impls.push_back(impl);
  }
  for (size_t i = 1; i < codes.size(); ++i) {
    request.roots.push_back(codes[i]->set.entry);
    for (const engine::FunctionBlob& b : codes[i]->set.blobs)
      if (have.insert(b.hash).second) request.blobs->push_back(b);
    for (const engine::ImplEntry& impl : codes[i]->set.impls) {
      bool known = std::any_of(request.impls.begin(), request.impls.end(),
                               [&](const engine::ImplEntry& e) { return impl_key(e) == impl_key(impl); });
      if (!known) request.impls.push_back(impl);
    }
  }

  // Limits: what is left of this Vm's fuel and depth; memory and time as configured.
  ipc::CallLimits limits = options_.limits;
  if (vm.limits().fuel != 0) {
    if (vm.fuel_left() == 0) return ResourceExhausted("fuel exhausted");
    limits.fuel = vm.fuel_left();
  }
  size_t depth = vm.call_depth();
  limits.stack = vm.limits().stack > depth ? static_cast<uint32_t>(vm.limits().stack - depth) : 1;
  request.limits = limits;
  return request;
}

Result<ipc::RemoteCallResponse> RemoteCalls::Run(ipc::RemoteCallRequest request) {
  ++stats_.calls;
  if (options_.in_process) {
    // Through the bytes, as an executor gets them: the codec's bounds apply here too.
    Result<ipc::WireMessage> in = ipc::DecodeMessage(ipc::EncodeMessage(ipc::WireMessage{request}));
    if (!in) return in.error();
    const auto& decoded = std::get<ipc::RemoteCallRequest>(*in);
    engine::Limits limits = ipc::EffectiveLimits(decoded.limits, options_.in_process_defaults);
    std::vector<uint8_t> bytes;
    {
      // The response may borrow from the call's Vm: encode it before the next call.
      ipc::RemoteCallResponse response =
          ipc::ExecuteRemoteCall(decoded, limits, local_cache_.get(), local_links_.get());
      bytes = ipc::EncodeMessage(ipc::WireMessage{std::move(response)});
    }
    Result<ipc::WireMessage> out = ipc::DecodeMessage(bytes);
    if (!out) return out.error();
    return std::get<ipc::RemoteCallResponse>(std::move(*out));
  }
  RETURN_IF_ERROR(EnsureLeases(1, request));
  Result<ipc::RemoteCallResponse> response = client_->CallOn(leases_[0], std::move(request));
  if (!response.has_value()) {
    // The executor is gone (crashed, or killed for a timeout): the next call leases another.
    client_->Release(leases_[0]);
    leases_.erase(leases_.begin());
  }
  return response;
}

void RemoteCalls::NameFrames(std::vector<engine::TraceFrame>* frames,
                             const engine::FunctionHash& entry,
                             const engine::Proto* entry_proto) const {
  for (engine::TraceFrame& f : *frames) {
    if (!f.has_hash || f.skipped != 0) continue;
    const engine::Proto* p = nullptr;
    if (f.hash == entry) {
      p = entry_proto;  // two functions with the same code: the one that was called
    } else if (auto it = protos_.find(f.hash); it != protos_.end()) {
      p = program_.protos[it->second].get();
    }
    if (p == nullptr) continue;  // code this program does not have: the executor's names
    f.function = p->name;
    f.file = program_.source_name;
    f.line = f.pc < p->lines.size() ? p->lines[f.pc] : 0;
    f.proto = p->index;
  }
}

Status RemoteCalls::Finish(engine::Vm& vm, const ipc::RemoteCallResponse& response,
                           const engine::FunctionHash& entry, const engine::Proto* entry_proto,
                           engine::Value* result, std::vector<engine::TraceFrame>* trace) {
  if (!response.output.empty()) vm.Print(response.output);
  if (response.fuel_used && vm.limits().fuel != 0) {
    // At most what the call was given, which was what was left.
    if (!vm.ChargeFuel(*response.fuel_used) && response.ok())
      return ResourceExhausted("fuel exhausted");
  }
  if (!response.ok()) {
    *trace = response.error().trace;
    NameFrames(trace, entry, entry_proto);
    return response.status();
  }
  ipc::FromWireContext from_wire{&vm, &protos_, types_.get(), /*charge_fuel=*/true};
  ipc::WireDecoder decoder(from_wire);
  ASSIGN_OR_RETURN(*result, decoder.Decode(response.value()));
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

Status RemoteCalls::Invoke(engine::Vm& vm, const engine::Value& callee,
                           std::span<const engine::Value> args, engine::Value* result,
                           std::vector<engine::TraceFrame>* trace) {
  trace->clear();
  RETURN_IF_ERROR(Prepare());
  ASSIGN_OR_RETURN(engine::FunctionHash hash, HashOf(callee));
  ASSIGN_OR_RETURN(ipc::RemoteCallRequest request, BuildRequest(vm, callee, args));
  ASSIGN_OR_RETURN(ipc::RemoteCallResponse response, Run(std::move(request)));
  return Finish(vm, response, hash, engine::CalleeProto(callee), result, trace);
}

Status RemoteCalls::Call(engine::Vm& vm, const engine::Value& callee,
                         std::span<const engine::Value> args, engine::Value* result) {
  std::vector<engine::TraceFrame> trace;
  Status status = Invoke(vm, callee, args, result, &trace);
  if (!status.ok() && !trace.empty()) vm.SetRemoteErrorTrace(std::move(trace));
  return status;
}

Status RemoteCalls::Map(engine::Vm& vm, const engine::Value& callee,
                        std::span<const engine::Value> items, std::vector<engine::Value>* results,
                        bool* handled) {
  // Only a @remote function is spread over executors. Anything else (a closure, a local
  // function) is declined and runs item by item here, its calls into @remote functions copying
  // at those calls, as without pmap; so does every pmap in process (one call after another
  // gives exactly what parallel executors give, since each call gets copies).
  *handled = false;
  const engine::Proto* proto = engine::CalleeProto(callee);
  if (options_.in_process || callee.type != engine::Type::kFunction || proto == nullptr ||
      !proto->remote || !PrepareBlobs().ok())
    return Status::Ok();
  ASSIGN_OR_RETURN(engine::FunctionHash hash, HashOf(callee));
  *handled = true;
  RETURN_IF_ERROR(Prepare());
  // Requests are built as they are sent (the Vm does not run meanwhile, so every item sees
  // the same globals), so memory stays proportional to the calls in flight.
  // Item 0's request is built first, to offer its code when leasing, and is the one sent for
  // item 0: building it twice charged its copy twice (one-by-one pmap pays it once), which
  // the differential run found as a trace one frame shorter under --fuel.
  std::optional<ipc::RemoteCallRequest> first;
  auto build = [&](size_t i) -> Result<ipc::RemoteCallRequest> {
    if (i == 0 && first.has_value()) {
      ipc::RemoteCallRequest request = std::move(*first);
      first.reset();
      return request;
    }
    return BuildRequest(vm, callee, std::span<const engine::Value>(&items[i], 1));
  };
  {
    ASSIGN_OR_RETURN(ipc::RemoteCallRequest sample, build(0));
    RETURN_IF_ERROR(EnsureLeases(std::min(items.size(), options_.max_parallel), sample));
    first = std::move(sample);
  }
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
        if (Status why = client_->ExitReason(leases_[e].executor_pid); !why.ok()) return why;
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
  auto stop = [&](Status error) {
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
    if (!sent.ok()) return stop(sent);
  }
  results->resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    size_t e = i % n;
    Result<ipc::RemoteCallResponse> response = client_->WaitOn(leases_[e], call_ids[i]);
    if (!response.has_value()) return stop(response.error());
    busy[e] = next[e] - n > i;  // calls after i are still in flight there
    if (vm.limits().fuel != 0 && response->fuel_used && *response->fuel_used > vm.fuel_left()) {
      // Item i started with more fuel than one call after another would have left it (the
      // items before it ran meanwhile). Run it again with exactly what is left: the same
      // output and error as one by one.
      (void)stop(Status::Ok());
      for (size_t j = i; j < items.size(); ++j) {
        RETURN_IF_ERROR(
            Call(vm, callee, std::span<const engine::Value>(&items[j], 1), &(*results)[j]));
        vm.ReportMapProgress(j + 1);
      }
      return Status::Ok();
    }
    Status sent = send_more(e, i + options_.window * n);
    if (!sent.ok()) return stop(sent);
    std::vector<engine::TraceFrame> trace;
    Status done = Finish(vm, *response, hash, proto, &(*results)[i], &trace);
    if (!done.ok()) {
      if (!trace.empty()) vm.SetRemoteErrorTrace(std::move(trace));
      return stop(done);
    }
    vm.ReportMapProgress(i + 1);
  }
  return Status::Ok();
}

}  // namespace shapex
