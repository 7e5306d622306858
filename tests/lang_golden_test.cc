// Golden tests for the shapex language.
//
// Every tests/lang/**/*.shape file is one test case: it is run with `shapex run FILE [FLAGS]
// [-- ARGS]` and its stdout, stderr and exit code are compared with the directives written in
// the file's comments:
//
//   // expect: TEXT              the next expected stdout line (file order, trailing spaces
//                                trimmed; `// expect:` alone expects an empty line)
//   // expect error[Kind]: TEXT  the run must fail: stderr's first line starts with
//                                `error[Kind]:` and contains TEXT; exit code 65 for
//                                CompileError, 1 otherwise (at most one per file)
//   // expect trace: TEXT        some stderr line contains TEXT (may repeat)
//   // flags: --fuel 10000       extra flags for `shapex run`
//   // args: a b c               arguments passed to main after `--`
//
// A file that uses @remote is run twice, as `shapex run` (its @remote calls go to jailed
// executors of a supervisor this test starts on demand in a private directory and stops at the
// end) and with --local; both runs must meet the same directives.
//
// Second suite, ThreeWay/LangThreeWayTest (`ctest -R LangThreeWay`; issue 12, Build 5): every
// file is rewritten with `@remote ` inserted before each top-level `function` except main's
// (on the same line, so line numbers stay; impl methods are untouched: they cannot be @remote
// and travel as code with whatever calls them), written under the same file name into a
// private directory, and run three ways: `--local`, over the call ring, and with
// `--transport=socket`. The three runs must agree byte for byte on stdout, stderr and exit
// code. They are compared with each other, not with the directives: send-copy semantics may
// legitimately change what a program that mutates shared state prints. Files whose flags
// cannot apply (`// flags: --local`) are skipped.
//
// SHAPEX_BIN and SHAPEX_LANG_DIR are defined by the build.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace {

namespace fs = std::filesystem;

constexpr auto kTimeout = std::chrono::seconds(20);
constexpr int kCompileErrorExit = 65;

struct Expectations {
  std::vector<std::string> stdout_lines;
  std::string error_kind;  // empty: the program must succeed
  std::string error_text;
  std::vector<std::string> traces;
  std::vector<std::string> flags;
  std::vector<std::string> args;
  std::string problem;  // a malformed directive, reported as a failure
};

struct RunResult {
  int exit_code = -1;  // 128 + signal when the child was killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
  std::string spawn_error;
};

std::string TrimRight(std::string_view s) {
  size_t end = s.find_last_not_of(" \t\r\n");
  return std::string(end == std::string_view::npos ? "" : s.substr(0, end + 1));
}

std::vector<std::string> SplitWords(std::string_view s) {
  std::vector<std::string> words;
  std::istringstream in{std::string(s)};
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(TrimRight(line));
  return lines;
}

// The text after `marker` (one optional space skipped), if `line` contains it.
bool TextAfter(const std::string& line, std::string_view marker, std::string* text) {
  size_t pos = line.find(marker);
  if (pos == std::string::npos) return false;
  std::string_view rest = std::string_view(line).substr(pos + marker.size());
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  *text = TrimRight(rest);
  return true;
}

Expectations ParseDirectives(const fs::path& file) {
  Expectations e;
  std::ifstream in(file);
  if (!in) {
    e.problem = "cannot read " + file.string();
    return e;
  }
  std::string text;
  for (std::string line; std::getline(in, line);) {
    if (TextAfter(line, "// expect error[", &text)) {
      size_t close = text.find("]:");
      if (close == std::string::npos || !e.error_kind.empty()) {
        e.problem = "bad or repeated error directive: " + line;
        continue;
      }
      e.error_kind = text.substr(0, close);
      e.error_text = TrimRight(text.substr(close + 2));
      if (!e.error_text.empty() && e.error_text.front() == ' ') e.error_text.erase(0, 1);
    } else if (TextAfter(line, "// expect trace:", &text)) {
      e.traces.push_back(text);
    } else if (TextAfter(line, "// expect:", &text)) {
      e.stdout_lines.push_back(text);
    } else if (TextAfter(line, "// flags:", &text)) {
      for (auto& w : SplitWords(text)) e.flags.push_back(w);
    } else if (TextAfter(line, "// args:", &text)) {
      for (auto& w : SplitWords(text)) e.args.push_back(w);
    }
  }
  return e;
}

// Runs argv[0] with stdin from /dev/null, capturing stdout and stderr. No shell is involved.
RunResult RunProcess(const std::vector<std::string>& argv, const std::string& dir = "") {
  RunResult result;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    result.spawn_error = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.spawn_error = std::string("pipe: ") + std::strerror(errno);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return result;
  }
  // Everything the child needs is prepared before fork().
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  int dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const char* cwd = dir.empty() ? nullptr : dir.c_str();

  pid_t pid = fork();
  if (pid == 0) {
    if (cwd != nullptr && chdir(cwd) != 0) _exit(126);
    if (dev_null >= 0) dup2(dev_null, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  if (dev_null >= 0) close(dev_null);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    result.spawn_error = std::string("fork: ") + std::strerror(errno);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return result;
  }

  // Drain both pipes until EOF so a chatty child never blocks on a full pipe.
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

std::string StdoutDiff(const std::vector<std::string>& expected,
                       const std::vector<std::string>& actual) {
  std::ostringstream diff;
  diff << "stdout differs (- expected, + actual):\n";
  size_t n = std::max(expected.size(), actual.size());
  for (size_t i = 0; i < n; ++i) {
    const bool has_e = i < expected.size();
    const bool has_a = i < actual.size();
    if (has_e && has_a && expected[i] == actual[i]) {
      diff << "  " << i + 1 << ": " << expected[i] << "\n";
      continue;
    }
    if (has_e) diff << "- " << i + 1 << ": " << expected[i] << "\n";
    if (has_a) diff << "+ " << i + 1 << ": " << actual[i] << "\n";
  }
  return diff.str();
}

// All test files, relative to SHAPEX_LANG_DIR, sorted.
std::vector<std::string> FindTestFiles() {
  std::vector<std::string> files;
  std::error_code ec;
  fs::path root(SHAPEX_LANG_DIR);
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".shape") {
      files.push_back(it->path().lexically_relative(root).generic_string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

const std::vector<std::string>& TestFiles() {
  static const std::vector<std::string>* files = new std::vector<std::string>(FindTestFiles());
  return *files;
}

// `arrays/push_pop.shape` -> `arrays_push_pop`.
std::string TestName(const testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(0, info.param.size() - std::string(".shape").size());
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// The supervisor that `shapex run` starts for @remote files: a private socket and blob store
// (never the user's), stopped when the test program ends.
class PrivateSupervisor : public testing::Environment {
 public:
  void SetUp() override {
    char pattern[] = "/tmp/shapex-golden-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    dir_ = pattern;
    setenv("SHAPEX_SOCKET", (dir_ + "/run/sock").c_str(), 1);
    setenv("XDG_CACHE_HOME", (dir_ + "/cache").c_str(), 1);
    setenv("XDG_STATE_HOME", (dir_ + "/state").c_str(), 1);  // the daemon's log, too
  }
  const std::string& dir() const { return dir_; }
  void TearDown() override;

 private:
  std::string dir_;
};

void CheckRun(const fs::path& file, const Expectations& e, bool local);

class LangGoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(LangGoldenTest, Run) {
  const fs::path file = fs::path(SHAPEX_LANG_DIR) / GetParam();
  const Expectations e = ParseDirectives(file);
  ASSERT_TRUE(e.problem.empty()) << e.problem;
  std::ifstream in(file);
  std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (source.find("@remote") != std::string::npos) {
    SCOPED_TRACE("shapex run (remote)");
    CheckRun(file, e, /*local=*/false);
  }
  SCOPED_TRACE("shapex run --local");
  CheckRun(file, e, /*local=*/true);
}

void CheckRun(const fs::path& file, const Expectations& e, bool local) {
  std::vector<std::string> argv = {SHAPEX_BIN, "run", file.string()};
  if (local) argv.push_back("--local");
  argv.insert(argv.end(), e.flags.begin(), e.flags.end());
  if (!e.args.empty()) {
    argv.push_back("--");
    argv.insert(argv.end(), e.args.begin(), e.args.end());
  }
  const RunResult r = RunProcess(argv);
  ASSERT_TRUE(r.spawn_error.empty()) << r.spawn_error;
  const std::string context = "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
  ASSERT_FALSE(r.timed_out) << "timed out after " << kTimeout.count() << " s" << context;

  const int want_exit = e.error_kind.empty()               ? 0
                        : e.error_kind == "CompileError" ? kCompileErrorExit
                                                         : 1;
  EXPECT_EQ(r.exit_code, want_exit) << context;

  const std::vector<std::string> actual = SplitLines(r.out);
  EXPECT_TRUE(actual == e.stdout_lines) << StdoutDiff(e.stdout_lines, actual) << context;

  const std::vector<std::string> err_lines = SplitLines(r.err);
  if (!e.error_kind.empty()) {
    const std::string first = err_lines.empty() ? "" : err_lines.front();
    const std::string prefix = "error[" + e.error_kind + "]:";
    EXPECT_EQ(first.rfind(prefix, 0), 0u) << "stderr should start with " << prefix << context;
    EXPECT_NE(first.find(e.error_text), std::string::npos)
        << "stderr's first line should contain: " << e.error_text << context;
  }
  for (const auto& trace : e.traces) {
    bool found = std::any_of(err_lines.begin(), err_lines.end(), [&](const std::string& line) {
      return line.find(trace) != std::string::npos;
    });
    EXPECT_TRUE(found) << "no stderr line contains: " << trace << context;
  }
}

void PrivateSupervisor::TearDown() {
  if (dir_.empty()) return;
  // Stop the supervisor a remote run started, if any, and wait until it is gone.
  RunResult status = RunProcess({SHAPEX_BIN, "status", "--json"});
  const std::string key = "\"supervisor_pid\": ";
  size_t at = status.out.find(key);
  if (status.exit_code == 0 && at != std::string::npos) {
    pid_t pid = static_cast<pid_t>(std::strtol(status.out.c_str() + at + key.size(), nullptr, 10));
    if (pid > 0 && kill(pid, SIGTERM) == 0) {
      for (int i = 0; i < 500 && kill(pid, 0) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

PrivateSupervisor* const kPrivateSupervisor = static_cast<PrivateSupervisor*>(
    testing::AddGlobalTestEnvironment(new PrivateSupervisor));

INSTANTIATE_TEST_SUITE_P(Lang, LangGoldenTest, testing::ValuesIn(TestFiles()), TestName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LangGoldenTest);

// ---------------- three ways: --local, ring, socket ----------------

bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Skips a string or f-string literal starting at s[i] (the opening quote); f-string holes may
// hold any expression, strings and braces included. Returns the index after the closing quote.
size_t SkipString(const std::string& s, size_t i, bool fstring);

// Skips an expression inside an f-string hole up to its closing '}'; returns the index after it.
size_t SkipHole(const std::string& s, size_t i) {
  int depth = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      bool f = i > 0 && s[i - 1] == 'f' && (i < 2 || !IsIdentChar(s[i - 2]));
      i = SkipString(s, i, f);
      continue;
    }
    if (c == '{') ++depth;
    if (c == '}' && depth-- == 0) return i + 1;
    ++i;
  }
  return i;
}

size_t SkipString(const std::string& s, size_t i, bool fstring) {
  ++i;
  while (i < s.size() && s[i] != '"' && s[i] != '\n') {
    if (s[i] == '\\') {
      i += 2;
    } else if (fstring && s[i] == '{' && i + 1 < s.size() && s[i + 1] == '{') {
      i += 2;
    } else if (fstring && s[i] == '{') {
      i = SkipHole(s, i + 1);
    } else {
      ++i;
    }
  }
  return i + 1;
}

// `@remote ` before every top-level `function` except main's and ones already annotated.
// Comments, strings and f-strings are skipped, so only code at brace depth 0 counts.
std::string AddRemote(const std::string& s, int* added) {
  std::string out;
  int depth = 0;
  bool annotated = false;  // the previous token was an @annotation
  size_t i = 0;
  *added = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      size_t end = s.find('\n', i);
      end = end == std::string::npos ? s.size() : end;
      out.append(s, i, end - i);
      i = end;
      continue;
    }
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {  // block comments nest
      size_t j = i + 2;
      for (int level = 1; j < s.size() && level > 0;) {
        if (s.compare(j, 2, "/*") == 0) {
          ++level;
          j += 2;
        } else if (s.compare(j, 2, "*/") == 0) {
          --level;
          j += 2;
        } else {
          ++j;
        }
      }
      out.append(s, i, j - i);
      i = j;
      continue;
    }
    if (c == '"') {
      bool f = !out.empty() && out.back() == 'f' && (out.size() < 2 || !IsIdentChar(out[out.size() - 2]));
      size_t end = std::min(SkipString(s, i, f), s.size());
      out.append(s, i, end - i);
      i = end;
      annotated = false;
      continue;
    }
    if (c == '{') ++depth;
    if (c == '}') --depth;
    if (c == '@') {
      annotated = true;
      out += c;
      ++i;
      while (i < s.size() && IsIdentChar(s[i])) out += s[i++];
      continue;
    }
    if (IsIdentChar(c) && (i == 0 || !IsIdentChar(s[i - 1]))) {
      size_t end = i;
      while (end < s.size() && IsIdentChar(s[end])) ++end;
      const std::string word = s.substr(i, end - i);
      if (word == "function" && depth == 0 && !annotated) {
        size_t name = end;
        while (name < s.size() && (s[name] == ' ' || s[name] == '\t')) ++name;
        size_t name_end = name;
        while (name_end < s.size() && IsIdentChar(s[name_end])) ++name_end;
        if (s.substr(name, name_end - name) != "main") {
          out += "@remote ";
          ++*added;
        }
      }
      annotated = false;
      out += word;
      i = end;
      continue;
    }
    if (!std::isspace(static_cast<unsigned char>(c))) annotated = false;
    out += c;
    ++i;
  }
  return out;
}

class LangThreeWayTest : public testing::TestWithParam<std::string> {};

std::string Describe(const char* mode, const RunResult& r) {
  std::string exit = r.timed_out ? "timed out" : "exit " + std::to_string(r.exit_code);
  return std::string("--- ") + mode + " (" + exit + ") stdout ---\n" + r.out + "--- " + mode +
         " stderr ---\n" + r.err;
}

TEST_P(LangThreeWayTest, Run) {
  const fs::path original = fs::path(SHAPEX_LANG_DIR) / GetParam();
  const Expectations e = ParseDirectives(original);
  ASSERT_TRUE(e.problem.empty()) << e.problem;
  if (std::find(e.flags.begin(), e.flags.end(), "--local") != e.flags.end()) {
    GTEST_SKIP() << "its flags include --local: it cannot run remotely";
  }
  ASSERT_FALSE(kPrivateSupervisor->dir().empty());
  std::ifstream in(original);
  std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int added = 0;
  const std::string rewritten = AddRemote(source, &added);
  // The same relative path (so the same file name in traces), in a directory of this test's.
  const fs::path dir = fs::path(kPrivateSupervisor->dir()) / "three-way" /
                       fs::path(GetParam()).parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string file = original.filename().string();
  {
    std::ofstream out(dir / file, std::ios::binary);
    out << rewritten;
    ASSERT_TRUE(out.good()) << "cannot write " << (dir / file);
  }
  std::vector<std::string> tail = e.flags;
  if (!e.args.empty()) {
    tail.push_back("--");
    tail.insert(tail.end(), e.args.begin(), e.args.end());
  }
  auto run = [&](std::vector<std::string> argv) {
    argv.insert(argv.end(), tail.begin(), tail.end());
    return RunProcess(argv, dir.string());
  };
  const RunResult local = run({SHAPEX_BIN, "run", file, "--local"});
  const RunResult ring = run({SHAPEX_BIN, "run", file});
  const RunResult socket = run({SHAPEX_BIN, "run", file, "--transport=socket"});
  for (const RunResult* r : {&local, &ring, &socket}) ASSERT_TRUE(r->spawn_error.empty()) << r->spawn_error;
  auto same = [](const RunResult& a, const RunResult& b) {
    return a.exit_code == b.exit_code && a.timed_out == b.timed_out && a.out == b.out &&
           a.err == b.err;
  };
  const std::string context = "\n(" + std::to_string(added) + " functions made @remote)\n" +
                              Describe("local", local) + Describe("ring", ring) +
                              Describe("socket", socket) + "--- the rewritten program ---\n" +
                              rewritten;
  EXPECT_TRUE(same(local, ring)) << "--local and ring differ" << context;
  EXPECT_TRUE(same(local, socket)) << "--local and socket differ" << context;
  EXPECT_TRUE(same(ring, socket)) << "ring and socket differ" << context;
}

INSTANTIATE_TEST_SUITE_P(ThreeWay, LangThreeWayTest, testing::ValuesIn(TestFiles()), TestName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LangThreeWayTest);

TEST(LangThreeWayRewrite, AddsRemoteToTopLevelFunctionsOnly) {
  int added = 0;
  const std::string in =
      "// function commented(x) {}\n"
      "function a(x) { x }\n"
      "type P { x: int }\n"
      "impl P {\n    function m(self) { f\"{ {\"k\": 1}[\"k\"] } function\" }\n}\n"
      "@remote\nfunction b() { 1 }\n"
      "/* function c() { /* nested */ } */\n"
      "let s = \"function d() {\"\n"
      "function main() { a(1) }\n";
  const std::string out = AddRemote(in, &added);
  EXPECT_EQ(added, 1);
  EXPECT_NE(out.find("@remote function a(x)"), std::string::npos) << out;
  EXPECT_NE(out.find("    function m(self)"), std::string::npos) << out;
  EXPECT_EQ(out.find("@remote function main"), std::string::npos) << out;
  EXPECT_EQ(out.find("@remote @remote"), std::string::npos) << out;
}

TEST(LangGoldenSuite, FindsTestFiles) {
  EXPECT_FALSE(TestFiles().empty()) << "no .shape files under " << SHAPEX_LANG_DIR;
}

}  // namespace
