#include "shapex/client/runtime.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "shapex/client/remote_calls.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/verifier.h"

namespace shapex {

std::string Error::ToString() const {
  std::string out = fmt::format("error[{}]: {}\n", ErrorKindName(kind_), message_);
  for (const TraceLine& f : trace_) {
    if (f.line == 0 && f.file.empty()) {
      out += fmt::format("  {}\n", f.function);
    } else {
      out += fmt::format("  at {} ({}:{})\n", f.function, f.file, f.line);
    }
  }
  return out;
}

namespace internal {

std::string DescribeValue(const engine::Value& v) { return engine::TypeName(v); }

engine::Value NewString(engine::Vm& vm, std::string_view s) {
  return vm.NewString(std::string(s));
}

bool FormatValue(engine::Vm& vm, const engine::Value& v, std::string* out) {
  return engine::ValueToString(vm, v, /*quoted=*/false, out);
}

void DieOnBadCallResult(const Error& error) {
  std::fputs(("CallResult::value() on an error: " + error.ToString()).c_str(), stderr);
  std::abort();
}

}  // namespace internal

namespace {

std::vector<TraceLine> ToTraceLines(const std::vector<engine::TraceFrame>& frames,
                                    const std::string& file) {
  std::vector<TraceLine> lines;
  for (const engine::TraceFrame& f : frames) {
    if (f.file.empty() && f.line == 0) {
      lines.push_back({f.function, "", 0});  // "... N more frames"
    } else {
      lines.push_back({f.function, f.file.empty() ? file : f.file, f.line});
    }
  }
  return lines;
}

ipc::CallLimits ToCallLimits(const CallOptions& o) {
  ipc::CallLimits limits;
  limits.fuel = o.fuel;
  limits.memory = o.memory;
  limits.timeout_ms = static_cast<uint64_t>(o.timeout * 1000);
  return limits;
}

}  // namespace

// One call slot: a Vm holding the module's globals (its top-level code has run in it) and the
// RemoteCalls that sends its calls to one leased executor (or runs them in process).
struct Slot {
  std::string output;                   // what the running call printed (the Vm's sink)
  std::unique_ptr<RemoteCalls> remote;  // outlives the Vm it is installed in
  std::unique_ptr<engine::Vm> vm;
};

struct Module::Impl {
  std::string name;
  std::unique_ptr<engine::Program> program;
  std::shared_ptr<const RuntimeOptions> options;

  std::mutex mu;
  std::condition_variable freed;
  std::vector<std::unique_ptr<Slot>> idle;
  size_t slots = 0;  // made so far (idle or in use)

  // A new slot, its top-level code run. Called without `mu`.
  Result<std::unique_ptr<Slot>> MakeSlot(Error* error) {
    auto slot = std::make_unique<Slot>();
    // The caller-side Vm only holds the module's globals and the values crossing the boundary:
    // no fuel limit of its own (the limits travel with each call), memory as for a call.
    engine::Limits limits;
    limits.memory = options->limits.memory ? options->limits.memory : limits.memory;
    slot->vm = std::make_unique<engine::Vm>(*program, limits);
    Slot* raw = slot.get();
    slot->vm->SetOutput([raw](std::string_view text) { raw->output.append(text); });
    RemoteCallsOptions calls;
    calls.client = options->client;
    calls.limits = ToCallLimits(options->limits);
    calls.in_process = options->local;
    calls.progress_fd = -1;  // a library prints nothing of its own
    // A call gets 2 s beyond its own limit before its executor is killed (the executor
    // enforces the limit itself); with no default limit the backstop is a day.
    if (options->limits.timeout > 0) {
      calls.client.session.call_timeout =
          std::chrono::milliseconds(static_cast<int64_t>(options->limits.timeout * 1000) + 2000);
    } else {
      calls.client.session.call_timeout = std::chrono::hours(24);
    }
    slot->remote = std::make_unique<RemoteCalls>(*program, calls);
    slot->remote->Install(*slot->vm);
    Status s = slot->vm->RunTopLevel();
    if (!s.ok()) {
      *error = Error(s.kind(), s.message(), ToTraceLines(slot->vm->trace(), name));
      return s;
    }
    slot->output.clear();  // what the top-level code printed is not a call's output
    return slot;
  }

  // A free slot: an idle one, a new one while fewer than max_in_flight exist, else waits.
  Result<std::unique_ptr<Slot>> Acquire(Error* error) {
    std::unique_lock lock(mu);
    const size_t max = std::max<size_t>(1, options->max_in_flight);
    freed.wait(lock, [&] { return !idle.empty() || slots < max; });
    if (!idle.empty()) {
      std::unique_ptr<Slot> slot = std::move(idle.back());
      idle.pop_back();
      return slot;
    }
    ++slots;
    lock.unlock();
    Result<std::unique_ptr<Slot>> slot = MakeSlot(error);
    if (!slot.has_value()) {
      std::lock_guard relock(mu);
      --slots;
      freed.notify_one();
    }
    return slot;
  }

  void Release(std::unique_ptr<Slot> slot) {
    std::lock_guard lock(mu);
    slot->output.clear();
    idle.push_back(std::move(slot));
    freed.notify_one();
  }
};

Result<Runtime> Runtime::Connect(RuntimeOptions options) {
  if (!options.local) {
    // Finds or starts the supervisor now, so a missing binary or a refused socket is reported
    // here and not at the first call. Calls make connections of their own.
    ASSIGN_OR_RETURN(Client client, Client::Connect(options.client));
    (void)client;
  }
  return Runtime(std::make_shared<const RuntimeOptions>(std::move(options)));
}

CallResult<Module> Runtime::Load(const std::string& path) const {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return CallResult<Module>(Error(ErrorKind::kIoError, fmt::format("cannot read {}", path)), "");
  }
  return LoadSource(text.str(), path);
}

CallResult<Module> Runtime::LoadSource(std::string source, std::string name) const {
  engine::Diagnostic diag;
  Result<std::unique_ptr<engine::Program>> program = engine::Compile(source, name, &diag);
  if (!program.has_value()) {
    std::string message = diag.message.empty() ? program.error().message() : diag.message;
    std::vector<TraceLine> where;
    if (diag.line > 0) where.push_back({"<compile>", diag.file.empty() ? name : diag.file,
                                        static_cast<uint32_t>(diag.line)});
    return CallResult<Module>(Error(ErrorKind::kCompileError, message, std::move(where)), "");
  }
  if (Status verified = engine::Verify(**program); !verified.ok()) {
    return CallResult<Module>(Error(ErrorKind::kCompileError, verified.message()), "");
  }
  auto impl = std::make_shared<Module::Impl>();
  impl->name = std::move(name);
  impl->program = std::move(program).value();
  impl->options = options_;
  // The first slot now: the top-level code runs (and fails) at load time.
  Error error;
  Result<std::unique_ptr<Slot>> slot = impl->Acquire(&error);
  if (!slot.has_value()) return CallResult<Module>(std::move(error), "");
  impl->Release(std::move(slot).value());
  return CallResult<Module>(Module(std::move(impl)), "");
}

const std::string& Module::name() const { return impl_->name; }

std::vector<std::string> Module::functions() const {
  std::vector<std::string> names;
  for (const auto& proto : impl_->program->protos) {
    if (impl_->program->FindFunction(proto->name) >= 0 &&
        std::find(names.begin(), names.end(), proto->name) == names.end()) {
      names.push_back(proto->name);
    }
  }
  return names;
}

const CallOptions& Module::impl_limits() const { return impl_->options->limits; }

bool Module::Run(const CallOptions& limits, std::string_view function,
                 const std::function<bool(engine::Vm&, std::vector<engine::Value>*, std::string*)>&
                     make_args,
                 const std::function<bool(engine::Vm&, const engine::Value&, std::string*)>& take,
                 std::string* output, Error* error) const {
  Impl& impl = *impl_;
  const int index = impl.program->FindFunction(std::string(function));
  if (index < 0) {
    *error = Error(ErrorKind::kFunctionNotFound, fmt::format("no function named '{}'", function));
    return false;
  }
  Result<std::unique_ptr<Slot>> acquired = impl.Acquire(error);
  if (!acquired.has_value()) return false;
  std::unique_ptr<Slot> slot = std::move(acquired).value();
  engine::Vm& vm = *slot->vm;
  bool ok = false;
  {
    engine::Vm::RootScope root(vm);
    std::vector<engine::Value> args;
    std::string why;
    const bool made = make_args(vm, &args, &why);
    for (const engine::Value& a : args) root.Add(a);
    engine::Value callee = vm.NewFunction(static_cast<uint32_t>(index));
    root.Add(callee);
    slot->remote->SetLimits(ToCallLimits(limits));
    engine::Value result;
    std::vector<engine::TraceFrame> trace;
    Status status = made ? slot->remote->Invoke(vm, callee, args, &result, &trace)
                         : Status(ErrorKind::kArgumentError,
                                  fmt::format("argument {}: {}", args.size() + 1, why));
    if (!status.ok()) {
      *error = Error(status.kind(), status.message(), ToTraceLines(trace, impl.name));
    } else {
      root.Add(result);
      if (take(vm, result, &why)) {
        ok = true;
      } else {
        *error = Error(ErrorKind::kInvalidArgument,
                       fmt::format("the result of {} is {}, expected {}", function,
                                   internal::DescribeValue(result), why));
      }
    }
  }
  *output = std::move(slot->output);
  impl.Release(std::move(slot));
  return ok;
}

}  // namespace shapex
