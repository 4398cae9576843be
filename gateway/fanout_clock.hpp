#pragma once
// steady_clock::now() for the delivery latency histogram, shared by the
// recipients of one fan-out: a broadcast to thousands of connections reads
// the clock once per kReuse deliveries instead of once per recipient. Within
// a fan-out a reading is at most kReuse sends old (tens of microseconds,
// below the histogram's smallest bucket); outside one, now() reads the clock.
// One per shard, used on its event loop only.
#include <chrono>
#include <cstdint>

namespace notify::gateway {

class FanoutClock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr std::uint32_t kReuse = 8;

  void begin_fanout() {
    active_ = true;
    left_ = 0;
  }
  void end_fanout() { active_ = false; }

  time_point now() {
    if (!active_) return std::chrono::steady_clock::now();
    if (left_ == 0) {
      now_ = std::chrono::steady_clock::now();
      left_ = kReuse;
    }
    --left_;
    return now_;
  }

 private:
  time_point now_{};
  std::uint32_t left_ = 0;
  bool active_ = false;
};

}  // namespace notify::gateway
