#pragma once
// What every session of the edge shares: read-only settings, metrics, the
// token verifier, the connection limiter, the upstream and report sinks and
// the draining flag. Outlives all sessions.
#include <atomic>

#include <boost/asio/ssl/context.hpp>
#include "auth/jwt_verifier.hpp"
#include "common/metrics.hpp"

#include "gateway/connection_limiter.hpp"
#include "gateway/history.hpp"
#include "gateway/inbox.hpp"
#include "gateway/settings.hpp"
#include "gateway/upstream.hpp"

namespace notify::gateway {

struct GatewayContext {
  GatewayContext(const GatewaySettings& s, Metrics& m, UpstreamSink* u, const auth::JwtVerifier* v)
      : settings(s), metrics(m), upstream(u), verifier(v), limiter(s.max_connections, s.max_connections_per_ip) {}

  const GatewaySettings& settings;
  Metrics& metrics;
  UpstreamSink* upstream;             // may be null: messages are then refused
  const auth::JwtVerifier* verifier;  // null when no JWT keys are configured (insecure-dev)
  ConnectionLimiter limiter;
  boost::asio::ssl::context* tls = nullptr;  // set when the WebSocket port serves TLS
  std::atomic<bool> draining{false};         // set once on shutdown; /readyz answers 503
  HistoryBackend* history = nullptr;         // null: notifications are not kept (--history-size 0)
  DeliveryReportSink* reports = nullptr;     // null: delivery reports are dropped
  InboxBackend* inbox = nullptr;             // null: no inbox (--inbox-size 0)
};

}  // namespace notify::gateway
