#pragma once
// Wires the components together in the order they depend on each other and
// runs the shutdown sequence (DESIGN principle 7). One per process in
// production; tests start several in one process on port 0.
#include <atomic>
#include <cstdint>
#include <memory>

#include "app/config.hpp"
#include "common/metrics.hpp"
#include "gateway/gateway_server.hpp"
#include "services/client_message_bus.hpp"
#include "services/grpc_server.hpp"

namespace notify::app {

class Application {
 public:
  explicit Application(Config config);
  ~Application();

  // Binds every port and starts serving; throws std::runtime_error with an
  // operator-readable message on failure.
  void start();

  std::uint16_t ws_port() const { return gateway_.ws_port(); }
  std::uint16_t grpc_port() const { return grpc_.port(); }
  std::uint16_t metrics_port() const { return gateway_.metrics_port(); }
  Metrics& metrics() { return metrics_; }
  gateway::GatewayServer& gateway() { return gateway_; }
  const Config& config() const { return config_; }

  // Readiness false, clients closed with 1001, RPCs refused, then everything
  // stopped within the shutdown timeout. Idempotent; returns true if every
  // connection closed in time.
  bool shutdown();

 private:
  Config config_;
  Metrics metrics_;
  services::ClientMessageBus bus_;
  gateway::GatewayServer gateway_;
  services::GrpcServer grpc_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace notify::app
