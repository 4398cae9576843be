#include "gateway/client_session.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstdio>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/validation.hpp"
#include "gateway/hub.hpp"

namespace notify::gateway {

namespace {

// 20 -> "20", 0.5 -> "0.5" (a rate below one per second must not read "0").
std::string format_rate(double per_second) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", per_second);
  return text;
}

}  // namespace

ClientSession::ClientSession(Shard& shard, GatewayContext& context, UpgradeDecision&& decision,
                             ConnectionLimiter::Slot slot)
    : queue_(context.settings.queue),
      metrics_(shard.metrics()),
      shard_(shard),
      ctx_(context),
      user_id_(std::move(decision.user_id)),
      connection_id_(new_connection_id()),
      expires_at_(decision.expires_at),
      all_topics_(decision.all_topics),
      granted_topics_(std::move(decision.topics)),
      slot_(std::move(slot)),
      rate_tokens_(context.settings.client_message_burst),
      rate_refilled_(std::chrono::steady_clock::now()),
      awaiting_resume_(decision.resume && context.history != nullptr) {}

ClientSession::~ClientSession() {
  // Normally done when the read side ends; here too in case the loop was
  // torn down with a read still pending.
  leave_shard();
  metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.bytes()));
}

void ClientSession::opened(std::string* welcome_out) {
  state_ = State::open;
  shard_.add(this);
  registered_ = true;
  metrics_.connections_accepted.add();
  log::debug("connection open", {{"connection", connection_id_}, {"user", user_id_}, {"loop", shard_.index()}});
  track_expiry();
  if (ctx_.history == nullptr) {
    send_welcome(welcome_out);
    schedule_inbox();
    return;
  }
  // Positions are read once the connection is in its loop's indexes (and,
  // with Redis, once this replica receives the streams): every frame with a
  // higher offset reaches the connection; lower ones are filtered out. Until
  // they are known, live frames are held and client messages wait.
  begin_wait();
  const bool now = ctx_.history->synchronous();
  ctx_.history->positions(
      {Hub::user_stream(user_id_), Hub::topic_stream({})},
      [this, self = now ? nullptr : keep_alive(), welcome_out = now ? welcome_out : nullptr](
          std::string error, std::vector<protocol::Position> positions) mutable {
        in_loop(std::move(self), [this, welcome_out, error = std::move(error),
                                  positions = std::move(positions)]() mutable {
          if (error.empty()) {
            floors_ = std::move(positions);
          } else if (awaiting_resume_) {
            // A client that resumes needs history: it tries again later
            // (likely on another replica) rather than skip what it missed.
            log::warn("history unavailable for a resuming connection; closing it with 1013",
                      {{"connection", connection_id_}, {"error", error}});
            close(protocol::close_code::try_again_later, "history unavailable: resume again later");
            return;
          } else {
            // A new client works without history: no floors, no resume.
            history_off_ = true;
            log::warn("history unavailable for a new connection", {{"connection", connection_id_}, {"error", error}});
          }
          send_welcome(welcome_out);
          end_wait();
        });
      });
}

void ClientSession::send_welcome(std::string* welcome_out) {
  welcomed_ = true;
  std::string welcome = protocol::encode_welcome(connection_id_, user_id_, expires_at_, floors_);
  if (welcome_out != nullptr) {
    *welcome_out = std::move(welcome);  // the transport sends it, then calls close_if_draining()
    return;
  }
  reply(std::move(welcome));
  close_if_draining();
}

template <class F>
void ClientSession::in_loop(std::shared_ptr<ClientSession> self, F&& f) {
  if (self == nullptr) {  // a synchronous backend: already on the loop
    if (state_ == State::open) f();
    return;
  }
  boost::asio::post(shard_.context(), [self = std::move(self), f = std::forward<F>(f)]() mutable {
    if (self->state_ == State::open) f();
  });
}

void ClientSession::begin_wait() {
  waiting_ = true;
  holding_ = true;
}

void ClientSession::end_wait() {
  waiting_ = false;
  if (!awaiting_resume_) release_held();
  // Client messages that came meanwhile, in order, until one waits again.
  while (!waiting_ && !deferred_.empty() && state_ == State::open) {
    std::string text = std::move(deferred_.front());
    deferred_.erase(deferred_.begin());
    handle_text(text);
  }
  // The welcome (and the resume, if one was announced) is out: what waited
  // in the inbox follows. A deferred request that waits again (a subscribe)
  // brings it here again when it ends.
  if (welcomed_ && !awaiting_resume_ && !waiting_) schedule_inbox();
}

void ClientSession::close_if_draining() {
  if (ctx_.draining.load(std::memory_order_relaxed)) close(protocol::close_code::going_away, "server shutting down");
}

void ClientSession::on_client_message(bool text, std::string_view payload) {
  if (state_ != State::open) return;
  if (!take_rate_token()) {
    ctx_.metrics.limit_hit(Limit::message_rate);
    reject({"rate_limited",
            "too many messages: at most " + format_rate(ctx_.settings.client_message_rate) + " per second",
            {}});
    return;
  }
  if (!text) {
    metrics_.client_message(ClientMessageType::invalid);
    close(protocol::close_code::unsupported_data, "binary frames are not supported");
    return;
  }
  if (waiting_) {
    // History is being read for this connection: later messages wait, so
    // that replies keep their order (a few; the rate limit bounds them too).
    if (deferred_.size() >= kMaxDeferred) {
      close(protocol::close_code::policy_violation, "too many messages before the welcome or resume completed");
      return;
    }
    deferred_.emplace_back(payload);
    return;
  }
  handle_text(payload);
}

void ClientSession::handle_text(std::string_view text) {
  auto parsed = protocol::parse_request(text);
  if (auto* error = std::get_if<protocol::Error>(&parsed)) {
    metrics_.client_message(ClientMessageType::invalid);
    reject(*error);
    return;
  }
  auto& request = std::get<protocol::Request>(parsed);
  if (request.type == protocol::RequestType::resume) {
    metrics_.client_message(ClientMessageType::resume);
    handle_resume(request);
    return;
  }
  // Any other first message ends the wait for a resume.
  if (awaiting_resume_) {
    awaiting_resume_ = false;
    release_held();
    schedule_inbox();
  }
  switch (request.type) {
    case protocol::RequestType::resume:
      return;  // handled above
    case protocol::RequestType::subscribe:
      metrics_.client_message(ClientMessageType::subscribe);
      handle_subscribe(request);
      return;
    case protocol::RequestType::refresh:
      metrics_.client_message(ClientMessageType::refresh);
      handle_refresh(request);
      return;
    case protocol::RequestType::unsubscribe: {
      metrics_.client_message(ClientMessageType::unsubscribe);
      const auto it = std::find(topics_.begin(), topics_.end(), request.topic);
      if (it != topics_.end()) {
        topics_.erase(it);
        shard_.unsubscribe(this, request.topic);
        std::erase_if(floors_, [stream = Hub::topic_stream(request.topic)](const protocol::Position& p) {
          return p.stream == stream;
        });
      }
      reply(protocol::encode_unsubscribed(request.topic, request.id_json));
      return;
    }
    case protocol::RequestType::ping:
      metrics_.client_message(ClientMessageType::ping);
      reply(protocol::encode_pong(request.id_json));
      return;
    case protocol::RequestType::message:
      metrics_.client_message(ClientMessageType::message);
      handle_message(request);
      return;
    case protocol::RequestType::ack:
      metrics_.client_message(ClientMessageType::ack);
      handle_ack(request);
      return;
    case protocol::RequestType::inbox:
      metrics_.client_message(ClientMessageType::inbox);
      handle_inbox(request);
      return;
    case protocol::RequestType::mark_read:
      metrics_.client_message(ClientMessageType::mark_read);
      handle_mark_read(request);
      return;
  }
}

bool ClientSession::may_subscribe(std::string_view topic) const {
  return all_topics_ || granted_topics_.allows(topic) || ctx_.settings.public_topics.allows(topic);
}

void ClientSession::handle_subscribe(protocol::Request& request) {
  if (std::find(topics_.begin(), topics_.end(), request.topic) == topics_.end()) {
    if (!may_subscribe(request.topic)) {
      reply(protocol::encode_error(
          {"forbidden_topic", "your token does not grant this topic and it is not public", request.id_json}));
      return;
    }
    if (topics_.size() >= ctx_.settings.max_topics_per_connection) {
      ctx_.metrics.limit_hit(Limit::topics_per_connection);
      reply(protocol::encode_error({"too_many_topics",
                                    "a connection may subscribe to at most " +
                                        std::to_string(ctx_.settings.max_topics_per_connection) + " topics",
                                    request.id_json}));
      return;
    }
    topics_.push_back(request.topic);
    shard_.subscribe(this, request.topic);
    if (has_history()) {
      // Where the topic's stream starts for this connection: read once it
      // receives the topic (the same rule as for the welcome).
      std::string stream = Hub::topic_stream(request.topic);
      floors_.push_back(protocol::Position{stream, {}, 0});
      begin_wait();
      const bool now = ctx_.history->synchronous();
      ctx_.history->positions(
          {std::move(stream)}, [this, self = now ? nullptr : keep_alive(), topic = request.topic, id = request.id_json](
                                   std::string error, std::vector<protocol::Position> positions) mutable {
            in_loop(std::move(self), [this, topic = std::move(topic), id = std::move(id), error = std::move(error),
                                      positions = std::move(positions)]() mutable {
              protocol::Position* floor = floor_of(Hub::topic_stream(topic));
              if (error.empty() && floor != nullptr && positions.size() == 1) *floor = std::move(positions[0]);
              if (!error.empty()) {
                log::warn("history unavailable for a subscription", {{"connection", connection_id_}, {"error", error}});
              }
              reply(protocol::encode_subscribed(topic, id, floor));
              end_wait();
            });
          });
      return;
    }
  } else if (has_history()) {
    reply(protocol::encode_subscribed(request.topic, request.id_json, floor_of(Hub::topic_stream(request.topic))));
    return;
  }
  reply(protocol::encode_subscribed(request.topic, request.id_json));
}

protocol::Position* ClientSession::floor_of(std::string_view stream) {
  for (auto& f : floors_) {
    if (f.stream == stream) return &f;
  }
  return nullptr;
}

bool ClientSession::deliver_positioned(const FramePtr& frame) {
  if (state_ != State::open) return false;
  if (holding_) {
    held_bytes_ += frame->payload.size();
    if (held_bytes_ > ctx_.settings.queue.max_bytes || held_.size() >= ctx_.settings.queue.max_messages) {
      metrics_.slow_consumer_closes.add();
      owe_held_acks();
      held_.clear();
      holding_ = false;
      log::debug("slow consumer closed while a resume was awaited", {{"connection", connection_id_}});
      close(protocol::close_code::slow_consumer, "slow consumer: too much arrived while waiting for resume");
      return false;
    }
    held_.push_back(frame);
    return true;
  }
  protocol::Position* floor = floor_of(frame->stream);
  if (floor != nullptr) {
    // Sent already (replayed by a resume), or from before this connection
    // followed the stream.
    if (floor->epoch == frame->epoch && frame->offset <= floor->offset) return false;
    floor->epoch = frame->epoch;
    floor->offset = frame->offset;
  }
  return enqueue(frame);
}

void ClientSession::release_held() {
  holding_ = false;
  std::vector<FramePtr> held = std::move(held_);
  held_.clear();
  held_bytes_ = 0;
  for (const FramePtr& frame : held) {
    if (!deliver_positioned(frame)) continue;
  }
}

void ClientSession::handle_resume(protocol::Request& request) {
  if (resumed_ || (!awaiting_resume_ && has_history())) {
    reply(protocol::encode_error(
        {"bad_request",
         resumed_ ? "a connection resumes once" : "announce the resume on the upgrade (?resume=1) and send it first",
         request.id_json}));
    return;
  }
  resumed_ = true;
  awaiting_resume_ = false;
  // Per stream asked, in order: what to read, or why not at once.
  struct Asked {
    std::string stream;
    const char* refused = nullptr;
  };
  std::vector<Asked> asked;
  std::vector<protocol::Position> to_read;
  for (protocol::Position& wanted : request.streams) {
    // Boost.JSON keeps the last of duplicate keys, so a stream is named once.
    Asked a{wanted.stream};
    if (!has_history()) {
      a.refused = "no_history";
    } else if (floor_of(wanted.stream) == nullptr) {
      if (!wanted.stream.starts_with("topic:")) {
        a.refused = "unknown_stream";  // another user's stream, or no stream at all
      } else {
        // Resuming a topic subscribes to it, with the checks of subscribe.
        const std::string topic = wanted.stream.substr(6);
        a.refused = !rules::valid_topic(topic)                                  ? "unknown_stream"
                    : !may_subscribe(topic)                                     ? "forbidden_topic"
                    : topics_.size() >= ctx_.settings.max_topics_per_connection ? "too_many_topics"
                                                                                : nullptr;
        if (a.refused == nullptr) {
          topics_.push_back(topic);
          shard_.subscribe(this, topic);
          floors_.push_back(protocol::Position{wanted.stream, {}, 0});
        }
      }
    }
    if (a.refused == nullptr) to_read.push_back(std::move(wanted));
    asked.push_back(std::move(a));
  }
  begin_wait();  // live frames stay held until the replay is queued
  auto finish = [this, asked = std::move(asked), id = request.id_json](std::string error,
                                                                       std::vector<StreamRead> reads) {
    if (!error.empty()) {
      // History could not be read (Redis unreachable, this replica shutting
      // down): never skip what the client missed; it resumes again later.
      log::warn("history unavailable for a resume; closing with 1013",
                {{"connection", connection_id_}, {"error", error}});
      close(protocol::close_code::try_again_later, "history unavailable: resume again later");
      return;
    }
    std::size_t next = 0;
    for (const Asked& a : asked) {
      if (a.refused != nullptr) {
        reply(protocol::encode_resume_failed({a.stream, {}, 0}, a.refused, id));
        continue;
      }
      protocol::Position* floor = floor_of(a.stream);
      StreamRead* read = next < reads.size() ? &reads[next] : nullptr;
      ++next;
      if (read == nullptr) continue;  // a backend answers every stream asked
      // Live delivery goes on after the head either way: held frames at or
      // below it are in the replay, or in the gap the client is told about.
      if (floor != nullptr) *floor = read->position;
      if (!read->failure.empty()) {
        metrics_.resume(false);
        reply(protocol::encode_resume_failed(read->position, read->failure, id));
        continue;
      }
      metrics_.resume(true);
      for (const FramePtr& frame : read->frames) {
        // Closed (send queue full): the client resumes again. A frame
        // refused without closing (drop-oldest, larger than the whole
        // queue) is dropped as it would be live.
        if (!enqueue(frame) && state_ != State::open) break;
      }
    }
    reply(protocol::encode_resumed(floors_, id));
    end_wait();
  };
  if (to_read.empty()) {
    finish({}, {});
    return;
  }
  const bool now = ctx_.history->synchronous();
  ctx_.history->read_after(std::move(to_read), [this, self = now ? nullptr : keep_alive(), finish = std::move(finish)](
                                                   std::string error, std::vector<StreamRead> reads) mutable {
    in_loop(std::move(self), [finish = std::move(finish), error = std::move(error),
                              reads = std::move(reads)]() mutable { finish(std::move(error), std::move(reads)); });
  });
}

void ClientSession::handle_refresh(protocol::Request& request) {
  if (ctx_.verifier == nullptr || expires_at_ == 0) {
    reply(protocol::encode_error({"invalid_token",
                                  "this connection was not opened with a token; there is nothing to refresh",
                                  request.id_json}));
    return;
  }
  auto result = ctx_.verifier->verify(request.token);
  if (!result.identity) {
    ctx_.metrics.token_rejected(result.error);
    reply(protocol::encode_error({"invalid_token", "refresh refused: " + result.detail, request.id_json}));
    return;
  }
  if (result.identity->user_id != user_id_) {
    reply(protocol::encode_error({"invalid_token", "refresh refused: the token is for another user", request.id_json}));
    return;
  }
  expires_at_ = result.identity->expires_at;
  granted_topics_ = std::move(result.identity->topics);
  track_expiry();
  // Subscriptions the new token no longer grants end now.
  for (auto it = topics_.begin(); it != topics_.end();) {
    if (may_subscribe(*it)) {
      ++it;
      continue;
    }
    shard_.unsubscribe(this, *it);
    std::erase_if(floors_,
                  [stream = Hub::topic_stream(*it)](const protocol::Position& p) { return p.stream == stream; });
    reply(protocol::encode_unsubscribed(*it, {}, "forbidden"));
    it = topics_.erase(it);
  }
  reply(protocol::encode_refreshed(expires_at_, request.id_json));
}

bool ClientSession::take_rate_token() {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - rate_refilled_).count();
  rate_refilled_ = now;
  rate_tokens_ =
      std::min(ctx_.settings.client_message_burst, rate_tokens_ + elapsed * ctx_.settings.client_message_rate);
  if (rate_tokens_ < 1.0) return false;
  rate_tokens_ -= 1.0;
  return true;
}

void ClientSession::track_expiry() {
  if (expiry_) shard_.untrack_expiry(*expiry_);
  expiry_.reset();
  // The connection closes when the token would no longer be accepted: exp
  // plus the leeway (exp is capped at year 9999, so this can't overflow).
  const std::int64_t leeway = ctx_.verifier != nullptr ? ctx_.verifier->policy().leeway.count() : 0;
  if (expires_at_ != 0) expiry_ = shard_.track_expiry(this, (expires_at_ + leeway) * 1000);
}

void ClientSession::expire() {
  expiry_.reset();  // the shard already dropped it
  if (close(protocol::close_code::token_expired, "token expired")) {
    log::debug("token expired, closing", {{"connection", connection_id_}, {"user", user_id_}});
  }
}

void ClientSession::handle_message(protocol::Request& request) {
  UpstreamMessage message;
  message.id = new_uuid_v7();
  message.user_id = user_id_;
  message.connection_id = connection_id_;
  message.data_json = std::move(request.data_json);
  message.client_message_id = request.id_json;
  message.ts_ms = unix_millis();
  const std::size_t consumers = ctx_.upstream ? ctx_.upstream->publish(message) : 0;
  if (consumers == 0) {
    reply(protocol::encode_error(
        {"no_consumer", "no backend is consuming client messages; the message was not delivered", request.id_json}));
    return;
  }
  reply(protocol::encode_ack(request.id_json, message.id));
}

void ClientSession::handle_ack(protocol::Request& request) {
  const std::int64_t now = unix_millis();
  bool acked = false;
  for (const std::string& id : request.ids) {
    const auto it =
        std::find_if(pending_acks_.begin(), pending_acks_.end(), [&](const PendingAck& p) { return p.id == id; });
    // Unknown: never asked, acknowledged already, or past its deadline (and
    // reported). Nothing to answer: a late ack is normal.
    if (it == pending_acks_.end()) continue;
    report(*it, DeliveryReport::Outcome::acked, now);
    pending_acks_.erase(it);
    acked = true;
  }
  // Acks owed are not the client's choice: one that acknowledges something
  // costs no rate token (so an app receiving many notifications isn't
  // throttled for answering them). Acks of nothing count as usual.
  if (acked) rate_tokens_ = std::min(ctx_.settings.client_message_burst, rate_tokens_ + 1.0);
}

void ClientSession::owe_held_acks() {
  // Held back (a resume was awaited) and never sent: the notification
  // reached the connection but won't be acknowledged on it.
  for (const FramePtr& frame : held_) {
    if (frame->ack_deadline_ms == 0) continue;
    if (std::none_of(pending_acks_.begin(), pending_acks_.end(),
                     [&](const PendingAck& p) { return p.id == frame->ack_id; })) {
      pending_acks_.push_back({frame->ack_id, frame->published_ms, frame->ack_deadline_ms});
    }
  }
}

void ClientSession::track_ack(const Frame& frame) {
  const std::int64_t now = unix_millis();
  if (now >= frame.ack_deadline_ms) return;  // replayed after its deadline: nothing owed any more
  for (PendingAck& p : pending_acks_) {
    if (p.id == frame.ack_id) {  // the same id again (the backend reused it): one ack settles both
      p.deadline_ms = std::max(p.deadline_ms, frame.ack_deadline_ms);
      return;
    }
  }
  if (pending_acks_.size() >= kMaxPendingAcks) {
    report(pending_acks_.front(), DeliveryReport::Outcome::timed_out, now);
    pending_acks_.erase(pending_acks_.begin());
  }
  pending_acks_.push_back({frame.ack_id, frame.published_ms, frame.ack_deadline_ms});
  if (ack_timer_at_ == 0 || frame.ack_deadline_ms < ack_timer_at_) arm_ack_timer();
}

void ClientSession::report(const PendingAck& pending, DeliveryReport::Outcome outcome, std::int64_t now_ms) {
  ctx_.metrics.delivery_report(static_cast<std::size_t>(outcome));
  if (ctx_.reports == nullptr) return;
  ctx_.reports->report(DeliveryReport{.notification_id = pending.id,
                                      .user_id = user_id_,
                                      .connection_id = connection_id_,
                                      .outcome = outcome,
                                      .ts_ms = now_ms,
                                      .published_ts_ms = pending.published_ms});
}

void ClientSession::arm_ack_timer() {
  std::int64_t earliest = 0;
  for (const PendingAck& p : pending_acks_) {
    if (earliest == 0 || p.deadline_ms < earliest) earliest = p.deadline_ms;
  }
  ack_timer_at_ = earliest;
  if (earliest == 0) {
    if (ack_timer_) ack_timer_->cancel();
    return;
  }
  if (!ack_timer_) ack_timer_ = std::make_unique<boost::asio::steady_timer>(shard_.context());
  ack_timer_->expires_after(std::chrono::milliseconds(std::max<std::int64_t>(0, earliest - unix_millis())));
  ack_timer_->async_wait([self = keep_alive(), at = earliest](boost::system::error_code ec) {
    // Cancelled, or re-armed for an earlier deadline since.
    if (ec || self->ack_timer_at_ != at || self->state_ == State::closed) return;
    self->expire_acks();
  });
}

void ClientSession::expire_acks() {
  const std::int64_t now = unix_millis();
  std::erase_if(pending_acks_, [&](const PendingAck& p) {
    if (p.deadline_ms > now) return false;
    report(p, DeliveryReport::Outcome::timed_out, now);
    return true;
  });
  arm_ack_timer();
}

void ClientSession::schedule_inbox() {
  if (inbox_started_ || ctx_.inbox == nullptr) return;
  inbox_started_ = true;
  // Posted: the transport may still have the welcome to send.
  boost::asio::post(shard_.context(), [self = keep_alive()] {
    if (self->state_ != State::open) return;
    const bool now = self->ctx_.inbox->synchronous();
    ClientSession* s = self.get();
    auto take = [s](std::string error, std::vector<InboxEntry> entries, std::uint64_t unread) {
      if (!error.empty()) {
        log::warn("inbox unavailable for a new connection", {{"connection", s->connection_id_}, {"error", error}});
      } else if (s->state_ != State::open) {
        // Gone before they could be sent: pending again, for the next connection.
        std::vector<std::string> ids;
        for (const InboxEntry& e : entries) ids.push_back(e.id);
        if (!ids.empty()) s->ctx_.inbox->restore_pending(s->user_id_, std::move(ids));
      } else {
        s->push_inbox(std::move(entries), unread);
      }
    };
    s->ctx_.inbox->take_pending(
        s->user_id_, [take, self = now ? nullptr : std::move(self)](std::string error, std::vector<InboxEntry> entries,
                                                                    std::uint64_t unread, bool) mutable {
          if (self == nullptr) {
            take(std::move(error), std::move(entries), unread);
            return;
          }
          ClientSession* raw = self.get();
          boost::asio::post(raw->shard_.context(),
                            [take, self = std::move(self), error = std::move(error), entries = std::move(entries),
                             unread]() mutable { take(std::move(error), std::move(entries), unread); });
        });
  });
}

void ClientSession::push_inbox(std::vector<InboxEntry> entries, std::uint64_t unread) {
  for (InboxEntry& e : entries) {
    if (inbox_seen(e.id)) continue;  // it came live meanwhile
    auto frame = std::make_shared<Frame>(Frame::Kind::notification, e.payload);
    frame->inbox_id = std::move(e.id);
    metrics_.inbox_pushed.add();
    if (!enqueue(frame) && state_ != State::open) return;
  }
  // Nothing in the inbox: nothing to say (a client assumes 0 until told).
  if (unread > 0) reply(encode_unread(unread));
}

void ClientSession::remember_inbox_id(const std::string& id) {
  if (inbox_ids_.size() < kInboxIdsKept) {
    inbox_ids_.push_back(id);
    return;
  }
  inbox_ids_[inbox_ids_next_] = id;
  inbox_ids_next_ = (inbox_ids_next_ + 1) % kInboxIdsKept;
}

void ClientSession::handle_inbox(protocol::Request& request) {
  if (ctx_.inbox == nullptr) {
    reply(protocol::encode_error({"no_inbox", "this gateway runs without an inbox", request.id_json}));
    return;
  }
  const bool now = ctx_.inbox->synchronous();
  ctx_.inbox->list(
      user_id_, request.before, request.limit,
      [this, self = now ? nullptr : keep_alive(), id = request.id_json](
          std::string error, std::vector<InboxEntry> entries, std::uint64_t unread, bool more) mutable {
        in_loop(std::move(self), [this, id = std::move(id), error = std::move(error), entries = std::move(entries),
                                  unread, more] {
          if (error == kInboxNotFound) {
            reply(protocol::encode_error(
                {"not_found", "\"before\" names a notification no longer in the inbox; list from the newest", id}));
            return;
          }
          if (!error.empty()) {
            reply(protocol::encode_error({"unavailable", "the inbox can't be read now; try again", id}));
            return;
          }
          std::vector<std::string_view> payloads;
          for (const InboxEntry& e : entries) payloads.emplace_back(e.payload);
          reply(protocol::encode_inbox(payloads, unread, more, id));
        });
      });
}

void ClientSession::handle_mark_read(protocol::Request& request) {
  if (ctx_.inbox == nullptr) {
    reply(protocol::encode_error({"no_inbox", "this gateway runs without an inbox", request.id_json}));
    return;
  }
  const bool now = ctx_.inbox->synchronous();
  ctx_.inbox->mark_read(
      user_id_, std::move(request.ids), request.all, connection_id_,
      [this, self = now ? nullptr : keep_alive(), id = request.id_json](std::string error,
                                                                        std::uint64_t unread) mutable {
        in_loop(std::move(self), [this, id = std::move(id), error = std::move(error), unread] {
          if (!error.empty()) {
            reply(protocol::encode_error({"unavailable", "the inbox can't be changed now; try again", id}));
            return;
          }
          reply(encode_unread(unread, id));
        });
      });
}

void ClientSession::reject(const protocol::Error& error) {
  reply(protocol::encode_error(error));
  if (++invalid_messages_ >= ctx_.settings.max_invalid_messages) {
    close(protocol::close_code::policy_violation, "too many invalid messages");
  }
}

void ClientSession::reply(std::string payload) { enqueue(make_control_frame(std::move(payload))); }

bool ClientSession::enqueue(const FramePtr& frame) {
  if (state_ != State::open) return false;
  if (write_now(frame)) {  // on the socket (or its tail queued in flight)
    if (frame->ack_deadline_ms != 0) track_ack(*frame);
    if (!frame->inbox_id.empty()) remember_inbox_id(frame->inbox_id);
    return true;
  }
  if (!writable()) return false;
  const auto result = queue_.push(frame);
  if (result.replaced != nullptr && result.replaced->ack_deadline_ms != 0) {
    // Never sent, so never acknowledged: the newer notification takes over.
    const auto it = std::find_if(pending_acks_.begin(), pending_acks_.end(),
                                 [&](const PendingAck& p) { return p.id == result.replaced->ack_id; });
    if (it != pending_acks_.end()) {
      report(*it, DeliveryReport::Outcome::replaced, unix_millis());
      pending_acks_.erase(it);
    }
  }
  if (result.dropped > 0) {
    metrics_.messages_dropped.add(result.dropped);
    metrics_.queued_bytes.add(-static_cast<std::int64_t>(result.dropped_bytes));
  }
  if (result.collapsed > 0) {
    metrics_.messages_collapsed.add(result.collapsed);
    metrics_.queued_bytes.add(static_cast<std::int64_t>(result.marker_bytes) -
                              static_cast<std::int64_t>(result.collapsed_bytes));
  }
  if (!result.accepted) {
    // It reached the connection: owed, and reported with the close (or at
    // its deadline, dropped under drop-oldest).
    if (frame->ack_deadline_ms != 0) track_ack(*frame);
    if (ctx_.settings.queue.policy == OverflowPolicy::drop_oldest) {
      metrics_.messages_dropped.add();  // larger than the whole budget on its own
      return false;
    }
    metrics_.slow_consumer_closes.add();
    metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.clear_waiting()));
    log::debug("slow consumer closed",
               {{"connection", connection_id_}, {"user", user_id_}, {"queued_bytes", queue_.bytes()}});
    close(protocol::close_code::slow_consumer, "slow consumer: send queue full");
    return false;
  }
  metrics_.queued_bytes.add(static_cast<std::int64_t>(frame->payload.size()));
  if (frame->ack_deadline_ms != 0) track_ack(*frame);
  if (!frame->inbox_id.empty()) remember_inbox_id(frame->inbox_id);
  schedule_write();
  return true;
}

bool ClientSession::close(std::uint16_t code, std::string reason) {
  if (state_ != State::open) return false;
  state_ = State::closing;
  if (!closing_) closing_ = std::make_unique<Closing>();
  closing_->code = code;
  // A close frame holds at most 123 bytes of reason; cut on a UTF-8 boundary.
  constexpr std::size_t kMaxReason = 123;
  std::size_t length = std::min(reason.size(), kMaxReason);
  while (length < reason.size() && length > 0 && (static_cast<unsigned char>(reason[length]) & 0xc0) == 0x80) --length;
  reason.resize(length);
  closing_->reason = std::move(reason);
  arm_close_timer();
  if (queue_.empty()) send_close_frame();  // otherwise once the queue drained
  return true;
}

void ClientSession::arm_close_timer() {
  if (!closing_) closing_ = std::make_unique<Closing>();
  if (closing_->timer) return;
  // Whatever happens to the peer, the connection is gone after close_timeout.
  closing_->timer = std::make_unique<boost::asio::steady_timer>(shard_.context(), ctx_.settings.close_timeout);
  closing_->timer->async_wait([self = keep_alive()](boost::system::error_code ec) {
    if (ec) return;
    log::debug("close timed out, dropping connection", {{"connection", self->connection_id_}});
    self->abort_connection();
  });
}

void ClientSession::cancel_close_timer() {
  if (closing_ && closing_->timer) closing_->timer->cancel();
}

void ClientSession::leave_shard() {
  state_ = State::closed;
  // Frames not yet started will never be written (a frame partly written
  // is finished first: the wire must stay well-formed).
  metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.clear_waiting()));
  owe_held_acks();
  held_.clear();
  held_bytes_ = 0;
  deferred_.clear();
  // What the connection still owed an ack for (sent or not) won't be acknowledged here.
  if (!pending_acks_.empty()) {
    const std::int64_t now = unix_millis();
    for (const PendingAck& p : pending_acks_) report(p, DeliveryReport::Outcome::connection_closed, now);
    pending_acks_.clear();
  }
  if (ack_timer_) ack_timer_->cancel();
  ack_timer_at_ = 0;
  if (!registered_) return;
  if (expiry_) shard_.untrack_expiry(*expiry_);
  expiry_.reset();
  registered_ = false;
  shard_.remove(this, topics_);
  metrics_.connections_closed.add();
  log::debug("connection closed", {{"connection", connection_id_}, {"user", user_id_}});
}

}  // namespace notify::gateway
