#pragma once
// A ws:// connection after the upgrade, framed by the gateway itself on the
// bare TCP socket: an idle connection holds no buffer, no timer and no
// pending read operation beyond one readiness wait.
//
// Reading: a readiness wait (async_wait, no buffer) wakes the session, which
// reads with non-blocking recv() into its loop's shared buffer and feeds
// WsReader (see ws_reader.hpp); only a message split across reads is kept
// in the session until it completes.
// Writing: every frame (notifications, replies, pongs, pings, the close
// frame, the 101 response) goes through the FrameWriter, in order.
// Keep-alive: the shard's idle sweep calls idle_check(); after half the idle
// timeout without a byte from the client the session sends a ping, after
// all of it the connection is dropped, as Beast's keep_alive_pings did.
// Closing: RFC 6455's close handshake; after both close frames (or a
// protocol error and our close frame) the socket is shut down for writing
// and what the peer still sends is read and discarded until it closes (so
// it gets our close frame, not a reset), bounded in bytes and by
// --close-timeout.
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/client_session.hpp"
#include "gateway/frame_writer.hpp"
#include "gateway/ws_reader.hpp"

namespace notify::gateway {

class PlainWebSocketSession final : public ClientSession,
                                    public std::enable_shared_from_this<PlainWebSocketSession>,
                                    private FrameWriter::Owner,
                                    private WsReader::Sink {
 public:
  static constexpr std::size_t kDrainLimit = 64 << 20;

  PlainWebSocketSession(boost::asio::ip::tcp::socket&& socket, Shard& shard, GatewayContext& context,
                        UpgradeDecision&& decision, ConnectionLimiter::Slot slot);

  // Answers the upgrade request (its Sec-WebSocket-Key `key`, the selected
  // `subprotocol` if any), opens the session and starts reading; `early`
  // holds bytes the client sent right after its request.
  void run(std::string_view key, std::string_view subprotocol, std::string_view early);

  bool deliver(const FramePtr& frame) override {
    if (frame->needs_session()) return ClientSession::deliver(frame);   // floors, acks, the inbox
    if (state_ == State::open && writer_.try_send(frame)) return true;  // the fan-out's fast path
    return enqueue(frame);
  }
  void idle_check(std::int64_t now_ms) override;

 private:
  // ClientSession
  bool write_now(const FramePtr& frame) override { return writer_.try_send(frame); }
  bool writable() const override { return writer_.accepting(); }
  void schedule_write() override { writer_.schedule(); }
  void send_close_frame() override;
  void abort_connection() override { end(); }
  std::shared_ptr<ClientSession> keep_alive() override { return shared_from_this(); }
  // FrameWriter::Owner
  std::shared_ptr<void> writer_keep_alive() override { return shared_from_this(); }
  void on_writer_idle() override;
  // WsReader::Sink
  void on_message(bool text, std::string_view payload) override { on_client_message(text, payload); }
  void on_ping(std::string_view payload) override;
  void on_close(std::uint16_t code, std::string_view reason) override;

  void wait_readable();
  void on_readable(boost::system::error_code ec);
  // Feeds bytes read from the socket; false once the session ended.
  bool consume(char* data, std::size_t size);
  void fail_protocol();
  // Sends a ping or pong like any frame (queue limits and policy, only while
  // open), or a close frame, which is never refused or dropped.
  void send_wire(const FramePtr& frame);
  void write_close(std::uint16_t code, std::string_view reason);
  // Both close frames are out (or the reader failed): shut down our side.
  void maybe_shutdown();
  // The connection is over: closes the socket.
  void end();

  // What a delivery touches first (ClientSession's head, then these).
  FrameWriter writer_;
  boost::asio::ip::tcp::socket socket_;
  std::int64_t last_read_ms_ = 0;  // steady clock, when the client last sent anything
  std::uint32_t drained_ = 0;      // bytes discarded after the close handshake or a protocol error
  bool ping_sent_ = false;
  bool peer_closed_ = false;
  bool shut_down_ = false;
  bool ended_ = false;
  WsReader reader_;
};

}  // namespace notify::gateway
