#pragma once
// Settings of the WebSocket edge, filled from flags by app/config.cpp.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "auth/client_address.hpp"
#include "auth/origin_policy.hpp"
#include "auth/topic_grants.hpp"
#include "gateway/history.hpp"
#include "gateway/send_queue.hpp"

namespace notify::gateway {

struct GatewaySettings {
  std::string bind_address = "0.0.0.0";
  std::uint16_t ws_port = 8080;
  std::uint16_t metrics_port = 9100;
  std::size_t threads = 0;  // event loops; 0 = one per core

  std::size_t max_message_bytes = 64 * 1024;  // largest client frame; above it: close 1009
  std::size_t max_header_bytes = 8 * 1024;    // largest HTTP request head; above it: 431
  std::size_t max_topics_per_connection = 100;
  std::size_t max_invalid_messages = 10;  // protocol errors before close 1008
  QueueLimits queue;
  // Notifications kept per stream for clients that resume
  // (--history-size, --history-ttl); max_entries 0: no history.
  HistoryLimits history;
  // Persisted notifications kept per user's inbox (--inbox-size); 0: no inbox.
  std::size_t inbox_size = 100;

  std::chrono::milliseconds handshake_timeout{10'000};  // HTTP request head and WebSocket upgrade
  std::chrono::milliseconds idle_timeout{60'000};       // ping after half of it, close after all of it
  std::chrono::milliseconds close_timeout{5'000};       // flushing the queue plus the close handshake

  // Who may connect, and how much.
  bool insecure_dev = false;           // ?user= identities without tokens (development only)
  auth::OriginPolicy allowed_origins;  // empty: same host only
  auth::TopicGrants public_topics;     // anyone may subscribe to these
  auth::TrustedProxies trusted_proxies;
  std::size_t max_connections = 100'000;       // WebSocket connections in total
  std::size_t max_connections_per_ip = 1'000;  // WebSocket connections per client address
  double client_message_rate = 20;             // frames per second a client may send, sustained
  double client_message_burst = 40;            // and in a burst

  // Optional TLS on the WebSocket port (wss://); both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
};

}  // namespace notify::gateway
