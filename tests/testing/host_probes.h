// Probes of optional host features, for tests that need one: each returns nullopt when the
// feature is there, else the reason it is not (printed with GTEST_SKIP). docs/testing.md, "Host
// probes", lists them and the tests that use them.
//
//   if (auto why = shapex_testing::UserNamespacesUnavailable()) GTEST_SKIP() << *why;
//
// Every probe reads files or runs its check in a forked child, so it changes nothing here.
#ifndef SHAPEX_TESTS_TESTING_HOST_PROBES_H_
#define SHAPEX_TESTS_TESTING_HOST_PROBES_H_

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace shapex_testing {

// The first line of `path`, or nullopt if it cannot be read.
inline std::optional<std::string> ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

// The selected transparent-huge-page mode ("always", "madvise" or "never"), or "" when the
// kernel has no THP (CONFIG_TRANSPARENT_HUGEPAGE off: the file is missing).
inline std::string TransparentHugePageMode() {
  std::optional<std::string> line = ReadFirstLine("/sys/kernel/mm/transparent_hugepage/enabled");
  if (!line) return "";
  size_t open = line->find('['), close = line->find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  return line->substr(open + 1, close - open - 1);
}

// nullopt when MADV_HUGEPAGE can give huge pages ("always" or "madvise"); else why not.
inline std::optional<std::string> MadviseHugePagesUnavailable() {
  std::string mode = TransparentHugePageMode();
  if (mode == "always" || mode == "madvise") return std::nullopt;
  if (mode.empty()) return "this kernel has no transparent huge pages";
  return "transparent huge pages are off (/sys/kernel/mm/transparent_hugepage/enabled: " + mode +
         ")";
}

// The user-namespace sysctls that can refuse one, as "name=value" (missing ones left out).
inline std::string UserNamespaceSysctls() {
  std::string out;
  for (const char* name : {"kernel/unprivileged_userns_clone", "user/max_user_namespaces",
                           "kernel/apparmor_restrict_unprivileged_userns"}) {
    std::optional<std::string> value = ReadFirstLine(std::string("/proc/sys/") + name);
    if (!value) continue;
    std::string dotted = name;
    for (char& c : dotted) c = c == '/' ? '.' : c;
    out += (out.empty() ? "" : ", ") + dotted + "=" + *value;
  }
  return out.empty() ? "no user-namespace sysctl present" : out;
}

// nullopt when this process may create a user namespace (tried in a forked child: the jail's
// first step); else the errno and the sysctls that decide it.
inline std::optional<std::string> UserNamespacesUnavailable() {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::string("pipe2 failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    int err = ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
    (void)!::write(pipe_fds[1], &err, sizeof err);
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  int err = -1;
  bool got = pid > 0 && ::read(pipe_fds[0], &err, sizeof err) == static_cast<ssize_t>(sizeof err);
  ::close(pipe_fds[0]);
  if (pid > 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  if (got && err == 0) return std::nullopt;
  std::ostringstream why;
  why << "this host refuses user namespaces to uid " << ::geteuid() << " ("
      << (got ? std::strerror(err) : "the probe did not report") << "; " << UserNamespaceSysctls()
      << ")";
  return why.str();
}

}  // namespace shapex_testing

#endif  // SHAPEX_TESTS_TESTING_HOST_PROBES_H_
