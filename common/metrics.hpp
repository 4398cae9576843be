#pragma once
// Every metric the service exports. Families and their handles are created
// once here; label values come from closed enums, never from request data.
// Thread-safe: all methods may be called from any thread.
#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "grpc_codes.hpp"
#include "loop_metrics.hpp"
#include "token_error.hpp"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace notify {

enum class HandshakeFailure : std::size_t {
  bad_request,          // malformed HTTP or not a WebSocket upgrade on /ws
  header_too_large,     // request head above the limit
  timeout,              // request head not complete in time (slowloris)
  invalid_user,         // missing or malformed ?user=
  upgrade_failed,       // Beast refused the upgrade (bad version, key, ...)
  shutting_down,        // the gateway is draining
  unauthorized,         // no valid token (401); the reason is in notify_auth_failures_total
  forbidden_origin,     // Origin not allowed (403)
  connection_limit,     // --max-connections reached (503)
  ip_connection_limit,  // --max-connections-per-ip reached (429)
  count
};

// Every configurable limit, as counted in notify_limit_rejections_total{limit}.
enum class Limit : std::size_t {
  connections,            // --max-connections
  connections_per_ip,     // --max-connections-per-ip
  message_rate,           // --client-message-rate / --client-message-burst
  message_size,           // --max-message-bytes (close 1009)
  topics_per_connection,  // --max-topics-per-connection
  header_size,            // --max-header-bytes (431)
  handshake_timeout,      // --handshake-timeout
  ids_per_request,        // --max-ids-per-request
  payload_size,           // --max-payload-bytes
  inflight_requests,      // --max-inflight-requests
  client_streams,         // --max-client-streams
  count
};

// Why an admin API call was refused by authentication.
enum class AdminAuthFailure : std::size_t { missing_key, invalid_key, forbidden_scope, count };

enum class GrpcMethod : std::size_t {
  notify,
  broadcast,
  disconnect,
  get_presence,
  notify_stream,
  stream_client_messages,
  stream_delivery_reports,
  health,
  reflection,
  other,
  count
};

// Maps a full gRPC method path ("/notify.v1.NotificationService/Notify") to
// its label; anything unknown is `other`, so callers can't mint label values.
GrpcMethod grpc_method_from_path(std::string_view path);

class Metrics {
 public:
  explicit Metrics(std::size_t loops);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  std::size_t loop_count() const { return loops_.size(); }
  LoopMetrics& loop(std::size_t index) { return *loops_[index]; }
  const LoopMetrics& loop(std::size_t index) const { return *loops_[index]; }

  void handshake_failed(HandshakeFailure reason);
  void token_rejected(TokenError reason);
  void limit_hit(Limit limit);
  void admin_auth_failed(AdminAuthFailure reason);
  void credentials_reloaded(bool ok);
  // --max-connections (0 = unlimited), exported so alerts can compare
  // notify_connections_open with it.
  void connection_limit(std::size_t max_connections);
  void notification_received();
  void broadcast_received();
  // One NotifyStream request answered: 0 (OK), 3 (INVALID_ARGUMENT) or 14 (UNAVAILABLE).
  void notify_stream_result(int status_code);
  void grpc_request(GrpcMethod method, int status_code, std::chrono::nanoseconds elapsed);
  // The counters of one server-streaming bus (services/stream_bus.hpp):
  // StreamClientMessages or StreamDeliveryReports.
  struct StreamBusCounters {
    prometheus::Gauge* consumers = nullptr;    // open streams
    prometheus::Counter* forwarded = nullptr;  // messages handed to streams, once per stream
    prometheus::Counter* dropped = nullptr;    // messages a lagging stream lost
  };
  const StreamBusCounters& client_message_bus() const { return client_message_bus_; }
  const StreamBusCounters& delivery_report_bus() const { return delivery_report_bus_; }
  // A delivery report was produced (acked, timed_out, connection_closed, replaced).
  void delivery_report(std::size_t outcome);

  // For components that register their own families (the Redis broker).
  prometheus::Registry& registry() { return *registry_; }

  // The Prometheus text exposition of every metric, process_* included.
  std::string scrape() const;

 private:
  class LoopCollector;
  class ProcessCollector;

  std::vector<std::unique_ptr<LoopMetrics>> loops_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<LoopCollector> loop_collector_;
  std::shared_ptr<ProcessCollector> process_collector_;

  std::array<prometheus::Counter*, static_cast<std::size_t>(HandshakeFailure::count)> handshake_failures_{};
  std::array<prometheus::Counter*, static_cast<std::size_t>(TokenError::count)> token_rejections_{};
  std::array<prometheus::Counter*, static_cast<std::size_t>(Limit::count)> limit_rejections_{};
  std::array<prometheus::Counter*, static_cast<std::size_t>(AdminAuthFailure::count)> admin_auth_failures_{};
  std::array<prometheus::Counter*, 2> credential_reloads_{};
  prometheus::Gauge* credentials_current_ = nullptr;
  prometheus::Gauge* connections_max_ = nullptr;
  prometheus::Counter* notifications_received_ = nullptr;
  prometheus::Counter* broadcasts_received_ = nullptr;
  std::array<prometheus::Counter*, 3> notify_stream_results_{};  // OK, INVALID_ARGUMENT, UNAVAILABLE
  StreamBusCounters client_message_bus_;
  StreamBusCounters delivery_report_bus_;
  std::array<prometheus::Counter*, 5> delivery_reports_{};  // by DeliveryReport::Outcome, 1..4

  static constexpr std::size_t kGrpcCodes = kGrpcCodeNames.size();
  std::array<prometheus::Histogram*, static_cast<std::size_t>(GrpcMethod::count)> grpc_durations_{};
  // Every (method, code) pair exists from the start with 0, so that rate()
  // sees the first calls of a kind (a series born at 5 has no increase).
  std::array<std::array<prometheus::Counter*, kGrpcCodes>, static_cast<std::size_t>(GrpcMethod::count)>
      grpc_counters_{};
};

}  // namespace notify
