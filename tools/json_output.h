// The CLI's JSON output (docs/cli-json.md): every `--json` of the CLI prints exactly one JSON
// object, built as an nlohmann::ordered_json (members in the order written) and dumped here.
//
//   nlohmann::ordered_json report = {{"objects", 3}, {"dir", dir}};
//   std::string line = DumpJson(report);   // `{"objects":3,"dir":"..."}` plus a newline
//
// Strings are escaped by nlohmann::json; bytes that are not UTF-8 (a file name, a Shape string
// holding arbitrary bytes) become U+FFFD instead of throwing.
#ifndef SHAPEX_TOOLS_JSON_OUTPUT_H_
#define SHAPEX_TOOLS_JSON_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>

namespace shapex::cli {

using Json = nlohmann::ordered_json;

// `value` on one line, followed by '\n'.
std::string DumpJson(const Json& value);

}  // namespace shapex::cli

#endif  // SHAPEX_TOOLS_JSON_OUTPUT_H_
