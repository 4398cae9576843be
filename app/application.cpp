#include "app/application.hpp"

#include "common/log.hpp"

namespace notify::app {

Application::Application(Config config)
    : config_(std::move(config)),
      metrics_(config_.gateway.threads),
      bus_(metrics_),
      gateway_(config_.gateway, metrics_, &bus_),
      grpc_(config_.services, gateway_.hub(), bus_, metrics_) {}

Application::~Application() { shutdown(); }

void Application::start() {
  gateway_.start();
  grpc_.start();
  const auto& g = config_.gateway;
  log::warn("development identity mode: clients choose their user id with ?user=, so anyone can connect as anyone; "
            "do not expose this port to untrusted clients");
  log::info("listening", {{"bind", g.bind_address},
                          {"ws_port", gateway_.ws_port()},
                          {"grpc_port", grpc_.port()},
                          {"metrics_port", gateway_.metrics_port()},
                          {"threads", g.threads},
                          {"slow_consumer_policy", gateway::to_string(g.queue.policy)}});
}

bool Application::shutdown() {
  if (shut_down_.exchange(true)) return true;
  const auto started = std::chrono::steady_clock::now();
  const std::size_t open = gateway_.open_connections();
  log::info("shutting down", {{"connections", open}, {"timeout_ms", config_.shutdown_timeout.count()}});
  grpc_.begin_shutdown();
  gateway_.begin_shutdown();
  const bool drained = gateway_.wait_drained(config_.shutdown_timeout);
  if (!drained) {
    log::warn("shutdown timeout reached with connections still open; dropping them",
              {{"connections", gateway_.open_connections()}});
  }
  // RPCs in flight are answered from the event loops, so stop gRPC first.
  grpc_.stop(std::chrono::milliseconds(1000));
  gateway_.stop();
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  log::info("stopped", {{"drained", drained}, {"elapsed_ms", elapsed.count()}});
  return drained;
}

}  // namespace notify::app
