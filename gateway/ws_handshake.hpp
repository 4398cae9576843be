#pragma once
// The server's half of the WebSocket opening handshake (RFC 6455 4.2), for
// connections the gateway frames itself: checks what Beast's accept checked
// and writes the 101 response.
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace notify::gateway {

struct HandshakeRefusal {
  boost::beast::http::status status;  // 400, or 426 for an unsupported version
  std::string message;
};

// Why an upgrade request (already known to be GET + Upgrade: websocket +
// Connection: upgrade) cannot be accepted: no Host, a missing or malformed
// Sec-WebSocket-Key, a Sec-WebSocket-Version other than 13. nullopt if fine.
std::optional<HandshakeRefusal> check_websocket_request(
    const boost::beast::http::request<boost::beast::http::string_body>& request);

// base64(SHA-1(key + the RFC's GUID)).
std::string websocket_accept_key(std::string_view key);

// The complete "101 Switching Protocols" response, `subprotocol` included
// if not empty.
std::string websocket_accept_response(std::string_view key, std::string_view subprotocol);

}  // namespace notify::gateway
