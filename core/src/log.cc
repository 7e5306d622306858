#include "shapex/core/log.h"

#include <fmt/format.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace shapex {
namespace {

LogLevel LevelFromEnvironment() {
  const char* value = std::getenv("SHAPEX_LOG");
  if (value == nullptr) return LogLevel::kWarn;
  if (strcasecmp(value, "debug") == 0) return LogLevel::kDebug;
  if (strcasecmp(value, "info") == 0) return LogLevel::kInfo;
  if (strcasecmp(value, "error") == 0) return LogLevel::kError;
  return LogLevel::kWarn;
}

// A function-local static, so logging from other static initialisers sees an initialised level.
std::atomic<LogLevel>& CurrentLevel() {
  static std::atomic<LogLevel> level{LevelFromEnvironment()};
  return level;
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarn:
      return 'W';
    case LogLevel::kError:
      return 'E';
  }
  return '?';
}

std::string_view Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

void SetLogLevel(LogLevel level) { CurrentLevel().store(level, std::memory_order_relaxed); }

LogLevel GetLogLevel() { return CurrentLevel().load(std::memory_order_relaxed); }

bool IsLogEnabled(LogLevel level) { return level >= GetLogLevel(); }

namespace internal {

void WriteLogLine(LogLevel level, const char* file, int line, std::string_view message) {
  timeval now{};
  gettimeofday(&now, nullptr);
  tm local{};
  localtime_r(&now.tv_sec, &local);
  fmt::memory_buffer out;
  fmt::format_to(std::back_inserter(out), "[{} {:02}:{:02}:{:02}.{:03} {}:{}] {}\n",
                 LevelLetter(level), local.tm_hour, local.tm_min, local.tm_sec, now.tv_usec / 1000,
                 Basename(file), line, message);
  std::fwrite(out.data(), 1, out.size(), stderr);
}

}  // namespace internal
}  // namespace shapex
