#include "gateway/listener.hpp"

#include <sys/socket.h>

#include <boost/asio/detail/socket_option.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>

#include "common/log.hpp"

namespace notify::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using reuse_port_option = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

std::string describe(const tcp::endpoint& ep) { return ep.address().to_string() + ":" + std::to_string(ep.port()); }

}  // namespace

void ensure_port_free(const tcp::endpoint& endpoint) {
  if (endpoint.port() == 0) return;
  asio::io_context probe_context;
  tcp::acceptor probe(probe_context);
  boost::system::error_code ec;
  probe.open(endpoint.protocol(), ec);
  if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) probe.bind(endpoint, ec);
  if (ec) throw std::runtime_error("cannot listen on " + describe(endpoint) + ": " + ec.message());
}

Listener::Listener(Shard& shard, GatewayContext& context, HttpRole role, const tcp::endpoint& endpoint, bool reuse_port)
    : shard_(shard), ctx_(context), role_(role), acceptor_(shard.context()), retry_timer_(shard.context()) {
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && reuse_port) acceptor_.set_option(reuse_port_option(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + describe(endpoint) + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
}

void Listener::start() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->do_accept(); });
}

void Listener::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->retry_timer_.cancel();
    self->acceptor_.close(ignored);
  });
}

void Listener::do_accept() {
  acceptor_.async_accept(shard_.context(), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
}

void Listener::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // Out of descriptors or memory: say so, back off briefly instead of spinning.
    log::warn("accept failed, retrying in 100 ms", {{"port", port_}, {"error", ec.message()}});
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec) self->do_accept();
    });
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  if (role_ == HttpRole::gateway && ctx_.tls != nullptr) {
    std::make_shared<HttpSession<TlsStream>>(std::move(socket), shard_, ctx_, role_)->run();
  } else {
    std::make_shared<HttpSession<beast::tcp_stream>>(std::move(socket), shard_, ctx_, role_)->run();
  }
  do_accept();
}

}  // namespace notify::gateway
