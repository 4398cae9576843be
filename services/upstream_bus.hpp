#pragma once
// What connections send back to the backends, on the admin API's two
// server-streaming RPCs: client messages (StreamClientMessages) and delivery
// reports (StreamDeliveryReports). Each is a StreamBus; with Redis the
// broker also feeds them what the other replicas' connections produced.
#include <cstdint>

#include "gateway/upstream.hpp"
#include "notify/v1/notification_service.grpc.pb.h"
#include "services/stream_bus.hpp"

namespace notify::v1 {
// How StreamBus batches reports (found by argument-dependent lookup).
inline void append_to_batch(DeliveryReports& batch, DeliveryReport&& report) {
  *batch.add_reports() = std::move(report);
}
}  // namespace notify::v1

namespace notify::services {

using ClientMessageStream = BusStream<v1::ClientMessage>;
using DeliveryReportStream = BusStream<v1::DeliveryReport, v1::DeliveryReports>;

class UpstreamBus : public gateway::UpstreamSink, public gateway::DeliveryReportSink {
 public:
  UpstreamBus(Metrics& metrics, const ServiceSettings& settings)
      : messages(metrics, metrics.client_message_bus(), settings, "StreamClientMessages",
                 settings.client_stream_buffer),
        // Reports come in bursts (one ack frame settles up to 256, a shutdown
        // settles every connection's): bounded by bytes alone (16 MiB is
        // about 150,000 reports).
        reports(metrics, metrics.delivery_report_bus(), settings, "StreamDeliveryReports", SIZE_MAX) {}

  // UpstreamSink: to this process's StreamClientMessages streams.
  std::size_t publish(const gateway::UpstreamMessage& message) override;
  // DeliveryReportSink: to this process's StreamDeliveryReports streams.
  void report(const gateway::DeliveryReport& report) override;

  StreamBus<v1::ClientMessage> messages;
  StreamBus<v1::DeliveryReport, v1::DeliveryReports> reports;
};

}  // namespace notify::services
