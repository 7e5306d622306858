// Test-only natives: Shape functions that attempt what an executor must never be able to do, so
// tests can prove the jail denies it from inside a real executor.
// They exist only in test binaries (tests/CMakeLists.txt builds `shapex_with_test_natives`).
//
//   test_attempt(op)          op: "open", "create", "socket_unix", "socket_inet", "ptrace",
//                             "fork", "execve"
//   test_attempt(op, pid)     op: "kill" (SIGKILL to `pid`)
// Each returns "allowed" if the system call succeeded, else "denied: <errno text>"; a call the
// seccomp policy kills never returns (the executor dies with SIGSYS).
#ifndef SHAPEX_TESTS_TESTING_TEST_NATIVES_H_
#define SHAPEX_TESTS_TESTING_TEST_NATIVES_H_

namespace shapex_testing {

// Registers the natives; call first thing in main (before anything compiles or runs code).
void RegisterTestNatives();

}  // namespace shapex_testing

#endif  // SHAPEX_TESTS_TESTING_TEST_NATIVES_H_
