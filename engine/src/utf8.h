// UTF-8 helpers for character-indexed string operations. Invalid UTF-8 never fails: a stray or
// truncated byte counts as one character.
#ifndef SHAPEX_ENGINE_UTF8_H_
#define SHAPEX_ENGINE_UTF8_H_

#include <cstddef>
#include <string_view>

#include "shapex/engine/value.h"

namespace shapex::engine {

// Byte length of the UTF-8 sequence starting at s[i]; 1 for an invalid or truncated one.
inline size_t Utf8CharLen(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 1;
  return n;
}

inline size_t Utf8CharCount(const ObjString* s) {
  if (s->ascii) return s->str.size();
  size_t n = 0;
  for (size_t i = 0; i < s->str.size(); i += Utf8CharLen(s->str, i)) ++n;
  return n;
}

// Byte offset of character `index` (index <= character count).
inline size_t Utf8ByteOffset(const ObjString* s, size_t index) {
  if (s->ascii) return index;
  size_t i = 0;
  for (; index > 0 && i < s->str.size(); --index) i += Utf8CharLen(s->str, i);
  return i;
}

// Character index of byte offset `byte` (a character boundary).
inline size_t Utf8CharIndex(const ObjString* s, size_t byte) {
  if (s->ascii) return byte;
  size_t n = 0;
  for (size_t i = 0; i < byte; i += Utf8CharLen(s->str, i)) ++n;
  return n;
}

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_UTF8_H_
