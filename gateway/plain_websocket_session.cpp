#include "gateway/plain_websocket_session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.hpp"
#include "gateway/ws_handshake.hpp"

namespace notify::gateway {

namespace {

constexpr std::size_t kReadBufferBytes = 64 * 1024;
// Reads per wake-up before the session yields to the rest of its loop.
constexpr int kMaxReadsPerWake = 4;

// One read buffer per event loop thread, shared by all its connections: a
// session uses it only between recv() and the end of feeding what it read.
char* loop_read_buffer() {
  thread_local std::unique_ptr<char[]> buffer(new char[kReadBufferBytes]);
  return buffer.get();
}

const FramePtr& ping_frame() {
  static const FramePtr frame = make_protocol_frame(opcode::ping, {});
  return frame;
}

}  // namespace

PlainWebSocketSession::PlainWebSocketSession(boost::asio::ip::tcp::socket&& socket, Shard& shard,
                                             GatewayContext& context, UpgradeDecision&& decision,
                                             ConnectionLimiter::Slot slot)
    : ClientSession(shard, context, std::move(decision), std::move(slot)),
      writer_(socket_, queue_, shard.metrics(), static_cast<FrameWriter::Owner&>(*this), &shard.fanout_clock()),
      socket_(std::move(socket)),
      reader_(context.settings.max_message_bytes) {
  prefetch_target_ = writer_.socket_object();
}

void PlainWebSocketSession::run(std::string_view key, std::string_view subprotocol, std::string_view early) {
  last_read_ms_ = steady_millis();
  // The 101 response and the welcome frame leave with one send(), and the
  // client reads them at once.
  std::string welcome;
  opened(&welcome);
  std::string bytes = websocket_accept_response(key, subprotocol);
  if (welcome.empty()) {
    // The welcome waits for history (Redis): it follows as a reply.
    enqueue(std::make_shared<const Frame>(Frame::Verbatim{}, std::move(bytes)));
  } else {
    unsigned char header[kMaxFrameHeaderBytes];
    bytes.append(reinterpret_cast<const char*>(header), encode_frame_header(welcome.size(), header));
    bytes.append(welcome);
    // Counted as a delivered frame (the welcome) once written, like any reply.
    enqueue(std::make_shared<const Frame>(Frame::Verbatim{}, std::move(bytes), Frame::Kind::control, welcome.size()));
  }
  if (!writer_.accepting()) {  // the client is already gone
    end();
    return;
  }
  close_if_draining();
  if (!early.empty()) {
    // Bytes pipelined after the request: frames like any others.
    std::string copy(early);
    if (!consume(copy.data(), copy.size())) return;
  }
  wait_readable();
}

void PlainWebSocketSession::wait_readable() {
  socket_.async_wait(boost::asio::socket_base::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
}

void PlainWebSocketSession::on_readable(boost::system::error_code ec) {
  if (ec || ended_) {
    end();  // the socket was closed (close timeout, idle timeout, shutdown)
    return;
  }
  char* buffer = loop_read_buffer();
  for (int reads = 0; reads < kMaxReadsPerWake; ++reads) {
    const ssize_t n = ::recv(socket_.native_handle(), buffer, kReadBufferBytes, MSG_DONTWAIT);
    if (n > 0) {
      if (!consume(buffer, static_cast<std::size_t>(n))) return;
      if (static_cast<std::size_t>(n) < kReadBufferBytes) break;  // most likely all there was
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // End of stream (the peer closed) or a socket error.
    if (n < 0 && errno != ECONNRESET) {
      log::debug("connection read failed", {{"connection", connection_id()}, {"error", std::strerror(errno)}});
    }
    end();
    return;
  }
  wait_readable();
}

bool PlainWebSocketSession::consume(char* data, std::size_t size) {
  last_read_ms_ = steady_millis();
  ping_sent_ = false;
  if (reader_.closed() || reader_.failed()) {
    // After the close handshake or a protocol error: discard, within limits.
    drained_ += static_cast<std::uint32_t>(std::min(size, kDrainLimit));
    if (drained_ >= kDrainLimit) {
      end();
      return false;
    }
    return true;
  }
  if (!reader_.feed(data, size, *this)) fail_protocol();
  return !ended_;
}

void PlainWebSocketSession::fail_protocol() {
  const WsReader::Failure& failure = reader_.failure();
  if (failure.code == 1009) {
    ctx_.metrics.limit_hit(Limit::message_size);
  } else {
    log::debug("client broke the WebSocket protocol",
               {{"connection", connection_id()}, {"close_code", failure.code}, {"error", failure.reason}});
  }
  leave_shard();  // takes nothing more
  if (!close_sent_) write_close(failure.code, failure.reason);
  arm_close_timer();
  maybe_shutdown();
}

void PlainWebSocketSession::on_ping(std::string_view payload) {
  if (!close_sent_) send_wire(make_protocol_frame(opcode::pong, payload));
}

void PlainWebSocketSession::on_close(std::uint16_t code, std::string_view) {
  peer_closed_ = true;
  on_client_close();
  // Answer with the same code (none if the peer sent none).
  if (!close_sent_) write_close(code, {});
  arm_close_timer();
  maybe_shutdown();
}

void PlainWebSocketSession::send_close_frame() { write_close(closing_->code, closing_->reason); }

void PlainWebSocketSession::write_close(std::uint16_t code, std::string_view reason) {
  close_sent_ = true;
  std::string payload;
  if (code != WsReader::kNoStatus) {
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xff));
    payload.append(reason.substr(0, 123));
  }
  send_wire(make_protocol_frame(opcode::close, payload));
}

void PlainWebSocketSession::send_wire(const FramePtr& frame) {
  const bool close_frame = (static_cast<unsigned char>(frame->wire[0]) & 0x0f) == opcode::close;
  if (!close_frame) {
    // Pings and pongs are frames like the others: under the queue's limits
    // and its slow-consumer policy (a client that pings without reading ends
    // up closed like one that doesn't read notifications); none once the
    // connection is closing.
    if (state_ == State::open) enqueue(frame);
    return;
  }
  if (writer_.try_send(frame)) {
    if (queue_.empty()) maybe_shutdown();
    return;
  }
  if (!writer_.accepting()) return;
  queue_.push_protocol(frame);  // never refused or dropped: the peer must get it
  metrics_.queued_bytes.add(static_cast<std::int64_t>(frame->payload.size()));
  writer_.schedule();
}

void PlainWebSocketSession::on_writer_idle() {
  on_queue_empty();
  maybe_shutdown();
}

void PlainWebSocketSession::maybe_shutdown() {
  if (shut_down_ || ended_ || !close_sent_ || !queue_.empty()) return;
  if (!peer_closed_ && !reader_.failed()) return;  // wait for the peer's close frame
  shut_down_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(boost::asio::socket_base::shutdown_send, ignored);
}

void PlainWebSocketSession::idle_check(std::int64_t now_ms) {
  if (ended_) return;
  const std::int64_t idle = now_ms - last_read_ms_;
  const std::int64_t timeout = ctx_.settings.idle_timeout.count();
  if (idle >= timeout) {
    log::debug("idle timeout, dropping connection", {{"connection", connection_id()}});
    end();
    return;
  }
  if (idle >= timeout / 2 && !ping_sent_ && !close_sent_) {
    ping_sent_ = true;
    send_wire(ping_frame());
  }
}

void PlainWebSocketSession::end() {
  if (ended_) return;
  ended_ = true;
  leave_shard();
  cancel_close_timer();
  boost::system::error_code ignored;
  socket_.close(ignored);  // the pending waits end with operation_aborted
}

}  // namespace notify::gateway
