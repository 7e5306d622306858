// shapex_difftest_gen: prints the program the differential generator makes for a seed.
//
//   shapex_difftest_gen SEED [--local] [--no-mutation]
//                                          (--local: no @remote annotations; --no-mutation:
//                                          as shapex_difftest --no-mutation)
//   shapex_difftest_gen SEED --out DIR     writes DIR/p<SEED>.shape
//
// The first lines of the program name the seed and, when it needs them, the `shapex run`
// flags (`// flags: --fuel 1234`, as in the golden tests).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "program_generator.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SEED [--local] [--no-mutation] [--out DIR]\n", argv[0]);
    return 2;
  }
  shapex::difftest::GeneratorOptions options;
  std::string out_dir;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--local") == 0) {
      options.remote = false;
    } else if (std::strcmp(argv[i], "--no-mutation") == 0) {
      options.mutation = false;
    } else if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      out_dir = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  const uint64_t seed = std::strtoull(argv[1], nullptr, 10);
  shapex::difftest::GeneratedProgram p = shapex::difftest::GenerateProgram(seed, options);
  if (out_dir.empty()) {
    std::fputs(p.source.c_str(), stdout);
    return 0;
  }
  std::ofstream out(out_dir + "/p" + std::to_string(seed) + ".shape");
  out << p.source;
  return out ? 0 : 1;
}
