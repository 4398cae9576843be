#include "broker/redis_broker.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <future>
#include <unordered_set>

#include "broker/channel_hash.hpp"
#include "broker/envelope.hpp"
#include "broker/local_broker.hpp"
#include "broker/redis_scripts.hpp"
#include "common/ids.hpp"
#include "common/json_text.hpp"
#include "common/log.hpp"
#include "common/validation.hpp"
#include "gateway/protocol.hpp"

namespace notify::broker {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 256;  // channels per SUBSCRIBE, fields per script call
constexpr auto kTick = std::chrono::milliseconds(100);
constexpr auto kConsumerRefresh = std::chrono::seconds(1);

constexpr std::string_view kUserChannel = "notify:user:";
constexpr std::string_view kTopicChannel = "notify:topic:";
constexpr std::string_view kAllChannel = "notify:all";
constexpr std::string_view kUpstreamChannel = "notify:upstream";
constexpr std::string_view kReportsChannel = "notify:reports";
constexpr std::string_view kProbeChannel = "notify:probe:";

// A count field (see redis_scripts.hpp) and the channel it stands for.
std::string channel_of(std::string_view field) {
  if (field.starts_with("u:")) return std::string(kUserChannel) + std::string(field.substr(2));
  if (field.starts_with("t:")) return std::string(kTopicChannel) + std::string(field.substr(2));
  if (field == "*") return std::string(kAllChannel);
  if (field == "r") return std::string(kReportsChannel);
  return std::string(kUpstreamChannel);  // "c"
}

std::string field_of(std::string_view channel) {
  if (channel.starts_with(kUserChannel)) return "u:" + std::string(channel.substr(kUserChannel.size()));
  if (channel.starts_with(kTopicChannel)) return "t:" + std::string(channel.substr(kTopicChannel.size()));
  if (channel == kAllChannel) return "*";
  if (channel == kReportsChannel) return "r";
  return "c";
}

std::string unavailable(std::size_t shard, const std::string& url, const std::string& why) {
  return "Redis shard " + std::to_string(shard) + " (" + url + ") unavailable: " + why;
}

// The answer of kPublish or kCount: one integer per field asked about.
bool counts_reply(const redisReply* r, std::size_t fields) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != fields) return false;
  for (std::size_t i = 0; i < fields; ++i) {
    if (r->element[i]->type != REDIS_REPLY_INTEGER) return false;
  }
  return true;
}

// An envelope from replica `node` with nothing set but what identifies it:
// the caller fills in the one member its kind carries.
Envelope envelope(Envelope::Kind kind, const std::string& node) {
  return Envelope{.kind = kind,
                  .node = node,
                  .publication = {},
                  .reason = {},
                  .message = {},
                  .report = {},
                  .unread = {},
                  .probe = 0,
                  .position = {}};
}

}  // namespace

struct RedisBroker::Shard {
  Shard(boost::asio::io_context& io, std::size_t i, RedisShardConfig c)
      : index(i), config(std::move(c)), pub_retry(io), sub_retry(io) {}

  std::size_t index;
  RedisShardConfig config;
  std::unique_ptr<RedisConnection> pub;  // commands: scripts, publishes
  std::unique_ptr<RedisConnection> sub;  // SUBSCRIBE / UNSUBSCRIBE only
  // Sentinel shards: asks one Sentinel after another where the master is,
  // before each connect of pub (index 0) and sub (index 1).
  std::unique_ptr<RedisConnection> sentinel[2];
  std::size_t next_sentinel[2] = {0, 0};
  bool resolved[2] = {false, false};
  boost::asio::steady_timer pub_retry, sub_retry;
  int pub_attempts = 0, sub_attempts = 0;
  std::string pub_error = "not connected yet", sub_error = "not connected yet";
  bool pub_reported = false, sub_reported = false;  // the current outage was logged at warn
  bool up = false;
  bool generation_checked = false;
  // History script calls waiting for this turn's batch (queue_history).
  std::vector<HistoryCall> history_positions, history_reads;
  bool history_flush_posted = false;  // history: this connection's Redis process is the generation (check_generation)

  std::unordered_map<std::string, Channel> channels;
  std::unordered_set<std::string> todo;   // channels whose subscription may need a command
  std::unordered_set<std::string> dirty;  // fields whose count Redis hasn't got yet
  bool flush_posted = false;              // a schedule()d pass is queued
  bool needs_reset = false;               // the next sync rewrites every count
  std::size_t subscribed = 0;

  std::uint64_t probe_sent = 0, probe_seen = 0;
  Clock::time_point probe_time{};
  Clock::time_point next_heartbeat{};
};

RedisBroker::RedisBroker(RedisSettings settings, gateway::Hub& hub, gateway::UpstreamSink& local_messages,
                         gateway::DeliveryReportSink& local_reports, Metrics& metrics)
    : settings_(std::move(settings)),
      hub_(hub),
      local_messages_(local_messages),
      local_reports_(local_reports),
      metrics_(metrics, settings_.shards.size()),
      node_id_(new_uuid_v7()),
      tick_timer_(io_),
      random_(std::random_device{}()) {
  for (std::size_t i = 0; i < settings_.shards.size(); ++i) {
    auto s = std::make_unique<Shard>(io_, i, settings_.shards[i]);
    Shard* raw = s.get();
    const std::string name = "shard " + std::to_string(i);
    s->pub = std::make_unique<RedisConnection>(
        io_, name + " publish",
        RedisConnection::Handlers{.ready = [this, raw] { on_ready(*raw, false); },
                                  .lost = [this, raw](const std::string& why) { on_lost(*raw, false, why); },
                                  .pubsub = {}});
    s->sub = std::make_unique<RedisConnection>(
        io_, name + " pub/sub",
        RedisConnection::Handlers{
            .ready = [this, raw] { on_ready(*raw, true); },
            .lost = [this, raw](const std::string& why) { on_lost(*raw, true, why); },
            .pubsub = [this, raw](std::string_view kind, std::string_view channel,
                                  std::string_view payload) { on_pubsub(*raw, kind, channel, payload); }});
    shards_.push_back(std::move(s));
  }
}

RedisBroker::~RedisBroker() { stop(); }

void RedisBroker::start() {
  boost::asio::post(io_, [this] {
    for (auto& s : shards_) {
      metrics_.up(s->index, false);
      connect(*s, false);
      connect(*s, true);
    }
    tick();
  });
  thread_ = std::thread([this] {
    // A handler that throws must not end the thread: every call waiting on
    // it would hang. Log and go on (run() returns normally once stopped).
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        log::error("Redis broker: a task failed; carrying on", {{"error", e.what()}});
      }
    }
  });
  std::vector<std::string> urls;
  for (const auto& s : settings_.shards) urls.push_back(s.describe());
  std::string joined;
  for (const auto& u : urls) joined += (joined.empty() ? "" : " ") + u;
  log::info("Redis broker starting", {{"node", node_id_}, {"shards", joined}});
}

void RedisBroker::stop() {
  if (stopped_.exchange(true) || !thread_.joinable()) return;
  auto left = std::make_shared<std::promise<void>>();
  boost::asio::post(io_, [this, left] {
    leaving_ = true;  // no heartbeat or count update may bring the node back now
    tick_timer_.cancel();
    // Sessions waiting on history hear now, on this thread, and release
    // themselves on their own loops, not when the shards are freed below.
    for (auto& s : shards_) {
      for (auto& [name, ch] : s->channels) settle(ch, false);
      fail_history(*s, "shutting down");
    }
    auto pending = std::make_shared<std::size_t>(1);
    auto finish = [left, pending] {
      if (--*pending == 0) left->set_value();
    };
    for (auto& s : shards_) {
      if (s->pub->ready() &&
          s->pub->command({"EVAL", scripts::kLeave, "0", node_id_}, [finish](const redisReply*) { finish(); })) {
        ++*pending;
      }
    }
    finish();
  });
  if (left->get_future().wait_for(std::chrono::seconds(1)) != std::future_status::ready) {
    log::warn("Redis broker: could not leave presence in time; the other replicas drop this one after the TTL",
              {{"presence_ttl_ms", settings_.presence_ttl.count()}});
  }
  io_.stop();
  thread_.join();
  shards_.clear();  // frees the connections (their pending replies are answered as lost)
  log::info("Redis broker stopped", {{"node", node_id_}});
}

// ---------------------------------------------------------------------------
// Counts of what this replica's connections need.

void RedisBroker::change(std::string field, int delta) {
  std::lock_guard lock(changes_mu_);
  changes_.emplace_back(std::move(field), delta);
  if (changes_posted_) return;
  changes_posted_ = true;
  // Posted under the lock: a change that found a pass already posted is
  // applied by it, and anything this thread or another posts after its
  // change (a history read of the connection's channel) runs after that pass.
  boost::asio::post(io_, [this] { apply_changes(); });
}

void RedisBroker::apply_changes() {
  std::vector<std::pair<std::string, int>> batch;
  {
    std::lock_guard lock(changes_mu_);
    batch.swap(changes_);
    changes_posted_ = false;
  }
  std::unordered_set<Shard*> touched;
  const auto apply = [&](const std::string& field, int delta) {
    auto& count = counts_[field];
    count += delta;
    const bool wanted = count > 0;
    if (count <= 0) counts_.erase(field);
    const std::string channel = channel_of(field);
    Shard* s = shard_for(channel);
    auto& ch = s->channels[channel];
    ch.wanted = wanted;
    s->todo.insert(channel);
    s->dirty.insert(field);
    touched.insert(s);
  };
  for (const auto& [field, delta] : batch) {
    apply(field, delta);
    if (field.starts_with("u:")) apply("*", delta);  // every connection counts in notify:all
  }
  for (Shard* s : touched) {
    reconcile(*s);
    sync(*s, false);
  }
}

RedisBroker::Shard* RedisBroker::shard_for(std::string_view channel) {
  return shards_[shard_of(channel, shards_.size())].get();
}

// ---------------------------------------------------------------------------
// Connections.

void RedisBroker::connect(Shard& s, bool pubsub) {
  if (stopped_) return;
  RedisConnection& c = pubsub ? *s.sub : *s.pub;
  if (!c.idle()) return;
  const auto timeout = std::max(settings_.command_timeout, kTick * 5);
  if (!s.config.uses_sentinel()) {
    c.connect(s.config.address, s.config.password, s.config.db, timeout);
    return;
  }
  ask_sentinel(s, pubsub, 0, {});
}

void RedisBroker::ask_sentinel(Shard& s, bool pubsub, std::size_t tried, std::string errors) {
  const auto& sentinels = s.config.sentinels;
  if (tried == sentinels.size()) {
    on_lost(s, pubsub, "no Sentinel named the master \"" + s.config.master + "\":" + errors);
    return;
  }
  const int i = pubsub ? 1 : 0;
  const std::size_t which = s.next_sentinel[i]++ % sentinels.size();
  const RedisAddress sentinel = sentinels[which];
  const std::string where = " " + sentinel.host + ":" + std::to_string(sentinel.port);
  s.resolved[i] = false;
  // Whatever the attempt's end, go on from the handler's own stack: the
  // connection may not be reused while it is still inside a callback.
  const auto next = [this, &s, pubsub, tried, errors, where](const std::string& why) {
    boost::asio::post(io_, [this, &s, pubsub, tried, errors, where, why] {
      ask_sentinel(s, pubsub, tried + 1, errors + where + ": " + why + ";");
    });
  };
  s.sentinel[i] = std::make_unique<RedisConnection>(
      io_, "shard " + std::to_string(s.index) + " sentinel",
      RedisConnection::Handlers{
          .ready =
              [this, &s, pubsub, i, next] {
                s.sentinel[i]->command(
                    {"SENTINEL", "get-master-addr-by-name", s.config.master},
                    [this, &s, pubsub, i, next](const redisReply* r) {
                      if (r == nullptr) return;  // lost: the lost handler goes on
                      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                        s.resolved[i] = true;  // this Sentinel answered: no master by that name
                        next(r->type == REDIS_REPLY_NIL ? "unknown master" : reply_text(r));
                        s.sentinel[i]->close("done");
                        return;
                      }
                      RedisAddress master;
                      master.host = reply_text(r->element[0]);
                      master.port = static_cast<std::uint16_t>(std::atoi(reply_text(r->element[1]).c_str()));
                      s.resolved[i] = true;
                      s.sentinel[i]->close("done");
                      log::debug("Sentinel named the master",
                                 {{"shard", s.index},
                                  {"master", s.config.master},
                                  {"address", master.host + ":" + std::to_string(master.port)}});
                      RedisConnection& c = pubsub ? *s.sub : *s.pub;
                      if (c.idle() && !stopped_) {
                        c.connect(master, s.config.password, s.config.db,
                                  std::max(settings_.command_timeout, kTick * 5), RedisConnection::Peer::master);
                      }
                    });
              },
          .lost =
              [&s, i, next](const std::string& why) {
                if (!s.resolved[i]) next(why);
              },
          .pubsub = {}});
  s.sentinel[i]->connect(sentinel, "", 0, std::max(settings_.command_timeout, kTick * 5),
                         RedisConnection::Peer::sentinel);
}

void RedisBroker::on_ready(Shard& s, bool pubsub) {
  (pubsub ? s.sub_attempts : s.pub_attempts) = 0;
  (pubsub ? s.sub_error : s.pub_error).clear();
  (pubsub ? s.sub_reported : s.pub_reported) = false;
  if (pubsub) {
    s.probe_sent = s.probe_seen = 0;
    s.probe_time = Clock::now();
    s.sub->pubsub("SUBSCRIBE", {std::string(kProbeChannel) + node_id_});
    reconcile(s);
  } else {
    // A probe sent before the publish connection dropped will never echo.
    s.probe_seen = s.probe_sent;
    s.probe_time = Clock::now();
    s.next_heartbeat = Clock::now();
    sync(s, true);
    if (settings_.history_size > 0) check_generation(s);
  }
  update_up(s);
}

void RedisBroker::check_generation(Shard& s) {
  // History written by another Redis process than the one that holds it now
  // (a Sentinel failover, a restart that reloaded a snapshot) may lack the
  // last notifications it acknowledged, whose offsets would then be given
  // again under the same epoch. So epochs belong to a generation, the Redis
  // process's run_id: when it changes, every stream starts a new epoch and
  // resumes from before answer epoch_changed. Publishing waits until this
  // is settled on the new connection.
  s.generation_checked = false;
  s.pub->command({"INFO", "server"}, [this, &s](const redisReply* r) {
    const std::string info = r != nullptr && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    const auto at = info.find("run_id:");
    if (at == std::string::npos) {
      if (r == nullptr) return;  // the connection is gone: checked again on the next one
      // A Redis still loading its data, or refusing: try again on a new connection.
      log::warn("Redis did not tell its run_id; reconnecting to check again",
                {{"shard", s.index}, {"reply", reply_text(r)}});
      s.pub->close("history generation check failed");
      return;
    }
    const std::string run_id = info.substr(at + 7, info.find_first_of("\r\n", at) - at - 7);
    s.pub->command({"EVAL", scripts::kGeneration, "0", run_id}, [this, &s, run_id](const redisReply* g) {
      if (g == nullptr) return;  // the connection is gone: checked again on the next one
      if (g->type != REDIS_REPLY_INTEGER) {
        // LOADING, BUSY, ...: publishing and history reads wait; reconnect and check again.
        log::warn("Redis refused the history generation check; reconnecting to check again",
                  {{"shard", s.index}, {"reply", reply_text(g)}});
        s.pub->close("history generation check refused");
        return;
      }
      if (g->integer == 1) {
        log::info("Redis history generation changed: every stream starts a new epoch",
                  {{"shard", s.index}, {"run_id", run_id}});
      }
      s.generation_checked = true;
      flush_history(s);  // reads that waited for it
    });
  });
}

void RedisBroker::on_lost(Shard& s, bool pubsub, const std::string& why) {
  int& attempts = pubsub ? s.sub_attempts : s.pub_attempts;
  std::string& error = pubsub ? s.sub_error : s.pub_error;
  const bool was_ready = error.empty();
  bool& reported = pubsub ? s.sub_reported : s.pub_reported;
  const bool first = !reported;
  reported = true;
  error = why;
  if (pubsub) {
    metrics_.subscriptions(-static_cast<std::int64_t>(s.subscribed));
    s.subscribed = 0;
    s.todo.clear();
    for (auto it = s.channels.begin(); it != s.channels.end();) {
      settle(it->second, false);
      it->second.state = SubState::none;
      if (it->second.wanted) s.todo.insert(it->first);
      it = it->second.wanted ? std::next(it) : s.channels.erase(it);
    }
    // Nothing reaches these connections until the subscriptions are back:
    // take them out of presence meanwhile (they count again as each
    // SUBSCRIBE is confirmed).
    sync(s, true);
  }
  if (!pubsub) fail_history(s, why);
  if (was_ready) metrics_.reconnect(s.index);
  update_up(s);
  // Full jitter over an exponential cap: replicas that lost Redis together
  // don't come back at the same instant.
  const auto cap = std::min<std::int64_t>(settings_.reconnect_max.count(), 100ll << std::min(attempts, 10));
  const auto delay = std::chrono::milliseconds(
      cap / 2 + static_cast<std::int64_t>(random_() % static_cast<std::uint64_t>(cap / 2 + 1)));
  ++attempts;
  const auto report = [&](log::Level level, std::string_view message) {
    if (log::enabled(level))
      log::write(level, message,
                 {{"shard", s.index},
                  {"redis", s.config.describe()},
                  {"connection", pubsub ? "pub/sub" : "publish"},
                  {"error", why},
                  {"retry_ms", delay.count()}});
  };
  if (first) {
    report(log::Level::warn, was_ready ? "Redis connection lost; calls that need this shard answer UNAVAILABLE until "
                                         "it is back"
                                       : "cannot connect to Redis; calls that need this shard answer UNAVAILABLE "
                                         "until it is reachable");
  } else if (attempts % 10 == 0) {
    report(log::Level::warn, "Redis still unreachable");
  } else {
    report(log::Level::debug, "Redis reconnect attempt failed");
  }
  auto& timer = pubsub ? s.sub_retry : s.pub_retry;
  timer.expires_after(delay);
  timer.async_wait([this, &s, pubsub](boost::system::error_code ec) {
    if (!ec) connect(s, pubsub);
  });
}

void RedisBroker::update_up(Shard& s) {
  const bool up = s.pub->ready() && s.sub->ready();
  if (up == s.up) return;
  s.up = up;
  metrics_.up(s.index, up);
  if (up) log::info("Redis shard ready", {{"shard", s.index}, {"redis", s.config.describe()}, {"node", node_id_}});
}

void RedisBroker::tick() {
  if (leaving_) return;
  const auto now = Clock::now();
  const std::string too_slow = "no reply within " + std::to_string(settings_.command_timeout.count()) + " ms";
  for (auto& sp : shards_) {
    Shard& s = *sp;
    if (s.pub->ready() && s.pub->overdue(now, settings_.command_timeout)) s.pub->close(too_slow);
    for (auto& sentinel : s.sentinel) {
      if (sentinel && sentinel->overdue(now, settings_.command_timeout)) sentinel->close(too_slow);
    }
    if (s.pub->ready() && now >= s.next_heartbeat) {
      s.next_heartbeat = now + std::max(settings_.presence_ttl / 3, std::chrono::milliseconds(kTick));
      sync(s, false);
    }
    if (!s.pub->ready() || !s.sub->ready()) continue;
    // The probe: a message this replica publishes to itself through the
    // shard. A pub/sub connection that stopped receiving (a failover that
    // left it on a demoted master, a proxy that dropped it) is rebuilt.
    const auto deadline = settings_.probe_interval + settings_.command_timeout;
    if (s.probe_seen < s.probe_sent && now - s.probe_time > deadline) {
      metrics_.probe_failed(s.index);
      log::warn("Redis pub/sub probe not echoed in time; rebuilding the subscription connection",
                {{"shard", s.index},
                 {"redis", s.config.describe()},
                 {"waited_ms", std::chrono::duration_cast<std::chrono::milliseconds>(now - s.probe_time).count()}});
      s.sub->close("probe not echoed");
      continue;
    }
    if (s.probe_seen == s.probe_sent && now - s.probe_time >= settings_.probe_interval) {
      Envelope e = envelope(Envelope::Kind::probe, node_id_);
      e.probe = ++s.probe_sent;
      s.probe_time = now;
      s.pub->command({"PUBLISH", std::string(kProbeChannel) + node_id_, encode(e)}, nullptr);
    }
  }
  // How many StreamClientMessages consumers the cluster has (for the
  // client's ack), refreshed in the background.
  if (now >= next_refresh_) {
    next_refresh_ = now + kConsumerRefresh;
    Shard* s = shard_for(kUpstreamChannel);
    if (!s->pub->ready()) {
      cluster_consumers_ = 0;
    } else {
      s->pub->command({"EVAL", scripts::kCount, "0", "c"}, [this](const redisReply* r) {
        if (r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_INTEGER) {
          cluster_consumers_ = static_cast<std::size_t>(std::max<long long>(0, r->element[0]->integer));
        }
      });
    }
  }
  tick_timer_.expires_after(kTick);
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

// ---------------------------------------------------------------------------
// Subscriptions and presence.

void RedisBroker::reconcile(Shard& s) {
  if (!s.sub->ready()) return;
  // Only the channels that changed since the last pass (s.todo), so a pass
  // costs what changed, not every channel the replica holds.
  std::vector<std::string> to_subscribe, to_unsubscribe;
  for (const auto& name : s.todo) {
    const auto it = s.channels.find(name);
    if (it == s.channels.end()) continue;
    Channel& ch = it->second;
    if (ch.wanted && ch.state == SubState::none) {
      ch.state = SubState::subscribing;
      to_subscribe.push_back(it->first);
    } else if (!ch.wanted && ch.state == SubState::subscribed) {
      ch.state = SubState::unsubscribing;
      to_unsubscribe.push_back(it->first);
    } else if (!ch.wanted && ch.state == SubState::none) {
      settle(ch, false);
      s.channels.erase(it);
    }
  }
  s.todo.clear();
  // One command in flight per channel: hiredis 0.14 keeps one callback per
  // channel name, so an UNSUBSCRIBE racing a SUBSCRIBE of the same channel
  // would lose it.
  const auto send = [&](std::string_view verb, std::vector<std::string>& list) {
    for (std::size_t i = 0; i < list.size(); i += kBatch) {
      std::vector<std::string> part(list.begin() + static_cast<std::ptrdiff_t>(i),
                                    list.begin() + static_cast<std::ptrdiff_t>(std::min(list.size(), i + kBatch)));
      if (!s.sub->pubsub(verb, part)) metrics_.error(BrokerOp::subscribe);
    }
  };
  send("SUBSCRIBE", to_subscribe);
  send("UNSUBSCRIBE", to_unsubscribe);
}

void RedisBroker::schedule(Shard& s) {
  if (s.flush_posted) return;
  s.flush_posted = true;
  boost::asio::post(io_, [this, &s] {
    s.flush_posted = false;
    reconcile(s);
    sync(s, false);
  });
}

void RedisBroker::sync(Shard& s, bool reset) {
  if (!s.pub->ready() || leaving_) return;
  reset = reset || s.needs_reset;
  s.needs_reset = false;
  if (reset) {
    // Everything this replica counts on the shard, from scratch.
    s.dirty.clear();
    for (const auto& [field, count] : counts_) {
      if (shard_for(channel_of(field)) == &s) s.dirty.insert(field);
    }
  }
  std::vector<std::string> args{
      "EVAL", scripts::kSync, "0", node_id_, std::to_string(settings_.presence_ttl.count()), reset ? "1" : "0"};
  const std::size_t header = args.size();
  const auto flush = [&] {
    const bool resetting = args[header - 1] == "1";
    s.pub->command(args, [this, &s, resetting](const redisReply* r) {
      if (r != nullptr && r->type == REDIS_REPLY_INTEGER && r->integer == 1 && !resetting && !leaving_) {
        // The node had dropped out of the set (Redis lost it, or no
        // heartbeat got through for a TTL): its counts may be gone too.
        log::warn("this replica had dropped out of Redis presence; writing its counts again", {{"shard", s.index}});
        s.needs_reset = true;
        schedule(s);
        return;
      }
      if (!reply_is_error(r)) return;
      metrics_.error(BrokerOp::sync);
      s.needs_reset = true;  // what this update carried is lost: rewrite it all next time
      if (r == nullptr) return;
      const std::string text = reply_text(r);
      log::warn("Redis presence update refused", {{"shard", s.index}, {"error", text}});
      if (text.starts_with("READONLY")) s.pub->close(text);  // a demoted master: find the new one
    });
    args.resize(header);
    args[header - 1] = "0";
  };
  for (const auto& field : s.dirty) {
    // A connection counts once its replica receives for it.
    const auto it = counts_.find(field);
    const auto ch = s.channels.find(channel_of(field));
    const bool live = it != counts_.end() && ch != s.channels.end() && ch->second.state == SubState::subscribed;
    args.push_back(field);
    args.push_back(live ? std::to_string(it->second) : "0");
    if (args.size() >= header + 2 * kBatch) flush();
  }
  s.dirty.clear();
  flush();  // also the heartbeat
}

void RedisBroker::on_pubsub(Shard& s, std::string_view kind, std::string_view channel, std::string_view payload) {
  if (kind == "message") {
    if (channel.starts_with(kProbeChannel)) {
      std::string why;
      if (auto e = decode(payload, settings_.max_data_bytes, why); e && e->kind == Envelope::Kind::probe) {
        s.probe_seen = std::max(s.probe_seen, e->probe);
      }
      return;
    }
    deliver(channel, payload);
    return;
  }
  if (channel.starts_with(kProbeChannel)) return;
  const auto it = s.channels.find(std::string(channel));
  if (it == s.channels.end()) return;
  Channel& ch = it->second;
  if (kind == "subscribe") {
    ch.state = SubState::subscribed;
    settle(ch, true);
    ++s.subscribed;
    metrics_.subscriptions(1);
    s.dirty.insert(field_of(channel));
    if (!ch.wanted) s.todo.insert(it->first);
    schedule(s);  // one presence update and reconcile pass for a burst of confirmations
  } else if (kind == "unsubscribe") {
    ch.state = SubState::none;
    if (s.subscribed > 0) --s.subscribed;
    metrics_.subscriptions(-1);
    if (ch.wanted) {
      s.todo.insert(it->first);
      schedule(s);
    } else {
      settle(ch, false);
      s.channels.erase(it);
    }
  }
}

void RedisBroker::deliver(std::string_view channel, std::string_view payload) {
  std::string why;
  auto e = decode(payload, settings_.max_data_bytes, why);
  const bool user = channel.starts_with(kUserChannel);
  const bool topic = channel.starts_with(kTopicChannel);
  if (e) {
    // What may travel on which channel.
    const bool ok = (e->kind == Envelope::Kind::publication && (user || topic || channel == kAllChannel)) ||
                    ((e->kind == Envelope::Kind::disconnect || e->kind == Envelope::Kind::unread) && user) ||
                    (e->kind == Envelope::Kind::client_message && channel == kUpstreamChannel) ||
                    (e->kind == Envelope::Kind::report && channel == kReportsChannel);
    if (!ok) {
      why = "unexpected message kind on this channel";
      e.reset();
    }
  }
  if (!e) {
    metrics_.malformed();
    log::warn("dropped a malformed message from Redis",
              {{"channel", std::string(channel.substr(0, 160))}, {"error", why}, {"bytes", payload.size()}});
    return;
  }
  metrics_.received();
  switch (e->kind) {
    case Envelope::Kind::publication: {
      auto frame = notification_frame(e->publication, user ? Audience::users : Audience::subscribers,
                                      e->position.offset != 0 ? &e->position : nullptr);
      if (user) {
        hub_.notify({std::string(channel.substr(kUserChannel.size()))}, std::move(frame), nullptr);
      } else {
        hub_.broadcast(topic ? std::string(channel.substr(kTopicChannel.size())) : std::string(), std::move(frame),
                       nullptr);
      }
      break;
    }
    case Envelope::Kind::disconnect:
      hub_.disconnect({std::string(channel.substr(kUserChannel.size()))}, gateway::protocol::close_code::disconnected,
                      e->reason, nullptr);
      break;
    case Envelope::Kind::client_message:
      local_messages_.publish(e->message);
      break;
    case Envelope::Kind::report:
      local_reports_.report(e->report);
      break;
    case Envelope::Kind::unread:
      gateway::push_unread(hub_, std::string(channel.substr(kUserChannel.size())), e->unread.count,
                           std::move(e->unread.except_connection));
      break;
    case Envelope::Kind::probe:
      break;
  }
}

// ---------------------------------------------------------------------------
// Publishing (gRPC threads and event loops hand work over here).

void RedisBroker::publish_to(std::vector<std::pair<std::string, std::string>> field_channels, std::string payload,
                             Done done, bool keep, std::string collapse_key, const Publication* persisted) {
  const std::string history_size = keep ? std::to_string(settings_.history_size) : std::string("0");
  // kPublish's inbox arguments: expiry (0: not persisted), size, id, ts, JSON, node.
  std::vector<std::string> inbox = {"0", "0", "", "0", "", node_id_};
  if (persisted != nullptr && persisted->inbox_expires_ms != 0 && settings_.inbox_size > 0) {
    inbox = {std::to_string(persisted->inbox_expires_ms),
             std::to_string(settings_.inbox_size),
             persisted->id,
             std::to_string(persisted->ts_ms),
             inbox_payload(*persisted),
             node_id_};
  }
  boost::asio::post(io_, [this, fc = std::move(field_channels), payload = std::move(payload), done = std::move(done),
                          started = Clock::now(), history_size, collapse_key = std::move(collapse_key),
                          inbox = std::move(inbox)]() mutable {
    if (fc.empty()) {  // nothing addressed: nothing to publish
      if (done) done({});
      return;
    }
    std::unordered_map<Shard*, std::vector<std::string>> by_shard;
    // Per shard, the fields in the order the script counts them, with their
    // position in `fc`: a user field counted 0 is an offline user.
    std::unordered_map<Shard*, std::vector<std::pair<std::size_t, std::string>>> fields_of;
    // Redis refuses the script once this replica has stopped waiting (see
    // kPublish), with a margin for the reply's way back.
    // The connection is dropped once its oldest unanswered command is
    // older than the timeout, and everything behind it is answered
    // UNAVAILABLE then: the deadline counts from that command, not this one.
    const auto margin = std::min<std::int64_t>(100, settings_.command_timeout.count() / 4);
    const auto now = Clock::now();
    const std::int64_t now_ms = unix_millis();
    const auto give_up = [&](const Shard& s) {
      const auto since = now - std::min(now, s.pub->oldest_unanswered().value_or(now));
      return now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(since).count() +
             settings_.command_timeout.count() - margin + s.pub->clock_offset_ms();
    };
    for (std::size_t i = 0; i < fc.size(); ++i) {
      auto& [field, channel] = fc[i];
      Shard* s = shard_for(channel);
      auto& args = by_shard[s];
      if (args.empty()) {
        args = {"EVAL",
                scripts::kPublish,
                "0",
                std::to_string(give_up(*s)),
                payload,
                history_size,
                std::to_string(settings_.history_ttl.count()),
                collapse_key};
        args.insert(args.end(), inbox.begin(), inbox.end());
      }
      fields_of[s].emplace_back(i, field);
      args.push_back(std::move(field));
      args.push_back(std::move(channel));
    }
    // All or nothing where it can be known up front: no shard down.
    for (auto& [s, args] : by_shard) {
      if (!s->pub->ready() || (history_size != "0" && !s->generation_checked)) {
        metrics_.error(BrokerOp::publish);
        if (done) done({.error = unavailable(s->index, s->config.describe(), s->pub_error), .count = 0, .offline = {}});
        return;
      }
    }
    struct Gather {
      std::size_t pending;
      std::uint32_t total = 0;
      std::string error;
      Done done;
      Clock::time_point started;
      std::vector<std::pair<std::size_t, std::string>> offline;  // (position in fc, user)
    };
    auto g = std::make_shared<Gather>(Gather{by_shard.size(), 0, {}, std::move(done), started, {}});
    metrics_.published(fc.size());
    for (auto& entry : by_shard) {
      Shard* s = entry.first;  // clang 14 cannot capture structured bindings
      auto& args = entry.second;
      auto fields = std::make_shared<const std::vector<std::pair<std::size_t, std::string>>>(std::move(fields_of[s]));
      const bool sent = s->pub->command(args, [this, g, s, fields](const redisReply* r) {
        if (counts_reply(r, fields->size())) {
          for (std::size_t j = 0; j < fields->size(); ++j) {
            const long long n = std::max<long long>(0, r->element[j]->integer);
            g->total += static_cast<std::uint32_t>(n);
            const auto& [position, field] = (*fields)[j];
            if (n == 0 && field.starts_with("u:")) g->offline.emplace_back(position, field.substr(2));
          }
        } else if (r != nullptr && r->type != REDIS_REPLY_ERROR) {
          // The script ran, so it published: calling that a failure would
          // make the backend retry into a duplicate. Counts unknown: 0.
          log::warn("unexpected reply to a publish; counted as 0 connections",
                    {{"shard", s->index}, {"reply", reply_text(r)}});
        } else if (g->error.empty()) {
          g->error = unavailable(s->index, s->config.describe(), reply_text(r));
          metrics_.error(BrokerOp::publish);
          if (r != nullptr) {
            log::warn("Redis refused a publish", {{"shard", s->index}, {"error", reply_text(r)}});
            // A demoted master (READONLY) or a server not ready: go find the
            // right one instead of failing every publish.
            const std::string text = reply_text(r);
            if (text.starts_with("READONLY") || text.starts_with("LOADING") || text.starts_with("MASTERDOWN")) {
              s->pub->close(text);
            }
          }
        }
        if (--g->pending > 0) return;
        metrics_.publish_latency(Clock::now() - g->started);
        if (!g->done) return;
        if (!g->error.empty()) {
          g->done(Outcome{.error = g->error, .count = 0, .offline = {}});
          return;
        }
        std::sort(g->offline.begin(), g->offline.end());
        Outcome outcome{.error = {}, .count = g->total, .offline = {}};
        for (auto& found : g->offline) outcome.offline.push_back(std::move(found.second));
        g->done(std::move(outcome));
      });
      if (!sent) {
        if (g->error.empty()) g->error = unavailable(s->index, s->config.describe(), "could not send");
        if (--g->pending == 0 && g->done) g->done({.error = g->error, .count = 0, .offline = {}});
      }
    }
  });
}

void RedisBroker::notify(std::vector<std::string> users, Publication publication, Done done) {
  std::vector<std::pair<std::string, std::string>> fc;
  fc.reserve(users.size());
  for (auto& u : users) fc.emplace_back("u:" + u, std::string(kUserChannel) + u);
  Envelope e = envelope(Envelope::Kind::publication, node_id_);
  std::string collapse_key = publication.collapse_key;
  e.publication = std::move(publication);
  publish_to(std::move(fc), encode(e), std::move(done), settings_.history_size > 0, std::move(collapse_key),
             &e.publication);
}

void RedisBroker::broadcast(Publication publication, Done done) {
  std::vector<std::pair<std::string, std::string>> fc;
  if (publication.topic.empty()) {
    fc.emplace_back("*", std::string(kAllChannel));
  } else {
    fc.emplace_back("t:" + publication.topic, std::string(kTopicChannel) + publication.topic);
  }
  Envelope e = envelope(Envelope::Kind::publication, node_id_);
  std::string collapse_key = publication.collapse_key;
  e.publication = std::move(publication);
  publish_to(std::move(fc), encode(e), std::move(done), settings_.history_size > 0, std::move(collapse_key));
}

void RedisBroker::disconnect(std::vector<std::string> users, std::string reason, Done done) {
  std::vector<std::pair<std::string, std::string>> fc;
  for (auto& u : users) fc.emplace_back("u:" + u, std::string(kUserChannel) + u);
  Envelope e = envelope(Envelope::Kind::disconnect, node_id_);
  e.reason = std::move(reason);
  publish_to(std::move(fc), encode(e), std::move(done));
}

std::size_t RedisBroker::publish(const gateway::UpstreamMessage& message) {
  const std::size_t known = cluster_consumers_.load(std::memory_order_relaxed);
  if (known == 0) return 0;
  Envelope e = envelope(Envelope::Kind::client_message, node_id_);
  e.message = message;
  publish_to({{"c", std::string(kUpstreamChannel)}}, encode(e), [this](Outcome o) {
    // A failed publish: say no consumer until Redis answers again, rather
    // than acknowledge messages that are being lost.
    cluster_consumers_ = o.ok() ? o.count : 0;
  });
  return known;
}

void RedisBroker::report(const gateway::DeliveryReport& report) {
  // Published whether or not a consumer is known: reports exist only for
  // notifications that asked for them, and a stream opened a moment ago on
  // another replica must not miss them while the counts catch up.
  Envelope e = envelope(Envelope::Kind::report, node_id_);
  e.report = report;
  publish_to({{"r", std::string(kReportsChannel)}}, encode(e), nullptr);
}

// ---------------------------------------------------------------------------
// The inbox (event loops hand work over here).

void RedisBroker::inbox_call(const std::string& user, std::vector<std::string> args,
                             std::function<void(const redisReply*, std::string)> done) {
  boost::asio::post(io_, [this, user, args = std::move(args), done = std::move(done)]() mutable {
    Shard* s = shard_for(std::string(kUserChannel) + user);
    if (!s->pub->ready()) {
      done(nullptr, unavailable(s->index, s->config.describe(), s->pub_error));
      return;
    }
    args.insert(args.begin(), {"EVAL", scripts::kInbox, "0"});
    auto shared = std::make_shared<std::function<void(const redisReply*, std::string)>>(std::move(done));
    const bool sent = s->pub->command(args, [this, s, shared](const redisReply* r) {
      if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
        metrics_.error(BrokerOp::publish);
        (*shared)(nullptr, unavailable(s->index, s->config.describe(), reply_text(r)));
        return;
      }
      (*shared)(r, {});
    });
    if (!sent) (*shared)(nullptr, unavailable(s->index, s->config.describe(), "could not send"));
  });
}

namespace {

// {unread, more, id, json, ...} from kInbox.
bool inbox_reply(const redisReply* r, std::size_t max_bytes, std::vector<gateway::InboxEntry>& entries,
                 std::uint64_t& unread, bool& more) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements % 2 != 0) return false;
  if (r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) return false;
  unread = static_cast<std::uint64_t>(std::max<long long>(0, r->element[0]->integer));
  more = r->element[1]->integer > 0;
  for (std::size_t i = 2; i < r->elements; i += 2) {
    const redisReply* id = r->element[i];
    const redisReply* json = r->element[i + 1];
    if (id->type != REDIS_REPLY_STRING || json->type != REDIS_REPLY_STRING) return false;
    std::string payload(json->str, json->len);
    std::string id_text(id->str, id->len);
    // Stored by a replica, read back by this one: checked like any input (a
    // notification frame: an object, within the size a replica would write).
    if (!rules::valid_notification_id(id_text) || payload.size() > max_bytes || payload.empty() ||
        payload.front() != '{' || check_json(payload)) {
      return false;
    }
    entries.push_back({.id = std::move(id_text), .ts_ms = 0, .expires_ms = 0, .payload = std::move(payload)});
  }
  return true;
}

}  // namespace

void RedisBroker::inbox_entries(const std::string& user, std::vector<std::string> args, EntriesDone done) {
  inbox_call(user, std::move(args), [this, done = std::move(done)](const redisReply* r, std::string error) {
    std::vector<gateway::InboxEntry> entries;
    std::uint64_t unread = 0;
    bool more = false;
    if (error.empty() && !inbox_reply(r, settings_.max_data_bytes + 4096, entries, unread, more)) {
      error = "malformed inbox reply";
    }
    if (error.empty() && r->element[1]->integer < 0) error = std::string(gateway::kInboxNotFound);
    done(std::move(error), std::move(entries), unread, more);
  });
}

void RedisBroker::take_pending(std::string user, EntriesDone done) {
  std::vector<std::string> args = {"take", user, std::to_string(gateway::kInboxPageItems),
                                   std::to_string(gateway::kInboxPageBytes)};
  inbox_entries(user, std::move(args), std::move(done));
}

void RedisBroker::restore_pending(std::string user, std::vector<std::string> ids) {
  std::vector<std::string> args = {"pend", user};
  args.insert(args.end(), std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
  inbox_call(user, std::move(args), [](const redisReply*, const std::string& error) {
    if (!error.empty()) log::warn("could not make inbox entries pending again", {{"error", error}});
  });
}

void RedisBroker::list(std::string user, std::string before, std::size_t limit, EntriesDone done) {
  std::vector<std::string> args = {"list", user, std::move(before), std::to_string(limit),
                                   std::to_string(gateway::kInboxPageBytes)};
  inbox_entries(user, std::move(args), std::move(done));
}

void RedisBroker::mark_read(std::string user, std::vector<std::string> ids, bool all, std::string except_connection,
                            CountDone done) {
  std::vector<std::string> args = {"read", user, node_id_, std::move(except_connection), all ? "1" : "0"};
  args.insert(args.end(), std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
  inbox_call(user, std::move(args), [done = std::move(done)](const redisReply* r, std::string error) {
    std::uint64_t unread = 0;
    if (error.empty()) {
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_INTEGER) {
        unread = static_cast<std::uint64_t>(std::max<long long>(0, r->element[0]->integer));
      } else {
        error = "malformed inbox reply";
      }
    }
    done(std::move(error), unread);
  });
}

void RedisBroker::presence(std::vector<std::string> users, PresenceDone done) {
  boost::asio::post(io_, [this, users = std::move(users), done = std::move(done)]() mutable {
    std::unordered_map<Shard*, std::vector<std::size_t>> by_shard;  // indexes into users
    for (std::size_t i = 0; i < users.size(); ++i)
      by_shard[shard_for(std::string(kUserChannel) + users[i])].push_back(i);
    for (auto& [s, idx] : by_shard) {
      if (!s->pub->ready()) {
        metrics_.error(BrokerOp::presence);
        done(unavailable(s->index, s->config.describe(), s->pub_error), {});
        return;
      }
    }
    struct Gather {
      std::size_t pending;
      std::vector<std::uint32_t> counts;
      std::string error;
      PresenceDone done;
    };
    auto g = std::make_shared<Gather>(
        Gather{by_shard.size(), std::vector<std::uint32_t>(users.size()), {}, std::move(done)});
    if (by_shard.empty()) {
      g->done({}, {});
      return;
    }
    for (auto& entry : by_shard) {
      Shard* s = entry.first;  // clang 14 cannot capture structured bindings
      auto& idx = entry.second;
      std::vector<std::string> args{"EVAL", scripts::kCount, "0"};
      for (std::size_t i : idx) args.push_back("u:" + users[i]);
      auto finish = [this, g, s, idx](const redisReply* r) {
        if (counts_reply(r, idx.size())) {
          for (std::size_t k = 0; k < idx.size(); ++k)
            g->counts[idx[k]] = static_cast<std::uint32_t>(std::max<long long>(0, r->element[k]->integer));
        } else if (g->error.empty()) {
          g->error = unavailable(s->index, s->config.describe(), reply_text(r));
          metrics_.error(BrokerOp::presence);
          if (r != nullptr && reply_text(r).starts_with("READONLY")) s->pub->close(reply_text(r));
        }
        if (--g->pending > 0) return;
        if (g->error.empty()) {
          g->done({}, std::move(g->counts));
        } else {
          g->done(g->error, {});
        }
      };
      if (!s->pub->command(args, finish)) finish(nullptr);
    }
  });
}

// ---------------------------------------------------------------------------
// History (event loops hand reads over here).

void RedisBroker::settle(Channel& ch, bool ok) {
  auto waiters = std::move(ch.waiters);
  ch.waiters.clear();
  for (auto& fn : waiters) fn(ok);
}

void RedisBroker::after_subscribed(const std::string& channel, std::function<void(bool)> fn) {
  Shard& s = *shard_for(channel);
  const auto it = s.channels.find(channel);
  // The connection's own change (which made the channel wanted) was queued
  // before this read, so the channel is known unless the connection left.
  // While the pub/sub connection is (re)connecting, the read waits for the
  // subscription like any other; a failed attempt settles it as failed.
  if (it == s.channels.end()) {
    fn(false);
    return;
  }
  if (it->second.state == SubState::subscribed) {
    fn(true);
    return;
  }
  if (!it->second.wanted) {
    fn(false);
    return;
  }
  it->second.waiters.push_back(std::move(fn));
}

namespace {

// Collects one answer per stream from callbacks on the broker thread and
// hands them on once all are in (or the first error).
bool text_reply(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

}  // namespace

void RedisBroker::queue_history(Shard& s, bool read, HistoryCall call) {
  (read ? s.history_reads : s.history_positions).push_back(std::move(call));
  if (s.history_flush_posted) return;
  s.history_flush_posted = true;
  // Everything asked for in this turn of the broker's loop (a burst of
  // connections, a burst of subscription confirmations) goes in one script
  // call per kBatch streams, not one per stream.
  boost::asio::post(io_, [this, &s] {
    s.history_flush_posted = false;
    flush_history(s);
  });
}

void RedisBroker::fail_history(Shard& s, const std::string& why) {
  const std::string error = unavailable(s.index, s.config.describe(), why);
  for (auto* queue : {&s.history_positions, &s.history_reads}) {
    auto calls = std::move(*queue);
    queue->clear();
    for (auto& call : calls) call.done(nullptr, error);
  }
}

void RedisBroker::flush_history(Shard& s) {
  if (!s.pub->ready()) {
    fail_history(s, s.pub_error.empty() ? "not connected" : s.pub_error);
    return;
  }
  // History written by another Redis process must not be read as current:
  // reads wait for this connection's generation check (check_generation).
  if (!s.generation_checked) return;
  for (const bool read : {false, true}) {
    auto& queue = read ? s.history_reads : s.history_positions;
    while (!queue.empty()) {
      const std::size_t n = std::min(queue.size(), kBatch);
      auto batch = std::make_shared<std::vector<HistoryCall>>(std::make_move_iterator(queue.begin()),
                                                              std::make_move_iterator(queue.begin() + n));
      queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
      std::vector<std::string> args{"EVAL", read ? scripts::kHistoryRead : scripts::kHistoryPositions, "0"};
      if (read) args.push_back(std::to_string(settings_.history_size));
      args.push_back(std::to_string(settings_.history_ttl.count()));
      for (auto& call : *batch) {
        for (auto& a : call.args) args.push_back(std::move(a));
      }
      const bool sent = s.pub->command(args, [this, &s, batch](const redisReply* r) {
        const bool shaped = r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == batch->size();
        const std::string error = shaped ? std::string() : unavailable(s.index, s.config.describe(), reply_text(r));
        if (!shaped) metrics_.error(BrokerOp::history);
        for (std::size_t j = 0; j < batch->size(); ++j) (*batch)[j].done(shaped ? r->element[j] : nullptr, error);
      });
      if (!sent) {
        const std::string error = unavailable(s.index, s.config.describe(), "could not send");
        for (auto& call : *batch) call.done(nullptr, error);
      }
    }
  }
}

void RedisBroker::history_requests(std::vector<std::string> streams, bool read,
                                   std::function<std::vector<std::string>(std::size_t)> args_of,
                                   std::function<bool(std::size_t, const redisReply*)> parse,
                                   std::function<void(std::string)> finish) {
  boost::asio::post(
      io_, [this, streams = std::move(streams), read, args_of = std::move(args_of),
            parse = std::make_shared<std::function<bool(std::size_t, const redisReply*)>>(std::move(parse)),
            finish = std::move(finish)]() mutable {
        struct Gather {
          std::size_t pending;
          std::string error;  // the first one
          std::function<void(std::string)> finish;
          void answered(const std::string& why = {}) {
            if (error.empty()) error = why;
            if (--pending == 0) finish(std::move(error));
          }
        };
        // One more than the streams: nothing finishes before every one is asked.
        auto g = std::make_shared<Gather>(Gather{streams.size() + 1, {}, std::move(finish)});
        for (std::size_t i = 0; i < streams.size(); ++i) {
          const std::string channel = "notify:" + streams[i];
          after_subscribed(channel, [this, g, i, channel, read, args = args_of(i), parse](bool ok) mutable {
            Shard& s = *shard_for(channel);
            if (!ok) {
              g->answered(unavailable(s.index, s.config.describe(), "not subscribed"));
              return;
            }
            queue_history(s, read,
                          HistoryCall{std::move(args), [g, i, parse](const redisReply* one, const std::string& error) {
                                        if (one != nullptr && (*parse)(i, one)) {
                                          g->answered();
                                        } else {
                                          g->answered(error.empty() ? "unexpected reply to a history read" : error);
                                        }
                                      }});
          });
        }
        g->answered();
      });
}

void RedisBroker::positions(std::vector<std::string> streams, PositionsDone done) {
  auto results = std::make_shared<std::vector<gateway::protocol::Position>>(streams.size());
  for (std::size_t i = 0; i < streams.size(); ++i) (*results)[i].stream = streams[i];
  history_requests(
      std::move(streams), false, [results](std::size_t i) { return std::vector<std::string>{(*results)[i].stream}; },
      [results](std::size_t i, const redisReply* one) {
        if (one->type != REDIS_REPLY_ARRAY || one->elements != 2 || !text_reply(one->element[0]) ||
            one->element[1]->type != REDIS_REPLY_INTEGER) {
          return false;
        }
        (*results)[i].epoch.assign(one->element[0]->str, one->element[0]->len);
        (*results)[i].offset = static_cast<std::uint64_t>(std::max<long long>(0, one->element[1]->integer));
        return true;
      },
      [results, done = std::move(done)](std::string error) {
        if (!error.empty()) results->clear();
        done(std::move(error), std::move(*results));
      });
}

void RedisBroker::read_after(std::vector<gateway::protocol::Position> wanted, ReadDone done) {
  auto results = std::make_shared<std::vector<gateway::StreamRead>>(wanted.size());
  std::vector<std::string> streams;
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    (*results)[i].position.stream = wanted[i].stream;
    streams.push_back(wanted[i].stream);
  }
  history_requests(
      std::move(streams), true,
      [wanted = std::move(wanted)](std::size_t i) {
        return std::vector<std::string>{wanted[i].stream, wanted[i].epoch, std::to_string(wanted[i].offset)};
      },
      [this, results](std::size_t i, const redisReply* one) {
        if (one->type != REDIS_REPLY_ARRAY || one->elements < 3 || !text_reply(one->element[0]) ||
            !text_reply(one->element[1]) || one->element[2]->type != REDIS_REPLY_INTEGER) {
          return false;
        }
        gateway::StreamRead& read = (*results)[i];
        const bool user = read.position.stream.starts_with("user:");
        const std::string outcome(one->element[0]->str, one->element[0]->len);
        read.position.epoch.assign(one->element[1]->str, one->element[1]->len);
        read.position.offset = static_cast<std::uint64_t>(std::max<long long>(0, one->element[2]->integer));
        if (outcome != "ok") read.failure = outcome;
        for (std::size_t j = 3; j < one->elements; ++j) {
          const redisReply* m = one->element[j];
          std::string why;
          auto e =
              text_reply(m) ? decode(std::string_view(m->str, m->len), settings_.max_data_bytes, why) : std::nullopt;
          if (!e || e->kind != Envelope::Kind::publication || e->position.stream != read.position.stream) {
            // Never part of a gap: the whole read fails instead.
            metrics_.malformed();
            log::warn("dropped a resume: a malformed message in Redis history",
                      {{"stream", read.position.stream}, {"error", why}});
            read.frames.clear();
            read.failure = "unavailable";
            break;
          }
          read.frames.push_back(
              notification_frame(e->publication, user ? Audience::users : Audience::subscribers, &e->position));
        }
        return true;
      },
      [results, done = std::move(done)](std::string error) {
        if (!error.empty()) results->clear();
        done(std::move(error), std::move(*results));
      });
}

}  // namespace notify::broker
