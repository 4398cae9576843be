#pragma once
// Carries {"type":"message"} frames from WebSocket sessions to the open
// StreamClientMessages streams. Every stream gets every message; a stream
// that lags more than its buffer (messages or bytes) loses its oldest
// messages (counted). The number of streams is bounded too.
// Thread-safe: publish() runs on event loops, the rest on gRPC threads.
#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/metrics.hpp"
#include "gateway/upstream.hpp"
#include "notify/v1/notification_service.grpc.pb.h"
#include "services/settings.hpp"

namespace notify::services {

class ClientMessageBus;

// One StreamClientMessages call. Owned by shared_ptr: gRPC's reference is
// dropped in OnDone, the bus's snapshot references keep it alive while a
// publish is running.
class ClientMessageStream : public grpc::ServerWriteReactor<v1::ClientMessage>,
                            public std::enable_shared_from_this<ClientMessageStream> {
 public:
  static ClientMessageStream* start(ClientMessageBus& bus, Metrics& metrics, const ServiceSettings& settings);
  // A stream that ends at once with `status`, never joining the bus.
  static ClientMessageStream* refused(ClientMessageBus& bus, Metrics& metrics, const ServiceSettings& settings,
                                      grpc::Status status);

  ClientMessageStream(ClientMessageBus& bus, Metrics& metrics, const ServiceSettings& settings);

  // Queues a message; false once the stream is finishing.
  bool push(const v1::ClientMessage& message);
  // Ends the stream after the write in flight, if any; with `flush`, after
  // every queued message too. No message is taken after this call.
  void finish(grpc::Status status, bool flush = false);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ClientMessageBus& bus_;
  Metrics& metrics_;
  const ServiceSettings& settings_;
  std::shared_ptr<ClientMessageStream> self_;  // gRPC's reference, until OnDone

  std::mutex mu_;
  std::deque<v1::ClientMessage> pending_;
  std::size_t pending_bytes_ = 0;
  v1::ClientMessage current_;  // the message being written; touched only by the writer
  bool writing_ = false;
  bool finishing_ = false;
  bool finish_deferred_ = false;
  grpc::Status finish_status_;
};

class ClientMessageBus : public gateway::UpstreamSink {
 public:
  ClientMessageBus(Metrics& metrics, const ServiceSettings& settings) : metrics_(metrics), settings_(settings) {}

  std::size_t publish(const gateway::UpstreamMessage& message) override;

  // OK, or the status to end the stream with: UNAVAILABLE when shutting
  // down, RESOURCE_EXHAUSTED at --max-client-streams.
  grpc::Status attach(std::shared_ptr<ClientMessageStream> stream);
  void detach(ClientMessageStream* stream);
  // Finishes every stream with OK once its queued messages are written, and
  // refuses new streams.
  void close_all();
  std::size_t stream_count();
  // Before any stream: told (under the bus's lock, so it must not block) of
  // every stream that attaches (+1) or detaches (-1); the Redis broker
  // subscribes to client messages from other replicas while it has any.
  void set_consumer_observer(std::function<void(int)> observer) { consumer_observer_ = std::move(observer); }

 private:
  Metrics& metrics_;
  const ServiceSettings& settings_;
  std::mutex mu_;
  std::vector<std::shared_ptr<ClientMessageStream>> streams_;
  bool closed_ = false;
  std::function<void(int)> consumer_observer_;
};

}  // namespace notify::services
