#include "loop_metrics.hpp"

#include <algorithm>

namespace notify {

void LoopHistogram::observe(std::chrono::nanoseconds elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const auto it = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds);
  buckets_[static_cast<std::size_t>(it - kLatencyBuckets.begin())].add();
  sum_ns_.add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, elapsed.count())));
}

}  // namespace notify
