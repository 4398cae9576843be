#pragma once
// A session's bounded queue of frames waiting for its socket; see docs/architecture.md.
// The front frame may be "in flight" (handed to the socket, not yet written);
// it stays counted until the write completes. Not thread-safe: owned by one
// session on one event loop.
#include <cstddef>
#include <string_view>
#include <vector>

#include "gateway/frame.hpp"

namespace notify::gateway {

enum class OverflowPolicy {
  close,        // close the connection with 4008 and discard its queue (default)
  drop_oldest,  // discard the oldest waiting frames until the new one fits
};

bool parse_overflow_policy(std::string_view text, OverflowPolicy& out);
std::string_view to_string(OverflowPolicy policy);

struct QueueLimits {
  std::size_t max_messages = 1024;
  std::size_t max_bytes = 1 << 20;
  OverflowPolicy policy = OverflowPolicy::close;
};

class SendQueue {
 public:
  struct PushResult {
    bool accepted;        // false: over the limit under the close policy, frame not queued
    std::size_t dropped;  // frames discarded to make room (drop_oldest)
    std::size_t dropped_bytes;
  };

  explicit SendQueue(const QueueLimits& limits) : limits_(&limits) {}

  PushResult push(FramePtr frame);

  bool empty() const { return head_ == frames_.size(); }
  std::size_t size() const { return frames_.size() - head_; }
  std::size_t bytes() const { return bytes_; }
  bool in_flight() const { return in_flight_; }

  // Marks the front frame as handed to the socket and returns it.
  const FramePtr& begin_write();
  // The in-flight frame was written (or failed): removes it.
  FramePtr end_write();
  // Discards every frame not in flight; returns the bytes released.
  std::size_t clear_waiting();

 private:
  void pop_front();
  // Releases storage when empty, drops the consumed prefix when it dominates.
  void compact();

  const QueueLimits* limits_;
  std::vector<FramePtr> frames_;  // [head_, end) are queued; storage is released when empty
  std::size_t head_ = 0;
  std::size_t bytes_ = 0;
  bool in_flight_ = false;
};

}  // namespace notify::gateway
