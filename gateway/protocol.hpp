#pragma once
// The client protocol (docs/protocol.md): parsing what clients send and
// encoding what the server sends. Pure functions, no I/O; thread-safe.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/json_text.hpp"

namespace notify::gateway::protocol {

// WebSocket close codes the gateway uses (docs/protocol.md).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;        // server shutting down
inline constexpr std::uint16_t unsupported_data = 1003;  // binary frame
inline constexpr std::uint16_t policy_violation = 1008;  // too many invalid messages
inline constexpr std::uint16_t too_big = 1009;           // frame above --max-message-bytes
inline constexpr std::uint16_t try_again_later = 1013;   // history unavailable for a resume
inline constexpr std::uint16_t disconnected = 4000;      // Disconnect RPC
inline constexpr std::uint16_t token_expired = 4001;     // the token expired and no refresh came
inline constexpr std::uint16_t slow_consumer = 4008;     // send queue overflow (close policy)
}  // namespace close_code

enum class RequestType { subscribe, unsubscribe, ping, message, refresh, resume, ack, inbox, mark_read };

// A place in a stream's history (docs/protocol.md#history-and-resume): the
// stream ("user:<id>", "topic:<name>" or "all"), its epoch, and the last
// offset seen (0: none yet).
struct Position {
  std::string stream;
  std::string epoch;
  std::uint64_t offset = 0;
};
// The most streams one resume may name.
inline constexpr std::size_t kMaxResumeStreams = 1024;
// The most notification ids one ack may carry.
inline constexpr std::size_t kMaxAckIds = 256;

struct Request {
  RequestType type;
  std::string topic;              // subscribe / unsubscribe
  std::string token;              // refresh
  std::string data_json;          // message: the "data" member as the client wrote it
  std::string id_json;            // the optional "id" member as JSON text, echoed in replies; empty if absent
  std::vector<Position> streams;  // resume: where the client is, in the order written
  std::vector<std::string> ids;   // ack, mark_read: the notifications named
  bool all = false;               // mark_read: everything
  std::string before;             // inbox: the page after this notification id; empty: the newest
  std::size_t limit = 20;         // inbox: at most this many (1 to 50)
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
// `position`: the frame's place in history ("stream", "epoch", "offset"), if kept.
std::string encode_notification(std::string_view id, std::string_view event, std::string_view topic,
                                std::string_view data_json, std::int64_t ts_ms, std::string_view collapse_key = {},
                                const Position* position = nullptr, bool require_ack = false, bool inbox = false);
// {"type":"inbox","unread":N,"notifications":[<payloads>],"more":bool} (+ id).
std::string encode_inbox(std::span<const std::string_view> notifications, std::uint64_t unread, bool more,
                         std::string_view id_json);
// `expires_at` (unix seconds) is omitted when 0 (development identity);
// `streams` (the positions of the streams the connection follows from the
// start, with history on) when empty.
std::string encode_welcome(std::string_view connection_id, std::string_view user_id, std::int64_t expires_at,
                           std::span<const Position> streams = {});
std::string encode_pong(std::string_view id_json);
// `position`: the topic stream's position when the subscription started (history on).
std::string encode_subscribed(std::string_view topic, std::string_view id_json, const Position* position = nullptr);
// History and resume.
// Notifications `from`..position.offset of the stream were replaced by newer
// ones with their collapse keys before they could be sent: the client sees
// every offset, and no gap.
std::string encode_skipped(const Position& position, std::uint64_t from);
// The stream can't be resumed from where the client was (`reason`:
// epoch_changed, too_old, ahead, unknown_stream, forbidden_topic,
// too_many_topics, no_history, unavailable: history held a malformed entry); `position` is where live delivery goes on.
std::string encode_resume_failed(const Position& position, std::string_view reason, std::string_view id_json);
// Replay is over: every stream's position; live notifications follow.
std::string encode_resumed(std::span<const Position> streams, std::string_view id_json);
// `reason` is set when the server drops the subscription itself ("forbidden"
// after a refresh whose token no longer grants the topic).
std::string encode_unsubscribed(std::string_view topic, std::string_view id_json, std::string_view reason = {});
std::string encode_refreshed(std::int64_t expires_at, std::string_view id_json);
std::string encode_ack(std::string_view id_json, std::string_view message_id);
std::string encode_error(const Error& error);

}  // namespace notify::gateway::protocol
