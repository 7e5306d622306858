// `shapex cache …`: inspect and maintain the on-disk blob store (shapex::sandbox::BlobStore,
// docs/blob-format.md "On-disk blob store").
//
//   shapex cache ls [--json]        one line per function: hash, object bytes, function name
//   shapex cache stats [--json]     objects, bytes, max_bytes, dir
//   shapex cache verify [--json]    recompute every hash; corrupt objects are deleted and listed
//   shapex cache gc [--json]        evict least-recently-used objects down to --max-bytes
//   shapex cache clear              remove every object
//   shapex cache add FILE           compile FILE and store all its functions (warms the cache)
//   shapex cache cat HASH           the function's blob, verified, as bytes on stdout: the
//                                   transport/disk encoding of docs/blob-format.md (EncodeBlob)
//   common options: --dir DIR (default $XDG_CACHE_HOME/shapex/blobs, else ~/.cache/…),
//                   --max-bytes N (default 512 MiB); they may follow the subcommand too.
// --json prints one JSON object instead of the lines (keys: docs/cli-json.md); errors stay
// text on stderr.
//
// A --dir that does not exist is a usage error (exit 2, naming it): a mistyped directory must
// not read as an empty store or leave a new directory behind. Only `add` creates it (and says
// "a new store"), as that is how a store is made; the default directory is created on first use.
//
// Exit codes (LANGUAGE.md conventions): 0 ok; 1 `verify` found (and deleted) corrupt objects, or
// `cat` of a hash the store does not hold (error[FunctionNotFound], as for a function name that
// `call`, `hash` or `disasm` cannot find; an object found corrupt is deleted and counts as not
// held); 2 usage error (e.g. a HASH that is not 64 hex digits) or a store that cannot be
// opened/read (I/O); 65 `add` of a file that does not compile. Errors go to stderr as
// `error[Kind]: message`.
//
// Usage from main(): construct a CacheCommand on the CLI::App before parsing (it registers the
// subcommands and binds their options to its own members, so it must outlive parsing and does
// not move), then `if (cache.parsed()) return cache.Run(streams);`. Not thread-safe.
#ifndef SHAPEX_TOOLS_CACHE_COMMAND_H_
#define SHAPEX_TOOLS_CACHE_COMMAND_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace shapex {
namespace cli {
struct Streams;
}

class CacheCommand {
 public:
  explicit CacheCommand(CLI::App& app);
  CacheCommand(const CacheCommand&) = delete;
  CacheCommand& operator=(const CacheCommand&) = delete;

  // Whether `cache` was on the command line (after app.parse()).
  bool parsed() const;
  // Runs the parsed subcommand, reporting errors on `s` (run_command.h); returns the process
  // exit code.
  int Run(const cli::Streams& s);

 private:
  CLI::App* cache_;
  CLI::App *ls_, *stats_, *verify_, *gc_, *clear_, *add_, *cat_;
  std::string dir_;
  uint64_t max_bytes_ = uint64_t{512} << 20;
  bool json_ = false;
  std::string add_file_;
  std::string cat_hash_;
};

}  // namespace shapex

#endif  // SHAPEX_TOOLS_CACHE_COMMAND_H_
