#pragma once
// The admin API server: NotificationService plus the standard health service
// and server reflection (so grpcurl works without .proto files).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>

#include "broker/broker.hpp"
#include "common/metrics.hpp"
#include "services/admin_auth.hpp"
#include "services/notification_service.hpp"
#include "services/settings.hpp"
#include "services/upstream_bus.hpp"

namespace notify::services {

class GrpcServer {
 public:
  GrpcServer(const ServiceSettings& settings, broker::Broker& broker, NotificationService::TimerContext timers,
             UpstreamBus& bus, Metrics& metrics, std::shared_ptr<const auth::ApiKeys> api_keys);
  ~GrpcServer();

  // Binds and starts serving; throws std::runtime_error naming the address on failure.
  void start();
  std::uint16_t port() const { return port_; }

  // Health goes NOT_SERVING, new RPCs get UNAVAILABLE, client message
  // streams end with OK.
  void begin_shutdown();
  // Waits for RPCs in flight up to `grace`, then cancels the rest. Idempotent.
  void stop(std::chrono::milliseconds grace);

  // Swaps in reloaded API keys (null: none configured).
  void set_api_keys(std::shared_ptr<const auth::ApiKeys> keys) { auth_.set_keys(std::move(keys)); }

 private:
  std::shared_ptr<grpc::ServerCredentials> credentials() const;

  const ServiceSettings& settings_;
  UpstreamBus& bus_;
  Metrics& metrics_;
  AdminAuth auth_;
  NotificationService service_;
  std::unique_ptr<grpc::Server> server_;
  std::uint16_t port_ = 0;
};

}  // namespace notify::services
