#pragma once
// Accepts TCP connections on one event loop and starts an HttpSession for
// each. The gateway port has one Listener per loop, all bound to the same
// port with SO_REUSEPORT so the kernel spreads connections over the loops.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "gateway/http_session.hpp"

namespace notify::gateway {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Binds and listens; throws std::runtime_error naming the address on failure.
  Listener(Shard& shard, GatewayContext& context, HttpRole role, const boost::asio::ip::tcp::endpoint& endpoint,
           bool reuse_port);

  std::uint16_t port() const { return port_; }
  void start();
  // Stops accepting; safe from any thread.
  void stop();

 private:
  void do_accept();
  void on_accept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);

  Shard& shard_;
  GatewayContext& ctx_;
  HttpRole role_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::uint16_t port_ = 0;
};

// Fails with a clear message when `endpoint` is taken, even by a process that
// also uses SO_REUSEPORT (which would otherwise silently share our port).
void ensure_port_free(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace notify::gateway
