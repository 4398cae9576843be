#include "gateway/websocket_session.hpp"

#include <algorithm>
#include <boost/beast/websocket/ssl.hpp>

#include "common/ids.hpp"
#include "common/log.hpp"

namespace notify::gateway {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace asio = boost::asio;

namespace {

// Expected ends of a connection (peer gone, timeouts) stay out of the logs.
bool expected_end(beast::error_code ec) {
  return ec == websocket::error::closed || ec == asio::error::operation_aborted || ec == asio::error::eof ||
         ec == beast::error::timeout || ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

template <class Layer>
template <class Stream>
WebSocketSession<Layer>::WebSocketSession(Stream&& stream, Shard& shard, GatewayContext& context,
                                          UpgradeDecision&& decision, ConnectionLimiter::Slot slot)
    : ws_(std::forward<Stream>(stream)),
      queue_(context.settings.queue),
      writer_(ws_.next_layer(), queue_, shard.metrics(), static_cast<FrameWriter::Owner&>(*this),
              &shard.fanout_clock()),
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
      rate_refilled_(std::chrono::steady_clock::now()) {}

template <class Layer>
WebSocketSession<Layer>::~WebSocketSession() {
  // Normally done when the read loop ends; here too in case the loop was
  // torn down with the read still pending.
  leave_shard();
  metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.bytes()));
}

template <class Layer>
void WebSocketSession<Layer>::run(Request request, std::string subprotocol) {
  const auto& s = ctx_.settings;
  // The WebSocket layer owns timeouts from here on.
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = s.handshake_timeout;
  timeouts.idle_timeout = s.idle_timeout;
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator([subprotocol](websocket::response_type& res) {
    res.set(beast::http::field::server, "notify-gateway");
    if (!subprotocol.empty()) res.set(beast::http::field::sec_websocket_protocol, subprotocol);
  }));
  ws_.read_message_max(s.max_message_bytes);
  // Once the client has sent its close frame the connection takes nothing
  // more: it leaves the indexes right away, not when the read loop ends
  // after the teardown. Safe here: this runs inside a read completion, never
  // while the shard iterates its indexes.
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::close) leave_shard();  // Beast answers the close itself
  });
  ws_.auto_fragment(false);
  ws_.async_accept(request, beast::bind_front_handler(&WebSocketSession::on_accept, this->shared_from_this()));
}

template <class Layer>
void WebSocketSession<Layer>::on_accept(beast::error_code ec) {
  if (ec) {
    ctx_.metrics.handshake_failed(HandshakeFailure::upgrade_failed);
    log::debug("websocket upgrade failed", {{"error", ec.message()}});
    state_ = State::closed;
    return;
  }
  state_ = State::open;
  if constexpr (kRawWrites) {
    writer_.start();
    prefetch_target_ = writer_.socket_object();
  }
  shard_.add(this);
  registered_ = true;
  metrics_.connections_accepted.add();
  log::debug("connection open", {{"connection", connection_id_}, {"user", user_id_}, {"loop", shard_.index()}});
  track_expiry();
  reply(protocol::encode_welcome(connection_id_, user_id_, expires_at_));
  if (ctx_.draining.load(std::memory_order_relaxed)) close(protocol::close_code::going_away, "server shutting down");
  do_read();
}

template <class Layer>
void WebSocketSession<Layer>::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&WebSocketSession::on_read, this->shared_from_this()));
}

template <class Layer>
void WebSocketSession<Layer>::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    // Beast has already answered an oversized frame with close 1009 and a
    // client's close frame with its echo; anything else is a dead peer.
    if (ec == websocket::error::message_too_big) ctx_.metrics.limit_hit(Limit::message_size);
    if (!expected_end(ec) && ec != websocket::error::message_too_big) {
      log::debug("connection read failed", {{"connection", connection_id_}, {"error", ec.message()}});
    }
    leave_shard();
    return;
  }
  if (state_ == State::open && !take_rate_token()) {
    ctx_.metrics.limit_hit(Limit::message_rate);
    reject({"rate_limited",
            "too many messages: at most " + std::to_string(static_cast<long>(ctx_.settings.client_message_rate)) +
                " per second",
            {}});
  } else if (state_ == State::open) {
    if (ws_.got_text()) {
      const auto data = buffer_.cdata();
      handle_text(std::string_view(static_cast<const char*>(data.data()), data.size()));
    } else {
      metrics_.client_message(ClientMessageType::invalid);
      close(protocol::close_code::unsupported_data, "binary frames are not supported");
    }
  }
  buffer_.consume(buffer_.size());
  // Give back the memory of a large frame; idle connections stay small.
  if (buffer_.capacity() > 4096) buffer_.shrink_to_fit();
  do_read();  // also while closing: Beast needs the read to see the peer's close frame
}

template <class Layer>
void WebSocketSession<Layer>::handle_text(std::string_view text) {
  auto parsed = protocol::parse_request(text);
  if (auto* error = std::get_if<protocol::Error>(&parsed)) {
    metrics_.client_message(ClientMessageType::invalid);
    reject(*error);
    return;
  }
  auto& request = std::get<protocol::Request>(parsed);
  switch (request.type) {
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
  }
}

template <class Layer>
bool WebSocketSession<Layer>::may_subscribe(std::string_view topic) const {
  return all_topics_ || granted_topics_.allows(topic) || ctx_.settings.public_topics.allows(topic);
}

template <class Layer>
void WebSocketSession<Layer>::handle_subscribe(protocol::Request& request) {
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
  }
  reply(protocol::encode_subscribed(request.topic, request.id_json));
}

template <class Layer>
void WebSocketSession<Layer>::handle_refresh(protocol::Request& request) {
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
    reply(protocol::encode_unsubscribed(*it, {}, "forbidden"));
    it = topics_.erase(it);
  }
  reply(protocol::encode_refreshed(expires_at_, request.id_json));
}

template <class Layer>
bool WebSocketSession<Layer>::take_rate_token() {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - rate_refilled_).count();
  rate_refilled_ = now;
  rate_tokens_ =
      std::min(ctx_.settings.client_message_burst, rate_tokens_ + elapsed * ctx_.settings.client_message_rate);
  if (rate_tokens_ < 1.0) return false;
  rate_tokens_ -= 1.0;
  return true;
}

template <class Layer>
void WebSocketSession<Layer>::track_expiry() {
  if (expiry_) shard_.untrack_expiry(*expiry_);
  expiry_.reset();
  // The connection closes when the token would no longer be accepted: exp
  // plus the leeway (exp is capped at year 9999, so this can't overflow).
  const std::int64_t leeway = ctx_.verifier != nullptr ? ctx_.verifier->policy().leeway.count() : 0;
  if (expires_at_ != 0) expiry_ = shard_.track_expiry(this, (expires_at_ + leeway) * 1000);
}

template <class Layer>
void WebSocketSession<Layer>::expire() {
  expiry_.reset();  // the shard already dropped it
  if (close(protocol::close_code::token_expired, "token expired")) {
    log::debug("token expired, closing", {{"connection", connection_id_}, {"user", user_id_}});
  }
}

template <class Layer>
void WebSocketSession<Layer>::handle_message(protocol::Request& request) {
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

template <class Layer>
void WebSocketSession<Layer>::reject(const protocol::Error& error) {
  reply(protocol::encode_error(error));
  if (++invalid_messages_ >= ctx_.settings.max_invalid_messages) {
    close(protocol::close_code::policy_violation, "too many invalid messages");
  }
}

template <class Layer>
void WebSocketSession<Layer>::reply(std::string payload) {
  enqueue(make_control_frame(std::move(payload)));
}

template <class Layer>
bool WebSocketSession<Layer>::deliver(const FramePtr& frame) {
  return enqueue(frame);
}

template <class Layer>
bool WebSocketSession<Layer>::enqueue(const FramePtr& frame) {
  if (state_ != State::open) return false;
  if constexpr (kRawWrites) {
    if (writer_.try_send(frame)) return true;  // on the socket (or its tail queued in flight)
    if (!writer_.accepting()) return false;
  }
  const auto result = queue_.push(frame);
  if (result.dropped > 0) {
    metrics_.messages_dropped.add(result.dropped);
    metrics_.queued_bytes.add(-static_cast<std::int64_t>(result.dropped_bytes));
  }
  if (!result.accepted) {
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
  if constexpr (kRawWrites) {
    writer_.schedule();
  } else if (!queue_.in_flight()) {
    write_next();
  }
  return true;
}

template <class Layer>
void WebSocketSession<Layer>::on_writer_idle() {
  if (state_ == State::closing && !close_sent_) send_close();
}

template <class Layer>
void WebSocketSession<Layer>::write_next() {
  if (state_ == State::closed) {
    metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.clear_waiting()));
    return;
  }
  if (queue_.empty()) {
    if (state_ == State::closing && !close_sent_) send_close();
    return;
  }
  const FramePtr& frame = queue_.begin_write();
  ws_.text(true);
  ws_.async_write(asio::buffer(frame->payload),
                  beast::bind_front_handler(&WebSocketSession::on_write, this->shared_from_this()));
}

template <class Layer>
void WebSocketSession<Layer>::on_write(beast::error_code ec, std::size_t) {
  const FramePtr frame = queue_.end_write();
  metrics_.queued_bytes.add(-static_cast<std::int64_t>(frame->payload.size()));
  if (ec) {
    // The socket is gone; the read side ends the session. Free what waits.
    metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.clear_waiting()));
    if (!expected_end(ec)) log::debug("write failed", {{"connection", connection_id_}, {"error", ec.message()}});
    return;
  }
  metrics_.frames_delivered.add();
  metrics_.bytes_sent.add(frame->payload.size());
  if (frame->kind == Frame::Kind::notification) {
    metrics_.delivery_latency.observe(std::chrono::steady_clock::now() - frame->created);
  }
  write_next();
}

template <class Layer>
bool WebSocketSession<Layer>::close(std::uint16_t code, std::string reason) {
  if (state_ != State::open) return false;
  state_ = State::closing;
  close_reason_.code = code;
  // A close frame holds at most 123 bytes of reason; cut on a UTF-8 boundary.
  std::size_t length = std::min(reason.size(), close_reason_.reason.max_size());
  while (length < reason.size() && length > 0 && (static_cast<unsigned char>(reason[length]) & 0xc0) == 0x80) --length;
  close_reason_.reason.assign(reason.data(), length);
  // Whatever happens to the peer, the connection is gone after close_timeout.
  close_timer_ = std::make_unique<asio::steady_timer>(ws_.get_executor(), ctx_.settings.close_timeout);
  close_timer_->async_wait([self = this->shared_from_this()](beast::error_code ec) {
    if (!ec) self->force_close();
  });
  if constexpr (kRawWrites) {
    if (queue_.empty()) send_close();  // otherwise on_writer_idle() once the writer drained it
  } else if (!queue_.in_flight()) {
    write_next();
  }
  return true;
}

template <class Layer>
void WebSocketSession<Layer>::send_close() {
  close_sent_ = true;
  ws_.async_close(close_reason_, [self = this->shared_from_this()](beast::error_code ec) {
    if (ec && !expected_end(ec))
      log::debug("close failed", {{"connection", self->connection_id_}, {"error", ec.message()}});
  });
}

template <class Layer>
void WebSocketSession<Layer>::force_close() {
  log::debug("close timed out, dropping connection", {{"connection", connection_id_}});
  beast::get_lowest_layer(ws_).close();
}

template <class Layer>
void WebSocketSession<Layer>::leave_shard() {
  if (close_timer_) close_timer_->cancel();
  state_ = State::closed;
  // Frames not yet started will never be written (a frame partly written
  // is finished first: the wire must stay well-formed).
  if constexpr (kRawWrites) metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.clear_waiting()));
  if (!registered_) return;
  if (expiry_) shard_.untrack_expiry(*expiry_);
  expiry_.reset();
  registered_ = false;
  shard_.remove(this, topics_);
  metrics_.connections_closed.add();
  log::debug("connection closed", {{"connection", connection_id_}, {"user", user_id_}});
}

template class WebSocketSession<DrainingStream>;
template class WebSocketSession<TlsStream>;
template WebSocketSession<DrainingStream>::WebSocketSession(beast::tcp_stream&&, Shard&, GatewayContext&,
                                                            UpgradeDecision&&, ConnectionLimiter::Slot);
template WebSocketSession<TlsStream>::WebSocketSession(TlsStream&&, Shard&, GatewayContext&, UpgradeDecision&&,
                                                       ConnectionLimiter::Slot);

}  // namespace notify::gateway
