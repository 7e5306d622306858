// Counting this process's open descriptors, for leak checks in tests.
//
// Usage:
//   size_t before = shapex_testing::CountOpenFds();
//   ... exercise the code ...
//   EXPECT_EQ(shapex_testing::CountOpenFds(), before);
#ifndef SHAPEX_TESTS_TESTING_OPEN_FDS_H_
#define SHAPEX_TESTS_TESTING_OPEN_FDS_H_

#include <dirent.h>

#include <cstddef>

namespace shapex_testing {

// Number of entries in /proc/self/fd, not counting the descriptor used to list it.
inline size_t CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  size_t count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;
}

}  // namespace shapex_testing

#endif  // SHAPEX_TESTS_TESTING_OPEN_FDS_H_
