#include "broker/envelope.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "common/json_text.hpp"
#include "common/validation.hpp"

namespace notify::broker {

namespace json = boost::json;

namespace {

constexpr std::int64_t kVersion = 1;

std::string_view kind_name(Envelope::Kind k) {
  switch (k) {
    case Envelope::Kind::publication:
      return "n";
    case Envelope::Kind::disconnect:
      return "d";
    case Envelope::Kind::client_message:
      return "m";
    case Envelope::Kind::probe:
      return "p";
    case Envelope::Kind::report:
      return "r";
    case Envelope::Kind::unread:
      return "u";
  }
  return "?";
}

// Reads the string member `key`; false (with `why`) if absent or not a string.
bool text(const json::object& o, std::string_view key, std::string& out, std::string& why) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    why = "member \"" + std::string(key) + "\" missing or not a string";
    return false;
  }
  out.assign(v->get_string().data(), v->get_string().size());
  return true;
}

bool integer(const json::object& o, std::string_view key, std::int64_t& out, std::string& why) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !(v->is_int64() || v->is_uint64())) {
    why = "member \"" + std::string(key) + "\" missing or not an integer";
    return false;
  }
  out = v->is_int64() ? v->get_int64() : static_cast<std::int64_t>(v->get_uint64());
  return true;
}

// The carried JSON text: empty (null) or valid JSON within the size limit.
bool data(const json::object& o, std::size_t max_bytes, std::string& out, std::string& why) {
  if (!text(o, "data", out, why)) return false;
  if (out.size() > max_bytes) {
    why = "data is " + std::to_string(out.size()) + " bytes, above the limit of " + std::to_string(max_bytes);
    return false;
  }
  if (out.empty()) return true;
  if (auto error = check_json(out)) {
    why = "data is not valid JSON: " + *error;
    return false;
  }
  return true;
}

bool check(bool ok, std::string_view what, std::string& why) {
  if (!ok) why = std::string(what);
  return ok;
}

// The place in history the publish script added: a stream named as the
// channel is (user:<id>, topic:<t>, all), an epoch, an offset from 1.
bool position(const json::object& o, gateway::protocol::Position& p, std::string& why) {
  std::int64_t offset = 0;
  if (!text(o, "st", p.stream, why) || !text(o, "ep", p.epoch, why) || !integer(o, "o", offset, why)) return false;
  const bool stream_ok =
      p.stream == "all" ||
      (p.stream.starts_with("user:") && rules::valid_user_id(std::string_view(p.stream).substr(5))) ||
      (p.stream.starts_with("topic:") && rules::valid_topic(std::string_view(p.stream).substr(6)));
  p.offset = static_cast<std::uint64_t>(std::max<std::int64_t>(offset, 0));
  return check(stream_ok, "malformed stream", why) &&
         check(!p.epoch.empty() && p.epoch.size() <= 64 && rules::valid_notification_id(p.epoch), "malformed epoch",
               why) &&
         check(offset >= 1, "malformed offset", why);
}

}  // namespace

std::string encode(const Envelope& e) {
  json::object o;
  o["v"] = kVersion;
  o["k"] = kind_name(e.kind);
  o["node"] = e.node;
  switch (e.kind) {
    case Envelope::Kind::publication:
      o["id"] = e.publication.id;
      o["event"] = e.publication.event;
      o["topic"] = e.publication.topic;
      o["data"] = e.publication.data_json;
      o["ts"] = e.publication.ts_ms;
      // Only when set: a replica of an older version ignores it.
      if (!e.publication.collapse_key.empty()) o["ck"] = e.publication.collapse_key;
      if (e.publication.ack_deadline_ms != 0) o["ak"] = e.publication.ack_deadline_ms;
      if (e.publication.inbox_expires_ms != 0) o["px"] = e.publication.inbox_expires_ms;
      break;
    case Envelope::Kind::disconnect:
      o["reason"] = e.reason;
      break;
    case Envelope::Kind::client_message:
      o["id"] = e.message.id;
      o["user"] = e.message.user_id;
      o["conn"] = e.message.connection_id;
      o["data"] = e.message.data_json;
      o["cid"] = e.message.client_message_id;
      o["ts"] = e.message.ts_ms;
      break;
    case Envelope::Kind::probe:
      o["seq"] = e.probe;
      break;
    case Envelope::Kind::report:
      o["id"] = e.report.notification_id;
      o["user"] = e.report.user_id;
      o["conn"] = e.report.connection_id;
      o["out"] = static_cast<std::int64_t>(e.report.outcome);
      o["ts"] = e.report.ts_ms;
      o["pts"] = e.report.published_ts_ms;
      break;
    case Envelope::Kind::unread:
      o["c"] = e.unread.count;
      o["x"] = e.unread.except_connection;
      break;
  }
  return json::serialize(o);
}

std::optional<Envelope> decode(std::string_view input, std::size_t max_data_bytes, std::string& why) {
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 4;  // the envelope is flat; "data" is a string
  json::value value = json::parse(input, ec, {}, options);
  if (ec) {
    why = "not JSON: " + ec.message();
    return std::nullopt;
  }
  if (!value.is_object()) {
    why = "not a JSON object";
    return std::nullopt;
  }
  const json::object& o = value.get_object();
  std::int64_t version = 0;
  std::string kind;
  Envelope e;
  if (!integer(o, "v", version, why) || !text(o, "k", kind, why) || !text(o, "node", e.node, why)) return std::nullopt;
  if (version != kVersion) {
    why = "version " + std::to_string(version) + " (this gateway speaks " + std::to_string(kVersion) + ")";
    return std::nullopt;
  }
  if (!check(!e.node.empty() && e.node.size() <= 128 && rules::valid_utf8(e.node), "malformed node id", why)) {
    return std::nullopt;
  }
  bool ok = false;
  if (kind == "n") {
    e.kind = Envelope::Kind::publication;
    auto& p = e.publication;
    ok = text(o, "id", p.id, why) && check(rules::valid_notification_id(p.id), "malformed id", why) &&
         text(o, "event", p.event, why) && check(rules::valid_event(p.event), "malformed event", why) &&
         text(o, "topic", p.topic, why) &&
         check(p.topic.empty() || rules::valid_topic(p.topic), "malformed topic", why) &&
         data(o, max_data_bytes, p.data_json, why) && integer(o, "ts", p.ts_ms, why) &&
         (!o.contains("ck") || (text(o, "ck", p.collapse_key, why) &&
                                check(rules::valid_notification_id(p.collapse_key), "malformed collapse key", why))) &&
         (!o.contains("ak") ||
          (integer(o, "ak", p.ack_deadline_ms, why) && check(p.ack_deadline_ms > 0, "malformed ack deadline", why))) &&
         (!o.contains("px") || (integer(o, "px", p.inbox_expires_ms, why) &&
                                check(p.inbox_expires_ms > 0, "malformed inbox expiry", why))) &&
         (!o.contains("o") || position(o, e.position, why));
  } else if (kind == "d") {
    e.kind = Envelope::Kind::disconnect;
    ok = text(o, "reason", e.reason, why) &&
         check(e.reason.size() <= rules::kMaxCloseReasonBytes && rules::valid_utf8(e.reason), "malformed reason", why);
  } else if (kind == "m") {
    e.kind = Envelope::Kind::client_message;
    auto& m = e.message;
    ok = text(o, "id", m.id, why) && check(rules::valid_notification_id(m.id), "malformed id", why) &&
         text(o, "user", m.user_id, why) && check(rules::valid_user_id(m.user_id), "malformed user", why) &&
         text(o, "conn", m.connection_id, why) &&
         check(rules::valid_notification_id(m.connection_id), "malformed connection id", why) &&
         data(o, max_data_bytes, m.data_json, why) && text(o, "cid", m.client_message_id, why) &&
         check(m.client_message_id.size() <= 256 && (m.client_message_id.empty() || !check_json(m.client_message_id)),
               "malformed client message id", why) &&
         integer(o, "ts", m.ts_ms, why);
  } else if (kind == "r") {
    e.kind = Envelope::Kind::report;
    auto& r = e.report;
    std::int64_t outcome = 0;
    ok = text(o, "id", r.notification_id, why) &&
         check(rules::valid_notification_id(r.notification_id), "malformed id", why) &&
         text(o, "user", r.user_id, why) && check(rules::valid_user_id(r.user_id), "malformed user", why) &&
         text(o, "conn", r.connection_id, why) &&
         check(rules::valid_notification_id(r.connection_id), "malformed connection id", why) &&
         integer(o, "out", outcome, why) && check(outcome >= 1 && outcome <= 4, "malformed outcome", why) &&
         integer(o, "ts", r.ts_ms, why) && integer(o, "pts", r.published_ts_ms, why);
    r.outcome = static_cast<gateway::DeliveryReport::Outcome>(outcome);
  } else if (kind == "u") {
    e.kind = Envelope::Kind::unread;
    std::int64_t count = 0;
    ok = integer(o, "c", count, why) && check(count >= 0, "malformed count", why) &&
         text(o, "x", e.unread.except_connection, why) &&
         check(e.unread.except_connection.empty() || rules::valid_notification_id(e.unread.except_connection),
               "malformed connection id", why);
    e.unread.count = static_cast<std::uint64_t>(count);
  } else if (kind == "p") {
    e.kind = Envelope::Kind::probe;
    std::int64_t seq = 0;
    ok = integer(o, "seq", seq, why);
    e.probe = static_cast<std::uint64_t>(seq);
  } else {
    why = "unknown kind \"" + kind.substr(0, 16) + "\"";
  }
  if (!ok) return std::nullopt;
  return e;
}

}  // namespace notify::broker
