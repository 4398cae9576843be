#pragma once
// The Redis broker's metric families (notify_broker_*), registered once in
// the service's registry; the shard label is the shard's position in
// --redis-url (bounded by it). Thread-safe.
#include <chrono>
#include <cstddef>
#include <vector>

#include "common/metrics.hpp"

namespace notify::broker {

enum class BrokerOp : std::size_t { publish, presence, subscribe, sync, history, count };

class BrokerMetrics {
 public:
  BrokerMetrics(Metrics& metrics, std::size_t shards);

  void up(std::size_t shard, bool is_up);
  void reconnect(std::size_t shard);
  void probe_failed(std::size_t shard);
  void error(BrokerOp op);
  void published(std::size_t messages);
  void received();
  void malformed();
  void publish_latency(std::chrono::nanoseconds elapsed);
  void subscriptions(std::int64_t delta);

 private:
  std::vector<prometheus::Gauge*> up_;
  std::vector<prometheus::Counter*> reconnects_;
  std::vector<prometheus::Counter*> probe_failures_;
  std::vector<prometheus::Counter*> errors_;
  prometheus::Counter* published_ = nullptr;
  prometheus::Counter* received_ = nullptr;
  prometheus::Counter* malformed_ = nullptr;
  prometheus::Histogram* publish_seconds_ = nullptr;
  prometheus::Gauge* subscriptions_ = nullptr;
};

}  // namespace notify::broker
