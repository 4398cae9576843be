#include "metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <fstream>
#include <sstream>
#include <string_view>

namespace notify {
namespace {

constexpr std::array<const char*, static_cast<std::size_t>(HandshakeFailure::count)> kHandshakeFailureNames = {
    "bad_request",   "header_too_large", "timeout",          "invalid_user",     "upgrade_failed",
    "shutting_down", "unauthorized",     "forbidden_origin", "connection_limit", "ip_connection_limit"};

constexpr std::array<const char*, static_cast<std::size_t>(Limit::count)> kLimitNames = {
    "connections",           "connections_per_ip", "message_rate",      "message_size",
    "topics_per_connection", "header_size",        "handshake_timeout", "ids_per_request",
    "payload_size",          "inflight_requests",  "client_streams"};

constexpr std::array<const char*, static_cast<std::size_t>(AdminAuthFailure::count)> kAdminAuthFailureNames = {
    "missing_key", "invalid_key", "forbidden_scope"};

constexpr std::array<const char*, static_cast<std::size_t>(GrpcMethod::count)> kGrpcMethodNames = {
    "Notify",
    "Broadcast",
    "Disconnect",
    "GetPresence",
    "NotifyStream",
    "StreamClientMessages",
    "StreamDeliveryReports",
    "Health",
    "Reflection",
    "other"};

constexpr std::array<const char*, static_cast<std::size_t>(ClientMessageType::count)> kClientMessageTypeNames = {
    "subscribe", "unsubscribe", "ping", "message", "refresh", "resume", "ack", "inbox", "mark_read", "invalid"};

prometheus::Histogram::BucketBoundaries latency_bounds() {
  return prometheus::Histogram::BucketBoundaries(kLatencyBuckets.begin(), kLatencyBuckets.end());
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

prometheus::ClientMetric counter_value(double v) {
  prometheus::ClientMetric m;
  m.counter.value = v;
  return m;
}

prometheus::ClientMetric gauge_value(double v) {
  prometheus::ClientMetric m;
  m.gauge.value = v;
  return m;
}

}  // namespace

GrpcMethod grpc_method_from_path(std::string_view path) {
  constexpr std::string_view kService = "/notify.v1.NotificationService/";
  if (path.starts_with(kService)) {
    const std::string_view name = path.substr(kService.size());
    for (std::size_t i = 0; i < static_cast<std::size_t>(GrpcMethod::health); ++i) {
      if (name == kGrpcMethodNames[i]) return static_cast<GrpcMethod>(i);
    }
    return GrpcMethod::other;
  }
  if (path.starts_with("/grpc.health.v1.Health/")) return GrpcMethod::health;
  if (path.starts_with("/grpc.reflection.")) return GrpcMethod::reflection;
  return GrpcMethod::other;
}

// Sums the per-loop hot-path metrics at scrape time.
class Metrics::LoopCollector : public prometheus::Collectable {
 public:
  explicit LoopCollector(const std::vector<std::unique_ptr<LoopMetrics>>& loops) : loops_(loops) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    auto sum = [&](auto member) {
      double total = 0;
      for (const auto& l : loops_) total += static_cast<double>(((*l).*member).value());
      return total;
    };
    std::vector<prometheus::MetricFamily> out;
    const double closed = sum(&LoopMetrics::connections_closed);  // before accepted, see open_connections()
    const double open = std::max(0.0, sum(&LoopMetrics::connections_accepted) - closed);
    out.push_back(family("notify_connections_open", "WebSocket connections currently open.", MetricType::Gauge));
    out.back().metric.push_back(gauge_value(open));
    auto add_counter = [&](const char* name, const char* help, auto member) {
      out.push_back(family(name, help, MetricType::Counter));
      out.back().metric.push_back(counter_value(sum(member)));
    };
    add_counter("notify_connections_accepted_total", "WebSocket upgrades completed.",
                &LoopMetrics::connections_accepted);
    add_counter("notify_frames_delivered_total", "Frames completely written to client sockets.",
                &LoopMetrics::frames_delivered);
    add_counter("notify_bytes_sent_total", "WebSocket payload bytes written to client sockets.",
                &LoopMetrics::bytes_sent);
    add_counter("notify_messages_dropped_total",
                "Queued frames discarded because a client's send queue was full (drop-oldest policy).",
                &LoopMetrics::messages_dropped);
    add_counter("notify_messages_collapsed_total",
                "Frames waiting in a send queue replaced by a newer notification with the same collapse key.",
                &LoopMetrics::messages_collapsed);
    add_counter("notify_slow_consumer_closes_total",
                "Connections closed because their send queue was full (close policy).",
                &LoopMetrics::slow_consumer_closes);
    add_counter("notify_streams_resumed_total",
                "Streams a client resumed: it got every notification it missed from history.",
                &LoopMetrics::streams_resumed);
    add_counter("notify_streams_resume_failed_total",
                "Streams a client could not resume (history lost or too short): it was sent resume_failed.",
                &LoopMetrics::streams_resume_failed);
    add_counter("notify_inbox_pushed_total",
                "Notifications that waited in a user's inbox (sent with persist while the user had no connection), "
                "pushed to a connection as it opened.",
                &LoopMetrics::inbox_pushed);
    out.push_back(family("notify_send_queue_bytes", "Payload bytes waiting in client send queues.", MetricType::Gauge));
    out.back().metric.push_back(gauge_value(sum(&LoopMetrics::queued_bytes)));

    out.push_back(
        family("notify_client_messages_total", "Frames received from clients, by type.", MetricType::Counter));
    for (std::size_t t = 0; t < kClientMessageTypeNames.size(); ++t) {
      double total = 0;
      for (const auto& l : loops_) total += static_cast<double>(l->client_messages[t].value());
      auto m = counter_value(total);
      m.label.push_back({"type", kClientMessageTypeNames[t]});
      out.back().metric.push_back(std::move(m));
    }

    out.push_back(family("notify_delivery_latency_seconds",
                         "Time from a notification being accepted to its frame being written to a client socket.",
                         MetricType::Histogram));
    prometheus::ClientMetric h;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= kLatencyBuckets.size(); ++i) {
      for (const auto& l : loops_) cumulative += l->delivery_latency.bucket(i);
      prometheus::ClientMetric::Bucket b;
      b.cumulative_count = cumulative;
      b.upper_bound = i < kLatencyBuckets.size() ? kLatencyBuckets[i] : std::numeric_limits<double>::infinity();
      h.histogram.bucket.push_back(b);
    }
    h.histogram.sample_count = cumulative;
    for (const auto& l : loops_) h.histogram.sample_sum += l->delivery_latency.sum_seconds();
    out.back().metric.push_back(std::move(h));
    return out;
  }

 private:
  const std::vector<std::unique_ptr<LoopMetrics>>& loops_;
};

// The standard process_* metrics, read from /proc at scrape time.
class Metrics::ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));

    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // Fields after the parenthesised command name, which may hold spaces.
    const auto close_paren = stat.rfind(')');
    if (close_paren != std::string::npos) {
      std::istringstream rest(stat.substr(close_paren + 2));
      std::vector<std::string> f;
      for (std::string tok; rest >> tok;) f.push_back(tok);
      // f[0] is field 3 (state): utime=14, stime=15, starttime=22, vsize=23, rss=24.
      if (f.size() > 21) {
        const double utime = std::stod(f[11]);
        const double stime = std::stod(f[12]);
        const double start_ticks = std::stod(f[19]);
        out.push_back(family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                             MetricType::Counter));
        out.back().metric.push_back(counter_value((utime + stime) / ticks));
        out.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge));
        out.back().metric.push_back(gauge_value(std::stod(f[20])));
        out.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge));
        out.back().metric.push_back(gauge_value(std::stod(f[21]) * page));
        if (const double boot = boot_time(); boot > 0) {
          out.push_back(family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                               MetricType::Gauge));
          out.back().metric.push_back(gauge_value(boot + start_ticks / ticks));
        }
      }
    }

    out.push_back(family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge));
    out.back().metric.push_back(gauge_value(static_cast<double>(count_open_fds())));
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      out.push_back(family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge));
      out.back().metric.push_back(gauge_value(static_cast<double>(lim.rlim_cur)));
    }
    return out;
  }

 private:
  static double boot_time() {
    std::ifstream in("/proc/stat");
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("btime ")) return std::stod(line.substr(6));
    }
    return 0;
  }

  static std::size_t count_open_fds() {
    std::size_t n = 0;
    if (DIR* dir = opendir("/proc/self/fd")) {
      while (dirent* e = readdir(dir)) {
        if (e->d_name[0] != '.') ++n;
      }
      closedir(dir);
      if (n > 0) --n;  // the directory stream's own descriptor
    }
    return n;
  }
};

Metrics::Metrics(std::size_t loops) : registry_(std::make_shared<prometheus::Registry>()) {
  for (std::size_t i = 0; i < loops; ++i) loops_.push_back(std::make_unique<LoopMetrics>());
  loop_collector_ = std::make_shared<LoopCollector>(loops_);
  process_collector_ = std::make_shared<ProcessCollector>();

  auto& handshakes = prometheus::BuildCounter()
                         .Name("notify_handshake_failures_total")
                         .Help("Requests on the WebSocket port refused before a connection was established, by reason.")
                         .Register(*registry_);
  for (std::size_t i = 0; i < kHandshakeFailureNames.size(); ++i) {
    handshake_failures_[i] = &handshakes.Add({{"reason", kHandshakeFailureNames[i]}});
  }
  auto& tokens = prometheus::BuildCounter()
                     .Name("notify_auth_failures_total")
                     .Help("WebSocket upgrades and token refreshes refused because of the client token, by reason.")
                     .Register(*registry_);
  for (std::size_t i = 0; i < token_rejections_.size(); ++i) {
    token_rejections_[i] = &tokens.Add({{"reason", std::string(to_string(static_cast<TokenError>(i)))}});
  }
  auto& limits = prometheus::BuildCounter()
                     .Name("notify_limit_rejections_total")
                     .Help("Requests, connections and messages refused by a configured limit, by limit.")
                     .Register(*registry_);
  for (std::size_t i = 0; i < kLimitNames.size(); ++i) limit_rejections_[i] = &limits.Add({{"limit", kLimitNames[i]}});
  auto& admin = prometheus::BuildCounter()
                    .Name("notify_admin_auth_failures_total")
                    .Help("Admin API calls refused by API key authentication, by reason.")
                    .Register(*registry_);
  for (std::size_t i = 0; i < kAdminAuthFailureNames.size(); ++i) {
    admin_auth_failures_[i] = &admin.Add({{"reason", kAdminAuthFailureNames[i]}});
  }
  auto& reloads = prometheus::BuildCounter()
                      .Name("notify_credential_reloads_total")
                      .Help("Reloads of JWT keys and admin API keys (SIGHUP or file change), by result.")
                      .Register(*registry_);
  credential_reloads_[0] = &reloads.Add({{"result", "success"}});
  credential_reloads_[1] = &reloads.Add({{"result", "error"}});
  // The keys in use came from a successful load (start-up refuses broken
  // files), so 1 until a reload fails.
  credentials_current_ = &prometheus::BuildGauge()
                              .Name("notify_credentials_last_reload_successful")
                              .Help(
                                  "1 if the last credential load or reload succeeded, 0 if it failed and stale keys "
                                  "are in use.")
                              .Register(*registry_)
                              .Add({});
  credentials_current_->Set(1);
  notifications_received_ = &prometheus::BuildCounter()
                                 .Name("notify_notifications_received_total")
                                 .Help("Notify requests accepted.")
                                 .Register(*registry_)
                                 .Add({});
  broadcasts_received_ = &prometheus::BuildCounter()
                              .Name("notify_broadcasts_received_total")
                              .Help("Broadcast requests accepted.")
                              .Register(*registry_)
                              .Add({});
  auto& stream_results = prometheus::BuildCounter()
                             .Name("notify_notify_stream_requests_total")
                             .Help("Requests answered on NotifyStream calls, by the status in their result.")
                             .Register(*registry_);
  notify_stream_results_[0] = &stream_results.Add({{"code", "OK"}});
  notify_stream_results_[1] = &stream_results.Add({{"code", "INVALID_ARGUMENT"}});
  notify_stream_results_[2] = &stream_results.Add({{"code", "UNAVAILABLE"}});
  client_message_bus_ = {
      .consumers = &prometheus::BuildGauge()
                        .Name("notify_client_stream_consumers")
                        .Help("Open StreamClientMessages streams.")
                        .Register(*registry_)
                        .Add({}),
      .forwarded = &prometheus::BuildCounter()
                        .Name("notify_client_messages_forwarded_total")
                        .Help("Client messages handed to StreamClientMessages streams (once per stream).")
                        .Register(*registry_)
                        .Add({}),
      .dropped = &prometheus::BuildCounter()
                      .Name("notify_client_messages_dropped_total")
                      .Help("Client messages a lagging StreamClientMessages stream lost.")
                      .Register(*registry_)
                      .Add({})};
  delivery_report_bus_ = {
      .consumers = &prometheus::BuildGauge()
                        .Name("notify_delivery_report_consumers")
                        .Help("Open StreamDeliveryReports streams.")
                        .Register(*registry_)
                        .Add({}),
      .forwarded = &prometheus::BuildCounter()
                        .Name("notify_delivery_reports_forwarded_total")
                        .Help("Delivery reports handed to StreamDeliveryReports streams (once per stream).")
                        .Register(*registry_)
                        .Add({}),
      .dropped = &prometheus::BuildCounter()
                      .Name("notify_delivery_reports_dropped_total")
                      .Help("Delivery reports a lagging StreamDeliveryReports stream lost.")
                      .Register(*registry_)
                      .Add({})};
  auto& reports = prometheus::BuildCounter()
                      .Name("notify_delivery_reports_total")
                      .Help(
                          "Outcomes of notifications sent with require_ack, one per connection they reached, as "
                          "seen by this replica's connections.")
                      .Register(*registry_);
  delivery_reports_[1] = &reports.Add({{"outcome", "acked"}});
  delivery_reports_[2] = &reports.Add({{"outcome", "timed_out"}});
  delivery_reports_[3] = &reports.Add({{"outcome", "connection_closed"}});
  delivery_reports_[4] = &reports.Add({{"outcome", "replaced"}});
  auto& grpc_requests = prometheus::BuildCounter()
                            .Name("notify_grpc_requests_total")
                            .Help("gRPC requests completed, by method and status code.")
                            .Register(*registry_);
  for (std::size_t m = 0; m < grpc_counters_.size(); ++m) {
    for (std::size_t code = 0; code < kGrpcCodes; ++code) {
      grpc_counters_[m][code] =
          &grpc_requests.Add({{"method", kGrpcMethodNames[m]}, {"code", std::string(kGrpcCodeNames[code])}});
    }
  }
  auto& durations = prometheus::BuildHistogram()
                        .Name("notify_grpc_request_duration_seconds")
                        .Help("gRPC request latency from arrival to status, by method.")
                        .Register(*registry_);
  for (std::size_t i = 0; i < kGrpcMethodNames.size(); ++i) {
    grpc_durations_[i] = &durations.Add({{"method", kGrpcMethodNames[i]}}, latency_bounds());
  }
  connections_max_ = &prometheus::BuildGauge()
                          .Name("notify_connections_max")
                          .Help("The WebSocket connection limit (--max-connections); 0 = unlimited.")
                          .Register(*registry_)
                          .Add({});
  prometheus::BuildGauge()
      .Name("notify_build_info")
      .Help("Always 1; the labels say which build is running.")
      .Register(*registry_)
      .Add({{"version", NOTIFY_VERSION}})
      .Set(1);
}

Metrics::~Metrics() = default;

void Metrics::handshake_failed(HandshakeFailure reason) {
  handshake_failures_[static_cast<std::size_t>(reason)]->Increment();
}
void Metrics::token_rejected(TokenError reason) { token_rejections_[static_cast<std::size_t>(reason)]->Increment(); }
void Metrics::limit_hit(Limit limit) { limit_rejections_[static_cast<std::size_t>(limit)]->Increment(); }
void Metrics::admin_auth_failed(AdminAuthFailure reason) {
  admin_auth_failures_[static_cast<std::size_t>(reason)]->Increment();
}
void Metrics::credentials_reloaded(bool ok) {
  credential_reloads_[ok ? 0 : 1]->Increment();
  credentials_current_->Set(ok ? 1 : 0);
}
void Metrics::connection_limit(std::size_t max_connections) {
  connections_max_->Set(static_cast<double>(max_connections));
}
void Metrics::notification_received() { notifications_received_->Increment(); }
void Metrics::broadcast_received() { broadcasts_received_->Increment(); }
void Metrics::notify_stream_result(int status_code) {
  notify_stream_results_[status_code == 0 ? 0 : status_code == 14 ? 2 : 1]->Increment();
}
void Metrics::delivery_report(std::size_t outcome) {
  if (outcome < delivery_reports_.size() && delivery_reports_[outcome] != nullptr)
    delivery_reports_[outcome]->Increment();
}

void Metrics::grpc_request(GrpcMethod method, int status_code, std::chrono::nanoseconds elapsed) {
  const auto m = static_cast<std::size_t>(method);
  const auto code = (status_code >= 0 && status_code < static_cast<int>(kGrpcCodes)) ? status_code : 2;  // UNKNOWN
  grpc_counters_[m][static_cast<std::size_t>(code)]->Increment();
  grpc_durations_[m]->Observe(std::chrono::duration<double>(elapsed).count());
}

std::string Metrics::scrape() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (auto& f : loop_collector_->Collect()) families.push_back(std::move(f));
  for (auto& f : process_collector_->Collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace notify
