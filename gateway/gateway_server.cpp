#include "gateway/gateway_server.hpp"

#include <algorithm>
#include <thread>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "gateway/protocol.hpp"

namespace notify::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

tcp::endpoint endpoint_for(const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("invalid bind address \"" + address + "\": " + ec.message());
  return {addr, port};
}

}  // namespace

GatewayServer::GatewayServer(const GatewaySettings& settings, Metrics& metrics, UpstreamSink* upstream,
                             const auth::JwtVerifier* verifier)
    : settings_(settings),
      metrics_(metrics),
      context_(settings, metrics, upstream, verifier),
      loops_(settings.threads) {
  std::vector<Shard*> shard_ptrs;
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    shards_.push_back(std::make_unique<Shard>(i, loops_.context(i), metrics.loop(i)));
    shards_.back()->enable_idle_sweep(context_.settings.idle_timeout);
    shard_ptrs.push_back(shards_.back().get());
  }
  hub_ = std::make_unique<Hub>(std::move(shard_ptrs));
  if (settings.history.max_entries > 0) {
    // A new epoch for every process: positions from a previous run are
    // never taken for positions in this one.
    history_ = std::make_unique<History>(settings.history, new_connection_id().substr(0, 12));
    hub_->attach_history(history_.get());
    context_.history = history_.get();
  }
  if (settings.inbox_size > 0) {
    inbox_ = std::make_unique<Inbox>(*hub_, settings.inbox_size);
    context_.inbox = inbox_.get();
  }
}

void GatewayServer::schedule_prune() {
  // Streams idle longer than the ttl are forgotten; checked a few times per
  // ttl (and at least once a minute, for the inbox's expired entries).
  const auto interval = std::clamp<std::chrono::milliseconds>(settings_.history.ttl / 4, std::chrono::milliseconds(250),
                                                              std::chrono::milliseconds(60'000));
  prune_timer_->expires_after(interval);
  prune_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (history_) history_->prune(unix_millis());
    if (inbox_) inbox_->prune(unix_millis());
    schedule_prune();
  });
}

GatewayServer::~GatewayServer() { stop(); }

void GatewayServer::start() {
  if (!settings_.tls_cert_file.empty()) {
    tls_ = make_server_tls_context(settings_.tls_cert_file, settings_.tls_key_file);
    context_.tls = tls_.get();
  }
  tcp::endpoint ws_endpoint = endpoint_for(settings_.bind_address, settings_.ws_port);
  ensure_port_free(ws_endpoint);
  for (auto& shard : shards_) {
    auto listener = std::make_shared<Listener>(*shard, context_, HttpRole::gateway, ws_endpoint, true);
    ws_endpoint.port(listener->port());  // port 0: the others join the port the first one got
    listeners_.push_back(std::move(listener));
  }
  ws_port_ = ws_endpoint.port();

  auto metrics_listener =
      std::make_shared<Listener>(*shards_.front(), context_, HttpRole::metrics,
                                 endpoint_for(settings_.bind_address, settings_.metrics_port), false);
  metrics_port_ = metrics_listener->port();
  listeners_.push_back(std::move(metrics_listener));

  for (auto& l : listeners_) l->start();
  if (history_ || inbox_) {
    prune_timer_ = std::make_unique<asio::steady_timer>(shards_.front()->context());
    schedule_prune();
  }
  loops_.start();
}

void GatewayServer::begin_shutdown() {
  if (context_.draining.exchange(true)) return;
  hub_->close_all(protocol::close_code::going_away, "server shutting down", [](std::uint32_t closing) {
    log::info("closing client connections", {{"connections", closing}, {"code", 1001}});
  });
}

std::size_t GatewayServer::open_connections() const {
  std::uint64_t accepted = 0;
  std::uint64_t closed = 0;
  for (std::size_t i = 0; i < metrics_.loop_count(); ++i) {
    closed += metrics_.loop(i).connections_closed.value();  // first: a racing close can't make it exceed accepted
    accepted += metrics_.loop(i).connections_accepted.value();
  }
  return accepted > closed ? static_cast<std::size_t>(accepted - closed) : 0;
}

bool GatewayServer::wait_drained(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (open_connections() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void GatewayServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& l : listeners_) l->stop();
  listeners_.clear();
  loops_.stop();
  // Timers go while their contexts exist; then destroying the contexts
  // destroys the handlers still queued, and with them the sessions they kept
  // alive, while the shards those sessions leave still exist.
  for (auto& shard : shards_) shard->release_timer();
  prune_timer_.reset();
  loops_.destroy();
}

}  // namespace notify::gateway
