#pragma once
// The server's resource use, read from /proc: CPU time and resident memory of
// a process and all its descendants (nginx's workers, say).

#include <cstdint>
#include <vector>

namespace bench {

struct ProcSample {
  double cpu_seconds = 0;       // user + system, all processes in the tree
  std::uint64_t rss_bytes = 0;  // resident set, summed over the tree
  int processes = 0;            // 0: the root process is gone
};

// `root` and every process whose parent chain leads to it.
std::vector<int> process_tree(int root);
ProcSample sample_process_tree(int root);

// Monotonic clock in microseconds; the load generator's only clock.
std::int64_t now_us();

}  // namespace bench
