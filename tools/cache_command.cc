// `shapex cache …` (see cache_command.h). Output is line-oriented and stable so scripts can
// parse it; `--json` (ls, stats, verify, gc) is the machine-readable form (docs/cli-json.md).
#include "cache_command.h"

#include "exit_codes.h"
#include "json_output.h"
#include "run_command.h"

#include <fmt/format.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "shapex/core/status.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/verifier.h"
#include "shapex/sandbox/blob_store.h"

namespace shapex {
namespace {

using sandbox::BlobStore;

constexpr int kExitCorruptionFound = kExitRuntime;
constexpr int kExitNotFound = kExitRuntime;  // like a function name `call` cannot find
constexpr int kExitUsageOrIo = kExitUsage;

// I/O failures are usage-level errors here (exit 2, "error: ..." like other usage errors); a
// language kind keeps its name.
int Fail(const cli::Streams& s, const Status& status) {
  if (UserKindName(status.kind()) != ErrorKindName(status.kind())) {
    cli::PrintUsageError(s, status.message());
  } else {
    cli::PrintError(s, ErrorKindName(status.kind()), status.message());
  }
  return kExitUsageOrIo;
}

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, kUnits[unit]);
}

int RunLs(const cli::Streams& s, BlobStore& store, bool json) {
  auto entries = store.List(sandbox::ListDetail::kWithNames);
  if (!entries.has_value()) return Fail(s, entries.error());
  if (json) {
    cli::Json objects = cli::Json::array();
    for (const sandbox::BlobStoreEntry& e : *entries) {
      objects.push_back({{"hash", engine::HashToHex(e.hash)},
                         {"bytes", e.bytes},
                         {"name", e.name.empty() ? cli::Json() : cli::Json(e.name)},
                         {"last_used_ms", e.last_used_ns / 1'000'000}});
    }
    s.out(cli::DumpJson({{"dir", store.dir()}, {"objects", std::move(objects)}}));
    return kExitOk;
  }
  for (const sandbox::BlobStoreEntry& e : *entries)
    fmt::print("{}  {:>8}  {}\n", engine::HashToHex(e.hash), e.bytes,
               e.name.empty() ? "-" : e.name);
  return kExitOk;
}

int RunStats(const cli::Streams& s, BlobStore& store, bool json) {
  auto stats = store.Stats();
  if (!stats.has_value()) return Fail(s, stats.error());
  if (json) {
    s.out(cli::DumpJson({{"objects", stats->objects},
                         {"bytes", stats->bytes},
                         {"max_bytes", stats->max_bytes},
                         {"dir", stats->dir},
                         {"temp_files", stats->temp_files}}));
    return kExitOk;
  }
  fmt::print("dir         {}\n", stats->dir);
  fmt::print("objects     {}\n", stats->objects);
  fmt::print("bytes       {} ({})\n", stats->bytes, HumanBytes(stats->bytes));
  fmt::print("max_bytes   {} ({})\n", stats->max_bytes, HumanBytes(stats->max_bytes));
  fmt::print("temp_files  {}\n", stats->temp_files);
  return kExitOk;
}

int RunVerify(const cli::Streams& s, BlobStore& store, bool json) {
  auto report = store.VerifyAll();
  if (!report.has_value()) return Fail(s, report.error());
  int code = report->corrupt.empty() ? kExitOk : kExitCorruptionFound;
  if (json) {
    cli::Json corrupt = cli::Json::array();
    for (const sandbox::CorruptObject& c : report->corrupt) {
      corrupt.push_back(
          {{"hash", engine::HashToHex(c.hash)}, {"reason", c.reason}, {"removed", c.removed}});
    }
    s.out(cli::DumpJson({{"dir", store.dir()},
                         {"checked", report->checked},
                         {"ok", report->ok},
                         {"corrupt", std::move(corrupt)},
                         {"stale_temps_removed", report->stale_temps_removed},
                         {"unknown_entries", report->unknown_entries}}));
    return code;
  }
  for (const sandbox::CorruptObject& c : report->corrupt)
    fmt::print("corrupt {}: {} ({})\n", engine::HashToHex(c.hash), c.reason,
               c.removed ? "deleted" : "could not delete it");
  fmt::print("verified {} objects: {} ok, {} corrupt; removed {} stale temp files\n",
             report->checked, report->ok, report->corrupt.size(), report->stale_temps_removed);
  return code;
}

int RunGc(const cli::Streams& s, BlobStore& store, bool json) {
  auto report = store.Gc();
  if (!report.has_value()) return Fail(s, report.error());
  if (json) {
    s.out(cli::DumpJson({{"dir", store.dir()},
                         {"evicted_objects", report->evicted_objects},
                         {"evicted_bytes", report->evicted_bytes},
                         {"bytes_after", report->bytes_after},
                         {"max_bytes", store.max_bytes()},
                         {"stale_temps_removed", report->stale_temps_removed}}));
    return kExitOk;
  }
  fmt::print("evicted {} objects ({} bytes); {} bytes remain, max {}\n", report->evicted_objects,
             report->evicted_bytes, report->bytes_after, store.max_bytes());
  return kExitOk;
}

int RunClear(const cli::Streams& s, BlobStore& store) {
  auto removed = store.Clear();
  if (!removed.has_value()) return Fail(s, removed.error());
  fmt::print("removed {} objects from {}\n", *removed, store.dir());
  return kExitOk;
}

// `created`: the store's directory was made for this `add` (said in the report, so that a
// mistyped --dir shows).
int RunAdd(const cli::Streams& s, BlobStore& store, const std::string& file, bool created) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in) return Fail(s, IoError("cannot read " + file));
  std::string source = buffer.str();
  engine::Diagnostic diag;
  auto program = engine::Compile(source, file, &diag);
  if (!program.has_value()) {
    s.err(fmt::format("{}: {}\n{}", cli::ErrorHeader(s, "CompileError"),
                      diag.message.empty() ? program.error().message() : diag.message,
                      engine::FormatDiagnosticLocation(diag, source)));
    return kExitCompile;
  }
  Status verified = engine::Verify(**program);
  if (!verified.ok()) {
    cli::PrintError(s, "CompileError", verified.message());
    return kExitCompile;
  }
  auto blobs = engine::BuildProgramBlobs(**program);
  if (!blobs.has_value()) return Fail(s, blobs.error());
  // Every function; not the top-level script, which is never shipped to an executor.
  std::vector<engine::FunctionBlob> functions;
  uint32_t script = (*program)->script;
  for (engine::FunctionBlob& blob : blobs->blobs) {
    if (script < blobs->proto_hashes.size() && blob.hash == blobs->proto_hashes[script]) continue;
    functions.push_back(std::move(blob));
  }
  Status stored = store.PutBlobs(functions);
  if (!stored.ok()) return Fail(s, stored);
  fmt::print("stored {} functions in {}{}\n", functions.size(), store.dir(),
             created ? " (a new store)" : "");
  return kExitOk;
}

// The blob bytes of one function, for export (docs/blob-format.md, "Transport / disk envelope").
// Get verifies the object it reads (checksum, decoding, every hash of its group recomputed), so
// nothing the disk altered reaches stdout.
int RunCat(const cli::Streams& s, BlobStore& store, const std::string& hex) {
  engine::FunctionHash hash;
  if (!engine::HashFromHex(hex, &hash)) {
    cli::PrintUsageError(s, fmt::format("'{}' is not a function hash (64 hex digits)", hex));
    return kExitUsageOrIo;
  }
  bool present = store.Contains(hash);
  auto blob = store.Get(hash);
  if (!blob.has_value()) return Fail(s, blob.error());
  if (!blob->has_value()) {
    cli::PrintError(s, "FunctionNotFound",
               present ? fmt::format("the stored object of {} was corrupt and has been deleted "
                                     "from {}", engine::HashToHex(hash), store.dir())
                       : fmt::format("no function with hash {} in {}", engine::HashToHex(hash),
                                     store.dir()));
    return kExitNotFound;
  }
  std::vector<uint8_t> bytes = engine::EncodeBlob(**blob);
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() ||
      std::fflush(stdout) != 0) {
    return Fail(s, IoError("cannot write the blob to stdout"));
  }
  return kExitOk;
}

}  // namespace

CacheCommand::CacheCommand(CLI::App& app) {
  cache_ = app.add_subcommand(
      "cache", "Inspect and maintain the on-disk blob store (ls stats verify gc clear add cat)");
  cache_->require_subcommand(1);
  cache_->add_option("--dir", dir_, "Store directory (default $XDG_CACHE_HOME/shapex/blobs)");
  // Suffixes K, M, G (and KiB, MiB, GiB: the same, powers of 1024), as for --memory.
  cache_
      ->add_option("--max-bytes", max_bytes_,
                   "Size bound for gc and stats (default 512 MiB; suffix K, M or G allowed)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Validator(
          [](std::string& s) {
            bool digits = !s.empty() && s.size() <= 19 &&
                          s.find_first_not_of("0123456789") == std::string::npos;
            return digits ? std::string() : std::string("must be a non-negative integer");
          },
          "BYTES"));
  ls_ = cache_->add_subcommand("ls", "One line per function: hash, object bytes, name");
  stats_ = cache_->add_subcommand("stats", "Objects, bytes, max_bytes and directory");
  verify_ = cache_->add_subcommand("verify", "Verify every object; delete and list corrupt ones");
  gc_ = cache_->add_subcommand("gc", "Evict least-recently-used objects down to --max-bytes");
  for (CLI::App* sub : {ls_, stats_, verify_, gc_})
    sub->add_flag("--json", json_, "Print one JSON object (docs/cli-json.md)");
  clear_ = cache_->add_subcommand("clear", "Remove every object");
  add_ = cache_->add_subcommand("add", "Compile FILE and store all its functions");
  add_->add_option("file", add_file_, "Source file (.shape)")->required();
  cat_ = cache_->add_subcommand("cat", "Write a function's verified blob bytes to stdout");
  cat_->add_option("hash", cat_hash_, "Function hash (64 hex digits)")->required();
  for (CLI::App* sub : {ls_, stats_, verify_, gc_, clear_, add_, cat_}) sub->fallthrough();
}

bool CacheCommand::parsed() const { return cache_->parsed(); }

int CacheCommand::Run(const cli::Streams& s) {
  // An explicit --dir must name an existing directory (a typo must not look like an empty
  // store, nor leave a new directory behind), except for `add`, which is how a store is made.
  // The default directory is created on first use.
  bool created = false;
  if (!dir_.empty()) {
    struct stat st;
    int found = ::stat(dir_.c_str(), &st);
    if (found != 0 && errno == ENOENT) {
      if (!add_->parsed()) {
        cli::PrintUsageError(s, fmt::format("no blob store at {}: the directory does not exist "
                                            "(`shapex cache add --dir {} FILE` makes one)",
                                            dir_, dir_));
        return kExitUsageOrIo;
      }
      created = true;
    } else if (found == 0 && !S_ISDIR(st.st_mode)) {
      cli::PrintUsageError(s, fmt::format("no blob store at {}: not a directory", dir_));
      return kExitUsageOrIo;
    }
  }
  Result<BlobStore> store = BlobStore::Open({.dir = dir_, .max_bytes = max_bytes_});
  if (!store.has_value()) return Fail(s, store.error());
  int code = kExitUsageOrIo;
  if (ls_->parsed()) code = RunLs(s, *store, json_);
  if (stats_->parsed()) code = RunStats(s, *store, json_);
  if (verify_->parsed()) code = RunVerify(s, *store, json_);
  if (gc_->parsed()) code = RunGc(s, *store, json_);
  if (clear_->parsed()) code = RunClear(s, *store);
  if (add_->parsed()) code = RunAdd(s, *store, add_file_, created);
  if (cat_->parsed()) code = RunCat(s, *store, cat_hash_);
  std::fflush(stdout);
  return code;
}

}  // namespace shapex
