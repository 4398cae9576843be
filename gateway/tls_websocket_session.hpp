#pragma once
// A wss:// connection after the upgrade: Beast's WebSocket stream over TLS
// reads the client's frames, answers control frames and runs the close
// handshake and the keep-alive pings; queued frames are written one Beast
// async_write at a time. The client protocol is ClientSession's.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <memory>
#include <string>

#include "gateway/client_session.hpp"
#include "gateway/tls.hpp"

namespace notify::gateway {

class TlsWebSocketSession final : public ClientSession, public std::enable_shared_from_this<TlsWebSocketSession> {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  TlsWebSocketSession(TlsStream&& stream, Shard& shard, GatewayContext& context, UpgradeDecision&& decision,
                      ConnectionLimiter::Slot slot);

  // Completes the upgrade for a request the HTTP session already read,
  // selecting `subprotocol` if not empty.
  void run(Request request, std::string subprotocol);

 private:
  // ClientSession
  bool write_now(const FramePtr&) override { return false; }
  bool writable() const override { return true; }
  void schedule_write() override {
    if (!queue_.in_flight()) write_next();
  }
  void send_close_frame() override;
  void abort_connection() override;
  std::shared_ptr<ClientSession> keep_alive() override { return shared_from_this(); }

  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void write_next();
  void on_write(boost::beast::error_code ec, std::size_t bytes);

  boost::beast::websocket::stream<TlsStream> ws_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace notify::gateway
