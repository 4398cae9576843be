#pragma once
// What goes from connections back to the backends: {"type":"message"}
// frames (to the gRPC StreamClientMessages service) and delivery reports of
// notifications sent with require_ack (to StreamDeliveryReports). Kept
// abstract so the gateway doesn't depend on services/.
#include <cstddef>
#include <cstdint>
#include <string>

namespace notify::gateway {

struct UpstreamMessage {
  std::string id;  // UUIDv7 the gateway assigned
  std::string user_id;
  std::string connection_id;
  std::string data_json;
  std::string client_message_id;  // the frame's "id" as JSON text, or empty
  std::int64_t ts_ms = 0;
};

class UpstreamSink {
 public:
  virtual ~UpstreamSink() = default;
  // Thread-safe and non-blocking. Returns how many consumers took the message;
  // 0 means nobody is listening and the message is lost.
  virtual std::size_t publish(const UpstreamMessage& message) = 0;
};

// What became of a notification sent with require_ack on one connection
// (DeliveryReport in the proto).
struct DeliveryReport {
  enum class Outcome { acked = 1, timed_out = 2, connection_closed = 3, replaced = 4 };
  std::string notification_id;
  std::string user_id;
  std::string connection_id;
  Outcome outcome = Outcome::acked;
  std::int64_t ts_ms = 0;            // when the outcome was seen
  std::int64_t published_ts_ms = 0;  // the notification's "ts"
};

class DeliveryReportSink {
 public:
  virtual ~DeliveryReportSink() = default;
  // Thread-safe and non-blocking; a report nobody consumes is dropped.
  virtual void report(const DeliveryReport& report) = 0;
};

}  // namespace notify::gateway
