// Looking at a running `shapex serve` from outside, for tests and benchmarks of the control
// plane (control_bench, sandbox_control_plane_test): which supervisor processes serve a socket
// path (to catch a second one, "split brain"), the executors a status report lists, and whether a
// process is gone.
//
//   std::vector<pid_t> serving = FindSupervisors(socket);           // expect exactly one
//   for (const ExecutorInfo& e : ExecutorsInStatus(status_json)) ... e.pid, e.state ...
//   if (ProcessGone(pid)) ...
//
// Linux /proc only; processes of other users are skipped where /proc hides them.
#ifndef SHAPEX_TOOLS_BENCH_SUPERVISOR_PROBE_H_
#define SHAPEX_TOOLS_BENCH_SUPERVISOR_PROBE_H_

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace shapex::bench {

// A program whose main makes an endless remote call (run without --timeout: only killing its
// client ends it, or the 300 s default remote-call limit).
inline constexpr char kEndlessRemoteProgram[] =
    "@remote\n"
    "function spin() { var i = 0; while true { i = i + 1 } }\n"
    "\n"
    "function main(args) { spin() }\n";

// The NUL-separated arguments of /proc/PID/cmdline (empty for zombies and kernel threads).
inline std::vector<std::string> ProcessArgs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string arg;
  for (char ch : raw) {
    if (ch == '\0') {
      args.push_back(std::move(arg));
      arg.clear();
    } else {
      arg += ch;
    }
  }
  if (!arg.empty()) args.push_back(std::move(arg));
  return args;
}

// The parent pid from /proc/PID/stat (-1 if the process is gone).
inline pid_t ParentPid(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 1));
  char state = 0;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

// True when `pid` no longer runs: no such process, or a zombie / dead entry.
inline bool ProcessGone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return true;
  char state = stat[close + 2];
  return state == 'Z' || state == 'X' || state == 'x';
}

// Whether `args` are those of `shapex serve` for `socket_path`: one argument is exactly "serve"
// and one is the path (alone or as "--socket=PATH").
inline bool ServesSocket(const std::vector<std::string>& args, const std::string& socket_path) {
  bool serve = false, path = false;
  for (const std::string& a : args) {
    serve = serve || a == "serve";
    path = path || a == socket_path || a == "--socket=" + socket_path;
  }
  return serve && path;
}

// Supervisors of `socket_path`: processes whose command line is `... serve ... PATH ...` and
// whose parent is not such a process (which excludes the zygote and the executors: they are
// forked from the supervisor and keep its command line). Sorted.
inline std::vector<pid_t> FindSupervisors(const std::string& socket_path) {
  std::vector<pid_t> matches;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return matches;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
    if (ServesSocket(ProcessArgs(static_cast<pid_t>(pid)), socket_path)) {
      matches.push_back(static_cast<pid_t>(pid));
    }
  }
  ::closedir(proc);
  std::sort(matches.begin(), matches.end());
  std::vector<pid_t> supervisors;
  for (pid_t pid : matches) {
    if (!std::binary_search(matches.begin(), matches.end(), ParentPid(pid))) {
      supervisors.push_back(pid);
    }
  }
  return supervisors;
}

// Ends a process that is not our child (an extra supervisor left by a failed test): SIGTERM,
// then SIGKILL if it still runs after `grace`.
inline void TerminateProcess(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0 || ::kill(pid, SIGTERM) != 0) return;
  auto end = std::chrono::steady_clock::now() + grace;
  while (!ProcessGone(pid) && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!ProcessGone(pid)) ::kill(pid, SIGKILL);
}

// One entry of the "executors" array of `shapex status --json`.
struct ExecutorInfo {
  int64_t pid = 0;
  std::string state;  // starting, idle, leased, exiting
};

// The executors a status report lists (empty if it has none or is not a report).
inline std::vector<ExecutorInfo> ExecutorsInStatus(const std::string& json) {
  std::vector<ExecutorInfo> executors;
  size_t pos = json.find("\"executors\": [");
  if (pos == std::string::npos) return executors;
  pos = json.find('[', pos) + 1;
  // Each executor is one {...} object; count braces so nested objects stay inside their entry.
  int depth = 0;
  size_t object_start = 0;
  for (size_t i = pos; i < json.size(); ++i) {
    char ch = json[i];
    if (ch == '"') {  // skip strings (they may hold braces)
      for (++i; i < json.size() && json[i] != '"'; ++i) {
        if (json[i] == '\\') ++i;
      }
      continue;
    }
    if (ch == ']' && depth == 0) break;
    if (ch == '{' && depth++ == 0) object_start = i;
    if (ch == '}' && --depth == 0) {
      std::string object = json.substr(object_start, i + 1 - object_start);
      ExecutorInfo info;
      size_t p = object.find("\"pid\": ");
      if (p != std::string::npos) info.pid = std::strtoll(object.c_str() + p + 7, nullptr, 10);
      size_t s = object.find("\"state\": \"");
      if (s != std::string::npos) {
        s += 10;
        info.state = object.substr(s, object.find('"', s) - s);
      }
      executors.push_back(std::move(info));
    }
  }
  return executors;
}

// Pids of the executors in `state`.
inline std::vector<int64_t> ExecutorPidsIn(const std::string& json, const std::string& state) {
  std::vector<int64_t> pids;
  for (const ExecutorInfo& e : ExecutorsInStatus(json)) {
    if (e.state == state) pids.push_back(e.pid);
  }
  return pids;
}

// The executor `pid` is no longer listed and `pool_size` executors are idle: the pool replaced it.
inline bool ReplacedAndIdle(const std::string& json, int64_t pid, size_t pool_size) {
  std::vector<ExecutorInfo> executors = ExecutorsInStatus(json);
  size_t idle = 0;
  for (const ExecutorInfo& e : executors) {
    if (e.pid == pid) return false;
    if (e.state == "idle") ++idle;
  }
  return idle == pool_size;
}

// The integer after the first `"key": ` in `json` (-1 if absent).
inline int64_t JsonInteger(const std::string& json, const std::string& key) {
  std::string needle = "\"" + key + "\": ";
  size_t pos = json.find(needle);
  if (pos == std::string::npos) return -1;
  return std::strtoll(json.c_str() + pos + needle.size(), nullptr, 10);
}

}  // namespace shapex::bench

#endif  // SHAPEX_TOOLS_BENCH_SUPERVISOR_PROBE_H_
