#include "gateway/tls_websocket_session.hpp"

#include <boost/beast/websocket/ssl.hpp>

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

TlsWebSocketSession::TlsWebSocketSession(TlsStream&& stream, Shard& shard, GatewayContext& context,
                                         UpgradeDecision&& decision, ConnectionLimiter::Slot slot)
    : ClientSession(shard, context, std::move(decision), std::move(slot)), ws_(std::move(stream)) {}

void TlsWebSocketSession::run(Request request, std::string subprotocol) {
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
    if (kind == websocket::frame_type::close) on_client_close();  // Beast answers the close itself
  });
  ws_.auto_fragment(false);
  ws_.async_accept(request, beast::bind_front_handler(&TlsWebSocketSession::on_accept, shared_from_this()));
}

void TlsWebSocketSession::on_accept(beast::error_code ec) {
  if (ec) {
    ctx_.metrics.handshake_failed(HandshakeFailure::upgrade_failed);
    log::debug("websocket upgrade failed", {{"error", ec.message()}});
    state_ = State::closed;
    return;
  }
  opened();
  do_read();
}

void TlsWebSocketSession::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&TlsWebSocketSession::on_read, shared_from_this()));
}

void TlsWebSocketSession::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    // Beast has already answered an oversized frame with close 1009 and a
    // client's close frame with its echo; anything else is a dead peer.
    if (ec == websocket::error::message_too_big) ctx_.metrics.limit_hit(Limit::message_size);
    if (!expected_end(ec) && ec != websocket::error::message_too_big) {
      log::debug("connection read failed", {{"connection", connection_id()}, {"error", ec.message()}});
    }
    leave_shard();
    cancel_close_timer();
    return;
  }
  const auto data = buffer_.cdata();
  on_client_message(ws_.got_text(), std::string_view(static_cast<const char*>(data.data()), data.size()));
  buffer_.consume(buffer_.size());
  // Give back the memory of a large frame; idle connections stay small.
  if (buffer_.capacity() > 4096) buffer_.shrink_to_fit();
  do_read();  // also while closing: Beast needs the read to see the peer's close frame
}

void TlsWebSocketSession::write_next() {
  if (state_ == State::closed) {
    metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.clear_waiting()));
    return;
  }
  if (queue_.empty()) {
    on_queue_empty();
    return;
  }
  const FramePtr& frame = queue_.begin_write();
  ws_.text(true);
  ws_.async_write(asio::buffer(frame->payload),
                  beast::bind_front_handler(&TlsWebSocketSession::on_write, shared_from_this()));
}

void TlsWebSocketSession::on_write(beast::error_code ec, std::size_t) {
  const FramePtr frame = queue_.end_write();
  metrics_.queued_bytes.add(-static_cast<std::int64_t>(frame->payload.size()));
  if (ec) {
    // The socket is gone; the read side ends the session. Free what waits.
    metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.clear_waiting()));
    if (!expected_end(ec)) log::debug("write failed", {{"connection", connection_id()}, {"error", ec.message()}});
    return;
  }
  metrics_.frames_delivered.add();
  metrics_.bytes_sent.add(frame->payload.size());
  if (frame->kind == Frame::Kind::notification) {
    metrics_.delivery_latency.observe(std::chrono::steady_clock::now() - frame->created);
  }
  write_next();
}

void TlsWebSocketSession::send_close_frame() {
  close_sent_ = true;
  websocket::close_reason reason;
  reason.code = closing_->code;
  reason.reason.assign(closing_->reason.data(), closing_->reason.size());
  ws_.async_close(reason, [self = shared_from_this()](beast::error_code ec) {
    if (ec && !expected_end(ec))
      log::debug("close failed", {{"connection", self->connection_id()}, {"error", ec.message()}});
  });
}

void TlsWebSocketSession::abort_connection() { beast::get_lowest_layer(ws_).close(); }

}  // namespace notify::gateway
