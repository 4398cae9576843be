#include "app/application.hpp"

#include <atomic>
#include <mutex>

#include "common/log.hpp"
#include "gateway/gateway_server.hpp"
#include "services/client_message_bus.hpp"
#include "services/grpc_server.hpp"

namespace notify::app {

struct Application::Components {
  explicit Components(Config cfg)
      : config(std::move(cfg)),
        metrics(config.gateway.threads),
        verifier(config.keys ? std::make_unique<auth::JwtVerifier>(config.jwt_policy, config.keys) : nullptr),
        bus(metrics, config.services),
        gateway(config.gateway, metrics, &bus, verifier.get()),
        grpc(config.services, gateway.hub(), bus, metrics) {}

  Config config;
  Metrics metrics;
  std::unique_ptr<auth::JwtVerifier> verifier;
  services::ClientMessageBus bus;
  gateway::GatewayServer gateway;
  services::GrpcServer grpc;
  std::mutex shutdown_mutex;
  bool started = false;
  bool shut_down = false;
  bool drained = true;
};

Application::Application(Config config) : c_(std::make_unique<Components>(std::move(config))) {}

Application::~Application() { shutdown(); }

std::uint16_t Application::ws_port() const { return c_->gateway.ws_port(); }
std::uint16_t Application::grpc_port() const { return c_->grpc.port(); }
std::uint16_t Application::metrics_port() const { return c_->gateway.metrics_port(); }
Metrics& Application::metrics() { return c_->metrics; }
const Config& Application::config() const { return c_->config; }

void Application::start() {
  c_->gateway.start();
  c_->grpc.start();
  c_->started = true;
  const auto& g = c_->config.gateway;
  if (g.insecure_dev) {
    log::warn(
        "INSECURE development identity mode (--insecure-dev): clients choose their user id with ?user=, so "
        "anyone can connect as anyone; never use it where untrusted clients can connect");
  }
  if (c_->verifier) log::info("client tokens", {{"keys", c_->config.keys->describe()}});
  for (const auto& note : c_->config.notes) log::warn(note);
  log::info("listening", {{"bind", g.bind_address},
                          {"ws_port", c_->gateway.ws_port()},
                          {"grpc_port", c_->grpc.port()},
                          {"metrics_port", c_->gateway.metrics_port()},
                          {"threads", g.threads},
                          {"slow_consumer_policy", gateway::to_string(g.queue.policy)}});
}

bool Application::shutdown() {
  // A second caller waits for the first to finish, so "returned" means "stopped".
  std::lock_guard lock(c_->shutdown_mutex);
  if (c_->shut_down) return c_->drained;
  c_->shut_down = true;
  auto& gw = c_->gateway;
  if (!c_->started) {  // start() failed: release what it bound, quietly
    c_->grpc.stop(std::chrono::milliseconds(0));
    gw.stop();
    return true;
  }
  const auto started = std::chrono::steady_clock::now();
  log::info("shutting down",
            {{"connections", gw.open_connections()}, {"timeout_ms", c_->config.shutdown_timeout.count()}});
  c_->grpc.begin_shutdown();
  gw.begin_shutdown();
  c_->drained = gw.wait_drained(c_->config.shutdown_timeout);
  if (!c_->drained) {
    log::warn("shutdown timeout reached with connections still open; dropping them",
              {{"connections", gw.open_connections()}});
  }
  // RPCs in flight are answered from the event loops, so stop gRPC first.
  c_->grpc.stop(std::chrono::milliseconds(1000));
  gw.stop();
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  log::info("stopped", {{"drained", c_->drained}, {"elapsed_ms", elapsed.count()}});
  return c_->drained;
}

}  // namespace notify::app
