#pragma once
// The WebSocket edge as a whole: event loops, shards, hub, the gateway and
// metrics listeners, and the drain sequence. Start once, shut down once.
#include <chrono>
#include <memory>
#include <vector>

#include "common/metrics.hpp"
#include "gateway/event_loops.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/hub.hpp"
#include "gateway/listener.hpp"
#include "gateway/settings.hpp"

namespace notify::gateway {

class GatewayServer {
 public:
  // `settings.threads` must already be resolved (> 0); metrics must have one
  // LoopMetrics per thread.
  // `verifier` may be null when only development identities are allowed.
  GatewayServer(const GatewaySettings& settings, Metrics& metrics, UpstreamSink* upstream,
                const auth::JwtVerifier* verifier);
  ~GatewayServer();

  // Before start(): where client messages go instead of the constructor's
  // sink, and who hears about connections and topic subscriptions (the Redis
  // broker, which needs the hub and so comes after this server).
  void set_upstream(UpstreamSink* upstream) { context_.upstream = upstream; }
  // Where delivery reports of require_ack notifications go; null: nowhere.
  void set_reports(DeliveryReportSink* reports) { context_.reports = reports; }
  // History kept elsewhere (Redis) instead of in this process; null: none.
  void set_history_backend(HistoryBackend* backend) {
    hub_->attach_history(nullptr);
    history_.reset();
    context_.history = backend;
  }
  // The inbox kept elsewhere (Redis) instead of in this process.
  void set_inbox_backend(InboxBackend* backend) {
    inbox_.reset();
    context_.inbox = backend;
  }
  void set_channel_observer(ChannelObserver* observer) {
    for (auto& shard : shards_) shard->attach_observer(observer);
  }

  // Binds both ports (throws std::runtime_error with the address on failure)
  // and starts the loops.
  void start();

  std::uint16_t ws_port() const { return ws_port_; }
  std::uint16_t metrics_port() const { return metrics_port_; }
  Hub& hub() { return *hub_; }
  History* history() { return history_.get(); }
  // The in-process inbox (null with --inbox-size 0 or another backend).
  Inbox* inbox() { return inbox_.get(); }
  bool draining() const { return context_.draining.load(); }

  // Readiness goes false, new upgrades get 503, every connection is closed
  // with 1001 after its queued frames are written.
  void begin_shutdown();
  // Waits until no WebSocket connection is left; false on timeout.
  bool wait_drained(std::chrono::milliseconds timeout);
  // Closes the listeners, stops the loops. Idempotent.
  void stop();

  std::size_t open_connections() const;

 private:
  const GatewaySettings& settings_;
  Metrics& metrics_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  GatewayContext context_;
  EventLoops loops_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<History> history_;  // null without history
  std::unique_ptr<Inbox> inbox_;      // null without the inbox, or with it in Redis
  std::unique_ptr<boost::asio::steady_timer> prune_timer_;
  void schedule_prune();
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::uint16_t ws_port_ = 0;
  std::uint16_t metrics_port_ = 0;
  bool stopped_ = false;
};

}  // namespace notify::gateway
