// JsonString: a string as a JSON string literal, for the supervisor's hand-built status JSON
// (supervisor_status.cc, cgroup.cc). Escapes '"', '\\' and control characters; other bytes pass
// through unchanged.
#ifndef SHAPEX_SANDBOX_SRC_JSON_STRING_H_
#define SHAPEX_SANDBOX_SRC_JSON_STRING_H_

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace shapex::sandbox {

inline std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SRC_JSON_STRING_H_
