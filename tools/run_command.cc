#include "run_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "exit_codes.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/verifier.h"

namespace shapex::cli {
namespace {

void FlushStdout() {
  std::cout.flush();
  std::fflush(stdout);
}

// The path of the running binary (empty if /proc is unavailable).
std::string SelfExecutable() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// CLI11's NonNegativeNumber prints its whole double range on failure; these say what is wanted.
const CLI::Validator kCount(
    [](std::string& s) {
      bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
      return digits && s.size() <= 19 ? std::string() : "must be a non-negative integer";
    },
    "COUNT");
const CLI::Validator kSeconds(
    [](std::string& s) {
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      bool ok = !s.empty() && end == s.c_str() + s.size() && v >= 0 && v < 1e9;
      return ok ? std::string() : "must be a non-negative number of seconds";
    },
    "SECONDS");

}  // namespace

bool ParseColorChoice(std::string_view text, ColorChoice* out) {
  if (text == "auto") {
    *out = ColorChoice::kAuto;
  } else if (text == "always") {
    *out = ColorChoice::kAlways;
  } else if (text == "never") {
    *out = ColorChoice::kNever;
  } else {
    return false;
  }
  return true;
}

bool UseColor(ColorChoice choice, int fd) {
  if (choice != ColorChoice::kAuto) return choice == ColorChoice::kAlways;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && no_color[0] != '\0') return false;
  return ::isatty(fd) == 1;
}

Streams StdStreams(bool color) {
  return Streams{
      [](std::string_view text) { std::fwrite(text.data(), 1, text.size(), stdout); },
      [](std::string_view text) {
        FlushStdout();
        std::fwrite(text.data(), 1, text.size(), stderr);
        std::fflush(stderr);
      },
      color};
}

Streams StringStreams(std::string* out, std::string* err) {
  return Streams{[out](std::string_view text) { out->append(text); },
                 [err](std::string_view text) { err->append(text); }};
}

std::string ErrorHeader(const Streams& s, std::string_view kind) {
  std::string header = kind.empty() ? "error" : fmt::format("error[{}]", kind);
  // Bold red, then back to normal (SGR 1;31 and 0).
  return s.color ? "\x1b[1;31m" + header + "\x1b[0m" : header;
}

void PrintUsageError(const Streams& s, std::string_view message) {
  s.err(fmt::format("{}: {}\n", ErrorHeader(s, ""), message));
}

bool ReadSourceFile(const Streams& s, const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    PrintUsageError(s, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    PrintUsageError(s, fmt::format("cannot read {}: read failed", path));
    return false;
  }
  *out = buffer.str();
  return true;
}

std::string WatchdogMessage(double seconds) {
  return fmt::format("wall-clock limit of {}s exceeded", seconds);
}

Watchdog::Watchdog(double seconds, const Streams& s)
    : Watchdog(seconds, [&s, seconds] {
        PrintError(s, "Timeout", WatchdogMessage(seconds));
        return true;
      }) {}

Watchdog::Watchdog(double seconds, std::function<bool()> expire) {
  if (seconds <= 0) return;
  thread_ = std::thread([this, seconds, expire = std::move(expire)] {
    std::unique_lock lock(mu_);
    auto limit = std::chrono::duration<double>(seconds + kWatchdogGrace);
    if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
    if (!expire()) return;
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(kExitRuntime);
  });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

double RunOptions::CallLimit() const {
  if (timeout > 0 && remote_timeout > 0) return std::min(timeout, remote_timeout);
  return timeout > 0 ? timeout : remote_timeout;
}

engine::Limits RunOptions::Limits() const {
  return engine::Limits{.fuel = fuel, .memory = memory, .stack = stack, .timeout = timeout};
}

ipc::CallLimits RunOptions::RemoteLimits() const {
  return ipc::CallLimits{fuel, memory, stack, static_cast<uint64_t>(CallLimit() * 1000)};
}

ClientOptions RunOptions::Client() const {
  ClientOptions options;
  options.socket_path = socket;
  // A supervisor we start runs from this very binary (so the build tree works as is).
  options.shapex_binary = shapex_binary.empty() ? SelfExecutable() : shapex_binary;
  options.session.connection.transport =
      transport == "socket" ? ipc::Transport::kSocket : ipc::Transport::kCallRing;
  options.session.call_timeout =
      CallLimit() > 0 ? std::chrono::milliseconds(static_cast<int64_t>(CallLimit() * 1000) + 2000)
                      : std::chrono::milliseconds(int64_t{24} * 3600 * 1000);
  return options;
}

RemoteCallsOptions RunOptions::CallsOptions() const {
  RemoteCallsOptions options;
  options.client = Client();
  options.limits = RemoteLimits();
  options.in_process = local;
  if (!progress) options.progress_fd = -1;
  return options;
}

void AddLimitFlags(CLI::App* cmd, RunOptions* o) {
  cmd->add_flag("--local", o->local, "Run in-process instead of in a sandboxed executor");
  cmd->add_option("--transport", o->transport, "Executor connection: ring (default) or socket")
      ->check(CLI::IsMember({"ring", "socket"}));
  cmd->add_option("--socket", o->socket, "Supervisor socket (default: the per-user one)");
  cmd->add_option("--fuel", o->fuel, "Instruction budget (0 = unlimited)")->check(kCount);
  // Suffixes K, M, G (and KiB, MiB, GiB: the same, powers of 1024), e.g. --memory 512M.
  cmd->add_option("--memory", o->memory, "VM heap limit in bytes (suffix K, M or G allowed)")
      ->transform(CLI::AsSizeValue(false))
      ->check(kCount);
  cmd->add_option("--timeout", o->timeout, "Wall-clock limit in seconds (0 = none)")
      ->check(kSeconds);
  cmd->add_option("--stack", o->stack, "Maximum call depth in frames")->check(kCount);
  cmd->add_option("--remote-timeout", o->remote_timeout,
                  fmt::format("Wall-clock limit in seconds of each call that enters a @remote "
                              "function, with or without --local (default {}, 0 = none)",
                              kDefaultRemoteTimeout))
      ->check(kSeconds);
}

Status ParseLimitFlags(const std::vector<std::string>& flags, RunOptions* o) {
  CLI::App app;
  AddLimitFlags(&app, o);
  std::vector<std::string> reversed(flags.rbegin(), flags.rend());  // CLI11 wants it reversed
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return Status(ErrorKind::kInvalidArgument, e.what());
  }
  return Status::Ok();
}

void PrintError(const Streams& s, std::string_view kind, std::string_view message) {
  s.err(fmt::format("{}: {}\n", ErrorHeader(s, kind), message));
}

int ReportRuntimeError(const Streams& s, const Status& status,
                       const std::vector<engine::TraceFrame>& trace, const std::string& file) {
  std::string out =
      fmt::format("{}: {}\n", ErrorHeader(s, UserKindName(status.kind())), status.message());
  for (const engine::TraceFrame& f : trace) {
    // The generated entry points of `call` are not the user's frames.
    if (f.function == kCallEntry || f.function == kArgsEntry) continue;
    if (f.file.empty() && f.line == 0) {  // "... N more frames" marker from Vm::BuildTrace
      out += fmt::format("  {}\n", f.function);
      continue;
    }
    out += fmt::format("  at {} ({}:{})\n", f.function, f.file.empty() ? file : f.file, f.line);
  }
  s.err(out);
  return kExitRuntime;
}

std::unique_ptr<engine::Program> CompileChecked(const Streams& s, const std::string& source,
                                                const std::string& file) {
  engine::Diagnostic diag;
  Result<std::unique_ptr<engine::Program>> program = engine::Compile(source, file, &diag);
  if (!program.has_value()) {
    s.err(fmt::format("{}: {}\n{}", ErrorHeader(s, "CompileError"),
                      diag.message.empty() ? program.error().message() : diag.message,
                      engine::FormatDiagnosticLocation(diag, source)));
    return nullptr;
  }
  Status verified = engine::Verify(**program);
  if (!verified.ok()) {
    PrintError(s, "CompileError", verified.message());
    return nullptr;
  }
  return std::move(program).value();
}

int RunSource(const RunOptions& o, const std::string& source, const Streams& s) {
  std::unique_ptr<engine::Program> program = CompileChecked(s, source, o.file);
  if (!program) return kExitCompile;
  // @remote calls go to an executor (leased on the first one), or with --local through the
  // executor's code in this process.
  RemoteCalls remote(*program, o.CallsOptions());
  engine::Vm vm(*program, o.Limits());
  vm.SetOutput(s.out);
  remote.Install(vm);
  Status status = vm.RunMain(o.args);
  if (!status.ok()) return ReportRuntimeError(s, status, vm.trace(), o.file);
  return kExitOk;
}

}  // namespace shapex::cli
