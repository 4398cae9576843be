#pragma once
// One WebSocket connection: reads client frames, answers them, and writes the
// frames the hub delivers. Over plain TCP a FrameWriter writes the frames'
// prebuilt wire bytes straight to the socket (Beast keeps the read side, the
// control frames and the close handshake); over TLS Beast writes them, one
// write in flight at a time. Lives on its shard's event loop; every member
// function runs there.
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "gateway/connection_limiter.hpp"
#include "gateway/draining_stream.hpp"
#include "gateway/frame_writer.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/protocol.hpp"
#include "gateway/send_queue.hpp"
#include "gateway/shard.hpp"
#include "gateway/subscriber.hpp"
#include "gateway/tls.hpp"
#include "gateway/upgrade_policy.hpp"

namespace notify::gateway {

// Layer: DrainingStream for ws://, TlsStream for wss:// (--tls-cert).
template <class Layer>
class WebSocketSession : public std::enable_shared_from_this<WebSocketSession<Layer>>,
                         public Subscriber,
                         private FrameWriter::Owner {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  // `stream` is the HTTP session's stream (tcp_stream or TlsStream);
  // `decision` is an accepted UpgradeDecision: who connected and what they
  // may subscribe to; `slot` is the connection's place under the limits.
  template <class Stream>
  WebSocketSession(Stream&& stream, Shard& shard, GatewayContext& context, UpgradeDecision&& decision,
                   ConnectionLimiter::Slot slot);
  ~WebSocketSession() override;

  // Completes the upgrade for a request the HTTP session already read,
  // selecting `subprotocol` if not empty.
  void run(Request request, std::string subprotocol);

  std::string_view user_id() const override { return user_id_; }
  bool deliver(const FramePtr& frame) override;
  bool close(std::uint16_t code, std::string reason) override;
  void expire() override;

 private:
  enum class State : std::uint8_t { handshaking, open, closing, closed };

  // Plain TCP writes raw frames; TLS keeps Beast's write path.
  static constexpr bool kRawWrites = std::is_same_v<Layer, DrainingStream>;
  struct NoFrameWriter {
    template <class... Args>
    explicit NoFrameWriter(Args&&...) {}
  };

  std::shared_ptr<void> writer_keep_alive() override { return this->shared_from_this(); }
  void on_writer_idle() override;

  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void handle_text(std::string_view text);
  void handle_message(protocol::Request& request);
  void handle_subscribe(protocol::Request& request);
  void handle_refresh(protocol::Request& request);
  bool may_subscribe(std::string_view topic) const;
  bool take_rate_token();
  void track_expiry();
  void reply(std::string payload);
  void reject(const protocol::Error& error);
  bool enqueue(const FramePtr& frame);
  void write_next();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void send_close();
  void force_close();
  void leave_shard();

  // What a delivery touches comes first, on as few cache lines as possible.
  boost::beast::websocket::stream<Layer> ws_;
  State state_ = State::handshaking;
  bool close_sent_ = false;
  bool registered_ = false;
  SendQueue queue_;
  std::conditional_t<kRawWrites, FrameWriter, NoFrameWriter> writer_;
  LoopMetrics& metrics_;
  Shard& shard_;
  GatewayContext& ctx_;
  boost::beast::flat_buffer buffer_;
  std::string user_id_;
  std::string connection_id_;
  std::vector<std::string> topics_;
  std::int64_t expires_at_;  // the token's exp, unix seconds; 0 = never
  bool all_topics_;          // development identity
  auth::TopicGrants granted_topics_;
  ConnectionLimiter::Slot slot_;
  std::optional<Shard::ExpiryHandle> expiry_;
  double rate_tokens_;  // token bucket for client frames
  std::chrono::steady_clock::time_point rate_refilled_;
  boost::beast::websocket::close_reason close_reason_;
  std::unique_ptr<boost::asio::steady_timer> close_timer_;  // only while closing
  std::size_t invalid_messages_ = 0;
};

}  // namespace notify::gateway
