#pragma once
// beast::tcp_stream with a WebSocket teardown that drains what the peer is
// still sending before closing the socket, and the one place where Beast's
// writes meet the session's raw frame writes (WireGate, FrameWriter).
//
// Why: closing a TCP socket with unread data makes Linux send a reset, and a
// browser that gets the reset drops the close frame it already received
// (close code 1006 instead of, say, 1009). Beast 1.81's own TCP teardown
// stops after one read (its loop tests the wrong byte count), so a client
// cut off mid-frame (oversized frame, abuse) saw 1006. This teardown reads
// and discards up to kDrainLimit bytes for up to kDrainTimeout, then closes;
// the time limit is what bounds a peer that never stops sending.
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

#include "gateway/frame_boundary.hpp"

namespace notify::gateway {

// What the two writers of one socket, Beast and the raw writer, know of
// each other. It lives with the raw writer, whose fast path reads
// `beast_holds` on every delivery; DrainingStream keeps the Beast side.
struct WireGate {
  // Raw frames may not start: Beast is writing, waits to write, is inside a
  // fragmented message, or has begun its close frame (no data frame may
  // follow one, RFC 6455 5.5.1).
  bool beast_holds = false;
  bool raw_partial = false;  // a raw frame is partly on the wire: Beast's writes wait
  bool beast_writing = false;
  std::uint32_t beast_waiting = 0;
  FrameBoundary beast;  // where Beast's output stands

  void update() noexcept {
    beast_holds = beast_writing || beast_waiting > 0 || !beast.at_message_boundary() || beast.close_started();
  }
};

class DrainingStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  static constexpr std::size_t kDrainLimit = 64 << 20;
  static constexpr std::chrono::seconds kDrainTimeout{3};

  // Writes complete, pre-framed WebSocket frames to the socket itself, next
  // to Beast (see FrameWriter), told through on_wire_free() when Beast's
  // output is back at a message boundary, so it can resume.
  class RawWriter {
   public:
    virtual void on_wire_free() = 0;

   protected:
    ~RawWriter() = default;
  };

  explicit DrainingStream(boost::beast::tcp_stream&& stream) : next_(std::move(stream)) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  boost::beast::tcp_stream& next_layer() noexcept { return next_; }
  const boost::beast::tcp_stream& next_layer() const noexcept { return next_; }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return next_.async_read_some(buffers, std::forward<Token>(token));
  }

  // Beast's writes. Before attach() (the HTTP upgrade response) they go
  // straight to the socket. After it they are WebSocket frames (pongs,
  // close frames, idle pings, messages), and each one first waits until no
  // raw frame is partly written; from its start until Beast's output is
  // back at a message boundary, gate.beast_holds keeps raw frames back.
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token);

  // From now on Beast writes frames, and `writer` writes raw frames too,
  // coordinated through `gate`. Call once the WebSocket handshake completed
  // (no Beast write pending); both must outlive the stream's operations.
  void attach(WireGate& gate, RawWriter& writer) noexcept {
    gate_ = &gate;
    raw_ = &writer;
  }

  // The raw writer has a frame partly on the wire (true) or finished or
  // abandoned it (false); a waiting Beast write proceeds after the latter.
  void set_raw_partial(bool partial) {
    gate_->raw_partial = partial;
    if (!partial && gate_->beast_waiting > 0 && wake_) wake_->cancel();
  }

 private:
  template <class Buffers>
  class BeastWriteOp;

  boost::asio::steady_timer& wake_timer() {
    if (!wake_) {
      wake_ = std::make_unique<boost::asio::steady_timer>(next_.get_executor());
      wake_->expires_at(boost::asio::steady_timer::time_point::max());
    }
    return *wake_;
  }

  boost::beast::tcp_stream next_;
  WireGate* gate_ = nullptr;  // null until attach()
  RawWriter* raw_ = nullptr;
  std::unique_ptr<boost::asio::steady_timer> wake_;  // Beast writes waiting for a raw frame to end
};

template <class Buffers>
class DrainingStream::BeastWriteOp {
 public:
  BeastWriteOp(DrainingStream& stream, const Buffers& buffers) : stream_(stream), buffers_(buffers) {}

  template <class Self>
  void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t bytes = 0) {
    DrainingStream& s = stream_;
    switch (state_) {
      case State::waiting:
        --s.gate_->beast_waiting;
        [[fallthrough]];
      case State::starting:
        if (s.gate_ == nullptr) {  // the HTTP upgrade response: no frames, no raw writer yet
          state_ = State::passthrough;
          s.next_.async_write_some(buffers_, std::move(self));
          return;
        }
        if (s.gate_->raw_partial) {
          // Finish the raw frame first; set_raw_partial(false) wakes us.
          ++s.gate_->beast_waiting;
          s.gate_->update();
          state_ = State::waiting;
          s.wake_timer().async_wait(std::move(self));
          return;
        }
        state_ = State::writing;
        s.gate_->beast_writing = true;
        s.gate_->update();
        s.next_.async_write_some(buffers_, std::move(self));
        return;
      case State::writing:
        break;
      case State::passthrough:
        self.complete(ec, bytes);
        return;
    }
    WireGate& gate = *s.gate_;
    gate.beast_writing = false;
    std::size_t left = bytes;
    for (auto it = boost::asio::buffer_sequence_begin(buffers_);
         left > 0 && it != boost::asio::buffer_sequence_end(buffers_); ++it) {
      const boost::asio::const_buffer b(*it);
      const std::size_t n = b.size() < left ? b.size() : left;
      gate.beast.advance(static_cast<const unsigned char*>(b.data()), n);
      left -= n;
    }
    gate.update();
    // Let the raw writer resume before Beast's handler runs: afterwards the
    // session may be gone.
    if (!gate.beast_holds) s.raw_->on_wire_free();
    self.complete(ec, bytes);
  }

 private:
  enum class State { starting, waiting, writing, passthrough };

  DrainingStream& stream_;
  Buffers buffers_;
  State state_ = State::starting;
};

template <class Buffers, class Token>
auto DrainingStream::async_write_some(const Buffers& buffers, Token&& token) {
  return boost::asio::async_compose<Token, void(boost::beast::error_code, std::size_t)>(
      BeastWriteOp<Buffers>(*this, buffers), token, next_);
}

namespace detail {

class DrainOp {
 public:
  explicit DrainOp(boost::beast::tcp_stream& stream)
      : stream_(stream), buffer_(std::make_unique<std::array<char, 4096>>()) {}

  template <class Self>
  void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t bytes = 0) {
    if (!started_) {
      started_ = true;
      boost::beast::error_code ignored;
      stream_.socket().shutdown(boost::asio::socket_base::shutdown_send, ignored);
      stream_.expires_after(DrainingStream::kDrainTimeout);
      stream_.async_read_some(boost::asio::buffer(*buffer_), std::move(self));
      return;
    }
    drained_ += bytes;
    if (!ec && drained_ < DrainingStream::kDrainLimit) {
      stream_.async_read_some(boost::asio::buffer(*buffer_), std::move(self));
      return;
    }
    boost::beast::error_code ignored;
    stream_.socket().close(ignored);
    // End of stream, limit or timeout all end a drain normally.
    self.complete(ec == boost::asio::error::operation_aborted ? ec : boost::beast::error_code{});
  }

 private:
  boost::beast::tcp_stream& stream_;
  std::unique_ptr<std::array<char, 4096>> buffer_;
  std::size_t drained_ = 0;
  bool started_ = false;
};

}  // namespace detail

// Sends FIN, reads and discards what the peer still sends (bounded by
// kDrainLimit and kDrainTimeout), then closes: the peer gets our last bytes
// instead of a reset. Used after HTTP error responses too.
template <class Handler>
void async_drain_and_close(boost::beast::tcp_stream& stream, Handler&& handler) {
  boost::asio::async_compose<Handler, void(boost::beast::error_code)>(detail::DrainOp(stream), handler, stream);
}

// Found by argument-dependent lookup from websocket::stream<DrainingStream>.
template <class Handler>
void async_teardown(boost::beast::role_type, DrainingStream& stream, Handler&& handler) {
  async_drain_and_close(stream.next_layer(), std::forward<Handler>(handler));
}

inline void teardown(boost::beast::role_type, DrainingStream& stream, boost::beast::error_code& ec) {
  boost::beast::error_code ignored;
  stream.next_layer().socket().shutdown(boost::asio::socket_base::shutdown_send, ignored);
  stream.next_layer().socket().close(ec);
}

}  // namespace notify::gateway
