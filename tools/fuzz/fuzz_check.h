// The fuzz targets' invariant check: a broken invariant aborts, which libFuzzer reports as a
// crash and keeps the input (the message says which invariant).
#ifndef SHAPEX_TOOLS_FUZZ_FUZZ_CHECK_H_
#define SHAPEX_TOOLS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

namespace shapex_fuzz {

inline void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace shapex_fuzz

#endif  // SHAPEX_TOOLS_FUZZ_FUZZ_CHECK_H_
