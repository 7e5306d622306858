// The C side of vm_bench's dot product: a plain loop in its own translation unit, compiled at
// -O2 with -ffp-contract=off (tools/bench/CMakeLists.txt), so that it sums in the same order
// and with the same roundings as the Shape loop and gives a bit-identical result. It is not
// inlined into the caller (noinline, separate TU, no LTO) and its result is checked against
// the Shape result, so the compiler can neither drop it nor hoist it out of the timing.
#include "tools/bench/vm_bench_dot.h"

namespace bench {

__attribute__((noinline)) double DotLoopC(const double* a, const double* b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace bench
