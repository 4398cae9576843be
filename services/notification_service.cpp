#include "services/notification_service.hpp"

#include "common/ids.hpp"

namespace notify::services {

namespace {

broker::Publication publication(const ValidNotification& n, std::string topic) {
  const std::int64_t now = unix_millis();
  return {.id = n.id,
          .event = n.event,
          .topic = std::move(topic),
          .data_json = n.data_json,
          .ts_ms = now,
          .collapse_key = n.collapse_key,
          .ack_deadline_ms = n.ack_timeout_ms != 0 ? now + n.ack_timeout_ms : 0,
          .inbox_expires_ms = n.persist_ttl_s != 0 ? now + std::int64_t{n.persist_ttl_s} * 1000 : 0};
}

}  // namespace

bool NotificationService::refuse(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                                 auth::Scope scope) {
  if (grpc::Status status = auth_.check(*context, scope); !status.ok()) {
    reactor->Finish(status);
    return true;
  }
  if (!draining_.load(std::memory_order_relaxed)) return false;
  reactor->Finish({grpc::StatusCode::UNAVAILABLE, "server shutting down"});
  return true;
}

void NotificationService::count_limits(int ids, std::size_t payload_bytes) {
  if (static_cast<std::size_t>(ids) > settings_.max_ids_per_request) metrics_.limit_hit(Limit::ids_per_request);
  if (payload_bytes > settings_.max_payload_bytes) metrics_.limit_hit(Limit::payload_size);
}

bool NotificationService::admit(grpc::ServerUnaryReactor* reactor) {
  if (inflight_.fetch_add(1, std::memory_order_relaxed) < settings_.max_inflight_requests) return true;
  release_inflight();
  metrics_.limit_hit(Limit::inflight_requests);
  reactor->Finish(
      {grpc::StatusCode::RESOURCE_EXHAUSTED,
       "more than " + std::to_string(settings_.max_inflight_requests) + " requests in flight; retry with backoff"});
  return false;
}

void NotificationService::finish(grpc::ServerUnaryReactor* reactor, const std::string& broker_error) {
  release_inflight();
  reactor->Finish(broker_error.empty() ? grpc::Status::OK : grpc::Status(grpc::StatusCode::UNAVAILABLE, broker_error));
}

grpc::Status NotificationService::check_notify(const v1::NotifyRequest& request, std::vector<std::string>& users,
                                               ValidNotification& n) {
  count_limits(request.user_ids().size(), request.has_notification() ? request.notification().data_json().size() : 0);
  grpc::Status status = validate_user_ids(request.user_ids(), settings_, users);
  if (status.ok()) status = validate_notification(request.notification(), request.has_notification(), settings_, n);
  return status;
}

void NotificationService::deliver_notify(std::vector<std::string> users, const ValidNotification& n,
                                         broker::Broker::Done done) {
  metrics_.notification_received();
  broker_.notify(std::move(users), publication(n, {}), std::move(done));
}

grpc::ServerUnaryReactor* NotificationService::Notify(grpc::CallbackServerContext* context,
                                                      const v1::NotifyRequest* request, v1::NotifyResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (refuse(context, reactor, auth::Scope::notify)) return reactor;
  std::vector<std::string> users;
  ValidNotification n;
  if (grpc::Status status = check_notify(*request, users, n); !status.ok()) {
    reactor->Finish(status);
    return reactor;
  }
  if (!admit(reactor)) return reactor;
  response->set_id(n.id);
  deliver_notify(std::move(users), n, [this, reactor, response](broker::Outcome outcome) {
    response->set_delivered_connections(outcome.count);
    for (auto& user : outcome.offline) response->add_offline_user_ids(std::move(user));
    finish(reactor, outcome.error);
  });
  return reactor;
}

grpc::ServerBidiReactor<v1::NotifyRequest, v1::NotifyStreamResponse>* NotificationService::NotifyStream(
    grpc::CallbackServerContext* context) {
  return NotifyStreamCall::start(*this, context);
}

bool NotificationService::attach_stream(NotifyStreamCall* call) {
  std::lock_guard lock(streams_mu_);
  if (draining_.load(std::memory_order_relaxed)) return false;
  streams_.push_back(call);
  return true;
}

void NotificationService::detach_stream(NotifyStreamCall* call) {
  std::lock_guard lock(streams_mu_);
  std::erase(streams_, call);
}

void NotificationService::begin_shutdown() {
  std::vector<std::shared_ptr<NotifyStreamCall>> open;
  {
    std::lock_guard lock(streams_mu_);
    draining_.store(true);
    // Attached calls are alive until they detach, under this lock.
    for (NotifyStreamCall* call : streams_) open.push_back(call->shared_from_this());
  }
  for (auto& call : open) call->shut_down();
}

grpc::ServerUnaryReactor* NotificationService::Broadcast(grpc::CallbackServerContext* context,
                                                         const v1::BroadcastRequest* request,
                                                         v1::BroadcastResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (refuse(context, reactor, auth::Scope::broadcast)) return reactor;
  ValidNotification n;
  count_limits(0, request->has_notification() ? request->notification().data_json().size() : 0);
  grpc::Status status = validate_broadcast_topic(request->topic());
  if (status.ok()) status = validate_notification(request->notification(), request->has_notification(), settings_, n);
  if (status.ok()) status = validate_broadcast_notification(n);
  if (!status.ok()) {
    reactor->Finish(status);
    return reactor;
  }
  if (!admit(reactor)) return reactor;
  metrics_.broadcast_received();
  response->set_id(n.id);
  broker_.broadcast(publication(n, request->topic()), [this, reactor, response](broker::Outcome outcome) {
    response->set_delivered_connections(outcome.count);
    finish(reactor, outcome.error);
  });
  return reactor;
}

grpc::ServerUnaryReactor* NotificationService::Disconnect(grpc::CallbackServerContext* context,
                                                          const v1::DisconnectRequest* request,
                                                          v1::DisconnectResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (refuse(context, reactor, auth::Scope::disconnect)) return reactor;
  std::vector<std::string> users;
  count_limits(request->user_ids().size(), 0);
  grpc::Status status = validate_user_ids(request->user_ids(), settings_, users);
  if (status.ok()) status = validate_close_reason(request->reason());
  if (!status.ok()) {
    reactor->Finish(status);
    return reactor;
  }
  if (!admit(reactor)) return reactor;
  std::string reason = request->reason().empty() ? "disconnected by server" : request->reason();
  broker_.disconnect(std::move(users), std::move(reason), [this, reactor, response](broker::Outcome outcome) {
    response->set_closed_connections(outcome.count);
    finish(reactor, outcome.error);
  });
  return reactor;
}

grpc::ServerUnaryReactor* NotificationService::GetPresence(grpc::CallbackServerContext* context,
                                                           const v1::GetPresenceRequest* request,
                                                           v1::GetPresenceResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (refuse(context, reactor, auth::Scope::presence)) return reactor;
  std::vector<std::string> users;
  count_limits(request->user_ids().size(), 0);
  if (grpc::Status status = validate_user_ids(request->user_ids(), settings_, users); !status.ok()) {
    reactor->Finish(status);
    return reactor;
  }
  if (!admit(reactor)) return reactor;
  broker_.presence(users, [this, reactor, response, users](std::string error, std::vector<std::uint32_t> counts) {
    if (error.empty()) {
      auto& map = *response->mutable_connections();
      for (std::size_t i = 0; i < users.size(); ++i) map[users[i]] = counts[i];
    }
    finish(reactor, error);
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::ClientMessage>* NotificationService::StreamClientMessages(
    grpc::CallbackServerContext* context, const v1::StreamClientMessagesRequest*) {
  if (grpc::Status status = auth_.check(*context, auth::Scope::stream); !status.ok()) {
    return ClientMessageStream::refused(bus_.messages, std::move(status));
  }
  auto* stream = ClientMessageStream::start(bus_.messages);
  if (draining_.load(std::memory_order_relaxed)) {
    stream->finish({grpc::StatusCode::UNAVAILABLE, "server shutting down"});
  }
  return stream;
}

grpc::ServerWriteReactor<v1::DeliveryReports>* NotificationService::StreamDeliveryReports(
    grpc::CallbackServerContext* context, const v1::StreamDeliveryReportsRequest*) {
  if (grpc::Status status = auth_.check(*context, auth::Scope::stream); !status.ok()) {
    return DeliveryReportStream::refused(bus_.reports, std::move(status));
  }
  auto* stream = DeliveryReportStream::start(bus_.reports);
  if (draining_.load(std::memory_order_relaxed)) {
    stream->finish({grpc::StatusCode::UNAVAILABLE, "server shutting down"});
  }
  return stream;
}

}  // namespace notify::services
