#pragma once
// A real WebSocket client for tests (Boost.Beast). It runs its own I/O
// thread with a continuous read loop, so tests can wait for frames with a
// timeout without tearing the connection down, or pause reading entirely to
// play a slow consumer. Speaks ws:// or, with WsOptions::tls, wss://.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace notify::testing {

using namespace std::chrono_literals;

struct CloseStatus {
  std::uint16_t code = 0;  // 0: the connection ended without a close frame
  std::string reason;
};

// TLS for wss:// and https://: the server's chain must verify against
// `ca_pem` and name `server_name` (also sent as SNI).
struct TlsOptions {
  std::string ca_pem;                           // trusted roots (PEM); empty: trust nothing
  std::string server_name = "localhost";        // SNI and the name checked against the certificate
  std::string client_cert_pem, client_key_pem;  // optional client certificate
};

struct WsOptions {
  std::chrono::milliseconds timeout{5000};
  int receive_buffer_bytes = 0;  // SO_RCVBUF before connecting; 0 = system default
  bool start_reading = true;     // false: frames stay in the socket until start_reading()
  std::string host = "127.0.0.1";
  std::vector<std::pair<std::string, std::string>> headers;
  // Offered in Sec-WebSocket-Protocol, in this order; the server's choice is
  // WsClient::subprotocol().
  std::vector<std::string> subprotocols;
  std::optional<TlsOptions> tls;  // set: wss:// instead of ws://
};

// Thrown when the server refuses the upgrade; carries its HTTP status.
struct UpgradeRefused : std::runtime_error {
  UpgradeRefused(int s, std::string body)
      : std::runtime_error("upgrade refused with HTTP " + std::to_string(s) + ": " + body), status(s) {}
  int status;
};

class WsClient {
 public:
  // Connects to ws://host:port/target (wss:// with options.tls). Throws
  // UpgradeRefused or std::runtime_error (also for a failed TLS handshake).
  static std::unique_ptr<WsClient> connect(std::uint16_t port, const std::string& target, WsOptions options = {});
  ~WsClient();

  void send(std::string text);
  void send_binary(std::string bytes);
  void start_reading();

  // Next text frame, or nullopt if none arrived in time (the connection stays usable).
  std::optional<std::string> next(std::chrono::milliseconds timeout = 5s);
  // Next frame parsed as JSON; nullopt on timeout.
  std::optional<boost::json::value> next_json(std::chrono::milliseconds timeout = 5s);
  // Skips frames until one whose "type" equals `type`.
  std::optional<boost::json::value> next_of_type(const std::string& type, std::chrono::milliseconds timeout = 5s);

  // Waits until the connection ends; the server's close code, or nullopt on timeout.
  std::optional<CloseStatus> wait_closed(std::chrono::milliseconds timeout = 5s);
  bool closed();
  // Client-initiated close (1000).
  void close();

  std::size_t frames_received();

  // The subprotocol the server selected (Sec-WebSocket-Protocol of its 101), or empty.
  const std::string& subprotocol() const;
  // The 101 response's headers, lower-case names.
  const std::map<std::string, std::string>& response_headers() const;

 private:
  struct Impl;
  template <class Stream>
  struct StreamImpl;
  explicit WsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// One HTTP/1.1 request on a fresh connection.
HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        std::chrono::milliseconds timeout = 5s);

// The same over TLS (https://).
HttpResult https_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const TlsOptions& tls, const std::vector<std::pair<std::string, std::string>>& headers = {},
                         std::chrono::milliseconds timeout = 5s);

// Sends raw bytes on a fresh TCP connection and returns everything the server
// sent until it closed the connection or `timeout` passed.
std::string raw_exchange(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout = 5s);

// For raw_exchange: an upgrade request for `target` (a fixed key, version 13).
std::string upgrade_request(const std::string& target);

// A client frame: `first_byte` is FIN/RSV/opcode (0x81: a final text frame),
// the payload masked with a fixed key unless `masked` is false.
std::string client_frame(unsigned char first_byte, const std::string& payload, bool masked = true);

struct ServerFrame {
  unsigned char first_byte;  // FIN/RSV/opcode as sent
  std::string payload;
  unsigned opcode() const { return first_byte & 0x0fu; }
  // For close frames: the code (1005 when none).
  unsigned close_code() const;
};

// The frames in what raw_exchange returned, after the HTTP response head;
// empty if the response was not a 101. A truncated last frame is left out.
std::vector<ServerFrame> server_frames(const std::string& received);

}  // namespace notify::testing
