#pragma once
// notify.v1.NotificationService on gRPC's callback API: each RPC validates
// its request and hands it to the broker, which answers from its own threads
// (the event loops, or the Redis broker's). No gRPC thread ever waits on the
// WebSocket side or on Redis.
#include <atomic>
#include <mutex>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <functional>
#include "common/metrics.hpp"

#include "broker/broker.hpp"
#include "notify/v1/notification_service.grpc.pb.h"
#include "services/admin_auth.hpp"
#include "services/notify_stream.hpp"
#include "services/request_validation.hpp"
#include "services/settings.hpp"
#include "services/upstream_bus.hpp"

namespace notify::services {

class NotificationService final : public v1::NotificationService::CallbackService {
 public:
  // An event loop for a stream's timer; called for every new stream, so it
  // can hand out loops in turn.
  using TimerContext = std::function<boost::asio::io_context&()>;

  NotificationService(broker::Broker& broker, TimerContext timer_context, UpstreamBus& bus, Metrics& metrics,
                      const ServiceSettings& settings, const AdminAuth& auth)
      : broker_(broker),
        timer_context_(std::move(timer_context)),
        bus_(bus),
        metrics_(metrics),
        settings_(settings),
        auth_(auth) {}

  // From now on every RPC answers UNAVAILABLE; open NotifyStreams answer
  // what they have read and end.
  void begin_shutdown();

  grpc::ServerUnaryReactor* Notify(grpc::CallbackServerContext* context, const v1::NotifyRequest* request,
                                   v1::NotifyResponse* response) override;
  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* context, const v1::BroadcastRequest* request,
                                      v1::BroadcastResponse* response) override;
  grpc::ServerUnaryReactor* Disconnect(grpc::CallbackServerContext* context, const v1::DisconnectRequest* request,
                                       v1::DisconnectResponse* response) override;
  grpc::ServerUnaryReactor* GetPresence(grpc::CallbackServerContext* context, const v1::GetPresenceRequest* request,
                                        v1::GetPresenceResponse* response) override;
  grpc::ServerBidiReactor<v1::NotifyRequest, v1::NotifyStreamResponse>* NotifyStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::ClientMessage>* StreamClientMessages(
      grpc::CallbackServerContext* context, const v1::StreamClientMessagesRequest* request) override;
  grpc::ServerWriteReactor<v1::DeliveryReports>* StreamDeliveryReports(
      grpc::CallbackServerContext* context, const v1::StreamDeliveryReportsRequest* request) override;

 private:
  friend class NotifyStreamCall;

  // Checks a NotifyRequest (counting oversized ones) into `users` and `n`.
  grpc::Status check_notify(const v1::NotifyRequest& request, std::vector<std::string>& users, ValidNotification& n);
  // Counts a checked Notify and hands it to the broker.
  void deliver_notify(std::vector<std::string> users, const ValidNotification& n, broker::Broker::Done done);
  // NotifyStream requests count in the in-flight limit without being refused.
  void take_inflight() { inflight_.fetch_add(1, std::memory_order_relaxed); }
  void release_inflight() { inflight_.fetch_sub(1, std::memory_order_relaxed); }
  bool inflight_full() const { return inflight_.load(std::memory_order_relaxed) >= settings_.max_inflight_requests; }
  // Open NotifyStreams, so shutdown can reach them; false once draining.
  bool attach_stream(NotifyStreamCall* call);
  boost::asio::io_context& timer_context() { return timer_context_(); }
  void detach_stream(NotifyStreamCall* call);

  // Finishes `reactor` with UNAVAILABLE if draining, or with the
  // authentication failure; true if it did.
  bool refuse(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor, auth::Scope scope);
  // Counts one request handed to the broker; finishes `reactor` with
  // RESOURCE_EXHAUSTED and returns false at --max-inflight-requests, so a
  // backend outpacing the event loops can't queue work without bound.
  bool admit(grpc::ServerUnaryReactor* reactor);
  // Counts requests above --max-ids-per-request / --max-payload-bytes (the
  // validation that refuses them doesn't know about metrics).
  void count_limits(int ids, std::size_t payload_bytes);
  // The broker answered: the request no longer counts; then finishes it,
  // with UNAVAILABLE if the broker could not take it.
  void finish(grpc::ServerUnaryReactor* reactor, const std::string& broker_error = {});

  broker::Broker& broker_;
  TimerContext timer_context_;
  UpstreamBus& bus_;
  Metrics& metrics_;
  const ServiceSettings& settings_;
  const AdminAuth& auth_;
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> inflight_{0};
  std::mutex streams_mu_;
  std::vector<NotifyStreamCall*> streams_;  // guarded by streams_mu_, as is draining_'s rise
};

}  // namespace notify::services
