// Format specs (format_spec.h): parsing, and formatting one value by a spec.
#include "format_spec.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "shapex/engine/vm.h"
#include "utf8.h"

namespace shapex::engine {
namespace {

bool IsAlign(char c) { return c == '<' || c == '>' || c == '^'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads decimal digits at text[*i] into *n (at most `max`). False when there are none or the
// number is larger than max.
bool ReadNumber(std::string_view text, size_t* i, int max, int* n) {
  size_t start = *i;
  int64_t v = 0;
  while (*i < text.size() && IsDigit(text[*i])) {
    v = v * 10 + (text[*i] - '0');
    if (v > max) return false;
    ++*i;
  }
  *n = static_cast<int>(v);
  return *i > start;
}

size_t CountChars(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += Utf8CharLen(s, i)) ++n;
  return n;
}

// printf of one double (a format such as "%.*f" and a precision).
std::string PrintDouble(const char* format, int precision, double d) {
  int n = std::snprintf(nullptr, 0, format, precision, d);
  std::string s(static_cast<size_t>(n > 0 ? n : 0), '\0');
  if (n > 0) std::snprintf(s.data(), s.size() + 1, format, precision, d);
  return s;
}

// The digits of |i| in base 10, 16 or 2 (INT64_MIN included).
std::string IntDigits(int64_t i, int base) {
  uint64_t u = i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
  if (base == 10) return std::to_string(u);
  std::string s;
  do {
    s.push_back("0123456789abcdef"[u % static_cast<uint64_t>(base)]);
    u /= static_cast<uint64_t>(base);
  } while (u != 0);
  return std::string(s.rbegin(), s.rend());
}

// Python's float format with a precision and no type: %g with `precision` significant digits,
// plus ".0" when the fixed-point form would otherwise read as an Int.
std::string GeneralDigits(double magnitude, int precision) {
  std::string s = PrintDouble("%.*g", precision == 0 ? 1 : precision, magnitude);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

bool Mismatch(Vm& vm, std::string_view spec, const char* needs, const Value& v) {
  return vm.Fail(fmt::format("format spec '{}' needs {}, got {}", spec, needs, TypeName(v)));
}

}  // namespace

bool ParseFormatSpec(std::string_view text, FormatSpec* spec, std::string* error) {
  *spec = FormatSpec();
  size_t i = 0;
  // [[fill] align]: a fill is any one character followed by an align character.
  size_t first = text.empty() ? 0 : Utf8CharLen(text, 0);
  bool has_fill = false;
  if (first < text.size() && IsAlign(text[first])) {
    has_fill = true;
    spec->fill = std::string(text.substr(0, first));
    if (spec->fill == "{" || spec->fill == "}") {
      *error = "'{' and '}' cannot be a fill character";
      return false;
    }
    spec->align = text[first];
    i = first + 1;
  } else if (!text.empty() && IsAlign(text[0])) {
    spec->align = text[0];
    i = 1;
  }
  if (i < text.size() && (text[i] == '+' || text[i] == '-' || text[i] == ' '))
    spec->sign = text[i++];
  if (i < text.size() && text[i] == '0') {
    // Zero padding: '0' is the fill unless one was given, and pads after the sign of a number
    // unless an alignment was given (Python's rule).
    ++i;
    if (!has_fill) spec->fill = "0";
    if (spec->align == 0) spec->align = '=';
  }
  if (i < text.size() && IsDigit(text[i]) && !ReadNumber(text, &i, kMaxFormatWidth, &spec->width)) {
    *error = fmt::format("width larger than {}", kMaxFormatWidth);
    return false;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (i >= text.size() || !IsDigit(text[i])) {
      *error = "expected digits after '.'";
      return false;
    }
    if (!ReadNumber(text, &i, kMaxFormatPrecision, &spec->precision)) {
      *error = fmt::format("precision larger than {}", kMaxFormatPrecision);
      return false;
    }
  }
  if (i < text.size()) {
    char t = text[i];
    if (t != 'd' && t != 'f' && t != 'e' && t != 'x' && t != 'b') {
      size_t len = Utf8CharLen(text, i);
      *error =
          fmt::format("unknown format type '{}' (expected one of d f e x b)", text.substr(i, len));
      return false;
    }
    spec->type = t;
    ++i;
  }
  if (i < text.size()) {
    *error = fmt::format("unexpected '{}' after the type", text.substr(i, Utf8CharLen(text, i)));
    return false;
  }
  if (spec->precision >= 0 && (spec->type == 'd' || spec->type == 'x' || spec->type == 'b')) {
    *error = fmt::format("a precision does not go with type '{}'", spec->type);
    return false;
  }
  return true;
}

bool FormatWithSpec(Vm& vm, const Value& value, const Value& spec_text, Value* out) {
  std::string_view text = AsString(spec_text)->str;
  FormatSpec spec;
  std::string error;
  if (!ParseFormatSpec(text, &spec, &error))  // the verifier checked it: an internal error
    return vm.Fail(fmt::format("invalid format spec '{}': {}", text, error));

  // The text of the value without its sign (numbers) and whether it is negative.
  bool numeric = false, negative = false;
  std::string body;
  WalkBudget budget(vm);
  switch (spec.type) {
    case 'd':
    case 'x':
    case 'b':
      if (value.type != Type::kInt) return Mismatch(vm, text, "an Int", value);
      numeric = true;
      negative = value.as.i < 0;
      body = IntDigits(value.as.i, spec.type == 'd' ? 10 : spec.type == 'x' ? 16 : 2);
      break;
    case 'f':
    case 'e': {
      if (!value.IsNumeric()) return Mismatch(vm, text, "a number", value);
      numeric = true;
      double d = value.AsDouble();
      negative = std::signbit(d) && !std::isnan(d);
      int precision = spec.precision < 0 ? 6 : spec.precision;
      body = PrintDouble(spec.type == 'f' ? "%.*f" : "%.*e", precision, std::fabs(d));
      break;
    }
    default:
      if (value.IsNumeric()) {
        numeric = true;
        if (value.type == Type::kInt) {
          if (spec.precision >= 0) return Mismatch(vm, text, "a Number or a String", value);
          negative = value.as.i < 0;
          body = IntDigits(value.as.i, 10);
        } else {
          double d = value.as.n;
          negative = std::signbit(d) && !std::isnan(d);
          if (spec.precision >= 0) {
            body = GeneralDigits(std::fabs(d), spec.precision);
          } else {
            AppendNumber(&body, std::fabs(d));
          }
        }
      } else {
        if (spec.sign != 0) return Mismatch(vm, text, "a number", value);
        if (spec.precision >= 0 && value.type != Type::kString)
          return Mismatch(vm, text, "a Number or a String", value);
        if (value.type == Type::kString) {
          std::string_view s = AsString(value)->str;
          size_t end = s.size();
          if (spec.precision >= 0) {  // at most `precision` characters
            end = 0;
            for (int n = 0; n < spec.precision && end < s.size(); ++n) end += Utf8CharLen(s, end);
          }
          if (!budget.Grow(end)) return false;
          body.assign(s.substr(0, end));
        } else if (!AppendValue(&body, value, /*quoted=*/false, budget)) {
          return false;
        }
      }
  }
  std::string sign;
  if (numeric && negative)
    sign = "-";
  else if (numeric && (spec.sign == '+' || spec.sign == ' '))
    sign = std::string(1, spec.sign);

  // Padding to `width` characters; numbers align right and strings left by default; '=' (from
  // "0") pads between the sign and the digits of a number and is left alignment for others.
  size_t chars = CountChars(sign) + CountChars(body);
  size_t pad = static_cast<size_t>(spec.width) > chars ? spec.width - chars : 0;
  char align = spec.align;
  if (align == 0) align = numeric ? '>' : '<';
  if (align == '=' && !numeric) align = '<';
  size_t left = align == '>' || align == '=' ? pad : align == '^' ? pad / 2 : 0;
  size_t right = pad - left;
  size_t size = sign.size() + body.size() + pad * spec.fill.size();
  if (!budget.Grow(size)) return false;
  std::string s;
  s.reserve(size);
  if (align == '=') s += sign;
  for (size_t k = 0; k < left; ++k) s += spec.fill;
  if (align != '=') s += sign;
  s += body;
  for (size_t k = 0; k < right; ++k) s += spec.fill;
  if (!budget.Settle(s.size())) return false;
  *out = vm.NewString(std::move(s));
  return true;
}

}  // namespace shapex::engine
