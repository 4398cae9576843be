#include "gateway/ws_handshake.hpp"

#include <openssl/evp.h>

#include <array>

namespace notify::gateway {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// A key is 16 random bytes in base64: 22 characters and "==".
bool valid_key(std::string_view key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

}  // namespace

std::optional<HandshakeRefusal> check_websocket_request(const http::request<http::string_body>& request) {
  if (request.version() != 11) return HandshakeRefusal{http::status::bad_request, "WebSocket needs HTTP/1.1"};
  if (request.find(http::field::host) == request.end()) {
    return HandshakeRefusal{http::status::bad_request, "missing Host header"};
  }
  const auto key = request.find(http::field::sec_websocket_key);
  if (key == request.end()) return HandshakeRefusal{http::status::bad_request, "missing Sec-WebSocket-Key"};
  if (!valid_key(key->value())) return HandshakeRefusal{http::status::bad_request, "malformed Sec-WebSocket-Key"};
  const auto version = request.find(http::field::sec_websocket_version);
  if (version == request.end()) return HandshakeRefusal{http::status::bad_request, "missing Sec-WebSocket-Version"};
  if (version->value() != "13") {
    return HandshakeRefusal{http::status::upgrade_required, "unsupported Sec-WebSocket-Version; this server speaks 13"};
  }
  return std::nullopt;
}

std::string websocket_accept_key(std::string_view key) {
  std::string input;
  input.reserve(key.size() + kGuid.size());
  input.append(key);
  input.append(kGuid);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &digest_size, EVP_sha1(), nullptr);
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> encoded{};
  const int n = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest_size));
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(n));
}

std::string websocket_accept_response(std::string_view key, std::string_view subprotocol) {
  std::string out;
  out.reserve(200);
  out += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
  out += websocket_accept_key(key);
  out += "\r\nServer: notify-gateway\r\n";
  if (!subprotocol.empty()) {
    out += "Sec-WebSocket-Protocol: ";
    out += subprotocol;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

}  // namespace notify::gateway
