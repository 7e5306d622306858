#include "json_output.h"

namespace shapex::cli {

std::string DumpJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace shapex::cli
