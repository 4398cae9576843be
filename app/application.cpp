#include "app/application.hpp"

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "broker/local_broker.hpp"
#include "broker/redis_broker.hpp"
#include "common/log.hpp"
#include "gateway/gateway_server.hpp"
#include "services/grpc_server.hpp"
#include "services/upstream_bus.hpp"

namespace notify::app {

struct Application::Components {
  explicit Components(Config cfg)
      : config(std::move(cfg)),
        metrics(config.gateway.threads),
        verifier(config.keys ? std::make_unique<auth::JwtVerifier>(config.jwt_policy, config.keys) : nullptr),
        bus(metrics, config.services),
        gateway(config.gateway, metrics, &bus, verifier.get()),
        local_broker(gateway.hub(), gateway.inbox()),
        redis(make_redis()),
        grpc(
            config.services, redis ? static_cast<broker::Broker&>(*redis) : local_broker,
            [this]() -> boost::asio::io_context& { return gateway.hub().next_context(); }, bus, metrics,
            config.api_keys) {
    metrics.connection_limit(config.gateway.max_connections);
    if (!redis) gateway.set_reports(&bus);
  }

  // With --redis-url: the broker that makes this process one replica of
  // many; it hears about connections, carries client messages and feeds the
  // bus with those of the other replicas (client messages, delivery reports).
  std::unique_ptr<broker::RedisBroker> make_redis() {
    if (config.redis.shards.empty()) return nullptr;
    auto r = std::make_unique<broker::RedisBroker>(config.redis, gateway.hub(), bus, bus, metrics);
    gateway.set_upstream(r.get());
    gateway.set_reports(r.get());
    gateway.set_channel_observer(r.get());
    gateway.set_history_backend(config.redis.history_size > 0 ? r.get() : nullptr);
    gateway.set_inbox_backend(config.redis.inbox_size > 0 ? r.get() : nullptr);
    bus.messages.set_consumer_observer([b = r.get()](int delta) { b->consumers_changed(delta); });
    bus.reports.set_consumer_observer([b = r.get()](int delta) { b->report_consumers_changed(delta); });
    return r;
  }

  Config config;
  Metrics metrics;
  std::unique_ptr<auth::JwtVerifier> verifier;
  services::UpstreamBus bus;
  gateway::GatewayServer gateway;
  broker::LocalBroker local_broker;
  std::unique_ptr<broker::RedisBroker> redis;  // null without --redis-url
  services::GrpcServer grpc;
  std::mutex shutdown_mutex;
  std::mutex reload_mutex;

  // Polls the credential files; a change (Kubernetes swaps a Secret's files
  // atomically) triggers a reload.
  std::thread watcher;
  std::mutex watch_mutex;
  std::condition_variable watch_cv;
  bool stop_watching = false;

  bool started = false;
  bool shut_down = false;
  bool drained = true;
};

namespace {

constexpr auto kWatchInterval = std::chrono::seconds(2);

std::vector<std::string> credential_files(const Config& c) {
  std::vector<std::string> files;
  for (const std::string* f :
       {&c.jwt_keys.secret_file, &c.jwt_keys.public_key_file, &c.jwt_keys.jwks_file, &c.services.api_keys_file}) {
    if (!f->empty()) files.push_back(*f);
  }
  return files;
}

// What identifies a file's content cheaply: modification time, size, inode.
std::string fingerprint(const std::vector<std::string>& files) {
  std::string out;
  for (const auto& f : files) {
    struct stat st {};
    if (stat(f.c_str(), &st) == 0) {
      out += std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
             std::to_string(st.st_size) + ":" + std::to_string(st.st_ino);
    }
    out += ';';
  }
  return out;
}

}  // namespace

Application::Application(Config config) : c_(std::make_unique<Components>(std::move(config))) {}

Application::~Application() { shutdown(); }

std::uint16_t Application::ws_port() const { return c_->gateway.ws_port(); }
std::uint16_t Application::grpc_port() const { return c_->grpc.port(); }
std::uint16_t Application::metrics_port() const { return c_->gateway.metrics_port(); }
Metrics& Application::metrics() { return c_->metrics; }
const Config& Application::config() const { return c_->config; }

void Application::start() {
  if (c_->redis) c_->redis->start();
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
  if (const auto files = credential_files(c_->config); !files.empty()) {
    c_->watcher = std::thread([this, files] {
      std::string seen = fingerprint(files);
      std::unique_lock lock(c_->watch_mutex);
      while (!c_->watch_cv.wait_for(lock, kWatchInterval, [this] { return c_->stop_watching; })) {
        const std::string now = fingerprint(files);
        if (now == seen) continue;
        seen = now;
        lock.unlock();
        log::info("credential files changed, reloading");
        reload_credentials();
        lock.lock();
      }
    });
  }
  log::info("listening", {{"bind", g.bind_address},
                          {"ws_port", c_->gateway.ws_port()},
                          {"grpc_port", c_->grpc.port()},
                          {"metrics_port", c_->gateway.metrics_port()},
                          {"threads", g.threads},
                          {"slow_consumer_policy", gateway::to_string(g.queue.policy)},
                          {"history_size", g.history.max_entries},
                          {"history_ttl_ms", g.history.ttl.count()},
                          {"history_in", g.history.max_entries == 0        ? "nowhere (off)"
                                         : c_->config.redis.shards.empty() ? "this process"
                                                                           : "redis"}});
}

bool Application::reload_credentials() {
  std::lock_guard lock(c_->reload_mutex);
  const Config& cfg = c_->config;
  std::shared_ptr<const auth::KeySet> keys;
  std::shared_ptr<const auth::ApiKeys> api_keys;
  try {
    if (cfg.jwt_keys.any()) keys = auth::KeySet::load(cfg.jwt_keys);
    if (!cfg.services.api_keys_file.empty()) api_keys = auth::ApiKeys::load(cfg.services.api_keys_file);
  } catch (const std::exception& e) {
    c_->metrics.credentials_reloaded(false);
    log::error("credential reload failed; the current keys stay in use", {{"error", e.what()}});
    return false;
  }
  if (keys && c_->verifier) c_->verifier->set_keys(keys);
  if (api_keys) c_->grpc.set_api_keys(api_keys);
  c_->metrics.credentials_reloaded(true);
  log::info("credentials reloaded", {{"jwt_keys", keys ? keys->describe() : std::string("none")},
                                     {"api_keys", api_keys ? api_keys->size() : 0}});
  return true;
}

bool Application::shutdown() {
  // A second caller waits for the first to finish, so "returned" means "stopped".
  std::lock_guard lock(c_->shutdown_mutex);
  if (c_->shut_down) return c_->drained;
  c_->shut_down = true;
  {
    std::lock_guard watch_lock(c_->watch_mutex);
    c_->stop_watching = true;
  }
  c_->watch_cv.notify_all();
  if (c_->watcher.joinable()) c_->watcher.join();
  auto& gw = c_->gateway;
  if (!c_->started) {  // start() failed: release what it bound, quietly
    c_->grpc.stop(std::chrono::milliseconds(0));
    if (c_->redis) c_->redis->stop();
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
  // After the drain, so the other replicas saw every connection leave; the
  // goodbye takes this replica out of presence at once.
  if (c_->redis) c_->redis->stop();
  gw.stop();
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  log::info("stopped", {{"drained", c_->drained}, {"elapsed_ms", elapsed.count()}});
  return c_->drained;
}

}  // namespace notify::app
