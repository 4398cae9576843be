#pragma once
// What every session of the edge shares: read-only settings, metrics, the
// upstream sink and the draining flag. Outlives all sessions.
#include <atomic>

#include "common/metrics.hpp"
#include "gateway/settings.hpp"
#include "gateway/upstream.hpp"

namespace notify::gateway {

struct GatewayContext {
  GatewayContext(const GatewaySettings& s, Metrics& m, UpstreamSink* u) : settings(s), metrics(m), upstream(u) {}

  const GatewaySettings& settings;
  Metrics& metrics;
  UpstreamSink* upstream;             // may be null: messages are then refused
  std::atomic<bool> draining{false};  // set once on shutdown; /readyz answers 503
};

}  // namespace notify::gateway
