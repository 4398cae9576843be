#include "broker/broker_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace notify::broker {

BrokerMetrics::BrokerMetrics(Metrics& metrics, std::size_t shards) {
  auto& registry = metrics.registry();
  auto& up = prometheus::BuildGauge()
                 .Name("notify_broker_up")
                 .Help("1 while both connections to the Redis shard (publish and pub/sub) are ready")
                 .Register(registry);
  auto& reconnects = prometheus::BuildCounter()
                         .Name("notify_broker_reconnects_total")
                         .Help("Connections to a Redis shard lost (each is followed by reconnect attempts)")
                         .Register(registry);
  auto& probes = prometheus::BuildCounter()
                     .Name("notify_broker_probe_failures_total")
                     .Help("Pub/sub connections rebuilt because the periodic probe did not come back in time")
                     .Register(registry);
  for (std::size_t i = 0; i < shards; ++i) {
    const std::string label = std::to_string(i);
    up_.push_back(&up.Add({{"shard", label}}));
    reconnects_.push_back(&reconnects.Add({{"shard", label}}));
    probe_failures_.push_back(&probes.Add({{"shard", label}}));
  }
  auto& errors = prometheus::BuildCounter()
                     .Name("notify_broker_errors_total")
                     .Help("Redis operations that failed (publish, presence, subscribe, sync of presence)")
                     .Register(registry);
  for (const char* op : {"publish", "presence", "subscribe", "sync", "history"})
    errors_.push_back(&errors.Add({{"op", op}}));
  published_ = &prometheus::BuildCounter()
                    .Name("notify_broker_messages_published_total")
                    .Help("Messages published to Redis channels (one per user or topic channel)")
                    .Register(registry)
                    .Add({});
  received_ = &prometheus::BuildCounter()
                   .Name("notify_broker_messages_received_total")
                   .Help("Messages received from Redis channels, probes excluded")
                   .Register(registry)
                   .Add({});
  malformed_ = &prometheus::BuildCounter()
                    .Name("notify_broker_malformed_messages_total")
                    .Help("Messages from Redis that failed validation and were dropped")
                    .Register(registry)
                    .Add({});
  publish_seconds_ =
      &prometheus::BuildHistogram()
           .Name("notify_broker_publish_seconds")
           .Help("Time from handing a publication to the broker to Redis' answer")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                            0.05, 0.1, 0.25, 0.5, 1});
  subscriptions_ = &prometheus::BuildGauge()
                        .Name("notify_broker_subscriptions")
                        .Help("Redis channels this replica is subscribed to")
                        .Register(registry)
                        .Add({});
}

void BrokerMetrics::up(std::size_t shard, bool is_up) { up_[shard]->Set(is_up ? 1 : 0); }
void BrokerMetrics::reconnect(std::size_t shard) { reconnects_[shard]->Increment(); }
void BrokerMetrics::probe_failed(std::size_t shard) { probe_failures_[shard]->Increment(); }
void BrokerMetrics::error(BrokerOp op) { errors_[static_cast<std::size_t>(op)]->Increment(); }
void BrokerMetrics::published(std::size_t messages) { published_->Increment(static_cast<double>(messages)); }
void BrokerMetrics::received() { received_->Increment(); }
void BrokerMetrics::malformed() { malformed_->Increment(); }
void BrokerMetrics::publish_latency(std::chrono::nanoseconds elapsed) {
  publish_seconds_->Observe(std::chrono::duration<double>(elapsed).count());
}
void BrokerMetrics::subscriptions(std::int64_t delta) { subscriptions_->Increment(static_cast<double>(delta)); }

}  // namespace notify::broker
