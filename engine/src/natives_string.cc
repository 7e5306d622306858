// String methods (decisions.md #6). `len` counts bytes; indices (slice, find, chars) count
// characters, i.e. Unicode scalar values. Strings whose bytes are all ASCII (ObjString::ascii)
// take byte-indexed fast paths. Invalid UTF-8 never fails: a stray byte counts as one
// character.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string>
#include <system_error>

#include "natives_impl.h"
#include "utf8.h"

namespace shapex::engine {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool Receiver(Vm& vm, Value* args, const ObjString** s) { return ArgString(vm, args[0], s); }

bool NewStringArray(Vm& vm, std::vector<std::string_view> parts, Value* out) {
  if (!CheckAllocArray(vm, parts.size(), sizeof(ObjString) + sizeof(Value))) return false;
  std::vector<Value> items;
  items.reserve(parts.size());
  for (std::string_view p : parts) items.push_back(vm.NewString(std::string(p)));
  *out = vm.NewArray(std::move(items));
  return true;
}

}  // namespace

bool ParseInt(std::string_view s, int64_t* out) {
  s = Trim(s);
  // from_chars accepts a leading '-' but no '+'. After the optional sign, a digit must follow
  // (so "+-1" and "-+1" are rejected).
  size_t digits = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (s.size() <= digits || s[digits] < '0' || s[digits] > '9') return false;
  if (s[0] == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseNumber(std::string_view s, double* out) {
  s = Trim(s);
  if (!s.empty() && s[0] == '+') {
    s.remove_prefix(1);
    if (!s.empty() && s[0] == '-') return false;
  }
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool StringLen(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  *out = Value::Int(static_cast<int64_t>(s->str.size()));
  return true;
}

bool StringChars(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  std::vector<std::string_view> parts;
  std::string_view str = s->str;
  for (size_t i = 0; i < str.size();) {
    size_t n = Utf8CharLen(str, i);
    parts.push_back(str.substr(i, n));
    i += n;
  }
  return NewStringArray(vm, std::move(parts), out);
}

bool StringUpper(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  std::string r = s->str;
  for (char& c : r)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  *out = vm.NewString(std::move(r));
  return true;
}

bool StringLower(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  std::string r = s->str;
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  *out = vm.NewString(std::move(r));
  return true;
}

bool StringTrim(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  std::string_view t = Trim(s->str);
  *out = t.size() == s->str.size() ? args[0] : vm.NewString(std::string(t));
  return true;
}

bool StringSplit(Vm& vm, Value* args, int argc, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  std::string_view str = s->str;
  std::vector<std::string_view> parts;
  if (argc < 2) {
    // Python's split(): runs of whitespace separate, no empty parts.
    size_t i = 0;
    while (true) {
      while (i < str.size() && IsSpace(str[i])) ++i;
      if (i == str.size()) break;
      size_t j = i;
      while (j < str.size() && !IsSpace(str[j])) ++j;
      parts.push_back(str.substr(i, j - i));
      i = j;
    }
    return NewStringArray(vm, std::move(parts), out);
  }
  const ObjString* sep = nullptr;
  if (!ArgString(vm, args[1], &sep)) return false;
  if (sep->str.empty()) return vm.Fail("empty separator");
  size_t start = 0;
  while (true) {
    size_t pos = str.find(sep->str, start);
    if (pos == std::string_view::npos) break;
    parts.push_back(str.substr(start, pos - start));
    start = pos + sep->str.size();
  }
  parts.push_back(str.substr(start));
  return NewStringArray(vm, std::move(parts), out);
}

bool StringContains(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString *s, *sub;
  if (!Receiver(vm, args, &s) || !ArgString(vm, args[1], &sub)) return false;
  *out = Value::Bool(s->str.find(sub->str) != std::string::npos);
  return true;
}

bool StringStartsWith(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString *s, *prefix;
  if (!Receiver(vm, args, &s) || !ArgString(vm, args[1], &prefix)) return false;
  *out = Value::Bool(s->str.starts_with(prefix->str));
  return true;
}

bool StringEndsWith(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString *s, *suffix;
  if (!Receiver(vm, args, &s) || !ArgString(vm, args[1], &suffix)) return false;
  *out = Value::Bool(s->str.ends_with(suffix->str));
  return true;
}

bool StringReplace(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString *s, *from, *to;
  if (!Receiver(vm, args, &s) || !ArgString(vm, args[1], &from) || !ArgString(vm, args[2], &to))
    return false;
  std::string_view str = s->str;
  std::string_view pat = from->str;
  // Count matches first so an exploding replacement fails with ResourceExhausted before any
  // big buffer is built. An empty pattern matches at every character boundary (as in Rust).
  uint64_t matches = 0;
  if (pat.empty()) {
    matches = Utf8CharCount(s) + 1;
  } else {
    for (size_t p = str.find(pat); p != std::string_view::npos; p = str.find(pat, p + pat.size()))
      ++matches;
  }
  if (matches == 0) {
    *out = args[0];
    return true;
  }
  if (!CheckAllocArray(vm, matches, to->str.size()) || !vm.CheckAlloc(str.size())) return false;
  std::string r;
  r.reserve(str.size() + matches * to->str.size());
  if (pat.empty()) {
    for (size_t i = 0; i < str.size();) {
      size_t n = Utf8CharLen(str, i);
      r.append(to->str);
      r.append(str.substr(i, n));
      i += n;
    }
    r.append(to->str);
  } else {
    size_t start = 0;
    for (size_t p = str.find(pat); p != std::string_view::npos; p = str.find(pat, start)) {
      r.append(str.substr(start, p - start));
      r.append(to->str);
      start = p + pat.size();
    }
    r.append(str.substr(start));
  }
  *out = vm.NewString(std::move(r));
  return true;
}

bool StringFind(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString *s, *sub;
  if (!Receiver(vm, args, &s) || !ArgString(vm, args[1], &sub)) return false;
  size_t pos = s->str.find(sub->str);
  if (pos == std::string::npos) {
    *out = Value::None();
  } else {
    *out = vm.NewSome(Value::Int(static_cast<int64_t>(Utf8CharIndex(s, pos))));
  }
  return true;
}

bool StringSlice(Vm& vm, Value* args, int argc, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  size_t a{}, b{};
  if (!ResolveSlice(vm, args[1], argc > 2 ? &args[2] : nullptr, Utf8CharCount(s), &a, &b))
    return false;
  size_t begin = Utf8ByteOffset(s, a);
  size_t end = Utf8ByteOffset(s, b);
  *out = vm.NewString(s->str.substr(begin, end - begin));
  return true;
}

bool StringRepeat(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString* s = nullptr;
  int64_t n{};
  if (!Receiver(vm, args, &s) || !ArgInt(vm, args[1], &n)) return false;
  if (n < 0) return vm.Fail("negative count");
  if (!CheckAllocArray(vm, static_cast<uint64_t>(n), s->str.size())) return false;
  // Doubling: O(log n) appends instead of n (repeat(4000) on a short string is common).
  size_t total = s->str.size() * static_cast<size_t>(n);
  std::string r;
  r.reserve(total);
  if (total > 0) r.append(s->str);
  while (r.size() < total) r.append(r, 0, std::min(r.size(), total - r.size()));
  *out = vm.NewString(std::move(r));
  return true;
}

bool StringToInt(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  int64_t i{};
  if (ParseInt(s->str, &i)) {
    *out = vm.NewOk(Value::Int(i));
  } else {
    *out = vm.NewErr(vm.NewString(fmt::format("cannot parse '{}' as int", s->str)));
  }
  return true;
}

bool StringToNumber(Vm& vm, Value* args, int /*argc*/, Value* out) {
  const ObjString* s = nullptr;
  if (!Receiver(vm, args, &s)) return false;
  double d{};
  if (ParseNumber(s->str, &d)) {
    *out = vm.NewOk(Value::Number(d));
  } else {
    *out = vm.NewErr(vm.NewString(fmt::format("cannot parse '{}' as number", s->str)));
  }
  return true;
}

}  // namespace shapex::engine
