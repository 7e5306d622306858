// shapex_embed_probe: a program that embeds the client library as a user's program would, for
// client_embed_test (issue 11, "Embedding is safe"). It compiles FILE (default: the tree's
// examples/add.shape), connects with default ClientOptions (so the library starts a supervisor
// when none answers: it must find a `shapex` binary and never run this program), calls add(10, 32)
// in an executor and prints the result.
//
// Exit 0 with the result on stdout, or 1 with the error on stderr (2 for bad usage).
// If SHAPEX_EMBED_PROBE_LOG names a file, every start of this program appends one line to it
// (pid and arguments), so a test sees whether the library ran it again.
//
// Usage: shapex_embed_probe [FILE]
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shapex/client/client.h"
#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/verifier.h"
#include "shapex/ipc/wire_value.h"

#ifndef SHAPEX_EMBED_PROBE_DEFAULT_FILE
#error "SHAPEX_EMBED_PROBE_DEFAULT_FILE must name examples/add.shape"
#endif

namespace {

void LogStart(int argc, char** argv) {
  const char* path = std::getenv("SHAPEX_EMBED_PROBE_LOG");
  if (path == nullptr || *path == '\0') return;
  std::string line = std::to_string(::getpid());
  for (int i = 0; i < argc; ++i) {
    line += ' ';
    line += argv[i];
  }
  line += '\n';
  // One write with O_APPEND: lines of concurrent starts do not interleave.
  int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t written = ::write(fd, line.data(), line.size());
  (void)written;
  ::close(fd);
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "shapex_embed_probe: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  LogStart(argc, argv);
  if (argc > 2) {
    std::fprintf(stderr, "usage: shapex_embed_probe [FILE]\n");
    return 2;
  }
  std::string file = argc == 2 ? argv[1] : SHAPEX_EMBED_PROBE_DEFAULT_FILE;
  std::ifstream in(file, std::ios::binary);
  if (!in) return Fail("cannot read " + file);
  std::ostringstream source;
  source << in.rdbuf();

  shapex::engine::Diagnostic diag;
  shapex::Result<std::unique_ptr<shapex::engine::Program>> program =
      shapex::engine::Compile(source.str(), file, &diag);
  if (!program.has_value()) return Fail("CompileError: " + diag.message);
  shapex::Status verified = shapex::engine::Verify(**program);
  if (!verified.ok()) return Fail(verified.ToString());
  shapex::Result<shapex::engine::ProgramBlobs> blobs = shapex::engine::BuildProgramBlobs(**program);
  if (!blobs.has_value()) return Fail(blobs.error().ToString());

  // Default options on purpose: this is what an embedding program does.
  shapex::Result<shapex::Client> client = shapex::Client::Connect();
  if (!client.has_value()) return Fail(client.error().ToString());
  std::vector<shapex::ipc::WireValue> args;
  args.push_back(shapex::ipc::WireValue::Int(10));
  args.push_back(shapex::ipc::WireValue::Int(32));
  shapex::Result<shapex::ipc::WireValue> result =
      client->Call(**program, *blobs, "add", std::move(args));
  if (!result.has_value()) return Fail(result.error().ToString());
  if (result->kind == shapex::ipc::WireKind::kInt) {
    std::printf("%lld\n", static_cast<long long>(result->as_int()));
  } else {
    std::printf("%s\n", shapex::ipc::DescribeWire(*result).c_str());
  }
  return 0;
}
