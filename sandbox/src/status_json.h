// The supervisor's report as JSON text (`shapex status --json`; docs/wire-protocol.md, message
// `status`). The report is built as an nlohmann::ordered_json (members in the order written)
// and dumped here on one line with ", " and ": " between items: the layout the report has always
// had, which scripts and tests match on (`sed 's/.*"supervisor_pid": \([0-9]*\).*/\1/'`).
// Every scalar, key and string is written by nlohmann::json itself; bytes that are not UTF-8
// (a path is whatever the file system holds) become U+FFFD instead of throwing.
#ifndef SHAPEX_SANDBOX_SRC_STATUS_JSON_H_
#define SHAPEX_SANDBOX_SRC_STATUS_JSON_H_

#include <nlohmann/json.hpp>
#include <string>

namespace shapex::sandbox {

std::string DumpStatusJson(const nlohmann::ordered_json& value);

// `value` rounded to `decimals` places, for the report's times and rates (a JSON number prints
// the shortest form that reads back, so 0.1 + 0.2 would print 17 digits).
double RoundTo(double value, int decimals);

}  // namespace shapex::sandbox

#endif  // SHAPEX_SANDBOX_SRC_STATUS_JSON_H_
