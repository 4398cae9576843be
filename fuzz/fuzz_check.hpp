#pragma once
// FUZZ_CHECK(cond): an invariant of a fuzz target. A violation prints the
// condition and traps, so libFuzzer records the input as a crash.
#include <cstdio>

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      __builtin_trap();                                                                   \
    }                                                                                     \
  } while (0)
