#pragma once
// Closing a TCP connection without a reset: send FIN, read and discard what
// the peer still sends, then close. Closing a socket with unread data makes
// Linux send a reset, and a client that gets the reset may drop the last
// response it already received. Used after HTTP error responses; ws://
// sessions do the same after the close handshake (PlainWebSocketSession).
// The drain stops at kDrainLimit bytes or after kDrainTimeout, the time
// limit being what bounds a peer that never stops sending.
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

namespace notify::gateway {

inline constexpr std::size_t kDrainLimit = 64 << 20;
inline constexpr std::chrono::seconds kDrainTimeout{3};

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
      stream_.expires_after(kDrainTimeout);
      stream_.async_read_some(boost::asio::buffer(*buffer_), std::move(self));
      return;
    }
    drained_ += bytes;
    if (!ec && drained_ < kDrainLimit) {
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

}  // namespace notify::gateway
