#pragma once
// The broker of several replicas acting as one, through Redis pub/sub
// (docs/architecture.md#the-broker). Each replica:
//  * subscribes to notify:user:<id> while it holds a connection of that
//    user, notify:topic:<t> while one of its connections subscribes to t,
//    notify:all while it holds any connection, notify:upstream while it has a
//    StreamClientMessages consumer, notify:reports while it has a
//    StreamDeliveryReports consumer; and unsubscribes when the last one goes;
//  * publishes every Notify/Broadcast/Disconnect/client message to the
//    channels (its own subscription delivers to its own connections, so every
//    connection gets a publication once, in per-channel order);
//  * keeps its connection counts in Redis (presence), refreshed by a
//    heartbeat that lapses after --presence-ttl if the replica dies.
// Channels are spread over the shards by a consistent hash (channel_hash.hpp).
//
// Redis work runs on the broker's own thread: event loops and gRPC threads
// only hand it work (a mutex-guarded queue and a post), so a slow or absent
// Redis never holds a loop. While a shard can't be reached, calls that need
// it answer an error at once (or within --redis-command-timeout for one that
// was in flight), connections reconnect with jittered backoff and, once
// back, re-subscribe and re-publish their presence.
//
// Thread-safe: every public method may be called from any thread.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/broker.hpp"
#include "broker/broker_metrics.hpp"
#include "broker/redis_connection.hpp"
#include "broker/redis_settings.hpp"
#include "gateway/channel_observer.hpp"
#include "gateway/hub.hpp"
#include "gateway/inbox.hpp"
#include "gateway/upstream.hpp"

namespace notify::broker {

class RedisBroker final : public Broker,
                          public gateway::UpstreamSink,
                          public gateway::DeliveryReportSink,
                          public gateway::ChannelObserver,
                          public gateway::HistoryBackend,
                          public gateway::InboxBackend {
 public:
  // `local_messages` and `local_reports` take the client messages and
  // delivery reports of every replica to this one's StreamClientMessages and
  // StreamDeliveryReports streams (services/upstream_bus.hpp).
  RedisBroker(RedisSettings settings, gateway::Hub& hub, gateway::UpstreamSink& local_messages,
              gateway::DeliveryReportSink& local_reports, Metrics& metrics);
  ~RedisBroker() override;

  // Starts the broker's thread and connects; returns at once (Redis may be
  // down: the broker keeps trying).
  void start();
  // Leaves presence (waits up to a second for Redis) and stops the thread.
  void stop();

  const std::string& node_id() const { return node_id_; }

  // Broker (gRPC threads).
  void notify(std::vector<std::string> users, Publication publication, Done done) override;
  void broadcast(Publication publication, Done done) override;
  void disconnect(std::vector<std::string> users, std::string reason, Done done) override;
  void presence(std::vector<std::string> users, PresenceDone done) override;

  // UpstreamSink (event loops): publishes the client message to every
  // replica's consumers. Returns the consumers known across replicas (as of
  // the last count, at most a heartbeat old), 0 when Redis is unavailable.
  std::size_t publish(const gateway::UpstreamMessage& message) override;
  // DeliveryReportSink (event loops): publishes the report to every
  // replica's StreamDeliveryReports consumers (the replicas subscribe to
  // notify:reports while they have one); lost while Redis is unavailable.
  void report(const gateway::DeliveryReport& report) override;

  // ChannelObserver (event loops).
  void user_changed(std::string_view user, int delta) override { change("u:" + std::string(user), delta); }
  void topic_changed(std::string_view topic, int delta) override { change("t:" + std::string(topic), delta); }
  // UpstreamBus consumers (gRPC threads).
  void consumers_changed(int delta) { change("c", delta); }
  void report_consumers_changed(int delta) { change("r", delta); }

  // HistoryBackend (event loops), with --history-size > 0: history kept in
  // Redis Streams next to each stream's channel, so a client resumes on any
  // replica. Each read waits until this replica's subscription to the
  // stream's channel is confirmed: whatever is published after the read
  // reaches the connection live, whatever before is in the read.
  bool synchronous() const override { return false; }  // history and inbox
  void positions(std::vector<std::string> streams, PositionsDone done) override;
  void read_after(std::vector<gateway::protocol::Position> wanted, ReadDone done) override;

  // InboxBackend (event loops), with --inbox-size > 0: the inbox in Redis
  // (kInbox; kPublish fills it), so every replica sees the same one.
  void take_pending(std::string user, EntriesDone done) override;
  void restore_pending(std::string user, std::vector<std::string> ids) override;
  void list(std::string user, std::string before, std::size_t limit, EntriesDone done) override;
  void mark_read(std::string user, std::vector<std::string> ids, bool all, std::string except_connection,
                 CountDone done) override;

 private:
  struct Shard;
  enum class SubState { none, subscribing, subscribed, unsubscribing };
  struct Channel {
    bool wanted = false;
    SubState state = SubState::none;
    // Called with true once the subscription is confirmed, false if it
    // can't be (the pub/sub connection dropped, the channel was let go).
    std::vector<std::function<void(bool)>> waiters;
  };

  // Event loops and gRPC threads: queue a count change for the broker thread.
  void change(std::string field, int delta);
  void apply_changes();

  // Broker thread.
  void connect(Shard& s, bool pubsub);
  // Sentinel shards: asks the next Sentinel for the master's address, then
  // connects there; after `tried` of them failed, the attempt has failed.
  void ask_sentinel(Shard& s, bool pubsub, std::size_t tried, std::string errors);
  void on_ready(Shard& s, bool pubsub);
  void on_lost(Shard& s, bool pubsub, const std::string& why);
  void on_pubsub(Shard& s, std::string_view kind, std::string_view channel, std::string_view payload);
  void deliver(std::string_view channel, std::string_view payload);
  void reconcile(Shard& s);
  // Queues one reconcile + sync pass for the shard (coalesces bursts).
  void schedule(Shard& s);
  void sync(Shard& s, bool reset);
  void tick();
  // `keep`: append to history (publications, when it is on); `collapse_key` goes with it.
  // `persisted`: a publication sent with persist, kept in the users' inboxes by the same script.
  void publish_to(std::vector<std::pair<std::string, std::string>> field_channels, std::string payload, Done done,
                  bool keep = false, std::string collapse_key = {}, const Publication* persisted = nullptr);
  // Runs `fn(true)` once this replica's subscription to `channel` is live
  // (at once if it is), `fn(false)` if it won't be.
  void after_subscribed(const std::string& channel, std::function<void(bool)> fn);
  static void settle(Channel& ch, bool ok);
  // One stream's part of a batched history script call: its arguments, and
  // what to do with its element of the reply (null, with `error`, if the
  // call failed).
  struct HistoryCall {
    std::vector<std::string> args;
    std::function<void(const redisReply* element, const std::string& error)> done;
  };
  void queue_history(Shard& s, bool read, HistoryCall call);
  void flush_history(Shard& s);
  // On the broker thread: for each stream, once this replica's subscription
  // to its channel is live, queues its part of a batched script call
  // (args_of(i)); parse(i, element) takes stream i's part of the reply
  // (false: malformed). finish(error) runs once every stream has answered;
  // `error` is the first failure, empty if none.
  void history_requests(std::vector<std::string> streams, bool read,
                        std::function<std::vector<std::string>(std::size_t)> args_of,
                        std::function<bool(std::size_t, const redisReply*)> parse,
                        std::function<void(std::string)> finish);
  // Answers every queued history call of the shard with an error.
  void fail_history(Shard& s, const std::string& why);
  Shard* shard_for(std::string_view channel);
  // Runs kInbox with `args` on the user's shard; `done` gets the reply, or
  // null and why.
  void inbox_call(const std::string& user, std::vector<std::string> args,
                  std::function<void(const redisReply*, std::string)> done);
  // inbox_call for the ops that answer entries (take, list).
  void inbox_entries(const std::string& user, std::vector<std::string> args, EntriesDone done);
  void update_up(Shard& s);
  void check_generation(Shard& s);

  RedisSettings settings_;
  gateway::Hub& hub_;
  gateway::UpstreamSink& local_messages_;
  gateway::DeliveryReportSink& local_reports_;
  BrokerMetrics metrics_;
  std::string node_id_;

  boost::asio::io_context io_;
  std::thread thread_;
  std::vector<std::unique_ptr<Shard>> shards_;
  boost::asio::steady_timer tick_timer_;
  std::mt19937_64 random_;

  // Broker thread: what this replica's connections count, by field (u:<user>,
  // t:<topic>, * for all connections, c for consumers).
  std::unordered_map<std::string, std::int64_t> counts_;
  std::chrono::steady_clock::time_point next_refresh_{};  // of cluster_consumers_

  std::mutex changes_mu_;
  std::vector<std::pair<std::string, int>> changes_;  // guarded by changes_mu_
  bool changes_posted_ = false;                       // guarded by changes_mu_

  std::atomic<std::size_t> cluster_consumers_{0};
  std::atomic<bool> stopped_{false};
  bool leaving_ = false;  // broker thread: the goodbye was sent
};

}  // namespace notify::broker
