#pragma once
// Latency histogram: 32 linear sub-buckets per power of two, so a recorded
// value is reported within about 3 % (an HdrHistogram with two significant
// bits of precision, in 15 KiB). Values are microseconds; merging is exact.

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace bench {

class Histogram {
 public:
  void record(std::uint64_t value) {
    ++counts_[index(value)];
    ++count_;
    max_ = std::max(max_, value);
    min_ = std::min(min_, value);
  }

  void merge(const Histogram& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }

  void reset() { *this = Histogram{}; }

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return count_ ? max_ : 0; }
  std::uint64_t min() const { return count_ ? min_ : 0; }

  // The smallest recorded bucket bound at or above fraction `q` (0..1) of the
  // values; never above the exact maximum.
  std::uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.5);
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper_bound(i), max_);
    }
    return max_;
  }

  // Calls f(upper bound, count) for every non-empty bucket, lowest first:
  // enough to merge histograms of several processes exactly.
  template <class F>
  void for_each_bucket(F&& f) const {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] != 0) f(std::min(upper_bound(i), max_), counts_[i]);
    }
  }

  static constexpr int kSubBits = 5;
  static constexpr std::uint64_t kSub = 1u << kSubBits;

  static std::size_t index(std::uint64_t v) {
    if (v < kSub) return static_cast<std::size_t>(v);
    const int shift = (63 - std::countl_zero(v)) - kSubBits;
    return static_cast<std::size_t>((static_cast<std::uint64_t>(shift) + 1) * kSub + ((v >> shift) & (kSub - 1)));
  }

  static std::uint64_t upper_bound(std::size_t i) {
    if (i < kSub) return i;
    const auto shift = static_cast<int>(i / kSub) - 1;
    const std::uint64_t sub = i % kSub;
    return ((kSub + sub + 1) << shift) - 1;
  }

 private:
  static constexpr std::size_t kBuckets = (64 - kSubBits) * kSub;
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
};

}  // namespace bench
