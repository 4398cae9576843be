#include "gateway/http_session.hpp"

#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>

#include "common/log.hpp"
#include "common/validation.hpp"
#include "gateway/draining_stream.hpp"
#include "gateway/plain_websocket_session.hpp"
#include "gateway/tls_websocket_session.hpp"
#include "gateway/upgrade_policy.hpp"
#include "gateway/ws_handshake.hpp"

// The browser page, compiled in from gateway/static/index.html.
extern const std::string_view notify_index_html;
extern const std::string_view notify_client_js;

namespace notify::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxBodyBytes = 16 * 1024;  // no endpoint takes a body

asio::ip::address peer_address(const asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  return ec ? asio::ip::address() : endpoint.address();
}

bool is_parse_error(beast::error_code ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

template <class Stream>
Stream make_stream(asio::ip::tcp::socket&& socket, GatewayContext& context) {
  if constexpr (is_tls_v<Stream>) {
    return Stream(beast::tcp_stream(std::move(socket)), *context.tls);
  } else {
    return Stream(std::move(socket));
  }
}

}  // namespace

template <class Stream>
HttpSession<Stream>::HttpSession(asio::ip::tcp::socket&& socket, Shard& shard, GatewayContext& context, HttpRole role)
    : peer_(peer_address(socket)),
      stream_(make_stream<Stream>(std::move(socket), context)),
      // Beast bounds the head and the body but not chunk extensions or
      // trailers: the buffer's own limit bounds whatever a client sends.
      buffer_(context.settings.max_header_bytes + kMaxBodyBytes + 1024),
      shard_(shard),
      ctx_(context),
      role_(role) {}

template <class Stream>
void HttpSession<Stream>::run() {
  if constexpr (is_tls_v<Stream>) {
    beast::get_lowest_layer(stream_).expires_after(ctx_.settings.handshake_timeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            beast::bind_front_handler(&HttpSession::on_handshake, this->shared_from_this()));
  } else {
    do_read();
  }
}

template <class Stream>
void HttpSession<Stream>::on_handshake(beast::error_code ec) {
  if (ec) {
    // Plain HTTP on a TLS port, an untrusting client, a scanner: nothing to answer.
    if (ec != beast::error::timeout) count_failure(HandshakeFailure::bad_request);
    if (ec == beast::error::timeout) count_failure(HandshakeFailure::timeout);
    return;
  }
  do_read();
}

template <class Stream>
void HttpSession<Stream>::count_failure(HandshakeFailure reason) {
  // Only the gateway port takes upgrades; a bad scrape is not a failed handshake.
  if (role_ != HttpRole::gateway) return;
  ctx_.metrics.handshake_failed(reason);
  if (reason == HandshakeFailure::timeout) ctx_.metrics.limit_hit(Limit::handshake_timeout);
  if (reason == HandshakeFailure::header_too_large) ctx_.metrics.limit_hit(Limit::header_size);
}

template <class Stream>
void HttpSession<Stream>::do_read() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(ctx_.settings.max_header_bytes));
  parser_->body_limit(kMaxBodyBytes);
  beast::get_lowest_layer(stream_).expires_after(ctx_.settings.handshake_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {  // closed between requests: normal
    close_connection();
    return;
  }
  if (ec == beast::error::timeout) {
    // An idle keep-alive connection timing out is normal; a request that
    // started and never finished is a slow (or slowloris) client.
    if (parser_->got_some() || buffer_.size() > 0) count_failure(HandshakeFailure::timeout);
    return;
  }
  if (ec == http::error::header_limit) {
    fail_handshake(HandshakeFailure::header_too_large, http::status::request_header_fields_too_large,
                   "request header fields too large");
    return;
  }
  if (ec == http::error::body_limit) {
    fail_handshake(HandshakeFailure::bad_request, http::status::payload_too_large, "request body too large");
    return;
  }
  if (ec == http::error::partial_message) {
    count_failure(HandshakeFailure::bad_request);
    return;
  }
  if (ec && is_parse_error(ec)) {
    fail_handshake(HandshakeFailure::bad_request, http::status::bad_request, "malformed HTTP request");
    return;
  }
  if (ec) return;  // socket error: nobody to answer
  route(parser_->release());
}

template <class Stream>
void HttpSession<Stream>::route(Request&& request) {
  version_ = request.version();
  keep_alive_ = request.keep_alive();
  if (role_ == HttpRole::metrics) {
    route_metrics(request);
  } else {
    route_gateway(std::move(request));
  }
}

namespace {

using Response = http::response<http::string_body>;

Response text_response(http::status status, std::string body, std::string_view content_type) {
  Response res{status, 11};
  res.set(http::field::server, "notify-gateway");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.body() = std::move(body);
  return res;
}

}  // namespace

template <class Stream>
void HttpSession<Stream>::route_gateway(Request&& request) {
  const auto target = boost::urls::parse_origin_form(request.target());
  if (!target) {
    fail_handshake(HandshakeFailure::bad_request, http::status::bad_request, "malformed request target");
    return;
  }
  const std::string path = target->path();

  if (beast::websocket::is_upgrade(request)) {
    if (path != "/ws") {
      fail_handshake(HandshakeFailure::bad_request, http::status::not_found, "WebSocket upgrades are served on /ws");
      return;
    }
    upgrade(std::move(request));
    return;
  }

  const bool head = request.method() == http::verb::head;
  if (request.method() != http::verb::get && !head) {
    auto res = text_response(http::status::method_not_allowed, "method not allowed\n", "text/plain; charset=utf-8");
    res.set(http::field::allow, "GET, HEAD");
    send(std::move(res));
    return;
  }
  Response res;
  if (path == "/" || path == "/index.html") {
    res = text_response(http::status::ok, std::string(notify_index_html), "text/html; charset=utf-8");
  } else if (path == "/notify-client.js") {
    // The browser client library (clients/js/), which the page imports.
    res = text_response(http::status::ok, std::string(notify_client_js), "text/javascript; charset=utf-8");
  } else if (path == "/healthz") {
    res = text_response(http::status::ok, "ok\n", "text/plain; charset=utf-8");
  } else if (path == "/config.json") {
    // What the page needs to know before connecting: whether it must ask for a token.
    std::string body = "{\"insecure_dev\":";
    body += ctx_.settings.insecure_dev ? "true" : "false";
    body += ",\"tokens\":";
    body += ctx_.verifier != nullptr ? "true" : "false";
    body += ",\"subprotocol\":\"notify.v1\"}\n";
    res = text_response(http::status::ok, std::move(body), "application/json");
  } else if (path == "/readyz") {
    const bool draining = ctx_.draining.load(std::memory_order_relaxed);
    res = text_response(draining ? http::status::service_unavailable : http::status::ok,
                        draining ? "draining\n" : "ready\n", "text/plain; charset=utf-8");
  } else if (path == "/ws") {
    count_failure(HandshakeFailure::bad_request);
    res = text_response(http::status::upgrade_required, "this endpoint takes WebSocket upgrades only\n",
                        "text/plain; charset=utf-8");
    res.set(http::field::upgrade, "websocket");
  } else {
    res = text_response(http::status::not_found, "not found\n", "text/plain; charset=utf-8");
  }
  if (head) {
    const auto length = res.body().size();
    res.body().clear();
    res.content_length(length);
  }
  send(std::move(res));
}

template <class Stream>
void HttpSession<Stream>::route_metrics(const Request& request) {
  const auto target = boost::urls::parse_origin_form(request.target());
  const bool get = request.method() == http::verb::get;
  if (get && target && target->path() == "/metrics") {
    send(text_response(http::status::ok, ctx_.metrics.scrape(), "text/plain; version=0.0.4; charset=utf-8"));
  } else {
    send(text_response(http::status::not_found, "metrics are served at GET /metrics\n", "text/plain; charset=utf-8"));
  }
}

template <class Stream>
void HttpSession<Stream>::upgrade(Request&& request) {
  if (auto refusal = check_websocket_request(request)) {
    count_failure(HandshakeFailure::bad_request);
    keep_alive_ = false;
    Response res = text_response(refusal->status, refusal->message + "\n", "text/plain; charset=utf-8");
    if (refusal->status == http::status::upgrade_required) res.set(http::field::sec_websocket_version, "13");
    send(std::move(res));
    return;
  }
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  UpgradeDecision decision =
      decide_upgrade(request, ctx_.settings, ctx_.verifier, ctx_.draining.load(std::memory_order_relaxed), now);
  if (!decision.accept) {
    if (decision.token_error) {
      ctx_.metrics.token_rejected(*decision.token_error);
      log::debug("token refused", {{"reason", to_string(*decision.token_error)}, {"detail", decision.message}});
    }
    Response res = text_response(decision.status, decision.message + "\n", "text/plain; charset=utf-8");
    if (decision.status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
    count_failure(decision.reason);
    keep_alive_ = false;
    send(std::move(res));
    return;
  }

  std::vector<std::string_view> forwarded;
  for (auto [it, end] = request.equal_range("X-Forwarded-For"); it != end; ++it) forwarded.push_back(it->value());
  const auto client = ctx_.settings.trusted_proxies.client_address(peer_, forwarded);
  ConnectionLimiter::Refusal refusal;
  auto slot = ctx_.limiter.acquire(client, refusal);
  if (!slot) {
    const bool total = refusal == ConnectionLimiter::Refusal::total;
    ctx_.metrics.limit_hit(total ? Limit::connections : Limit::connections_per_ip);
    fail_handshake(total ? HandshakeFailure::connection_limit : HandshakeFailure::ip_connection_limit,
                   total ? http::status::service_unavailable : http::status::too_many_requests,
                   total ? "the gateway is at its connection limit" : "too many connections from your address");
    return;
  }
  std::string subprotocol = std::move(decision.subprotocol);
  if constexpr (is_tls_v<Stream>) {
    std::make_shared<TlsWebSocketSession>(std::move(stream_), shard_, ctx_, std::move(decision), std::move(slot))
        ->run(std::move(request), std::move(subprotocol));
  } else {
    // From here on the gateway frames the connection itself, on the bare socket.
    stream_.expires_never();
    const auto early = buffer_.cdata();
    std::make_shared<PlainWebSocketSession>(stream_.release_socket(), shard_, ctx_, std::move(decision),
                                            std::move(slot))
        ->run(request[http::field::sec_websocket_key], subprotocol,
              std::string_view(static_cast<const char*>(early.data()), early.size()));
  }
}

template <class Stream>
void HttpSession<Stream>::fail_handshake(HandshakeFailure reason, http::status status, std::string message) {
  count_failure(reason);
  keep_alive_ = false;
  send(text_response(status, message + "\n", "text/plain; charset=utf-8"));
}

template <class Stream>
void HttpSession<Stream>::send(Response&& response) {
  response.version(version_);
  response.keep_alive(keep_alive_);
  if (response.body().size() > 0 || !response.has_content_length()) response.prepare_payload();
  response_ = std::make_shared<Response>(std::move(response));
  const bool close = response_->need_eof();
  http::async_write(stream_, *response_,
                    beast::bind_front_handler(&HttpSession::on_write, this->shared_from_this(), close));
}

template <class Stream>
void HttpSession<Stream>::on_write(bool close, beast::error_code ec, std::size_t) {
  response_.reset();
  if (ec) return;
  if (close) {
    close_connection();
    return;
  }
  do_read();
}

template <class Stream>
void HttpSession<Stream>::close_connection() {
  if constexpr (is_tls_v<Stream>) {
    beast::get_lowest_layer(stream_).expires_after(kDrainTimeout);
    stream_.async_shutdown(
        [self = this->shared_from_this()](beast::error_code) { beast::get_lowest_layer(self->stream_).close(); });
  } else {
    // Error responses often leave request bytes unread; draining keeps the
    // kernel from resetting the connection before the client reads the answer.
    async_drain_and_close(stream_, [self = this->shared_from_this()](beast::error_code) {});
  }
}

template class HttpSession<beast::tcp_stream>;
template class HttpSession<TlsStream>;

}  // namespace notify::gateway
