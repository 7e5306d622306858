// vm_bench's C baseline for the typed-array dot product (vm_bench_dot.cc says how it is kept
// honest). Sums a[i] * b[i] for i in [0, n) left to right.
#ifndef SHAPEX_TOOLS_BENCH_VM_BENCH_DOT_H_
#define SHAPEX_TOOLS_BENCH_VM_BENCH_DOT_H_

#include <cstddef>

namespace bench {

double DotLoopC(const double* a, const double* b, size_t n);

}  // namespace bench

#endif  // SHAPEX_TOOLS_BENCH_VM_BENCH_DOT_H_
