#pragma once
// notify.v1.NotificationService on gRPC's callback API: each RPC validates
// its request, encodes the frame once and hands it to the hub, which answers
// from the event loops. No gRPC thread ever waits on the WebSocket side.
#include <atomic>

#include "common/metrics.hpp"
#include "gateway/hub.hpp"
#include "notify/v1/notification_service.grpc.pb.h"
#include "services/admin_auth.hpp"
#include "services/client_message_bus.hpp"
#include "services/settings.hpp"

namespace notify::services {

class NotificationService final : public v1::NotificationService::CallbackService {
 public:
  NotificationService(gateway::Hub& hub, ClientMessageBus& bus, Metrics& metrics, const ServiceSettings& settings,
                      const AdminAuth& auth)
      : hub_(hub), bus_(bus), metrics_(metrics), settings_(settings), auth_(auth) {}

  // From now on every RPC answers UNAVAILABLE.
  void begin_shutdown() { draining_.store(true); }

  grpc::ServerUnaryReactor* Notify(grpc::CallbackServerContext* context, const v1::NotifyRequest* request,
                                   v1::NotifyResponse* response) override;
  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* context, const v1::BroadcastRequest* request,
                                      v1::BroadcastResponse* response) override;
  grpc::ServerUnaryReactor* Disconnect(grpc::CallbackServerContext* context, const v1::DisconnectRequest* request,
                                       v1::DisconnectResponse* response) override;
  grpc::ServerUnaryReactor* GetPresence(grpc::CallbackServerContext* context, const v1::GetPresenceRequest* request,
                                        v1::GetPresenceResponse* response) override;
  grpc::ServerWriteReactor<v1::ClientMessage>* StreamClientMessages(
      grpc::CallbackServerContext* context, const v1::StreamClientMessagesRequest* request) override;

 private:
  // Finishes `reactor` with UNAVAILABLE if draining, or with the
  // authentication failure; true if it did.
  bool refuse(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor, auth::Scope scope);
  // Counts one request handed to the hub; finishes `reactor` with
  // RESOURCE_EXHAUSTED and returns false at --max-inflight-requests, so a
  // backend outpacing the event loops can't queue work without bound.
  bool admit(grpc::ServerUnaryReactor* reactor);
  // Counts requests above --max-ids-per-request / --max-payload-bytes (the
  // validation that refuses them doesn't know about metrics).
  void count_limits(int ids, std::size_t payload_bytes);
  // The hub answered: the request no longer counts; then finishes it.
  void finish(grpc::ServerUnaryReactor* reactor);

  gateway::Hub& hub_;
  ClientMessageBus& bus_;
  Metrics& metrics_;
  const ServiceSettings& settings_;
  const AdminAuth& auth_;
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> inflight_{0};
};

}  // namespace notify::services
