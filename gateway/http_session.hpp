#pragma once
// One HTTP connection before (or instead of) a WebSocket upgrade. On the
// gateway port it serves the page, /healthz, /readyz, /config.json and hands
// /ws upgrades to a WebSocketSession; on the metrics port it serves
// /metrics. Requests are read with a header limit and a deadline
// (slowloris). Stream is beast::tcp_stream, or TlsStream with --tls-cert.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>

#include "gateway/gateway_context.hpp"
#include "gateway/shard.hpp"
#include "gateway/tls.hpp"

namespace notify::gateway {

enum class HttpRole { gateway, metrics };

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  HttpSession(boost::asio::ip::tcp::socket&& socket, Shard& shard, GatewayContext& context, HttpRole role);
  void run();

 private:
  void on_handshake(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void route(Request&& request);
  void route_gateway(Request&& request);
  void route_metrics(const Request& request);
  void upgrade(Request&& request);
  void send(Response&& response);
  void count_failure(HandshakeFailure reason);
  void fail_handshake(HandshakeFailure reason, boost::beast::http::status status, std::string message);
  void on_write(bool close, boost::beast::error_code ec, std::size_t bytes);
  void close_connection();

  boost::asio::ip::address peer_;
  Stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<Response> response_;
  Shard& shard_;
  GatewayContext& ctx_;
  HttpRole role_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
};

}  // namespace notify::gateway
