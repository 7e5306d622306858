// Looking at other processes through /proc, for tests of daemons (the supervisor life cycle, the
// embedding client): who runs a binary, whose command line names a socket, is a pid still alive,
// and killing what a test left behind. Only processes of our own user are readable; the others
// are skipped.
//
//   for (pid_t p : shapex_testing::ProcessesWhoseCmdlineContains(socket)) ...
//   EXPECT_FALSE(shapex_testing::ProcessAlive(pid));
#ifndef SHAPEX_TESTS_TESTING_PROCESSES_H_
#define SHAPEX_TESTS_TESTING_PROCESSES_H_

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace shapex_testing {

// Every pid in /proc.
inline std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(dir);
  return pids;
}

// The whole of /proc/PID/NAME ("" if unreadable). Plain read(2), not an ifstream: reading a
// process that exits meanwhile fails with ESRCH, which libstdc++'s filebuf turns into an
// exception.
inline std::string ReadProcFile(pid_t pid, const char* name) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string all;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    all.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return all;
}

// The binary PID runs ("" if unreadable).
inline std::string ProcessExe(pid_t pid) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  return ec ? "" : target.string();
}

// PID exists and is not a zombie.
inline bool ProcessAlive(pid_t pid) {
  std::string stat = ReadProcFile(pid, "stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// PID has run execve since it was forked (PF_FORKNOEXEC clear in the flags of /proc/PID/stat).
// A child between fork (or posix_spawn's vfork) and execve still shows its parent's binary,
// arguments and environment; this tells it apart from a real run of that binary.
inline bool ProcessExeced(pid_t pid) {
  constexpr unsigned long kForkNoExec = 0x40;  // PF_FORKNOEXEC, linux/sched.h
  std::string stat = ReadProcFile(pid, "stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(stat.substr(paren + 1));
  std::string skip;
  for (int i = 0; i < 6; ++i) fields >> skip;  // state ppid pgrp session tty_nr tpgid
  unsigned long flags = 0;
  if (!(fields >> flags)) return false;
  return (flags & kForkNoExec) == 0;
}

// /proc/PID/environ (or cmdline) holds `entry` as one whole NUL-terminated string.
inline bool ProcListHas(pid_t pid, const char* file, std::string_view entry) {
  std::string all = ReadProcFile(pid, file);
  for (size_t pos = 0; pos < all.size();) {
    size_t end = all.find('\0', pos);
    if (end == std::string::npos) end = all.size();
    if (std::string_view(all).substr(pos, end - pos) == entry) return true;
    pos = end + 1;
  }
  return false;
}

// Processes whose command line (arguments joined) contains `text`.
inline std::vector<pid_t> ProcessesWhoseCmdlineContains(std::string_view text) {
  std::vector<pid_t> found;
  for (pid_t pid : AllPids()) {
    if (ReadProcFile(pid, "cmdline").find(text) != std::string::npos) found.push_back(pid);
  }
  return found;
}

// SIGKILLs every process whose command line contains `text` (a test's private socket path).
inline void KillProcessesWhoseCmdlineContains(std::string_view text) {
  if (text.empty()) return;
  for (pid_t pid : ProcessesWhoseCmdlineContains(text)) kill(pid, SIGKILL);
}

// The supervisor's pid in `shapex status --json`: the top-level "pid" (the executors' pids are
// inside "executors", which is skipped), or "supervisor_pid". -1 if absent.
inline long SupervisorPidFromStatus(std::string json) {
  size_t executors = json.find("\"executors\":");
  if (executors != std::string::npos) {
    size_t end = json.find(']', executors);
    json.erase(executors, end == std::string::npos ? std::string::npos : end + 1 - executors);
  }
  for (const char* key : {"\"pid\":", "\"supervisor_pid\":"}) {
    size_t pos = json.find(key);
    if (pos != std::string::npos)
      return std::strtol(json.c_str() + pos + std::strlen(key), nullptr, 10);
  }
  return -1;
}

}  // namespace shapex_testing

#endif  // SHAPEX_TESTS_TESTING_PROCESSES_H_
