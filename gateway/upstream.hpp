#pragma once
// Where {"type":"message"} frames go: implemented by the gRPC
// StreamClientMessages service, kept abstract so the gateway doesn't depend
// on services/.
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

}  // namespace notify::gateway
