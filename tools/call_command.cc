// `shapex call` (call_command.h): the argument literals, the entry function generated around
// them, and the two ways a call reports (text, or one JSON object: docs/cli-json.md).
#include "call_command.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "exit_codes.h"
#include "json_output.h"
#include "shapex/client/client.h"
#include "shapex/client/remote_calls.h"
#include "shapex/core/status.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"
#include "shapex/engine/verifier.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/wire_value.h"
#include "value_json.h"

namespace shapex::cli {
namespace {

using engine::Program;

// ---------------- argument literals ----------------

// Accepts exactly one Shape literal: numbers (optionally negative), strings, true/false/None,
// arrays, maps, Some/Ok/Err of a literal. The text is then spliced into generated source, so
// this check is what keeps an argument from being anything but a value.
class LiteralChecker {
 public:
  explicit LiteralChecker(std::string_view text) : s_(text) {}

  bool Check(std::string* error) {
    Space();
    if (!Literal(0)) {
      *error = error_.empty() ? "not a literal" : error_;
      return false;
    }
    Space();
    if (pos_ != s_.size()) {
      *error = fmt::format("unexpected '{}' after the value", s_.substr(pos_, 1));
      return false;
    }
    return true;
  }

 private:
  static constexpr int kMaxDepth = 100;

  void Space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool Eat(char c) {
    Space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }
  static bool IsIdent(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  bool Literal(int depth) {
    if (depth > kMaxDepth) return Fail("value nested too deep");
    Space();
    if (pos_ >= s_.size()) return Fail("missing value");
    char c = s_[pos_];
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return Number();
    if (c == '"') return String();
    if (c == '[') return Sequence(']', false, depth);
    if (c == '{') return Sequence('}', true, depth);
    size_t start = pos_;
    while (pos_ < s_.size() && IsIdent(s_[pos_])) ++pos_;
    std::string_view word = s_.substr(start, pos_ - start);
    if (word == "true" || word == "false" || word == "None") return true;
    if (word == "Some" || word == "Ok" || word == "Err") {
      if (!Eat('(')) return Fail(fmt::format("expected '(' after {}", word));
      if (!Literal(depth + 1)) return false;
      if (!Eat(')')) return Fail(fmt::format("expected ')' to close {}(", word));
      return true;
    }
    return Fail(word.empty() ? fmt::format("unexpected '{}'", c)
                             : fmt::format("'{}' is not a literal", word));
  }

  bool Digits(bool (*ok)(char)) {
    size_t start = pos_;
    while (pos_ < s_.size() && (ok(s_[pos_]) || s_[pos_] == '_')) ++pos_;
    return pos_ > start;
  }

  bool Number() {
    if (s_[pos_] == '-') ++pos_;
    auto dec = [](char c) { return c >= '0' && c <= '9'; };
    auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    auto bin = [](char c) { return c == '0' || c == '1'; };
    if (pos_ + 1 < s_.size() && s_[pos_] == '0' && (s_[pos_ + 1] == 'x' || s_[pos_ + 1] == 'b')) {
      bool is_hex = s_[pos_ + 1] == 'x';
      pos_ += 2;
      if (!Digits(is_hex ? +hex : +bin)) return Fail("malformed number");
    } else {
      if (pos_ >= s_.size() || !dec(s_[pos_])) return Fail("malformed number");
      Digits(+dec);
      if (pos_ + 1 < s_.size() && s_[pos_] == '.' && dec(s_[pos_ + 1])) {
        ++pos_;
        Digits(+dec);
      }
      if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
        ++pos_;
        if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
        if (!Digits(+dec)) return Fail("malformed number");
      }
    }
    if (pos_ < s_.size() && (IsIdent(s_[pos_]) || s_[pos_] == '.')) return Fail("malformed number");
    return true;
  }

  bool String() {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in string");
      if (c == '\\') {
        if (pos_ >= s_.size()) break;
        ++pos_;  // the escaped character; the compiler validates the escape itself
      }
    }
    return Fail("unterminated string");
  }

  bool Sequence(char close, bool is_map, int depth) {
    ++pos_;  // opening bracket
    if (Eat(close)) return true;
    while (true) {
      if (!Literal(depth + 1)) return false;
      if (is_map) {
        if (!Eat(':')) return Fail("expected ':' in map");
        if (!Literal(depth + 1)) return false;
      }
      if (Eat(close)) return true;
      if (!Eat(',')) return Fail(fmt::format("expected ',' or '{}'", close));
      if (Eat(close)) return true;  // trailing comma
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

// `call`'s ARGS joined with ", " after checking that each is a Shape literal (a usage error,
// printed, names the first that is not).
bool JoinLiteralArgs(const Streams& s, const std::vector<std::string>& args, std::string* joined) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (!LiteralChecker(args[i]).Check(&error)) {
      PrintUsageError(
          s, fmt::format("argument {} ({}) is not a Shape literal: {}", i + 1, args[i], error));
      return false;
    }
    *joined += (i ? ", " : "") + args[i];
  }
  return true;
}

// ---------------- reports ----------------

// What a call has to say after its arguments were accepted: text on the streams, or one JSON
// object on `out` (--json). The program's output goes through Output(): as it comes in text,
// kept for "output" with --json. The first report wins; the --timeout watchdog may report from
// its own thread, hence the mutex.
class CallReport {
 public:
  CallReport(const Streams& s, bool json, std::string file)
      : s_(s), json_(json), file_(std::move(file)) {}

  std::function<void(std::string_view)> OutputSink() {
    return [this](std::string_view text) { Output(text); };
  }
  void Output(std::string_view text) {
    if (!json_) {
      s_.out(text);
      return;
    }
    std::lock_guard lock(mu_);
    output_.append(text);
  }

  // The result, printed as inside a container or converted (both walks paid by `vm`).
  int Result(engine::Vm& vm, const engine::Value& result, const ValueJsonOptions& options) {
    if (json_) {
      Json value;
      if (!ValueToJson(vm, result, options, &value)) return RuntimeError(vm.last_error(), {});
      return Finish("result", std::move(value), kExitOk);
    }
    std::string text;
    if (!engine::ValueToString(vm, result, /*quoted=*/true, &text))
      return RuntimeError(vm.last_error(), {});
    s_.out(text + "\n");
    return kExitOk;
  }

  // A runtime-side error (exit 1): its kind, message and the Shape frames, innermost first.
  int RuntimeError(const Status& status, const std::vector<engine::TraceFrame>& trace) {
    if (!json_) return ReportRuntimeError(s_, status, trace, file_);
    return Finish("error", ErrorJson(UserKindName(status.kind()), status.message(), trace),
                  kExitRuntime);
  }
  // An error without a trace, e.g. FunctionNotFound (exit 1).
  int Error(std::string_view kind, std::string_view message) {
    if (!json_) {
      PrintError(s_, kind, message);
      return kExitRuntime;
    }
    return Finish("error", ErrorJson(kind, message, {}), kExitRuntime);
  }
  // A file that does not compile (exit 65): `diag` says where when it knows.
  int CompileError(const engine::Diagnostic& diag, const Status& error, const std::string& source) {
    std::string message = diag.message.empty() ? error.message() : diag.message;
    if (!json_) {
      s_.err(fmt::format("{}: {}\n{}", ErrorHeader(s_, "CompileError"), message,
                         engine::FormatDiagnosticLocation(diag, source)));
      return kExitCompile;
    }
    Json e = ErrorJson("CompileError", message, {});
    if (diag.line > 0) {
      e["location"] = {{"file", diag.file.empty() ? file_ : diag.file},
                       {"line", diag.line},
                       {"column", diag.col}};
    }
    return Finish("error", std::move(e), kExitCompile);
  }
  // Code the verifier refused (exit 65).
  int VerifyError(const Status& status) {
    if (!json_) {
      PrintError(s_, "CompileError", status.message());
      return kExitCompile;
    }
    return Finish("error", ErrorJson("CompileError", status.message(), {}), kExitCompile);
  }
  // The watchdog's report: false when the call has reported already (it is about to exit).
  bool Timeout(double seconds) {
    if (!json_) {
      PrintError(s_, "Timeout", WatchdogMessage(seconds));
      return true;
    }
    return Finish("error", ErrorJson("Timeout", WatchdogMessage(seconds), {}), kExitRuntime) ==
           kExitRuntime;
  }

 private:
  Json ErrorJson(std::string_view kind, std::string_view message,
                 const std::vector<engine::TraceFrame>& trace) const {
    Json frames = Json::array();
    for (const engine::TraceFrame& f : trace) {
      // The generated entry points of `call` are not the user's frames.
      if (f.function == kCallEntry || f.function == kArgsEntry) continue;
      if (f.skipped > 0) {
        frames.push_back({{"skipped", f.skipped}});
      } else if (f.file.empty() && f.line == 0) {
        frames.push_back({{"function", f.function}, {"file", nullptr}, {"line", nullptr}});
      } else {
        frames.push_back({{"function", f.function},
                          {"file", f.file.empty() ? file_ : f.file},
                          {"line", f.line}});
      }
    }
    return {{"kind", kind}, {"message", message}, {"trace", std::move(frames)}};
  }

  // Writes {"output": ..., key: value} once; later reports (the watchdog's) are dropped, and
  // return -1.
  int Finish(const char* key, Json value, int code) {
    std::lock_guard lock(mu_);
    if (finished_) return -1;
    finished_ = true;
    s_.out(DumpJson({{"output", output_}, {key, std::move(value)}}));
    return code;
  }

  const Streams& s_;
  const bool json_;
  const std::string file_;
  std::mutex mu_;
  std::string output_;
  bool finished_ = false;
};

// ---------------- calls ----------------

// `call` after compiling: the arguments are evaluated here (after the top-level code), the
// function runs through `remote` (an executor, or in process), the result is reported here.
int RunCallFunction(const CallOptions& o, const Program& program, CallReport& report) {
  RemoteCallsOptions calls = o.run.CallsOptions();
  if (o.json) calls.progress_fd = -1;  // stderr stays empty with --json
  RemoteCalls remote(program, calls);
  engine::Vm vm(program, o.run.Limits());
  vm.SetOutput(report.OutputSink());
  engine::Value args_value;
  Status status = vm.CallByName(kArgsEntry, {}, &args_value);
  if (!status.ok()) return report.RuntimeError(status, vm.trace());
  engine::Vm::RootScope root(vm);
  root.Add(args_value);
  int index = program.FindFunction(o.run.function);
  if (index < 0)
    return report.Error("FunctionNotFound", fmt::format("no function named '{}'", o.run.function));
  engine::Value function = vm.NewFunction(static_cast<uint32_t>(index));
  root.Add(function);
  const std::vector<engine::Value>& args = engine::AsArray(args_value)->items;
  engine::Value result;
  std::vector<engine::TraceFrame> trace;
  status = remote.Invoke(vm, function, args, &result, &trace);
  if (!status.ok()) return report.RuntimeError(status, trace);
  root.Add(result);
  ProgramHashes hashes(program);
  ValueJsonOptions options;
  options.hash_of = [&hashes](const engine::Proto& p) { return hashes.Of(p); };
  return report.Result(vm, result, options);
}

// `call` compiles the file plus a generated entry function `__shapex_call_entry() { FUNC(ARGS) }`
// so the argument literals become values inside the VM that runs FUNC. Top-level statements run
// first, as they would for `run`.
int RunCallFile(const CallOptions& o, const Streams& s) {
  const RunOptions& r = o.run;
  std::string source;
  if (!ReadSourceFile(s, r.file, &source)) return kExitUsage;
  CallReport report(s, o.json, r.file);
  engine::Diagnostic diag;
  Result<std::unique_ptr<Program>> program = engine::Compile(source, r.file, &diag);
  if (!program.has_value()) return report.CompileError(diag, program.error(), source);
  Status verified = engine::Verify(**program);
  if (!verified.ok()) return report.VerifyError(verified);
  if ((*program)->FindFunction(r.function) < 0)
    return report.Error("FunctionNotFound", fmt::format("no function named '{}'", r.function));
  std::string call_args;
  if (!JoinLiteralArgs(s, r.args, &call_args)) return kExitUsage;
  std::string call = r.function + "(" + call_args + ")";
  std::string wrapped = source + fmt::format("\nfunction {}() {{ {} }}\n", kCallEntry, call);
  wrapped += fmt::format("function {}() {{ [{}] }}\n", kArgsEntry, call_args);
  Result<std::unique_ptr<Program>> entry = engine::Compile(wrapped, r.file, &diag);
  if (!entry.has_value()) {
    PrintUsageError(s, fmt::format("invalid arguments for {}: {}", r.function, diag.message));
    return kExitUsage;
  }
  verified = engine::Verify(**entry);
  if (!verified.ok()) return report.VerifyError(verified);
  Watchdog watchdog(r.timeout, [&report, &r] { return report.Timeout(r.timeout); });
  return RunCallFunction(o, **entry, report);
}

// `call --hash HEX [ARGS...]`: calls a function the supervisor's blob store holds, by its content
// hash, with no source. The argument literals are evaluated in a program of their own; the
// lease names the hash, so the supervisor preloads the executor with that function and what it
// needs from its store, and the request carries no code. Frames of a trace are named with the
// debug info the store kept. A hash the store lacks: error[FunctionNotFound], as the linker
// reports it. The methods that `impl` adds to a type travel only with a program, so a function
// that calls such a method on a value it builds fails there ("no method").
int RunCallByHash(const CallOptions& o, const Streams& s) {
  const RunOptions& r = o.run;
  engine::FunctionHash hash;
  if (!engine::HashFromHex(o.hash, &hash)) {
    PrintUsageError(s, fmt::format("--hash {} is not a function hash (64 hex digits)", o.hash));
    return kExitUsage;
  }
  if (r.local) {
    PrintUsageError(s, "--hash calls a function of the supervisor's blob store; --local cannot");
    return kExitUsage;
  }
  std::string arg_list;
  if (!JoinLiteralArgs(s, r.args, &arg_list)) return kExitUsage;
  const std::string file = "<arguments>";
  engine::Diagnostic diag;
  Result<std::unique_ptr<Program>> program =
      engine::Compile(fmt::format("function {}() {{ [{}] }}\n", kArgsEntry, arg_list), file, &diag);
  if (!program.has_value() || !engine::Verify(**program).ok()) {
    PrintUsageError(s, fmt::format("invalid arguments: {}", diag.message));
    return kExitUsage;
  }
  CallReport report(s, o.json, file);
  Watchdog watchdog(r.timeout, [&report, &r] { return report.Timeout(r.timeout); });
  engine::Vm vm(**program, r.Limits());
  engine::Value args_value;
  Status status = vm.CallByName(kArgsEntry, {}, &args_value);
  if (!status.ok()) return report.RuntimeError(status, vm.trace());
  engine::Vm::RootScope root(vm);
  root.Add(args_value);
  Result<engine::ProgramBlobs> blobs = engine::BuildProgramBlobs(**program);
  if (!blobs.has_value()) return report.RuntimeError(blobs.error(), {});
  ipc::RemoteCallRequest request;
  request.function_name = engine::HashToHex(hash);  // for messages only: the hash is the entry
  request.function_hash = hash;
  for (const engine::Value& v : engine::AsArray(args_value)->items) {
    Result<ipc::WireValue> w = ipc::ToWire(v, {program->get(), blobs->proto_hashes});
    if (!w.has_value()) return report.RuntimeError(w.error(), {});
    request.arguments.push_back(std::move(*w));
  }
  request.limits = r.RemoteLimits();
  Result<Client> client = Client::Connect(r.Client());
  if (!client.has_value()) return report.RuntimeError(client.error(), {});
  std::vector<engine::FunctionHash> code{hash};
  Result<Lease> lease = client->LeaseExecutor(code);
  if (!lease.has_value()) return report.RuntimeError(lease.error(), {});
  Result<ipc::RemoteCallResponse> response = client->CallOn(*lease, std::move(request));
  client->Release(*lease);
  if (!response.has_value()) return report.RuntimeError(response.error(), {});
  if (!response->output.empty()) report.Output(response->output);
  if (!response->ok()) {
    const ipc::RemoteCallError& e = response->error();
    if (e.kind == ErrorKind::kFunctionNotFound &&
        e.message == fmt::format("entry function blob {} is missing", engine::HashToHex(hash))) {
      return report.Error("FunctionNotFound",
                          fmt::format("no function with hash {} in the supervisor's blob store",
                                      engine::HashToHex(hash)));
    }
    return report.RuntimeError(response->status(), e.trace);
  }
  ipc::TypeRegistry types(**program);
  ipc::ProtoIndex protos = ipc::MakeProtoIndex(blobs->proto_hashes);
  ipc::FromWireContext ctx{&vm, &protos, &types};
  Result<engine::Value> result = ipc::FromWire(response->value(), ctx);
  if (!result.has_value()) return report.RuntimeError(result.error(), {});
  root.Add(*result);
  ProgramHashes hashes(**program);
  ValueJsonOptions options;
  options.hash_of = [&hashes](const engine::Proto& p) { return hashes.Of(p); };
  return report.Result(vm, *result, options);
}

}  // namespace

int RunCall(const CallOptions& o, const Streams& s) {
  return o.hash.empty() ? RunCallFile(o, s) : RunCallByHash(o, s);
}

}  // namespace shapex::cli
