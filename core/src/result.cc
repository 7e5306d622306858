#include "shapex/core/result.h"

#include <cstdio>
#include <cstdlib>

namespace shapex::internal {

void DieOnBadResultAccess(const Status& status) {
  // Reading the value of a failed Result is a programming error, never input-driven, so we stop
  // here with the error that was ignored rather than continue with garbage.
  std::fprintf(stderr, "shapex: Result::value() called on error: %s\n", status.ToString().c_str());
  std::abort();
}

}  // namespace shapex::internal
