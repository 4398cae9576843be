#pragma once
// The real application, started in-process on port 0 with two event loops,
// plus helpers to reach it over gRPC and read its metrics.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "app/application.hpp"
#include "notify/v1/notification_service.grpc.pb.h"

namespace notify::testing {

// Whether clients may pick their user id with ?user= (--insecure-dev).
enum class DevIdentity { enabled, disabled };

class TestServer {
 public:
  // `extra_flags` are command-line flags added after the test defaults, which
  // include --insecure-dev.
  explicit TestServer(std::vector<std::string> extra_flags = {});
  // With DevIdentity::disabled the server runs without --insecure-dev: clients
  // need a token, so `extra_flags` must configure JWT keys.
  TestServer(std::vector<std::string> extra_flags, DevIdentity dev_identity);
  ~TestServer();

  app::Application& app() { return *app_; }
  std::uint16_t ws_port() const { return app_->ws_port(); }
  std::uint16_t grpc_port() const { return app_->grpc_port(); }
  std::uint16_t metrics_port() const { return app_->metrics_port(); }

  std::unique_ptr<v1::NotificationService::Stub> stub() const;
  std::shared_ptr<grpc::Channel> channel() const;

  // One metric sample from /metrics, e.g. value("notify_connections_open")
  // or value("notify_client_messages_total{type=\"ping\"}"); -1 if absent.
  double metric(const std::string& sample) const;
  std::string scrape() const;

 private:
  std::unique_ptr<app::Application> app_;
};

class WsClient;

// Connects `user` over WebSocket and consumes its welcome frame.
std::unique_ptr<WsClient> connect_user(TestServer& server, const std::string& user);

// An unauthenticated channel to a gRPC port on loopback, for gateways that
// are not a TestServer (a GatewayProcess, a bare GrpcServer).
std::shared_ptr<grpc::Channel> grpc_channel(std::uint16_t port);

// Calls Notify / Broadcast / Disconnect / GetPresence; a failed status fails
// the test unless `status_out` is given to receive it.
v1::NotifyResponse notify(v1::NotificationService::Stub& stub, std::vector<std::string> users, const std::string& event,
                          const std::string& data, grpc::Status* status_out = nullptr);
v1::NotifyResponse notify(TestServer& server, std::vector<std::string> users, const std::string& event,
                          const std::string& data, grpc::Status* status_out = nullptr);
// Notify with require_ack, notification id `id` and ack_timeout_ms (0: the default).
v1::NotifyResponse notify_acked(TestServer& server, std::vector<std::string> users, const std::string& id,
                                std::uint32_t ack_timeout_ms = 0, grpc::Status* status_out = nullptr);
// Notify with persist (the inbox), notification id `id`, data {"id": id}
// and persist_ttl_seconds (0: the default).
v1::NotifyResponse notify_persisted(v1::NotificationService::Stub& stub, std::vector<std::string> users,
                                    const std::string& id, std::uint32_t ttl_seconds = 0,
                                    grpc::Status* status_out = nullptr);
v1::BroadcastResponse broadcast(TestServer& server, const std::string& topic, const std::string& event,
                                const std::string& data);
v1::DisconnectResponse disconnect(TestServer& server, std::vector<std::string> users, const std::string& reason);
// Each user's connection count.
std::map<std::string, std::uint32_t> get_presence(TestServer& server, std::vector<std::string> users,
                                                  grpc::Status* status_out = nullptr);

// Parses a sample's value out of a Prometheus text exposition; -1 if absent.
double sample_value(const std::string& exposition, const std::string& sample);

// Polls `condition` every 10 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// A gRPC deadline for test calls.
void set_deadline(grpc::ClientContext& context, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

}  // namespace notify::testing
