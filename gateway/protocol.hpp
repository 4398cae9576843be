#pragma once
// The client protocol (docs/protocol.md): parsing what clients send and
// encoding what the server sends. Pure functions, no I/O; thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/json_text.hpp"

namespace notify::gateway::protocol {

// WebSocket close codes the gateway uses (docs/protocol.md).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;        // server shutting down
inline constexpr std::uint16_t unsupported_data = 1003;  // binary frame
inline constexpr std::uint16_t policy_violation = 1008;  // too many invalid messages
inline constexpr std::uint16_t too_big = 1009;           // frame above --max-message-bytes
inline constexpr std::uint16_t disconnected = 4000;      // Disconnect RPC
inline constexpr std::uint16_t token_expired = 4001;     // the token expired and no refresh came
inline constexpr std::uint16_t slow_consumer = 4008;     // send queue overflow (close policy)
}  // namespace close_code

enum class RequestType { subscribe, unsubscribe, ping, message, refresh };

struct Request {
  RequestType type;
  std::string topic;      // subscribe / unsubscribe
  std::string token;      // refresh
  std::string data_json;  // message: the "data" member as the client wrote it
  std::string id_json;    // the optional "id" member as JSON text, echoed in replies; empty if absent
};

struct Error {
  std::string code;  // machine-readable: bad_json, bad_request, unknown_type, invalid_topic, ...
  std::string message;
  std::string id_json;
};

// Parses one text frame. Never throws; anything malformed is an Error.
std::variant<Request, Error> parse_request(std::string_view text);

// The text of member `key` of the JSON object `json`, exactly as written; the
// last one if repeated. Keys are compared as written, so an escaped spelling
// of `key` is not found; `escaped_key` (if given) tells whether any key of
// the object uses escapes. Meant for valid JSON; on anything else it returns
// nullopt or some substring, never reads out of bounds.
std::optional<std::string_view> raw_member(std::string_view json, std::string_view key, bool* escaped_key = nullptr);

// The JSON rules shared with the gRPC API and notifyctl (common/json_text.hpp).
using notify::check_json;
using notify::kMaxJsonDepth;
inline constexpr std::size_t kMaxClientIdLength = 128;

// Server frames. `data_json` must already be valid JSON (empty means null);
// `topic` and `collapse_key` empty mean none.
std::string encode_notification(std::string_view id, std::string_view event, std::string_view topic,
                                std::string_view data_json, std::int64_t ts_ms, std::string_view collapse_key = {});
// `expires_at` (unix seconds) is omitted when 0 (development identity).
std::string encode_welcome(std::string_view connection_id, std::string_view user_id, std::int64_t expires_at);
std::string encode_pong(std::string_view id_json);
std::string encode_subscribed(std::string_view topic, std::string_view id_json);
// `reason` is set when the server drops the subscription itself ("forbidden"
// after a refresh whose token no longer grants the topic).
std::string encode_unsubscribed(std::string_view topic, std::string_view id_json, std::string_view reason = {});
std::string encode_refreshed(std::int64_t expires_at, std::string_view id_json);
std::string encode_ack(std::string_view id_json, std::string_view message_id);
std::string encode_error(const Error& error);

}  // namespace notify::gateway::protocol
