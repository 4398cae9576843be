#include "tests/support/ws_client.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <thread>
#include <type_traits>

namespace notify::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace ssl = asio::ssl;

// What the test thread and the I/O thread share, whatever the transport.
struct WsClient::Impl {
  asio::io_context ioc{1};
  std::unique_ptr<ssl::context> tls;  // wss:// only; outlives the stream (a derived member)
  std::thread thread;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> frames;
  std::size_t received = 0;
  bool ended = false;
  bool reading = false;
  CloseStatus close_status;

  std::string subprotocol;                              // set before the I/O thread starts
  std::map<std::string, std::string> response_headers;  // likewise

  virtual ~Impl() = default;
  virtual void read_loop() = 0;                           // I/O thread
  virtual void write(std::string data, bool binary) = 0;  // any thread
  virtual void close_socket() = 0;                        // I/O thread
  virtual void close_handshake() = 0;                     // I/O thread
};

namespace {

template <class Stream>
inline constexpr bool is_tls_stream = !std::is_same_v<Stream, beast::tcp_stream>;

std::unique_ptr<ssl::context> make_client_tls_context(const TlsOptions& tls) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_verify_mode(ssl::verify_peer);
  if (!tls.ca_pem.empty()) ctx->add_certificate_authority(asio::buffer(tls.ca_pem));
  if (!tls.client_cert_pem.empty()) {
    ctx->use_certificate_chain(asio::buffer(tls.client_cert_pem));
    ctx->use_private_key(asio::buffer(tls.client_key_pem), ssl::context::pem);
  }
  return ctx;
}

// Before the TLS handshake: SNI and the name the certificate must carry.
template <class SslStream>
void prepare_tls(SslStream& stream, const TlsOptions& tls) {
  if (!SSL_set_tlsext_host_name(stream.native_handle(), tls.server_name.c_str())) {
    throw std::runtime_error("cannot set SNI " + tls.server_name);
  }
  stream.set_verify_callback(ssl::host_name_verification(tls.server_name));
}

std::map<std::string, std::string> lower_case_headers(const http::fields& fields) {
  std::map<std::string, std::string> out;
  for (const auto& field : fields) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out[name] = std::string(field.value());
  }
  return out;
}

}  // namespace

template <class Stream>
struct WsClient::StreamImpl final : WsClient::Impl {
  websocket::stream<Stream> ws;
  beast::flat_buffer buffer;
  std::deque<std::pair<std::string, bool>> outbox;  // touched on the I/O thread only
  bool writing = false;

  StreamImpl() requires(!is_tls_stream<Stream>) : ws(ioc) {}
  explicit StreamImpl(std::unique_ptr<ssl::context> context) requires(is_tls_stream<Stream>)
      : Impl(), ws(ioc, *context) {
    tls = std::move(context);  // the pointee stays put
  }

  void read_loop() override {
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        std::lock_guard lock(mu);
        ended = true;
        const auto& reason = ws.reason();
        close_status.code = static_cast<std::uint16_t>(reason.code);
        close_status.reason = std::string(reason.reason.data(), reason.reason.size());
        cv.notify_all();
        return;
      }
      std::string text = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      {
        std::lock_guard lock(mu);
        frames.push_back(std::move(text));
        ++received;
      }
      cv.notify_all();
      read_loop();
    });
  }

  void do_write() {
    writing = true;
    ws.binary(outbox.front().second);
    ws.async_write(asio::buffer(outbox.front().first), [this](beast::error_code ec, std::size_t) {
      outbox.pop_front();
      if (ec || outbox.empty()) {
        writing = false;
        if (ec) outbox.clear();
        return;
      }
      do_write();
    });
  }

  void write(std::string data, bool binary) override {
    asio::post(ioc, [this, data = std::move(data), binary]() mutable {
      outbox.emplace_back(std::move(data), binary);
      if (!writing) do_write();
    });
  }

  void close_socket() override {
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().close(ignored);
  }

  void close_handshake() override {
    ws.async_close(websocket::close_code::normal, [](beast::error_code) {});
  }

  // Connects, shakes hands (TLS, then WebSocket) on the calling thread.
  void open(std::uint16_t port, const std::string& target, const WsOptions& options) {
    auto& lowest = beast::get_lowest_layer(ws);
    const tcp::endpoint endpoint(asio::ip::make_address(options.host), port);
    lowest.socket().open(endpoint.protocol());
    if (options.receive_buffer_bytes > 0) {
      lowest.socket().set_option(asio::socket_base::receive_buffer_size(options.receive_buffer_bytes));
    }
    lowest.expires_after(options.timeout);
    beast::error_code result = asio::error::would_block;
    websocket::response_type response;
    std::string offered;
    for (const auto& p : options.subprotocols) offered += (offered.empty() ? "" : ", ") + p;
    ws.set_option(websocket::stream_base::decorator([headers = options.headers, offered](websocket::request_type& req) {
      if (!offered.empty()) req.set(http::field::sec_websocket_protocol, offered);
      for (const auto& [name, value] : headers) req.set(name, value);
    }));
    const std::string host = options.host + ":" + std::to_string(port);
    const char* stage = "connect";
    auto websocket_handshake = [&] {
      stage = "WebSocket handshake";
      ws.async_handshake(response, host, target, [&](beast::error_code hec) { result = hec; });
    };
    if constexpr (is_tls_stream<Stream>) prepare_tls(ws.next_layer(), *options.tls);
    lowest.async_connect(endpoint, [&](beast::error_code ec) {
      if (ec) {
        result = ec;
        return;
      }
      if constexpr (is_tls_stream<Stream>) {
        stage = "TLS handshake";
        ws.next_layer().async_handshake(ssl::stream_base::client, [&](beast::error_code tec) {
          if (tec) {
            result = tec;
            return;
          }
          websocket_handshake();
        });
      } else {
        websocket_handshake();
      }
    });
    ioc.run();
    ioc.restart();
    if (result == websocket::error::upgrade_declined || (result && response.result_int() >= 300)) {
      throw UpgradeRefused(static_cast<int>(response.result_int()), response.body());
    }
    if (result) {
      throw std::runtime_error(std::string(is_tls_stream<Stream> ? "wss://" : "ws://") + host + target + " " + stage +
                               " failed: " + result.message());
    }
    lowest.expires_never();
    subprotocol = std::string(response[http::field::sec_websocket_protocol]);
    response_headers = lower_case_headers(response.base());
  }
};

WsClient::WsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<WsClient> WsClient::connect(std::uint16_t port, const std::string& target, WsOptions options) {
  std::unique_ptr<Impl> impl;
  if (options.tls) {
    auto tls_impl = std::make_unique<StreamImpl<ssl::stream<beast::tcp_stream>>>(make_client_tls_context(*options.tls));
    tls_impl->open(port, target, options);
    impl = std::move(tls_impl);
  } else {
    auto plain_impl = std::make_unique<StreamImpl<beast::tcp_stream>>();
    plain_impl->open(port, target, options);
    impl = std::move(plain_impl);
  }
  auto* raw = impl.get();
  raw->guard.emplace(asio::make_work_guard(raw->ioc));
  raw->thread = std::thread([raw] { raw->ioc.run(); });
  std::unique_ptr<WsClient> client(new WsClient(std::move(impl)));
  if (options.start_reading) client->start_reading();
  return client;
}

WsClient::~WsClient() {
  auto* impl = impl_.get();
  asio::post(impl->ioc, [impl] { impl->close_socket(); });
  impl->guard.reset();
  if (impl->thread.joinable()) impl->thread.join();
}

void WsClient::send(std::string text) { impl_->write(std::move(text), false); }
void WsClient::send_binary(std::string bytes) { impl_->write(std::move(bytes), true); }

void WsClient::start_reading() {
  auto* impl = impl_.get();
  {
    std::lock_guard lock(impl->mu);
    if (impl->reading) return;
    impl->reading = true;
  }
  asio::post(impl->ioc, [impl] { impl->read_loop(); });
}

std::optional<std::string> WsClient::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait_for(lock, timeout, [&] { return !impl_->frames.empty() || impl_->ended; });
  if (impl_->frames.empty()) return std::nullopt;
  std::string frame = std::move(impl_->frames.front());
  impl_->frames.pop_front();
  return frame;
}

std::optional<boost::json::value> WsClient::next_json(std::chrono::milliseconds timeout) {
  auto frame = next(timeout);
  if (!frame) return std::nullopt;
  return boost::json::parse(*frame);
}

std::optional<boost::json::value> WsClient::next_of_type(const std::string& type, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto value = next_json(left);
    if (!value) return std::nullopt;
    if (value->is_object() && value->as_object().contains("type") && value->at("type") == type.c_str()) return value;
  }
}

std::optional<CloseStatus> WsClient::wait_closed(std::chrono::milliseconds timeout) {
  start_reading();
  std::unique_lock lock(impl_->mu);
  if (!impl_->cv.wait_for(lock, timeout, [&] { return impl_->ended; })) return std::nullopt;
  return impl_->close_status;
}

bool WsClient::closed() {
  std::lock_guard lock(impl_->mu);
  return impl_->ended;
}

void WsClient::close() {
  auto* impl = impl_.get();
  asio::post(impl->ioc, [impl] { impl->close_handshake(); });
}

const std::string& WsClient::subprotocol() const { return impl_->subprotocol; }
const std::map<std::string, std::string>& WsClient::response_headers() const { return impl_->response_headers; }

std::size_t WsClient::frames_received() {
  std::lock_guard lock(impl_->mu);
  return impl_->received;
}

namespace {

// One request on a fresh connection; `tls` set: over TLS.
HttpResult do_http_request(std::uint16_t port, const std::string& method, const std::string& target,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::chrono::milliseconds timeout, const TlsOptions* tls) {
  asio::io_context ioc;
  std::unique_ptr<ssl::context> tls_context;
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> secure;
  if (tls) {
    tls_context = make_client_tls_context(*tls);
    secure.emplace(ioc, *tls_context);
    prepare_tls(*secure, *tls);
  } else {
    plain.emplace(ioc);
  }
  beast::tcp_stream& lowest = tls ? secure->next_layer() : *plain;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) req.set(name, value);
  req.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  beast::flat_buffer buffer;
  beast::error_code result;
  auto exchange = [&](auto& stream) {
    http::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
      if (wec) {
        result = wec;
        return;
      }
      // A HEAD response announces a body it doesn't send.
      if (req.method() == http::verb::head) parser.skip(true);
      http::async_read(stream, buffer, parser, [&](beast::error_code rec, std::size_t) { result = rec; });
    });
  };
  lowest.expires_after(timeout);
  lowest.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    if (!tls) {
      exchange(*plain);
      return;
    }
    secure->async_handshake(ssl::stream_base::client, [&](beast::error_code hec) {
      if (hec) {
        result = hec;
        return;
      }
      exchange(*secure);
    });
  });
  ioc.run();
  if (result) throw std::runtime_error(method + " " + target + " failed: " + result.message());
  const auto& res = parser.get();
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  out.headers = lower_case_headers(res.base());
  return out;
}

}  // namespace

HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        std::chrono::milliseconds timeout) {
  return do_http_request(port, method, target, headers, timeout, nullptr);
}

HttpResult https_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const TlsOptions& tls, const std::vector<std::pair<std::string, std::string>>& headers,
                         std::chrono::milliseconds timeout) {
  return do_http_request(port, method, target, headers, timeout, &tls);
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  std::string received;
  std::array<char, 4096> chunk{};
  std::function<void()> read_more;
  read_more = [&] {
    socket.async_read_some(asio::buffer(chunk), [&](beast::error_code ec, std::size_t n) {
      received.append(chunk.data(), n);
      if (!ec) read_more();
    });
  };
  socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
    if (ec) return;
    asio::async_write(socket, asio::buffer(bytes), [&](beast::error_code, std::size_t) {});
    read_more();
  });
  ioc.run_for(timeout);
  return received;
}

std::string upgrade_request(const std::string& target) {
  return "GET " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

std::string client_frame(unsigned char first_byte, const std::string& payload, bool masked) {
  std::string out(1, static_cast<char>(first_byte));
  const unsigned char mask_bit = masked ? 0x80 : 0x00;
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() <= 0xffff) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
  }
  const unsigned char key[4] = {0x5a, 0x13, 0xc4, 0x7e};
  if (masked) out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return out;
}

unsigned ServerFrame::close_code() const {
  if (payload.size() < 2) return 1005;
  return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
}

std::vector<ServerFrame> server_frames(const std::string& received) {
  std::vector<ServerFrame> frames;
  if (received.rfind("HTTP/1.1 101", 0) != 0) return frames;
  std::size_t at = received.find("\r\n\r\n");
  if (at == std::string::npos) return frames;
  at += 4;
  while (at + 2 <= received.size()) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(received[i]); };
    std::uint64_t length = byte(at + 1) & 0x7f;
    std::size_t header = 2;
    if (length == 126) {
      if (at + 4 > received.size()) break;
      length = (byte(at + 2) << 8) | byte(at + 3);
      header = 4;
    } else if (length == 127) {
      if (at + 10 > received.size()) break;
      length = 0;
      for (int i = 0; i < 8; ++i) length = (length << 8) | byte(at + 2 + i);
      header = 10;
    }
    if (at + header + length > received.size()) break;
    frames.push_back({byte(at), received.substr(at + header, length)});
    at += header + length;
  }
  return frames;
}

}  // namespace notify::testing
