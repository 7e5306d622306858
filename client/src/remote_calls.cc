#include "shapex/client/remote_calls.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
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
                                                         std::span<const engine::Value> args,
                                                         bool charge) {
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
  if (charge) to_wire.fuel = &vm;  // copying is work the caller pays for
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
  RETURN_IF_ERROR(CompleteRequest(vm, encoder, hash, code, proto, Seed{}, &request));
  ASSIGN_OR_RETURN(ipc::CallLimits limits, LimitsNow(vm));
  request.limits = limits;
  return request;
}

Result<ipc::CallLimits> RemoteCalls::LimitsNow(engine::Vm& vm) const {
  // Limits: what is left of this Vm's fuel and depth; memory and time as configured.
  ipc::CallLimits limits = options_.limits;
  if (vm.limits().fuel != 0) {
    if (vm.fuel_left() == 0) return ResourceExhausted("fuel exhausted");
    limits.fuel = vm.fuel_left();
  }
  size_t depth = vm.call_depth();
  limits.stack = vm.limits().stack > depth ? static_cast<uint32_t>(vm.limits().stack - depth) : 1;
  return limits;
}

Status RemoteCalls::CompleteRequest(engine::Vm& vm, ipc::WireEncoder& encoder,
                                    const engine::FunctionHash& hash, const Code* code,
                                    const engine::Proto& proto, const Seed& seed,
                                    ipc::RemoteCallRequest* out) {
  ipc::RemoteCallRequest& request = *out;
  auto context = [&](const Status& error, const std::string& what) {
    return Status(error.kind(), fmt::format("{} of {}: {}", what, proto.name, error.message()));
  };
  // The globals the callee's code uses, and those of every function the values name (a global
  // may name more functions, so until nothing new turns up).
  std::vector<bool> sent(program_.global_names.size(), false);
  size_t functions_seen = 0;
  std::vector<const Code*> codes{code};
  // The seed's functions come first, as the values that named them were written first.
  std::set<engine::FunctionHash> seeded;
  for (const engine::FunctionHash& f : seed.functions) {
    if (f == hash || !seeded.insert(f).second) continue;
    ASSIGN_OR_RETURN(const Code* more, CodeFor(f));
    codes.push_back(more);
  }
  for (;;) {
    const std::vector<engine::FunctionHash>& named = encoder.functions();
    for (; functions_seen < named.size(); ++functions_seen) {
      if (named[functions_seen] == hash || seeded.count(named[functions_seen])) continue;
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
    for (const engine::StructType* t : seed.structs) type_hashes.insert(engine::TypeSchemaHash(*t));
    for (const engine::EnumType* t : seed.enums) type_hashes.insert(engine::TypeSchemaHash(*t));
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
  return Status::Ok();
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
  results->resize(items.size());
  if (items.empty()) return Status::Ok();
  return MapBatched(vm, callee, hash, items, results);
}

Status RemoteCalls::CallOnLease(engine::Vm& vm, const engine::Value& callee,
                                const engine::FunctionHash& hash, const engine::Value& item,
                                size_t e, engine::Value* result) {
  ASSIGN_OR_RETURN(ipc::RemoteCallRequest request,
                   BuildRequest(vm, callee, std::span<const engine::Value>(&item, 1)));
  ++stats_.calls;
  ASSIGN_OR_RETURN(ipc::RemoteCallResponse response,
                   client_->CallOn(leases_[e], std::move(request)));
  std::vector<engine::TraceFrame> trace;
  Status done = Finish(vm, response, hash, engine::CalleeProto(callee), result, &trace);
  if (!done.ok() && !trace.empty()) vm.SetRemoteErrorTrace(std::move(trace));
  return done;
}

namespace {

using Clock = std::chrono::steady_clock;

// The fuel a copy of `v` costs its sender: one unit per node written (WireEncoder); a captured
// variable's Cell is free.
uint64_t CopyCost(const ipc::WireValue& v) {
  uint64_t n = v.kind == ipc::WireKind::kCell ? 0 : 1;
  for (const ipc::WireValue& c : v.children) n += CopyCost(c);
  return n;
}

// Whether `v` holds a container (which a value written later in its document could share).
bool HasContainer(const ipc::WireValue& v) {
  if (v.IsContainer() || v.kind == ipc::WireKind::kRef) return true;
  return std::any_of(v.children.begin(), v.children.end(), HasContainer);
}

// Roughly how many bytes `v` takes on the wire.
size_t WireBytes(const ipc::WireValue& v) {
  size_t n = 9;
  if (const auto* s = std::get_if<std::string>(&v.data)) n += s->size();
  if (const auto* b = std::get_if<ipc::WireBuffer>(&v.data)) n += b->data().size();
  for (const ipc::WireValue& c : v.children) n += WireBytes(c);
  return n;
}

// A result that is one scalar node, as the decoder would build it.
bool ScalarOf(const ipc::WireValue& w, engine::Value* out) {
  switch (w.kind) {
    case ipc::WireKind::kNone:
      *out = engine::Value::None();
      return true;
    case ipc::WireKind::kBool:
      if (!std::holds_alternative<bool>(w.data)) return false;
      *out = engine::Value::Bool(w.as_bool());
      return true;
    case ipc::WireKind::kInt:
      if (!std::holds_alternative<int64_t>(w.data)) return false;
      *out = engine::Value::Int(w.as_int());
      return true;
    case ipc::WireKind::kNumber:
      if (!std::holds_alternative<double>(w.data)) return false;
      *out = engine::Value::Number(w.as_number());
      return true;
    default:
      return false;
  }
}

// Batching (see MapBatched).
constexpr size_t kBatchesInFlight = 4;          // per executor
constexpr size_t kMaxChunk = 4096;              // items per batch
constexpr size_t kBatchBytes = 48 << 10;        // a batch's items and globals, about
constexpr size_t kInFlightBytes = 128 << 10;    // per executor, below the call ring's 256 KiB
constexpr size_t kBigItemBytes = 16 << 10;      // an item this big goes in a batch of its own
constexpr double kTargetBatchSeconds = 0.002;   // executor CPU time a batch should take

}  // namespace

// Items go to the executors in batches (CallBatch), in item order, round robin: batch k to
// executor k mod n, at most kBatchesInFlight per executor; answers are taken in item order.
// A batch carries the function, its code and the globals once (the globals are copied once
// for the whole pmap: the Vm does not run meanwhile) and each item's argument, copied without
// charging fuel; each item's copy (its argument plus the globals, what a call of its own would
// copy) is charged when its answer is taken, so fuel is spent in the order one call after
// another spends it. Each executor's chunk starts at one item and grows (at most 4x per batch)
// toward kTargetBatchSeconds, measured on the batches it answers.
//
// An item goes in a batch of its own, built as a call of its own (one document for its value
// and the globals), when it may share an object with the globals (both hold containers) or is
// big; one whose copy fails is called on its own when its turn comes (the same error, at the
// same point, as one by one). Consecutive items share a batch only when they name the same
// functions and types (so the batch's code and globals are exactly what each item's call
// would carry).
//
// Fuel: a batch runs with a budget of what this Vm had left when it was built, item i with
// the budget minus what items before it in the batch used; that is never less than one call
// after another would give item i. So item i behaved as one by one unless its copy plus what
// it used exceeds what is left now: then it and the items after it run again one by one.
Status RemoteCalls::MapBatched(engine::Vm& vm, const engine::Value& callee,
                               const engine::FunctionHash& hash,
                               std::span<const engine::Value> items,
                               std::vector<engine::Value>* results) {
  const engine::Proto* proto = engine::CalleeProto(callee);
  ASSIGN_OR_RETURN(const Code* code, CodeFor(hash));
  const size_t count = items.size();
  {
    ipc::RemoteCallRequest sample;
    sample.blobs = code->set.blobs;
    RETURN_IF_ERROR(EnsureLeases(std::min(count, options_.max_parallel), sample));
  }
  const size_t n = std::min(count, leases_.size());
  ++stats_.batches;
  stats_.max_executors = std::max(stats_.max_executors, n);

  ipc::ToWireContext to_wire{&program_, blobs_->proto_hashes};
  // An item's value, written as a document of its own (no fuel: charged when taken).
  struct Encoded {
    Status status;
    std::vector<ipc::WireValue> args;
    Seed seed;
    std::string key;  // the functions and types it names
    bool containers = false;
    uint64_t cost = 0;
    size_t bytes = 0;
  };
  auto encode = [&](const engine::Value& v) {
    Encoded out;
    switch (v.type) {
      case engine::Type::kNone:
        out.args.push_back(ipc::WireValue::None());
        break;
      case engine::Type::kBool:
        out.args.push_back(ipc::WireValue::Bool(v.as.b));
        break;
      case engine::Type::kInt:
        out.args.push_back(ipc::WireValue::Int(v.as.i));
        break;
      case engine::Type::kNumber:
        out.args.push_back(ipc::WireValue::Number(v.as.n));
        break;
      default: {
        ipc::WireEncoder encoder(to_wire);
        Result<ipc::WireValue> w = encoder.Encode(v);
        if (!w) {
          out.status = w.error();
          return out;
        }
        out.seed.functions = encoder.functions();
        out.seed.structs = encoder.struct_types();
        out.seed.enums = encoder.enum_types();
        for (const engine::FunctionHash& f : out.seed.functions) out.key.append(f.begin(), f.end());
        out.key += '|';
        for (const engine::StructType* t : out.seed.structs) out.key += fmt::format("{},", fmt::ptr(t));
        out.key += '|';
        for (const engine::EnumType* t : out.seed.enums) out.key += fmt::format("{},", fmt::ptr(t));
        out.containers = HasContainer(*w);
        out.cost = CopyCost(*w);
        out.bytes = WireBytes(*w);
        out.args.push_back(std::move(*w));
        return out;
      }
    }
    out.cost = 1;
    out.bytes = 9;
    return out;
  };

  // Batch templates (everything but the items) by the key of the items they carry.
  struct Template {
    Status status;
    ipc::RemoteCallRequest call;
    uint64_t globals_cost = 0;
    bool globals_containers = false;
    size_t globals_bytes = 0;
  };
  std::map<std::string, Template> templates;
  auto template_for = [&](const Encoded& item) -> const Template& {
    auto found = templates.find(item.key);
    if (found != templates.end()) return found->second;
    Template t;
    t.call.function_name = proto->name;
    t.call.function_id = proto->index;
    t.call.function_hash = hash;
    ipc::WireEncoder globals(to_wire);  // the globals' own document
    t.status = CompleteRequest(vm, globals, hash, code, *proto, item.seed, &t.call);
    for (const auto& [name, v] : t.call.globals) {
      t.globals_cost += CopyCost(v);
      t.globals_containers = t.globals_containers || HasContainer(v);
      t.globals_bytes += WireBytes(v);
    }
    return templates.emplace(item.key, std::move(t)).first->second;
  };

  struct Unit {
    size_t begin = 0, end = 0;
    size_t executor = 0;
    bool direct = false;  // nothing sent: called on its own when its turn comes
    uint64_t call_id = 0;
    std::vector<uint64_t> costs;  // per item, the copy a call of its own pays
    size_t bytes = 0;
    size_t ahead = 0;  // batches in flight before it on its executor when sent
    Clock::time_point sent_at;
  };
  std::deque<Unit> queue;
  std::vector<size_t> in_flight(n, 0), in_flight_bytes(n, 0), chunk(n, 1);
  size_t next = 0;      // the next item to put in a batch
  size_t turn = 0;      // the executor of the next batch
  std::optional<Encoded> lookahead;  // item `next`, encoded already
  auto take = [&]() {
    Encoded e = lookahead ? std::move(*lookahead) : encode(items[next]);
    lookahead.reset();
    return e;
  };

  // Plans the next unit for executor `e` and sends it.
  auto send_next = [&](size_t e) -> Status {
    Unit u;
    u.begin = next;
    u.executor = e;
    Encoded first = take();
    ++next;
    u.end = next;
    std::optional<ipc::CallLimits> limits;
    if (Result<ipc::CallLimits> l = LimitsNow(vm); l.has_value()) limits = *l;
    const Template* t = first.status.ok() ? &template_for(first) : nullptr;
    if (!first.status.ok() || !limits || !t->status.ok()) {
      u.direct = true;
      queue.push_back(std::move(u));
      return Status::Ok();
    }
    ipc::RemoteCallBatch batch;
    if ((first.containers && t->globals_containers) || first.bytes > kBigItemBytes) {
      // A call of its own: the item's value and the globals in one document.
      Result<ipc::RemoteCallRequest> request =
          BuildRequest(vm, callee, items.subspan(u.begin, 1), /*charge=*/false);
      if (!request) {
        u.direct = true;
        queue.push_back(std::move(u));
        return Status::Ok();
      }
      uint64_t cost = 0;
      for (const ipc::WireValue& v : request->arguments) cost += CopyCost(v);
      for (const auto& [name, v] : request->globals) cost += CopyCost(v);
      u.costs.push_back(cost);
      u.bytes = first.bytes + t->globals_bytes;
      batch.items.push_back(std::move(request->arguments));
      request->arguments.clear();
      batch.call = std::move(*request);
    } else {
      batch.call = t->call;
      u.costs.push_back(first.cost + t->globals_cost);
      u.bytes = t->globals_bytes + first.bytes;
      batch.items.push_back(std::move(first.args));
      while (next < count && batch.items.size() < chunk[e] && u.bytes < kBatchBytes) {
        Encoded item = encode(items[next]);
        if (!item.status.ok() || item.key != first.key || item.bytes > kBigItemBytes ||
            (item.containers && t->globals_containers)) {
          lookahead = std::move(item);
          break;
        }
        u.costs.push_back(item.cost + t->globals_cost);
        u.bytes += item.bytes;
        batch.items.push_back(std::move(item.args));
        ++next;
      }
      u.end = next;
    }
    batch.call.limits = *limits;
    if (vm.limits().fuel != 0) batch.fuel_budget = vm.fuel_left();
    Result<uint64_t> started = leases_[e].session.StartBatch(std::move(batch));
    if (!started.has_value()) {
      // The executor went away while we were sending to it.
      ++in_flight[e];  // so that it is dropped
      if (started.error().kind() != ErrorKind::kIoError) return started.error();
      if (Status why = client_->ExitReason(leases_[e].executor_pid); !why.ok()) return why;
      return ExecutorCrashedError(fmt::format("executor {} died during pmap: {}",
                                              leases_[e].executor_pid,
                                              started.error().message()));
    }
    ++stats_.batch_messages;
    u.call_id = *started;
    u.ahead = in_flight[e];
    u.sent_at = Clock::now();
    ++in_flight[e];
    in_flight_bytes[e] += u.bytes;
    queue.push_back(std::move(u));
    return Status::Ok();
  };
  // Keeps every executor's batches in flight, in round robin order.
  auto fill = [&]() -> Status {
    while (next < count) {
      size_t e = turn % n;
      if (in_flight[e] >= kBatchesInFlight) break;
      if (in_flight[e] > 0 && in_flight_bytes[e] >= kInFlightBytes - kBatchBytes) break;
      RETURN_IF_ERROR(send_next(e));
      ++turn;
    }
    return Status::Ok();
  };
  // Drops the executors that still run batches (killing them, so later items stop), and
  // `lost`, and gives `error`.
  auto stop = [&](Status error, std::optional<size_t> lost = std::nullopt) {
    for (size_t e = n; e-- > 0;) {
      if (in_flight[e] == 0 && lost != e) continue;
      (void)client_->KillExecutor(leases_[e].executor_pid);
      client_->Release(leases_[e]);
      leases_.erase(leases_.begin() + static_cast<std::ptrdiff_t>(e));
    }
    return error;
  };
  // Item i called on its own on executor e (a batch could not carry it, or stopped before it).
  auto call_alone = [&](size_t i, size_t e) -> Status {
    uint64_t calls_before = stats_.calls;
    Status done = CallOnLease(vm, callee, hash, items[i], e, &(*results)[i]);
    if (!done.ok()) {
      // CallOn itself failed (the executor is gone or timed out): drop it too.
      bool lost = stats_.calls != calls_before &&
                  (done.kind() == ErrorKind::kExecutorCrashed || done.kind() == ErrorKind::kTimeout ||
                   done.kind() == ErrorKind::kIoError);
      return stop(done, lost ? std::optional<size_t>(e) : std::nullopt);
    }
    vm.ReportMapProgress(i + 1);
    return Status::Ok();
  };

  while (next < count || !queue.empty()) {
    if (Status sent = fill(); !sent.ok()) return stop(sent);
    Unit u = std::move(queue.front());
    queue.pop_front();
    size_t e = u.executor;
    if (u.direct) {
      RETURN_IF_ERROR(call_alone(u.begin, e));
      continue;
    }
    Result<ipc::RemoteCallBatchResponse> response = client_->WaitBatchOn(leases_[e], u.call_id);
    if (!response.has_value()) return stop(response.error());
    --in_flight[e];
    in_flight_bytes[e] -= u.bytes;
    size_t size = u.end - u.begin;
    if (!response->results.empty()) {
      // The executor's CPU time per item (wall time when it did not say): what a busy machine
      // does to wall time must not shrink the batches (more round trips, more switches).
      double took = response->cpu_ns != 0
                        ? static_cast<double>(response->cpu_ns) / 1e9
                        : std::chrono::duration<double>(Clock::now() - u.sent_at).count() /
                              static_cast<double>(u.ahead + 1);
      double per_item = took / static_cast<double>(response->results.size());
      double want = per_item > 0 ? kTargetBatchSeconds / per_item : double(kMaxChunk);
      size_t grown = std::min(kMaxChunk, chunk[e] * 4);
      chunk[e] = want >= double(grown) ? grown : std::max<size_t>(1, static_cast<size_t>(want));
    }
    std::vector<ipc::RemoteCallResponse>& answers = response->results;
    size_t got = std::min(answers.size(), size);
    if (got > 0 && ipc::IsMissingBlobError(answers[0])) got = 0;  // evicted code: one by one
    for (size_t j = 0; j < got; ++j) {
      size_t i = u.begin + j;
      const ipc::RemoteCallResponse& answer = answers[j];
      if (vm.limits().fuel != 0) {
        uint64_t left = vm.fuel_left();
        if (u.costs[j] > left || answer.fuel_used.value_or(0) > left - u.costs[j]) {
          // Item i ran with more fuel than one call after another would have left it. Run it
          // again with exactly what is left, and the rest one by one: the same output and
          // error as one by one.
          (void)stop(Status::Ok());
          for (size_t k = i; k < count; ++k) {
            RETURN_IF_ERROR(
                Call(vm, callee, std::span<const engine::Value>(&items[k], 1), &(*results)[k]));
            vm.ReportMapProgress(k + 1);
          }
          return Status::Ok();
        }
      }
      vm.ChargeFuel(u.costs[j]);  // the item's copy, as a call of its own pays it
      ++stats_.calls;
      std::vector<engine::TraceFrame> trace;
      Status done;
      engine::Value scalar;
      if (answer.ok() && answer.output.empty() && ScalarOf(answer.value(), &scalar)) {
        // What Finish does with a result of one scalar node: charge what the call used, then
        // one unit for the copy in.
        if ((answer.fuel_used && vm.limits().fuel != 0 && !vm.ChargeFuel(*answer.fuel_used)) ||
            !vm.ChargeFuel(1)) {
          done = ResourceExhausted("fuel exhausted");
        } else {
          (*results)[i] = scalar;
        }
      } else {
        done = Finish(vm, answer, hash, proto, &(*results)[i], &trace);
      }
      if (!done.ok()) {
        if (!trace.empty()) vm.SetRemoteErrorTrace(std::move(trace));
        return stop(done);
      }
      vm.ReportMapProgress(i + 1);
    }
    // Items the executor did not run (it stopped early): each on its own, in order.
    for (size_t i = u.begin + got; i < u.end; ++i) RETURN_IF_ERROR(call_alone(i, e));
  }
  return Status::Ok();
}

}  // namespace shapex
