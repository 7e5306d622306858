// A tiny leveled logger for diagnostics on stderr, formatted with fmt.
//
// Usage:
//   SHAPEX_LOG(WARN, "executor {} exited with {}", pid, status);
//   SetLogLevel(LogLevel::kDebug);
//
// Levels are DEBUG, INFO, WARN and ERROR. The initial level comes from the SHAPEX_LOG environment
// variable ("debug", "info", "warn" or "error", case-insensitive), defaulting to warn. Output
// looks like "[W 12:00:00.123 file.cc:42] message" (local time).
//
// Guarantees: the level check happens before the arguments are formatted, so disabled log lines
// cost one atomic load. The format string is checked at compile time. Each line is written with a
// single fwrite, so lines from concurrent threads do not interleave. Thread-safe.
#ifndef SHAPEX_CORE_LOG_H_
#define SHAPEX_CORE_LOG_H_

#include <fmt/core.h>

#include <string_view>

namespace shapex {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool IsLogEnabled(LogLevel level);

namespace internal {
void WriteLogLine(LogLevel level, const char* file, int line, std::string_view message);

template <class... Args>
void LogFormatted(LogLevel level, const char* file, int line, fmt::format_string<Args...> format,
                  Args&&... args) {
  WriteLogLine(level, file, line, fmt::vformat(format, fmt::make_format_args(args...)));
}
}  // namespace internal

}  // namespace shapex

#define SHAPEX_INTERNAL_LOG_LEVEL_DEBUG ::shapex::LogLevel::kDebug
#define SHAPEX_INTERNAL_LOG_LEVEL_INFO ::shapex::LogLevel::kInfo
#define SHAPEX_INTERNAL_LOG_LEVEL_WARN ::shapex::LogLevel::kWarn
#define SHAPEX_INTERNAL_LOG_LEVEL_ERROR ::shapex::LogLevel::kError

// SHAPEX_LOG(level, format, args...): level is one of DEBUG, INFO, WARN, ERROR.
#define SHAPEX_LOG(level, ...)                                                                \
  do {                                                                                        \
    if (::shapex::IsLogEnabled(SHAPEX_INTERNAL_LOG_LEVEL_##level)) {                          \
      ::shapex::internal::LogFormatted(SHAPEX_INTERNAL_LOG_LEVEL_##level, __FILE__, __LINE__, \
                                       __VA_ARGS__);                                          \
    }                                                                                         \
  } while (false)

#endif  // SHAPEX_CORE_LOG_H_
