// shapex: the command-line driver (LANGUAGE.md "Running" and "Errors").
//
//   shapex [--color=WHEN] COMMAND ...                          WHEN: auto (default), always, never
//   shapex run FILE [--local] [limits] [-- ARGS...]            top-level code, then main(args)
//   shapex call [--json] FILE FUNC [ARGS...] [--local] [limits]   one function (call_command.h)
//   shapex call [--json] --hash HEX [ARGS...] [limits]         a function of the blob store
//   shapex check FILE                                          compile + verify only
//   shapex disasm FILE [FUNC]                                  bytecode listing
//   shapex hash FILE FUNC                                      a function's content hash
//   shapex cache ls|stats|verify|gc|clear|add|cat              the blob store (cache_command.h)
//   shapex serve|status|stop                                   the supervisor (serve_command.h)
//
// Exit codes are a contract: 0 ok, 1 runtime-side error (any kind but CompileError), 2 usage or
// I/O error, 65 compile error. Errors go to stderr as `error[Kind]: message` (usage errors as
// `error: message`), after stdout has been flushed so the two streams interleave the way the
// program produced them; the header is bold red when --color says so (run_command.h UseColor).
// An unknown command or flag is named, with the list of those the command accepts.
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
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cache_command.h"
#include "call_command.h"
#include "exit_codes.h"
#include "run_command.h"
#include "serve_command.h"
#include "shapex/core/status.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/disasm.h"
#include "shapex/engine/program.h"

namespace shapex {
namespace {

using cli::Streams;
using engine::Program;

void FlushStdout() {
  std::cout.flush();
  std::fflush(stdout);
}

// ---------------- commands ----------------

int RunRun(const cli::RunOptions& o, const Streams& s) {
  std::string source;
  if (!cli::ReadSourceFile(s, o.file, &source)) return kExitUsage;
  cli::Watchdog watchdog(o.timeout, s);
  int code = cli::RunSource(o, source, s);
  FlushStdout();
  return code;
}

int RunCheck(const std::string& file, const Streams& s) {
  std::string source;
  if (!cli::ReadSourceFile(s, file, &source)) return kExitUsage;
  return cli::CompileChecked(s, source, file) ? kExitOk : kExitCompile;
}

int RunDisasm(const std::string& file, const std::string& function, const Streams& s) {
  std::string source;
  if (!cli::ReadSourceFile(s, file, &source)) return kExitUsage;
  std::unique_ptr<Program> program = cli::CompileChecked(s, source, file);
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
      cli::PrintError(s, "FunctionNotFound", fmt::format("no function named '{}'", function));
      return kExitRuntime;
    }
  }
  s.out(out);
  return kExitOk;
}

// Prints the content hash of FUNC: a top-level function, or `Type.method`.
int RunHash(const std::string& file, const std::string& function, const Streams& s) {
  std::string source;
  if (!cli::ReadSourceFile(s, file, &source)) return kExitUsage;
  std::unique_ptr<Program> program = cli::CompileChecked(s, source, file);
  if (!program) return kExitCompile;
  Result<engine::ProgramBlobs> blobs = engine::BuildProgramBlobs(*program);
  if (!blobs.has_value()) {
    cli::PrintError(s, ErrorKindName(blobs.error().kind()), blobs.error().message());
    return kExitRuntime;
  }
  Result<engine::BlobSet> set = engine::MinimalBlobs(*blobs, function);
  if (!set.has_value()) {
    cli::PrintError(s, ErrorKindName(set.error().kind()), set.error().message());
    return kExitRuntime;
  }
  s.out(engine::HashToHex(set->entry) + "\n");
  return kExitOk;
}

// ---------------- what the command line got wrong ----------------

// The commands on the command line, outermost (the app) first.
std::vector<CLI::App*> CommandChain(CLI::App* app) {
  std::vector<CLI::App*> chain{app};
  while (!chain.back()->get_subcommands().empty())
    chain.push_back(chain.back()->get_subcommands().back());
  return chain;
}

std::string CommandName(const CLI::App* cmd) {
  if (cmd->get_parent() == nullptr) return "shapex";
  return CommandName(cmd->get_parent()) + " " + cmd->get_name();
}

std::string Join(std::vector<std::string> words) {
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : ", ") + w;
  return text;
}

// The long flags `cmd` accepts, with those of the commands its unknown flags fall through to.
std::vector<std::string> FlagsOf(const CLI::App* cmd) {
  std::vector<std::string> flags;
  for (const CLI::App* c = cmd; c != nullptr; c = c->get_fallthrough() ? c->get_parent() : nullptr)
    for (const CLI::Option* option : c->get_options())
      for (const std::string& name : option->get_lnames()) flags.push_back("--" + name);
  return flags;
}

std::vector<std::string> SubcommandsOf(CLI::App* cmd) {
  std::vector<std::string> names;
  for (const CLI::App* sub : cmd->get_subcommands({})) names.push_back(sub->get_name());
  return names;
}

bool IsFlag(const std::string& word) {
  return word.size() > 1 && word[0] == '-' && !std::isdigit(static_cast<unsigned char>(word[1])) &&
         word[1] != '.';
}

// "unknown flag '--x' for 'shapex cache ls' (flags: ...)"; a global flag given after the
// command is told where it goes.
int UnknownFlag(CLI::App* app, const CLI::App* cmd, const std::string& word, const Streams& s) {
  std::string flag = word.substr(0, word.find('='));
  std::vector<std::string> global = FlagsOf(app);
  if (cmd != app && std::find(global.begin(), global.end(), flag) != global.end() &&
      flag != "--help") {
    cli::PrintUsageError(s, fmt::format("{} goes before the command: shapex {} {} ...", flag, word,
                                        cmd->get_name()));
    return kExitUsage;
  }
  cli::PrintUsageError(s, fmt::format("unknown flag '{}' for '{}' (flags: {})", flag,
                                      CommandName(cmd), Join(FlagsOf(cmd))));
  return kExitUsage;
}

// Every parse failure is a usage error (exit 2). Unknown words are named with what would have
// been accepted there; CLI11's own message is kept for the rest (a bad value, a missing FILE).
int ReportParseError(CLI::App* app, const CLI::ParseError& e, const Streams& s) {
  std::vector<CLI::App*> chain = CommandChain(app);
  CLI::App* deepest = chain.back();
  bool words_left = dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr ||
                    dynamic_cast<const CLI::RequiredError*>(&e) != nullptr;
  for (CLI::App* cmd : words_left ? chain : std::vector<CLI::App*>{}) {
    std::vector<std::string> extra = cmd->remaining();
    if (extra.empty()) continue;
    // A word left over at the top comes before the command (commands do not pass words up);
    // below, subcommands pass theirs up (`cache ls --x` leaves --x with `cache`).
    const std::string& word = extra.front();
    if (IsFlag(word)) return UnknownFlag(app, cmd == app ? app : deepest, word, s);
    if (cmd == app || (cmd == deepest && !cmd->get_subcommands({}).empty())) {
      std::string what = cmd == app ? "command" : cmd->get_name() + " command";
      cli::PrintUsageError(
          s, fmt::format("unknown {} '{}' ({}s: {})", what, word, what, Join(SubcommandsOf(cmd))));
      return kExitUsage;
    }
    cli::PrintUsageError(
        s, fmt::format("unexpected argument '{}' for '{}'", word, CommandName(deepest)));
    return kExitUsage;
  }
  if (words_left && !deepest->get_subcommands({}).empty()) {
    std::string what = deepest == app ? "command" : deepest->get_name() + " command";
    cli::PrintUsageError(s, fmt::format("'{}' needs a {} ({}s: {})", CommandName(deepest), what,
                                        what, Join(SubcommandsOf(deepest))));
    return kExitUsage;
  }
  cli::PrintUsageError(
      s, fmt::format("{} (run '{} --help' for more)", e.what(), CommandName(deepest)));
  return kExitUsage;
}

// The version line: the CMake project's version, and the git revision of the tree it was built
// from when there was one (both passed in by the build: tools/CMakeLists.txt).
std::string VersionText() {
  std::string text = std::string("shapex ") + SHAPEX_VERSION;
#ifdef SHAPEX_GIT_REVISION
  if (std::string_view(SHAPEX_GIT_REVISION).size() > 0)
    text += std::string(" (git ") + SHAPEX_GIT_REVISION + ")";
#endif
  return text;
}

int Main(int argc, char** argv) {
  CLI::App app{"shapex: run Shape programs"};
  app.set_version_flag("--version", VersionText());
  app.require_subcommand(1);
  std::string color_flag = "auto";
  // Parsed as soon as it is read, so a later error on the line is already reported with it.
  app.add_option("--color", color_flag,
                 "Colour error headers: auto (when stderr is a terminal and NO_COLOR is unset "
                 "or empty), always or never (default auto); goes before the command")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->type_name("WHEN")
      ->trigger_on_parse();

  cli::RunOptions run_opts;
  CLI::App* run = app.add_subcommand("run", "Run a program: top-level code, then main(args)");
  run->add_option("file", run_opts.file, "Source file (.shape); main's arguments follow --")
      ->required();
  cli::AddLimitFlags(run, &run_opts);

  cli::CallOptions call_opts;
  CLI::App* call = app.add_subcommand(
      "call", "Call one function: FILE FUNC [ARGS...], or --hash HEX [ARGS...] from the store");
  CLI::Option* call_file = call->add_option("file", call_opts.run.file, "Source file (.shape)");
  CLI::Option* call_function =
      call->add_option("function", call_opts.run.function, "Top-level function to call");
  call->add_option("--hash", call_opts.hash,
                   "Call the function with this content hash from the supervisor's blob store "
                   "(no FILE or FUNC)")
      ->type_name("HEX");
  call->add_flag("--json", call_opts.json,
                 "Print one JSON object: {\"output\", \"result\"} or {\"output\", \"error\"} "
                 "(docs/cli-json.md)");
  // ARGS are taken from the unparsed extras: a vector option would split "[1, 2]" in two.
  call->allow_extras();
  cli::AddLimitFlags(call, &call_opts.run);

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
  auto streams = [&color_flag] {
    cli::ColorChoice choice = cli::ColorChoice::kAuto;
    cli::ParseColorChoice(color_flag, &choice);
    return cli::StdStreams(cli::UseColor(choice, STDERR_FILENO));
  };
  std::reverse(options.begin(), options.end());  // CLI11 wants the vector reversed
  try {
    app.parse(options);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return ReportParseError(&app, e, streams());
  }
  const Streams s = streams();
  if (call->parsed()) {
    for (const std::string& extra : call->remaining()) {
      if (IsFlag(extra)) return UnknownFlag(&app, call, extra, s);
      call_opts.run.args.push_back(extra);
    }
  }
  if (run->parsed()) {
    run_opts.args = std::move(trailing);
    return RunRun(run_opts, s);
  }
  if (call->parsed()) {
    if (!call_opts.hash.empty()) {
      // No FILE or FUNC with --hash: what CLI11 put in those slots are the first arguments.
      std::vector<std::string> args;
      if (call_file->count() > 0) args.push_back(call_opts.run.file);
      if (call_function->count() > 0) args.push_back(call_opts.run.function);
      args.insert(args.end(), call_opts.run.args.begin(), call_opts.run.args.end());
      args.insert(args.end(), trailing.begin(), trailing.end());
      call_opts.run.args = std::move(args);
    } else if (call_file->count() == 0 || call_function->count() == 0) {
      cli::PrintUsageError(s, "call needs FILE and FUNC, or --hash HEX (run with --help for more)");
      return kExitUsage;
    } else {
      call_opts.run.args.insert(call_opts.run.args.end(), trailing.begin(), trailing.end());
    }
    int code = cli::RunCall(call_opts, s);
    FlushStdout();
    return code;
  }
  if (!trailing.empty()) {
    cli::PrintUsageError(s, "arguments after -- are only accepted by run and call");
    return kExitUsage;
  }
  int code = kExitUsage;
  if (check->parsed()) code = RunCheck(check_file, s);
  if (disasm->parsed()) code = RunDisasm(disasm_file, disasm_function, s);
  if (hash->parsed()) code = RunHash(hash_file, hash_function, s);
  if (cache.parsed()) code = cache.Run(s);
  if (serve.parsed()) code = serve.Run(s);
  FlushStdout();
  return code;
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
