#pragma once
// Metrics written on the hot path by one event loop each. A loop is the only
// writer of its LoopMetrics, so counters are bumped with a relaxed load+store
// instead of an atomic read-modify-write; scrapes read them from any thread
// and sum the loops. Each LoopMetrics sits on its own cache lines.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace notify {

class LoopCounter {
 public:
  void add(std::uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class LoopGauge {
 public:
  void add(std::int64_t n) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Upper bounds in seconds, shared by every latency histogram of the service.
inline constexpr std::array<double, 16> kLatencyBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                           0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};

class LoopHistogram {
 public:
  void observe(std::chrono::nanoseconds elapsed);
  // Bucket i counts observations <= kLatencyBuckets[i] and above the previous
  // bound (not cumulative); the last bucket is +Inf.
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].value(); }
  double sum_seconds() const { return static_cast<double>(sum_ns_.value()) / 1e9; }

 private:
  std::array<LoopCounter, kLatencyBuckets.size() + 1> buckets_;
  LoopCounter sum_ns_;
};

enum class ClientMessageType : std::size_t {
  subscribe,
  unsubscribe,
  ping,
  message,
  refresh,
  resume,
  ack,
  inbox,
  mark_read,
  invalid,
  count
};

struct alignas(64) LoopMetrics {
  LoopCounter connections_accepted;  // WebSocket upgrades completed
  LoopCounter connections_closed;
  LoopCounter frames_delivered;    // frames completely written to a socket
  LoopCounter bytes_sent;          // WebSocket payload bytes of those frames
  LoopCounter messages_dropped;    // frames discarded by the drop-oldest policy
  LoopCounter messages_collapsed;  // waiting frames replaced by a newer one with their collapse key
  LoopCounter slow_consumer_closes;
  LoopCounter streams_resumed;        // streams a resume replayed (or found current)
  LoopCounter streams_resume_failed;  // streams a resume could not cover (resume_failed sent)
  LoopCounter inbox_pushed;           // inbox notifications pushed to a connection as it opened
  LoopGauge queued_bytes;             // payload bytes waiting in send queues
  std::array<LoopCounter, static_cast<std::size_t>(ClientMessageType::count)> client_messages;
  LoopHistogram delivery_latency;  // notification accepted -> written to the socket

  void client_message(ClientMessageType type) { client_messages[static_cast<std::size_t>(type)].add(); }
  void resume(bool ok) { (ok ? streams_resumed : streams_resume_failed).add(); }
};

}  // namespace notify
