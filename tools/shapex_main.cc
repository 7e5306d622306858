// shapex: the command-line driver (LANGUAGE.md "Running" and "Errors").
//
//   shapex run FILE [--local] [limits] [-- ARGS...]     top-level code, then main(args)
//   shapex call FILE FUNC [ARGS...] [--local] [limits]   one function; ARGS are Shape literals
//   shapex call --hash HEX [ARGS...] [limits]            a function of the blob store, by hash
//   shapex check FILE                                    compile + verify only
//   shapex disasm FILE [FUNC]                            bytecode listing
//   shapex cache ls|stats|verify|gc|clear|add|cat        the on-disk blob store (cache_command.h)
//
// Exit codes are a contract: 0 ok, 1 runtime-side error (any kind but CompileError), 2 usage or
// I/O error, 65 compile error. Errors go to stderr as `error[Kind]: message`, after stdout has
// been flushed so the two streams interleave the way the program produced them.
//
// `call` runs the function, and `run` every call of an @remote function, in a jailed executor
// leased from the per-user supervisor (started on demand; `shapex serve`, serve_command.h)
// unless --local is given (client/remote_calls.h). In-process, `--timeout` is also enforced by
// a watchdog thread.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache_command.h"
#include "exit_codes.h"
#include "run_command.h"
#include "serve_command.h"
#include "shapex/client/client.h"
#include "shapex/client/remote_calls.h"
#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/wire_value.h"
#include "shapex/core/status.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/disasm.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"
#include "shapex/engine/verifier.h"
#include "shapex/engine/vm.h"

namespace shapex {
namespace {

using engine::Program;


void FlushStdout() {
  std::cout.flush();
  std::fflush(stdout);
}

// The CLI's streams, and its error reports on them (run_command.h).
const cli::Streams& Std() {
  static const cli::Streams streams = cli::StdStreams();
  return streams;
}
void PrintError(std::string_view kind, std::string_view message) {
  cli::PrintError(Std(), kind, message);
}
int ReportRuntimeError(const Status& status, const std::vector<engine::TraceFrame>& trace,
                       const std::string& file) {
  return cli::ReportRuntimeError(Std(), status, trace, file);
}
std::unique_ptr<Program> CompileChecked(const std::string& source, const std::string& file) {
  return cli::CompileChecked(Std(), source, file);
}

// Usage problems (exit 2) have no error kind of their own.
void PrintUsageError(std::string_view message) {
  FlushStdout();
  fmt::print(stderr, "error: {}\n", message);
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    PrintUsageError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    PrintUsageError(fmt::format("cannot read {}: read failed", path));
    return false;
  }
  *out = buffer.str();
  return true;
}

// ---------------- `call` argument literals ----------------

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

// Enforces --timeout while everything runs in-process: when the deadline passes first, the
// watchdog flushes stdout, reports error[Timeout] and ends the process with exit code 1 (the VM
// has no cancellation hook, and a stuck program must not outlive its limit). Executors will
// enforce the limit themselves once the supervisor exists.
// The VM stops itself with a Timeout (and a trace) at its next instruction-slice check; the
// watchdog is the backstop for a single native call that runs far past the deadline.
constexpr double kWatchdogGrace = 1.0;

class Watchdog {
 public:
  explicit Watchdog(double seconds) {
    if (seconds <= 0) return;
    thread_ = std::thread([this, seconds] {
      std::unique_lock lock(mu_);
      auto limit = std::chrono::duration<double>(seconds + kWatchdogGrace);
      if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
      std::fflush(stdout);
      std::string text = fmt::format("error[Timeout]: wall-clock limit of {}s exceeded\n", seconds);
      std::fputs(text.c_str(), stderr);
      std::fflush(stderr);
      std::_Exit(kExitRuntime);
    });
  }
  ~Watchdog() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// ---------------- commands ----------------

using cli::kArgsEntry;
using cli::kCallEntry;
using cli::RunOptions;

// `call`'s ARGS joined with ", " after checking that each is a Shape literal (a usage error,
// printed, names the first that is not).
bool JoinLiteralArgs(const std::vector<std::string>& args, std::string* joined) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error;
    if (!LiteralChecker(args[i]).Check(&error)) {
      PrintUsageError(
          fmt::format("argument {} ({}) is not a Shape literal: {}", i + 1, args[i], error));
      return false;
    }
    *joined += (i ? ", " : "") + args[i];
  }
  return true;
}

// `call` after compiling: the arguments are evaluated here (after the top-level code), the
// function runs through `remote` (an executor, or in process), the result is printed here.
int RunCallFunction(const RunOptions& o, const Program& program) {
  RemoteCalls remote(program, o.CallsOptions());
  engine::Vm vm(program, o.Limits());
  engine::Value args_value;
  Status status = vm.CallByName(kArgsEntry, {}, &args_value);
  FlushStdout();
  if (!status.ok()) return ReportRuntimeError(status, vm.trace(), o.file);
  engine::Vm::RootScope root(vm);
  root.Add(args_value);
  int index = program.FindFunction(o.function);
  if (index < 0) {
    PrintError("FunctionNotFound", fmt::format("no function named '{}'", o.function));
    return kExitRuntime;
  }
  engine::Value function = vm.NewFunction(static_cast<uint32_t>(index));
  root.Add(function);
  const std::vector<engine::Value>& args = engine::AsArray(args_value)->items;
  engine::Value result;
  std::vector<engine::TraceFrame> trace;
  status = remote.Invoke(vm, function, args, &result, &trace);
  FlushStdout();
  if (!status.ok()) return ReportRuntimeError(status, trace, o.file);
  // Printing the result is a walk like any other: it pays this Vm's fuel and memory.
  std::string text;
  if (!engine::ValueToString(vm, result, /*quoted=*/true, &text))
    return ReportRuntimeError(vm.last_error(), {}, o.file);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
  FlushStdout();
  return kExitOk;
}

int RunRun(const RunOptions& o) {
  std::string source;
  if (!ReadFile(o.file, &source)) return kExitUsage;
  Watchdog watchdog(o.timeout);
  int code = cli::RunSource(o, source, Std());
  FlushStdout();
  return code;
}

// `call` compiles the file plus a generated entry function `__shapex_call_entry() { FUNC(ARGS) }`
// so the argument literals become values inside the VM that runs FUNC. Top-level statements run
// first, as they would for `run`.
int RunCall(const RunOptions& o) {
  std::string source;
  if (!ReadFile(o.file, &source)) return kExitUsage;
  std::unique_ptr<Program> program = CompileChecked(source, o.file);
  if (!program) return kExitCompile;
  if (program->FindFunction(o.function) < 0) {
    PrintError("FunctionNotFound", fmt::format("no function named '{}'", o.function));
    return kExitRuntime;
  }
  std::string call_args;
  if (!JoinLiteralArgs(o.args, &call_args)) return kExitUsage;
  std::string call = o.function + "(" + call_args + ")";
  std::string wrapped = source + fmt::format("\nfunction {}() {{ {} }}\n", kCallEntry, call);
  wrapped += fmt::format("function {}() {{ [{}] }}\n", kArgsEntry, call_args);
  engine::Diagnostic diag;
  Result<std::unique_ptr<Program>> entry = engine::Compile(wrapped, o.file, &diag);
  if (!entry.has_value()) {
    PrintUsageError(fmt::format("invalid arguments for {}: {}", o.function, diag.message));
    return kExitUsage;
  }
  Status verified = engine::Verify(**entry);
  if (!verified.ok()) {
    PrintError("CompileError", verified.message());
    return kExitCompile;
  }
  Watchdog watchdog(o.timeout);
  return RunCallFunction(o, **entry);
}

// `call --hash HEX [ARGS...]`: calls a function the supervisor's blob store holds, by its content
// hash, with no source. The argument literals are evaluated in a program of their own; the
// lease names the hash, so the supervisor preloads the executor with that function and what it
// needs from its store, and the request carries no code. Frames of a trace are named with the
// debug info the store kept. A hash the store lacks: error[FunctionNotFound], as the linker
// reports it. The methods that `impl` adds to a type travel only with a program, so a function
// that calls such a method on a value it builds fails there ("no method").
int RunCallByHash(const RunOptions& o, const std::string& hex) {
  engine::FunctionHash hash;
  if (!engine::HashFromHex(hex, &hash)) {
    PrintUsageError(fmt::format("--hash {} is not a function hash (64 hex digits)", hex));
    return kExitUsage;
  }
  if (o.local) {
    PrintUsageError("--hash calls a function of the supervisor's blob store; --local cannot");
    return kExitUsage;
  }
  std::string arg_list;
  if (!JoinLiteralArgs(o.args, &arg_list)) return kExitUsage;
  const std::string file = "<arguments>";
  engine::Diagnostic diag;
  Result<std::unique_ptr<Program>> program =
      engine::Compile(fmt::format("function {}() {{ [{}] }}\n", kArgsEntry, arg_list), file, &diag);
  if (!program.has_value() || !engine::Verify(**program).ok()) {
    PrintUsageError(fmt::format("invalid arguments: {}", diag.message));
    return kExitUsage;
  }
  Watchdog watchdog(o.timeout);
  engine::Vm vm(**program, o.Limits());
  engine::Value args_value;
  Status status = vm.CallByName(kArgsEntry, {}, &args_value);
  if (!status.ok()) return ReportRuntimeError(status, vm.trace(), file);
  engine::Vm::RootScope root(vm);
  root.Add(args_value);
  Result<engine::ProgramBlobs> blobs = engine::BuildProgramBlobs(**program);
  if (!blobs.has_value()) return ReportRuntimeError(blobs.error(), {}, file);
  ipc::RemoteCallRequest request;
  request.function_name = engine::HashToHex(hash);  // for messages only: the hash is the entry
  request.function_hash = hash;
  for (const engine::Value& v : engine::AsArray(args_value)->items) {
    Result<ipc::WireValue> w = ipc::ToWire(v, {program->get(), blobs->proto_hashes});
    if (!w.has_value()) return ReportRuntimeError(w.error(), {}, file);
    request.arguments.push_back(std::move(*w));
  }
  request.limits = o.RemoteLimits();
  Result<Client> client = Client::Connect(o.Client());
  if (!client.has_value()) return ReportRuntimeError(client.error(), {}, file);
  std::vector<engine::FunctionHash> code{hash};
  Result<Lease> lease = client->LeaseExecutor(code);
  if (!lease.has_value()) return ReportRuntimeError(lease.error(), {}, file);
  Result<ipc::RemoteCallResponse> response = client->CallOn(*lease, std::move(request));
  client->Release(*lease);
  if (!response.has_value()) return ReportRuntimeError(response.error(), {}, file);
  if (!response->output.empty()) {
    std::fwrite(response->output.data(), 1, response->output.size(), stdout);
  }
  if (!response->ok()) {
    const ipc::RemoteCallError& e = response->error();
    if (e.kind == ErrorKind::kFunctionNotFound &&
        e.message == fmt::format("entry function blob {} is missing", engine::HashToHex(hash))) {
      PrintError("FunctionNotFound",
                 fmt::format("no function with hash {} in the supervisor's blob store",
                             engine::HashToHex(hash)));
      return kExitRuntime;
    }
    return ReportRuntimeError(response->status(), e.trace, file);
  }
  ipc::TypeRegistry types(**program);
  ipc::ProtoIndex protos = ipc::MakeProtoIndex(blobs->proto_hashes);
  ipc::FromWireContext ctx{&vm, &protos, &types};
  Result<engine::Value> result = ipc::FromWire(response->value(), ctx);
  if (!result.has_value()) return ReportRuntimeError(result.error(), {}, file);
  std::string text = engine::ValueToString(*result, /*quoted=*/true);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
  FlushStdout();
  return kExitOk;
}

int RunCheck(const std::string& file) {
  std::string source;
  if (!ReadFile(file, &source)) return kExitUsage;
  return CompileChecked(source, file) ? kExitOk : kExitCompile;
}

int RunDisasm(const std::string& file, const std::string& function) {
  std::string source;
  if (!ReadFile(file, &source)) return kExitUsage;
  std::unique_ptr<Program> program = CompileChecked(source, file);
  if (!program) return kExitCompile;
  std::string out;
  if (function.empty()) {
    out = engine::DisassembleProgram(*program);
  } else {
    for (const auto& proto : program->protos) {
      if (proto->name != function) continue;
      if (!out.empty()) out += '\n';
      out += engine::Disassemble(*program, *proto);
    }
    if (out.empty()) {
      PrintError("FunctionNotFound", fmt::format("no function named '{}'", function));
      return kExitRuntime;
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  FlushStdout();
  return kExitOk;
}

// Prints the content hash of FUNC: a top-level function, or `Type.method`.
int RunHash(const std::string& file, const std::string& function) {
  std::string source;
  if (!ReadFile(file, &source)) return kExitUsage;
  std::unique_ptr<Program> program = CompileChecked(source, file);
  if (!program) return kExitCompile;
  Result<engine::ProgramBlobs> blobs = engine::BuildProgramBlobs(*program);
  if (!blobs.has_value()) {
    PrintError(ErrorKindName(blobs.error().kind()), blobs.error().message());
    return kExitRuntime;
  }
  Result<engine::BlobSet> set = engine::MinimalBlobs(*blobs, function);
  if (!set.has_value()) {
    PrintError(ErrorKindName(set.error().kind()), set.error().message());
    return kExitRuntime;
  }
  fmt::print("{}\n", engine::HashToHex(set->entry));
  FlushStdout();
  return kExitOk;
}

int Main(int argc, char** argv) {
  CLI::App app{"shapex: run Shape programs"};
  // The version is the CMake project's (CMakeLists.txt), passed in by the build.
  app.set_version_flag("--version", std::string("shapex ") + SHAPEX_VERSION);
  app.require_subcommand(1);

  RunOptions run_opts;
  CLI::App* run = app.add_subcommand("run", "Run a program: top-level code, then main(args)");
  run->add_option("file", run_opts.file, "Source file (.shape); main's arguments follow --")
      ->required();

  cli::AddLimitFlags(run, &run_opts);

  RunOptions call_opts;
  std::string call_hash;
  CLI::App* call = app.add_subcommand(
      "call", "Call one function: FILE FUNC [ARGS...], or --hash HEX [ARGS...] from the store");
  CLI::Option* call_file = call->add_option("file", call_opts.file, "Source file (.shape)");
  CLI::Option* call_function =
      call->add_option("function", call_opts.function, "Top-level function to call");
  call->add_option("--hash", call_hash,
                   "Call the function with this content hash from the supervisor's blob store "
                   "(no FILE or FUNC)")
      ->type_name("HEX");
  // ARGS are taken from the unparsed extras: a vector option would split "[1, 2]" in two.
  call->allow_extras();
  cli::AddLimitFlags(call, &call_opts);

  std::string check_file;
  CLI::App* check = app.add_subcommand("check", "Compile and verify only");
  check->add_option("file", check_file, "Source file (.shape)")->required();

  std::string disasm_file, disasm_function;
  CLI::App* disasm = app.add_subcommand("disasm", "Print the bytecode");
  disasm->add_option("file", disasm_file, "Source file (.shape)")->required();
  disasm->add_option("function", disasm_function, "Only this function");

  std::string hash_file, hash_function;
  CLI::App* hash = app.add_subcommand("hash", "Print a function's content hash (64 hex digits)");
  hash->add_option("file", hash_file, "Source file (.shape)")->required();
  hash->add_option("function", hash_function, "Function (or Type.method)")->required();

  CacheCommand cache(app);
  ServeCommand serve(app);

  // Everything after the first `--` is passed through untouched (CLI11 would split "[a,b]").
  std::vector<std::string> options, trailing;
  bool after_dashes = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!after_dashes && arg == "--") {
      after_dashes = true;
      continue;
    }
    (after_dashes ? trailing : options).push_back(std::move(arg));
  }
  app.name(argc > 0 ? argv[0] : "shapex");
  // A mistyped command gets its own message (CLI11 would only say a subcommand is required).
  if (!options.empty() && !options[0].empty() && options[0][0] != '-') {
    std::string known;
    bool found = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      found |= sub->get_name() == options[0];
      known += (known.empty() ? "" : ", ") + sub->get_name();
    }
    if (!found) {
      PrintUsageError(fmt::format("unknown command '{}' (commands: {})", options[0], known));
      return kExitUsage;
    }
  }
  std::reverse(options.begin(), options.end());  // CLI11 wants the vector reversed
  try {
    app.parse(options);
    if (call->parsed()) {
      for (const std::string& extra : call->remaining()) {
        bool flag = extra.size() > 1 && extra[0] == '-' &&
                    !std::isdigit(static_cast<unsigned char>(extra[1])) && extra[1] != '.';
        if (flag) throw CLI::ExtrasError({extra});
        call_opts.args.push_back(extra);
      }
    }
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    FlushStdout();
    app.exit(e, std::cout, std::cerr);
    return kExitUsage;
  }
  if (run->parsed()) {
    run_opts.args = std::move(trailing);
    return RunRun(run_opts);
  }
  if (call->parsed()) {
    if (!call_hash.empty()) {
      // No FILE or FUNC with --hash: what CLI11 put in those slots are the first arguments.
      std::vector<std::string> args;
      if (call_file->count() > 0) args.push_back(call_opts.file);
      if (call_function->count() > 0) args.push_back(call_opts.function);
      args.insert(args.end(), call_opts.args.begin(), call_opts.args.end());
      args.insert(args.end(), trailing.begin(), trailing.end());
      call_opts.args = std::move(args);
      return RunCallByHash(call_opts, call_hash);
    }
    if (call_file->count() == 0 || call_function->count() == 0) {
      PrintUsageError("call needs FILE and FUNC, or --hash HEX (run with --help for more)");
      return kExitUsage;
    }
    call_opts.args.insert(call_opts.args.end(), trailing.begin(), trailing.end());
    return RunCall(call_opts);
  }
  if (!trailing.empty()) {
    PrintUsageError("arguments after -- are only accepted by run and call");
    return kExitUsage;
  }
  if (check->parsed()) return RunCheck(check_file);
  if (disasm->parsed()) return RunDisasm(disasm_file, disasm_function);
  if (hash->parsed()) return RunHash(hash_file, hash_function);
  if (cache.parsed()) return cache.Run();
  if (serve.parsed()) return serve.Run();
  return kExitUsage;
}

}  // namespace
}  // namespace shapex

#ifdef SHAPEX_TEST_NATIVES
#include "testing/test_natives.h"
#endif

int main(int argc, char** argv) {
#ifdef SHAPEX_TEST_NATIVES
  // Only the test binary `shapex_with_test_natives` (tests/CMakeLists.txt) has these.
  shapex_testing::RegisterTestNatives();
#endif
  return shapex::Main(argc, argv);
}
