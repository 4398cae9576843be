// libFuzzer target: the client protocol (gateway/protocol.cpp).
//
// The input is one client text frame. It goes through parse_request,
// check_json and raw_member(text, "data"); the parsed fields go back through
// the encoders. Besides crashes, sanitizer reports and uncaught exceptions,
// these invariants are checked (FUZZ_CHECK traps):
//   - parse_request answers bad_json exactly when check_json refuses the text;
//   - a message's data_json is valid JSON equal to the parsed "data" member,
//     and is either the raw text of that member or its serialization;
//   - a subscribe/unsubscribe topic is valid, a refresh token non-empty, an
//     echoed id a short string or an integer;
//   - every encoder's output is valid JSON that carries the fields back;
//   - raw_member never crashes or throws, whatever the text; on a valid JSON
//     object its result is valid JSON and, when no key is escaped, is the
//     value Boost.JSON keeps for "data";
//   - rules::valid_utf8 agrees with Boost.JSON's UTF-8 check.
#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/json_text.hpp"
#include "common/validation.hpp"
#include "fuzz_check.hpp"
#include "gateway/protocol.hpp"

namespace {

namespace json = boost::json;
namespace protocol = notify::gateway::protocol;

std::optional<json::value> parse(std::string_view text) {
  json::parse_options opts;
  opts.max_depth = protocol::kMaxJsonDepth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec) return std::nullopt;
  return v;
}

json::value must_parse(std::string_view text) {
  auto v = parse(text);
  if (!v) {
    std::fprintf(stderr, "not valid JSON (%zu bytes): %.*s\n", text.size(), static_cast<int>(text.size()), text.data());
    __builtin_trap();
  }
  return std::move(*v);
}

// Equality of two parsed values where a number may differ in its last bits:
// Boost.JSON 1.81 parses doubles imprecisely, and the same text can even give
// a different double depending on where it sits in the buffer. Integers
// compare exactly; NaN equals NaN (the same text parsed twice).
bool same_value(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) {
    if (!a.is_double() && !b.is_double()) return a == b;
    const double x = a.to_number<double>();
    const double y = b.to_number<double>();
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    if (x == y) return true;
    return std::fabs(x - y) <= 1e-13 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!same_value(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto& x = a.get_object();
    const auto& y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& kv : x) {
      const json::value* other = y.if_contains(kv.key());
      if (other == nullptr || !same_value(kv.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

// A parsed frame as JSON: must be an object; returns the member or nullptr.
const json::value* member(const json::value& frame, std::string_view key) {
  FUZZ_CHECK(frame.is_object());
  return frame.get_object().if_contains(key);
}

bool is_string(const json::value* v, std::string_view s) {
  return v != nullptr && v->is_string() && v->get_string() == s;
}

void check_id_json(std::string_view id_json) {
  if (id_json.empty()) return;
  const json::value id = must_parse(id_json);
  FUZZ_CHECK((id.is_string() && id.get_string().size() <= protocol::kMaxClientIdLength) || id.is_int64() ||
             id.is_uint64());
}

// The "id" an encoded reply carries is the one the request had.
void check_echoed_id(const json::value& reply, std::string_view id_json) {
  const json::value* id = member(reply, "id");
  if (id_json.empty()) {
    FUZZ_CHECK(id == nullptr);
  } else {
    FUZZ_CHECK(id != nullptr && *id == must_parse(id_json));
  }
}

void check_request(std::string_view text, const protocol::Request& req, const json::value& doc) {
  using protocol::RequestType;
  check_id_json(req.id_json);
  const json::object& obj = doc.get_object();
  switch (req.type) {
    case RequestType::subscribe:
    case RequestType::unsubscribe: {
      FUZZ_CHECK(notify::rules::valid_topic(req.topic));
      FUZZ_CHECK(is_string(obj.if_contains("topic"), req.topic));
      const json::value sub = must_parse(protocol::encode_subscribed(req.topic, req.id_json));
      FUZZ_CHECK(is_string(member(sub, "type"), "subscribed") && is_string(member(sub, "topic"), req.topic));
      check_echoed_id(sub, req.id_json);
      const json::value unsub = must_parse(protocol::encode_unsubscribed(req.topic, req.id_json, "forbidden"));
      FUZZ_CHECK(is_string(member(unsub, "reason"), "forbidden"));
      check_echoed_id(unsub, req.id_json);
      break;
    }
    case RequestType::ping:
      check_echoed_id(must_parse(protocol::encode_pong(req.id_json)), req.id_json);
      break;
    case RequestType::refresh: {
      FUZZ_CHECK(!req.token.empty());
      FUZZ_CHECK(is_string(obj.if_contains("token"), req.token));
      const json::value r = must_parse(protocol::encode_refreshed(1'700'000'000, req.id_json));
      check_echoed_id(r, req.id_json);
      // The token is arbitrary client text: it must encode as a JSON string.
      const json::value w = must_parse(protocol::encode_welcome(req.token, req.token, -1));
      FUZZ_CHECK(is_string(member(w, "user_id"), req.token));
      break;
    }
    case RequestType::message: {
      const json::value* data = obj.if_contains("data");
      FUZZ_CHECK(data != nullptr);
      // data_json is forwarded to backends verbatim: valid, and the same value.
      FUZZ_CHECK(!protocol::check_json(req.data_json));
      FUZZ_CHECK(same_value(must_parse(req.data_json), *data));
      const auto raw = protocol::raw_member(text, "data");
      FUZZ_CHECK(req.data_json == json::serialize(*data) || (raw && req.data_json == *raw));
      if (raw && req.data_json == *raw) {
        // The raw text is a slice of the frame.
        FUZZ_CHECK(raw->data() >= text.data() && raw->data() + raw->size() <= text.data() + text.size());
      }
      const std::string ack = protocol::encode_ack(req.id_json, "msg-1");
      check_echoed_id(must_parse(ack), req.id_json);
      // As a backend's notification: the data goes out as written.
      const std::string note = protocol::encode_notification("n-1", "chat.message", "room:1", req.data_json, 42);
      FUZZ_CHECK(!protocol::check_json(note));
      const json::value note_value = must_parse(note);
      const json::value* out = member(note_value, "data");
      FUZZ_CHECK(out != nullptr && same_value(*out, *data));
      break;
    }
  }
}

void check_error(std::string_view text, const protocol::Error& err, const std::optional<std::string>& json_problem) {
  static constexpr std::string_view kCodes[] = {"bad_json", "bad_request", "unknown_type", "invalid_topic"};
  bool known = false;
  for (auto c : kCodes) known = known || err.code == c;
  FUZZ_CHECK(known);
  FUZZ_CHECK(!err.message.empty());
  // bad_json exactly when check_json refuses the frame, or when the frame is
  // grammatical JSON holding a number beyond double's range (which the
  // protocol refuses because it could not be passed on).
  if (json_problem.has_value()) FUZZ_CHECK(err.code == "bad_json");
  if (err.code == "bad_json" && !json_problem.has_value()) {
    FUZZ_CHECK(err.message.find("out of range") != std::string::npos);
  }
  check_id_json(err.id_json);
  const json::value reply = must_parse(protocol::encode_error(err));
  FUZZ_CHECK(is_string(member(reply, "code"), err.code) && is_string(member(reply, "message"), err.message));
  check_echoed_id(reply, err.id_json);
  // An error never amplifies: it is bounded, whatever the frame's size.
  FUZZ_CHECK(err.message.size() <= 512);
  (void)text;
}

// raw_member's contract is valid JSON, but it is a public function over
// client bytes: by default it is also fed invalid text and must neither crash
// nor throw. FUZZ_RAW_MEMBER_VALID_JSON_ONLY=1 keeps to the contract (to fuzz
// the rest while such a finding is open).
bool raw_member_valid_json_only() {
  static const bool only = [] {
    const char* v = std::getenv("FUZZ_RAW_MEMBER_VALID_JSON_ONLY");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  return only;
}

void check_raw_member(std::string_view text, const std::optional<json::value>& doc) {
  if (!doc && raw_member_valid_json_only()) return;
  const auto raw = protocol::raw_member(text, "data");
  if (raw) FUZZ_CHECK(raw->data() >= text.data() && raw->data() + raw->size() <= text.data() + text.size());
  if (!doc) return;  // raw_member's contract: valid JSON only; above, it just must not misbehave
  if (!doc->is_object()) {
    FUZZ_CHECK(!raw);
    return;
  }
  if (raw) FUZZ_CHECK(!protocol::check_json(*raw));
  // With no escapes anywhere, keys are compared as written by both sides.
  if (text.find('\\') == std::string_view::npos) {
    const json::value* data = doc->get_object().if_contains("data");
    FUZZ_CHECK(raw.has_value() == (data != nullptr));
    if (raw) FUZZ_CHECK(same_value(must_parse(*raw), *data));
  }
}

void check_encoders(std::string_view text) {
  const bool utf8 = notify::rules::valid_utf8(text);
  // Differential: rules::valid_utf8 against Boost.JSON's own UTF-8 check, on
  // text that is otherwise a legal JSON string body.
  bool plain = true;
  for (char c : text) plain = plain && c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20;
  if (plain) {
    const bool boost_ok = parse("\"" + std::string(text) + "\"").has_value();
    if (boost_ok != utf8) {
      std::fprintf(stderr, "valid_utf8=%d but Boost.JSON %s the string\n", utf8, boost_ok ? "accepts" : "refuses");
      __builtin_trap();
    }
  }
  if (!utf8) return;  // the encoders take UTF-8 (every string from a parsed frame is)
  std::string quoted;
  notify::append_json_string(quoted, text);
  const json::value s = must_parse(quoted);
  FUZZ_CHECK(s.is_string() && s.get_string() == text);
  const json::value note = must_parse(protocol::encode_notification(text, text, text, {}, -1));
  FUZZ_CHECK(is_string(member(note, "event"), text) && is_string(member(note, "id"), text));
  // An empty topic means none: the member is left out.
  FUZZ_CHECK(text.empty() ? member(note, "topic") == nullptr : is_string(member(note, "topic"), text));
  FUZZ_CHECK(member(note, "data") != nullptr && member(note, "data")->is_null());
  protocol::Error err{"bad_request", std::string(text), {}};
  FUZZ_CHECK(is_string(member(must_parse(protocol::encode_error(err)), "message"), text));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::optional<std::string> json_problem = protocol::check_json(text);
  const std::optional<json::value> doc = parse(text);
  // check_json and Boost.JSON with the same limits agree.
  FUZZ_CHECK(json_problem.has_value() != doc.has_value());

  const auto result = protocol::parse_request(text);
  if (const auto* req = std::get_if<protocol::Request>(&result)) {
    FUZZ_CHECK(doc && doc->is_object());
    check_request(text, *req, *doc);
  } else {
    check_error(text, std::get<protocol::Error>(result), json_problem);
  }

  check_raw_member(text, doc);
  check_encoders(text);
  return 0;
}
