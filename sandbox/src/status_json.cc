#include "status_json.h"

#include <cmath>

namespace shapex::sandbox {
namespace {

using Json = nlohmann::ordered_json;

void Append(const Json& value, std::string* out) {
  if (value.is_object()) {
    out->push_back('{');
    bool first = true;
    for (const auto& [key, member] : value.items()) {
      if (!first) out->append(", ");
      first = false;
      out->append(Json(key).dump(-1, ' ', false, Json::error_handler_t::replace));
      out->append(": ");
      Append(member, out);
    }
    out->push_back('}');
  } else if (value.is_array()) {
    out->push_back('[');
    for (size_t i = 0; i < value.size(); ++i) {
      if (i > 0) out->append(", ");
      Append(value[i], out);
    }
    out->push_back(']');
  } else {
    out->append(value.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
}

}  // namespace

std::string DumpStatusJson(const Json& value) {
  std::string out;
  Append(value, &out);
  return out;
}

double RoundTo(double value, int decimals) {
  double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace shapex::sandbox
