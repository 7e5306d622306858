#include "testing/test_natives.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "shapex/engine/natives.h"
#include "shapex/engine/vm.h"

namespace shapex_testing {
namespace {

using shapex::engine::NativeDef;
using shapex::engine::Value;
using shapex::engine::Vm;

bool Attempt(Vm& vm, Value* args, int argc, Value* out) {
  if (args[0].type != shapex::engine::Type::kString) return vm.Fail("op must be a string");
  std::string op = shapex::engine::AsString(args[0])->str;
  long rc = -1;
  errno = 0;
  if (op == "open") {
    rc = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  } else if (op == "create") {
    rc = ::open("/tmp/shapex-escape", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  } else if (op == "socket_unix") {
    rc = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  } else if (op == "socket_inet") {
    rc = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  } else if (op == "ptrace") {
    rc = ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
  } else if (op == "fork") {
    rc = ::fork();
    if (rc == 0) _exit(0);
    if (rc > 0) ::waitpid(static_cast<pid_t>(rc), nullptr, 0);
  } else if (op == "execve") {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    rc = ::execve("/bin/true", argv, nullptr);
  } else if (op == "kill" && argc == 2 && args[1].type == shapex::engine::Type::kInt) {
    rc = ::kill(static_cast<pid_t>(args[1].as.i), SIGKILL);
  } else {
    return vm.Fail("unknown op " + op);
  }
  std::string answer = rc >= 0 ? "allowed" : std::string("denied: ") + std::strerror(errno);
  if (rc >= 0 && op != "fork" && op != "ptrace" && op != "kill") ::close(static_cast<int>(rc));
  *out = vm.NewString(answer);
  return true;
}

const NativeDef kTestNatives[] = {
    {"test_attempt", &Attempt, 1, 2, false},
};

}  // namespace

void RegisterTestNatives() { shapex::engine::RegisterExtraNatives(kTestNatives); }

}  // namespace shapex_testing
