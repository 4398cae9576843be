#include "services/upstream_bus.hpp"

namespace notify::services {

std::size_t UpstreamBus::publish(const gateway::UpstreamMessage& message) {
  if (messages.stream_count() == 0) return 0;
  v1::ClientMessage proto;
  proto.set_id(message.id);
  proto.set_user_id(message.user_id);
  proto.set_connection_id(message.connection_id);
  proto.set_data_json(message.data_json);
  proto.set_ts(message.ts_ms);
  proto.set_client_message_id(message.client_message_id);
  return messages.publish(proto);
}

void UpstreamBus::report(const gateway::DeliveryReport& report) {
  if (reports.stream_count() == 0) return;
  v1::DeliveryReport proto;
  proto.set_notification_id(report.notification_id);
  proto.set_user_id(report.user_id);
  proto.set_connection_id(report.connection_id);
  proto.set_outcome(static_cast<v1::DeliveryReport::Outcome>(report.outcome));
  proto.set_ts(report.ts_ms);
  proto.set_published_ts(report.published_ts_ms);
  reports.publish(proto);
}

}  // namespace notify::services
