#pragma once
// Settings of the gRPC admin API, filled from flags by app/config.cpp.
#include <cstddef>
#include <cstdint>
#include <string>

namespace notify::services {

// The longest Notification.ack_timeout_ms (and --ack-timeout) accepted: 10 minutes.
inline constexpr std::uint32_t kMaxAckTimeoutMs = 600'000;
// The longest Notification.persist_ttl_seconds (and --inbox-ttl): 30 days.
inline constexpr std::uint32_t kMaxInboxTtlS = 30 * 86'400;

struct ServiceSettings {
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 50051;
  std::size_t max_payload_bytes = 64 * 1024;          // Notification.data_json
  std::size_t max_ids_per_request = 1000;             // user_ids per Notify / Disconnect / GetPresence
  std::size_t client_stream_buffer = 1024;            // messages a StreamClientMessages stream may lag
  std::size_t client_stream_buffer_bytes = 16 << 20;  // and their bytes
  std::size_t max_client_streams = 64;                // open StreamClientMessages streams
  std::size_t max_inflight_requests = 4096;           // Notify/Broadcast/Disconnect/GetPresence being fanned out
  std::size_t max_receive_message_bytes = 4 * 1024 * 1024;
  std::uint32_t ack_timeout_ms = 30'000;   // require_ack without ack_timeout_ms
  std::uint32_t inbox_ttl_s = 7 * 86'400;  // persist without persist_ttl_seconds
  bool inbox = true;                       // false with --inbox-size 0: persist is refused

  // Admin API protection: TLS (cert + key), mutual TLS (client CA), API keys.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string client_ca_file;
  std::string api_keys_file;
  bool insecure_admin = false;  // allow a non-loopback address without authentication

  bool authenticated() const { return !api_keys_file.empty() || !client_ca_file.empty(); }
};

}  // namespace notify::services
