#include "gateway/protocol.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

#include "common/json_text.hpp"
#include "common/validation.hpp"

namespace notify::gateway::protocol {
namespace json = boost::json;

namespace {

json::parse_options parse_limits() {
  json::parse_options opts;
  opts.max_depth = kMaxJsonDepth;
  return opts;
}

// The "id" a client attached to a request, as JSON text to echo back. Only
// short strings and numbers qualify, so an echo can't amplify a payload.
std::optional<std::string> request_id(const json::object& obj, std::string& problem) {
  const auto* id = obj.if_contains("id");
  if (id == nullptr) return std::string();
  if (id->is_string() && id->get_string().size() <= kMaxClientIdLength) return json::serialize(*id);
  // Integers only: they echo back exactly as sent, where 1.5 would come back as 1.5E0.
  if (id->is_int64() || id->is_uint64()) return json::serialize(*id);
  problem = "\"id\" must be an integer or a string of at most 128 bytes";
  return std::nullopt;
}

Error error(std::string code, std::string message, std::string id_json = {}) {
  return Error{std::move(code), std::move(message), std::move(id_json)};
}

// Boost.JSON turns numbers beyond double's range into infinities (and some,
// like 0e400, into NaN), which no JSON text can carry onward.
bool finite_numbers(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return std::isfinite(v.get_double());
    case json::kind::array:
      return std::all_of(v.get_array().begin(), v.get_array().end(),
                         [](const json::value& e) { return finite_numbers(e); });
    case json::kind::object:
      return std::all_of(v.get_object().begin(), v.get_object().end(),
                         [](const json::key_value_pair& kv) { return finite_numbers(kv.value()); });
    default:
      return true;
  }
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skip_space(std::string_view t, std::size_t i) {
  while (i < t.size() && is_space(t[i])) ++i;
  return i;
}

// Index just past the JSON value starting at `i` in text already known to be
// valid JSON.
std::size_t skip_value(std::string_view t, std::size_t i) {
  if (i >= t.size()) return t.size();
  if (t[i] == '"') {
    for (++i; i < t.size() && t[i] != '"'; ++i) {
      if (t[i] == '\\') ++i;
    }
    return std::min(i + 1, t.size() + 1);
  }
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    while (i < t.size()) {
      const char c = t[i];
      if (c == '"') {
        i = skip_value(t, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') --depth;
      ++i;
      if (depth == 0) break;
    }
    return i;
  }
  while (i < t.size() && t[i] != ',' && t[i] != '}' && t[i] != ']' && !is_space(t[i])) ++i;
  return i;
}

}  // namespace

std::optional<std::string_view> raw_member(std::string_view t, std::string_view key, bool* escaped_key) {
  if (escaped_key != nullptr) *escaped_key = false;
  std::size_t i = skip_space(t, 0);
  if (i >= t.size() || t[i] != '{') return std::nullopt;
  std::optional<std::string_view> found;  // the last one wins, as in Boost.JSON
  for (i = skip_space(t, i + 1); i < t.size() && t[i] == '"'; i = skip_space(t, i)) {
    const std::size_t key_start = i;
    i = skip_value(t, i);
    if (i > t.size()) return std::nullopt;
    const std::string_view name = t.substr(key_start + 1, i - key_start - 2);
    if (escaped_key != nullptr && name.find('\\') != std::string_view::npos) *escaped_key = true;
    i = skip_space(t, i);
    if (i >= t.size() || t[i] != ':') return std::nullopt;
    i = skip_space(t, i + 1);
    const std::size_t value_start = i;
    i = skip_value(t, i);
    if (i > t.size() || value_start >= t.size()) return std::nullopt;
    if (name == key) found = t.substr(value_start, i - value_start);
    i = skip_space(t, i);
    if (i < t.size() && t[i] == ',') ++i;
  }
  return found;
}

namespace {

void append_id(std::string& out, std::string_view id_json) {
  if (!id_json.empty()) {
    out += ",\"id\":";
    out += id_json;
  }
}

// ,"stream":"...","epoch":"...","offset":N
void append_position(std::string& out, const Position& p) {
  out += ",\"stream\":";
  append_json_string(out, p.stream);
  out += ",\"epoch\":";
  append_json_string(out, p.epoch);
  out += ",\"offset\":";
  out += std::to_string(p.offset);
}

// ,"streams":{"<stream>":{"epoch":"...","offset":N},...}
void append_streams(std::string& out, std::span<const Position> streams) {
  out += ",\"streams\":{";
  for (std::size_t i = 0; i < streams.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, streams[i].stream);
    out += ":{\"epoch\":";
    append_json_string(out, streams[i].epoch);
    out += ",\"offset\":";
    out += std::to_string(streams[i].offset);
    out += '}';
  }
  out += '}';
}

}  // namespace

std::variant<Request, Error> parse_request(std::string_view text) {
  json::monotonic_resource mr;
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec, &mr, parse_limits());
  if (ec) return error("bad_json", "frame is not valid JSON: " + ec.message());
  if (!finite_numbers(doc)) return error("bad_json", "a number is out of range");
  if (!doc.is_object()) return error("bad_request", "frame must be a JSON object");
  const json::object& obj = doc.get_object();

  std::string problem;
  auto id = request_id(obj, problem);
  if (!id) return error("bad_request", problem);

  const auto* type = obj.if_contains("type");
  if (type == nullptr || !type->is_string()) {
    return error("bad_request", "frame needs a string member \"type\"", *id);
  }
  const std::string_view kind = type->get_string();

  Request req;
  req.id_json = std::move(*id);
  if (kind == "subscribe" || kind == "unsubscribe") {
    req.type = kind == "subscribe" ? RequestType::subscribe : RequestType::unsubscribe;
    const auto* topic = obj.if_contains("topic");
    if (topic == nullptr || !topic->is_string()) {
      return error("bad_request", "\"" + std::string(kind) + "\" needs a string member \"topic\"", req.id_json);
    }
    if (!rules::valid_topic(topic->get_string())) {
      return error("invalid_topic", "topic must be 1 to 128 characters from [A-Za-z0-9_.:@/-]", req.id_json);
    }
    req.topic = topic->get_string();
    return req;
  }
  if (kind == "ping") {
    req.type = RequestType::ping;
    return req;
  }
  if (kind == "refresh") {
    req.type = RequestType::refresh;
    const auto* token = obj.if_contains("token");
    if (token == nullptr || !token->is_string() || token->get_string().empty()) {
      return error("bad_request", "\"refresh\" needs a string member \"token\"", req.id_json);
    }
    req.token = token->get_string();
    return req;
  }
  if (kind == "message") {
    req.type = RequestType::message;
    const auto* data = obj.if_contains("data");
    if (data == nullptr) return error("bad_request", "\"message\" needs a member \"data\"", req.id_json);
    // Forward what the client wrote, not a re-serialization: 1.5 stays 1.5
    // and integers wider than 64 bits keep every digit.
    // Forward what the client wrote, not a re-serialization: 1.5 stays 1.5
    // and integers wider than 64 bits keep every digit. An escaped key
    // spelling could make the literal "data" differ from the member the
    // parser kept; then the parsed value is serialized instead.
    bool escaped_key = false;
    const auto raw = raw_member(text, "data", &escaped_key);
    req.data_json = raw && !escaped_key ? std::string(*raw) : json::serialize(*data);
    return req;
  }
  if (kind == "resume") {
    req.type = RequestType::resume;
    const auto* streams = obj.if_contains("streams");
    if (streams == nullptr || !streams->is_object()) {
      return error("bad_request", "\"resume\" needs an object member \"streams\"", req.id_json);
    }
    if (streams->get_object().size() > kMaxResumeStreams) {
      return error("bad_request", "\"resume\" may name at most " + std::to_string(kMaxResumeStreams) + " streams",
                   req.id_json);
    }
    for (const auto& [name, where] : streams->get_object()) {
      const json::object* w = where.if_object();
      const json::value* epoch = w != nullptr ? w->if_contains("epoch") : nullptr;
      const json::value* offset = w != nullptr ? w->if_contains("offset") : nullptr;
      const bool offset_ok =
          offset != nullptr && ((offset->is_int64() && offset->get_int64() >= 0) || offset->is_uint64());
      if (epoch == nullptr || !epoch->is_string() || epoch->get_string().size() > 128 || !offset_ok) {
        return error("bad_request", "each stream of \"resume\" needs {\"epoch\": string, \"offset\": integer >= 0}",
                     req.id_json);
      }
      if (name.size() > 160) return error("bad_request", "stream name too long", req.id_json);
      req.streams.push_back(
          Position{std::string(name), std::string(epoch->get_string()),
                   offset->is_uint64() ? offset->get_uint64() : static_cast<std::uint64_t>(offset->get_int64())});
    }
    return req;
  }
  if (kind == "ack") {
    req.type = RequestType::ack;
    const auto* ids = obj.if_contains("ids");
    if (ids == nullptr || !ids->is_array() || ids->get_array().empty() || ids->get_array().size() > kMaxAckIds) {
      return error(
          "bad_request",
          "\"ack\" needs a member \"ids\": an array of 1 to " + std::to_string(kMaxAckIds) + " notification ids",
          req.id_json);
    }
    for (const auto& v : ids->get_array()) {
      if (!v.is_string() || !rules::valid_notification_id(v.get_string())) {
        return error("bad_request",
                     "each of \"ids\" must be a notification id (1 to 128 characters from [A-Za-z0-9_.:-])",
                     req.id_json);
      }
      req.ids.emplace_back(v.get_string());
    }
    return req;
  }
  if (kind == "inbox") {
    req.type = RequestType::inbox;
    if (const auto* limit = obj.if_contains("limit")) {
      const bool ok = (limit->is_int64() && limit->get_int64() >= 1 && limit->get_int64() <= 50) ||
                      (limit->is_uint64() && limit->get_uint64() >= 1 && limit->get_uint64() <= 50);
      if (!ok) return error("bad_request", "\"limit\" must be an integer from 1 to 50", req.id_json);
      req.limit = limit->is_int64() ? static_cast<std::size_t>(limit->get_int64())
                                    : static_cast<std::size_t>(limit->get_uint64());
    }
    if (const auto* before = obj.if_contains("before")) {
      if (!before->is_string() || !rules::valid_notification_id(before->get_string())) {
        return error("bad_request", "\"before\" must be a notification id", req.id_json);
      }
      req.before = before->get_string();
    }
    return req;
  }
  if (kind == "mark_read") {
    req.type = RequestType::mark_read;
    const auto* all = obj.if_contains("all");
    const auto* ids = obj.if_contains("ids");
    if (all != nullptr && all->is_bool() && all->get_bool() && ids == nullptr) {
      req.all = true;
      return req;
    }
    if (all != nullptr || ids == nullptr || !ids->is_array() || ids->get_array().empty() ||
        ids->get_array().size() > kMaxAckIds) {
      return error(
          "bad_request",
          "\"mark_read\" needs \"ids\" (1 to " + std::to_string(kMaxAckIds) + " notification ids) or \"all\": true",
          req.id_json);
    }
    for (const auto& v : ids->get_array()) {
      if (!v.is_string() || !rules::valid_notification_id(v.get_string())) {
        return error("bad_request", "each of \"ids\" must be a notification id", req.id_json);
      }
      req.ids.emplace_back(v.get_string());
    }
    return req;
  }
  // Echo the type only when short, so the reply can't be used to amplify.
  const std::string shown = kind.size() <= 64 ? " \"" + std::string(kind) + "\"" : std::string();
  return error("unknown_type",
               "unknown type" + shown +
                   "; expected subscribe, unsubscribe, ping, message, refresh, resume, ack, inbox or mark_read",
               req.id_json);
}

std::string encode_notification(std::string_view id, std::string_view event, std::string_view topic,
                                std::string_view data_json, std::int64_t ts_ms, std::string_view collapse_key,
                                const Position* position, bool require_ack, bool inbox) {
  std::string out;
  out.reserve(80 + id.size() + event.size() + topic.size() + data_json.size() + collapse_key.size());
  out += "{\"type\":\"notification\",\"id\":";
  append_json_string(out, id);
  out += ",\"event\":";
  append_json_string(out, event);
  if (!topic.empty()) {
    out += ",\"topic\":";
    append_json_string(out, topic);
  }
  out += ",\"data\":";
  out += data_json.empty() ? std::string_view("null") : data_json;
  out += ",\"ts\":";
  out += std::to_string(ts_ms);
  if (!collapse_key.empty()) {
    out += ",\"collapse_key\":";
    append_json_string(out, collapse_key);
  }
  if (require_ack) out += ",\"require_ack\":true";
  if (inbox) out += ",\"inbox\":true";
  if (position != nullptr) append_position(out, *position);
  out += '}';
  return out;
}

std::string encode_inbox(std::span<const std::string_view> notifications, std::uint64_t unread, bool more,
                         std::string_view id_json) {
  std::string out = "{\"type\":\"inbox\"";
  if (!id_json.empty()) {
    out += ",\"id\":";
    out += id_json;
  }
  out += ",\"unread\":" + std::to_string(unread) + ",\"notifications\":[";
  for (std::size_t i = 0; i < notifications.size(); ++i) {
    if (i > 0) out += ',';
    out += notifications[i];
  }
  out += "],\"more\":";
  out += more ? "true" : "false";
  out += '}';
  return out;
}

std::string encode_welcome(std::string_view connection_id, std::string_view user_id, std::int64_t expires_at,
                           std::span<const Position> streams) {
  std::string out = "{\"type\":\"welcome\",\"connection_id\":";
  append_json_string(out, connection_id);
  out += ",\"user_id\":";
  append_json_string(out, user_id);
  if (expires_at != 0) {
    out += ",\"expires_at\":";
    out += std::to_string(expires_at);
  }
  if (!streams.empty()) append_streams(out, streams);
  out += '}';
  return out;
}

std::string encode_refreshed(std::int64_t expires_at, std::string_view id_json) {
  std::string out = "{\"type\":\"refreshed\",\"expires_at\":";
  out += std::to_string(expires_at);
  append_id(out, id_json);
  out += '}';
  return out;
}

std::string encode_pong(std::string_view id_json) {
  std::string out = "{\"type\":\"pong\"";
  append_id(out, id_json);
  out += '}';
  return out;
}

namespace {
std::string encode_topic_reply(std::string_view type, std::string_view topic, std::string_view id_json,
                               std::string_view reason = {}, const Position* position = nullptr) {
  std::string out = "{\"type\":\"";
  out += type;
  out += "\",\"topic\":";
  append_json_string(out, topic);
  append_id(out, id_json);
  if (!reason.empty()) {
    out += ",\"reason\":";
    append_json_string(out, reason);
  }
  if (position != nullptr) append_position(out, *position);
  out += '}';
  return out;
}
}  // namespace

std::string encode_subscribed(std::string_view topic, std::string_view id_json, const Position* position) {
  return encode_topic_reply("subscribed", topic, id_json, {}, position);
}

std::string encode_skipped(const Position& position, std::uint64_t from) {
  std::string out = "{\"type\":\"skipped\"";
  append_position(out, position);
  out += ",\"from\":";
  out += std::to_string(from);
  out += '}';
  return out;
}

std::string encode_resume_failed(const Position& position, std::string_view reason, std::string_view id_json) {
  std::string out = "{\"type\":\"resume_failed\"";
  append_position(out, position);
  out += ",\"reason\":";
  append_json_string(out, reason);
  append_id(out, id_json);
  out += '}';
  return out;
}

std::string encode_resumed(std::span<const Position> streams, std::string_view id_json) {
  std::string out = "{\"type\":\"resumed\"";
  append_streams(out, streams);
  append_id(out, id_json);
  out += '}';
  return out;
}

std::string encode_unsubscribed(std::string_view topic, std::string_view id_json, std::string_view reason) {
  return encode_topic_reply("unsubscribed", topic, id_json, reason);
}

std::string encode_ack(std::string_view id_json, std::string_view message_id) {
  std::string out = "{\"type\":\"ack\"";
  append_id(out, id_json);
  out += ",\"message_id\":";
  append_json_string(out, message_id);
  out += '}';
  return out;
}

std::string encode_error(const Error& e) {
  std::string out = "{\"type\":\"error\",\"code\":";
  append_json_string(out, e.code);
  out += ",\"message\":";
  append_json_string(out, e.message);
  append_id(out, e.id_json);
  out += '}';
  return out;
}

}  // namespace notify::gateway::protocol
