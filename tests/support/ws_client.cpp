#include "tests/support/ws_client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <thread>

namespace notify::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct WsClient::Impl {
  asio::io_context ioc{1};
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buffer;
  std::thread thread;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> frames;
  std::size_t received = 0;
  bool ended = false;
  bool reading = false;
  CloseStatus close_status;

  std::deque<std::pair<std::string, bool>> outbox;  // touched on the I/O thread only
  bool writing = false;

  void read_loop() {
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

  void write(std::string data, bool binary) {
    asio::post(ioc, [this, data = std::move(data), binary]() mutable {
      outbox.emplace_back(std::move(data), binary);
      if (!writing) do_write();
    });
  }
};

WsClient::WsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<WsClient> WsClient::connect(std::uint16_t port, const std::string& target, WsOptions options) {
  auto impl = std::make_unique<Impl>();
  auto& lowest = beast::get_lowest_layer(impl->ws);
  const tcp::endpoint endpoint(asio::ip::make_address(options.host), port);
  lowest.socket().open(endpoint.protocol());
  if (options.receive_buffer_bytes > 0) {
    lowest.socket().set_option(asio::socket_base::receive_buffer_size(options.receive_buffer_bytes));
  }
  lowest.expires_after(options.timeout);
  beast::error_code result = asio::error::would_block;
  websocket::response_type response;
  impl->ws.set_option(websocket::stream_base::decorator([headers = options.headers](websocket::request_type& req) {
    for (const auto& [name, value] : headers) req.set(name, value);
  }));
  const std::string host = options.host + ":" + std::to_string(port);
  lowest.async_connect(endpoint, [&](beast::error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    impl->ws.async_handshake(response, host, target, [&](beast::error_code hec) { result = hec; });
  });
  impl->ioc.run();
  impl->ioc.restart();
  if (result == websocket::error::upgrade_declined || (result && response.result_int() >= 300)) {
    throw UpgradeRefused(static_cast<int>(response.result_int()), response.body());
  }
  if (result) throw std::runtime_error("WebSocket connect to " + host + target + " failed: " + result.message());
  lowest.expires_never();

  auto* raw = impl.get();
  raw->guard.emplace(asio::make_work_guard(raw->ioc));
  raw->thread = std::thread([raw] { raw->ioc.run(); });
  std::unique_ptr<WsClient> client(new WsClient(std::move(impl)));
  if (options.start_reading) client->start_reading();
  return client;
}

WsClient::~WsClient() {
  auto* impl = impl_.get();
  asio::post(impl->ioc, [impl] {
    beast::error_code ignored;
    beast::get_lowest_layer(impl->ws).socket().close(ignored);
  });
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
  asio::post(impl->ioc, [impl] { impl->ws.async_close(websocket::close_code::normal, [](beast::error_code) {}); });
}

std::size_t WsClient::frames_received() {
  std::lock_guard lock(impl_->mu);
  return impl_->received;
}

HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) req.set(name, value);
  req.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  beast::flat_buffer buffer;
  beast::error_code result;
  stream.expires_after(timeout);
  stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    http::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
      if (wec) {
        result = wec;
        return;
      }
      // A HEAD response announces a body it doesn't send.
      if (req.method() == http::verb::head) parser.skip(true);
      http::async_read(stream, buffer, parser, [&](beast::error_code rec, std::size_t) { result = rec; });
    });
  });
  ioc.run();
  if (result) throw std::runtime_error(method + " " + target + " failed: " + result.message());
  const auto& res = parser.get();
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  return out;
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

}  // namespace notify::testing
