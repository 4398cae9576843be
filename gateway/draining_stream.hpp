#pragma once
// beast::tcp_stream with a WebSocket teardown that drains what the peer is
// still sending before closing the socket.
//
// Why: closing a TCP socket with unread data makes Linux send a reset, and a
// browser that gets the reset drops the close frame it already received
// (close code 1006 instead of, say, 1009). Beast 1.81's own TCP teardown
// stops after one read (its loop tests the wrong byte count), so a client
// cut off mid-frame (oversized frame, abuse) saw 1006. This teardown reads
// and discards up to kDrainLimit bytes for up to kDrainTimeout, then closes;
// the time limit is what bounds a peer that never stops sending.
#include <array>
#include <boost/asio/compose.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <chrono>
#include <memory>

namespace notify::gateway {

class DrainingStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  static constexpr std::size_t kDrainLimit = 64 << 20;
  static constexpr std::chrono::seconds kDrainTimeout{3};

  explicit DrainingStream(boost::beast::tcp_stream&& stream) : next_(std::move(stream)) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  boost::beast::tcp_stream& next_layer() noexcept { return next_; }
  const boost::beast::tcp_stream& next_layer() const noexcept { return next_; }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return next_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return next_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  boost::beast::tcp_stream next_;
};

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
