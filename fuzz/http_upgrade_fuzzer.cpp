// libFuzzer target: the HTTP side of a gateway session, without sockets.
//
// Input layout: byte 0 selects the run, the rest is what the client sends.
//   bit 0       draining (the gateway is shutting down)
//   bits 1-2    the token verifier: 0/3 with JWKS + aud/iss policy, 1 without
//               JWKS, 2 none configured (fuzz_keys.hpp)
//   bits 3-7    n: the bytes arrive in reads of n*n bytes (n = 0: one read)
//
// The bytes go through a request_parser<string_body> set up like
// gateway/http_session.cpp (header limit 8192, body limit 16 KiB, eager, a
// buffer of at most header + body + 1 KiB), fed the way http::async_read
// feeds it. A complete request then goes where HttpSession::route_gateway
// sends it: boost::urls::parse_origin_form on the target, the client address
// from X-Forwarded-For, and decide_upgrade under three GatewaySettings
// (tokens only + same-host origins; --insecure-dev with an origin list and
// public topics; any origin). Crashes, sanitizer reports, uncaught exceptions
// and broken invariants (FUZZ_CHECK) are findings.
#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "auth/client_address.hpp"
#include "auth/origin_policy.hpp"
#include "auth/topic_grants.hpp"
#include "common/validation.hpp"
#include "fuzz_check.hpp"
#include "fuzz_keys.hpp"
#include "gateway/settings.hpp"
#include "gateway/upgrade_policy.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using notify::HandshakeFailure;
using notify::gateway::GatewaySettings;
using notify::gateway::UpgradeDecision;
using notify::gateway::UpgradeRequest;

// As in gateway/http_session.cpp and GatewaySettings' defaults.
constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
constexpr std::size_t kMaxBodyBytes = 16 * 1024;

struct Variant {
  const char* name;
  GatewaySettings settings;
};

std::vector<Variant> make_variants() {
  std::vector<Variant> out;
  GatewaySettings tokens_only;  // the production default: tokens, same-host origins
  tokens_only.trusted_proxies = notify::auth::TrustedProxies::parse("10.0.0.0/8, ::1, 127.0.0.1");
  out.push_back({"tokens-same-host", tokens_only});

  GatewaySettings dev;
  dev.insecure_dev = true;
  dev.allowed_origins = notify::auth::OriginPolicy::parse(
      "https://app.example.com, https://*.example.org, localhost, *.test, http://[::1]:8080");
  std::string bad;
  if (!notify::auth::TopicGrants::parse_list("news, public:*", dev.public_topics, bad)) __builtin_trap();
  out.push_back({"insecure-dev-origin-list", dev});

  GatewaySettings any_origin;
  any_origin.allowed_origins = notify::auth::OriginPolicy::parse("*");
  any_origin.trusted_proxies = notify::auth::TrustedProxies::parse("0.0.0.0/0, ::/0");
  out.push_back({"tokens-any-origin", any_origin});
  return out;
}

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = make_variants();
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Every string the request offers as a token, found independently of
// decide_upgrade: none may show up in a refusal message (it is logged and
// sent back in the body).
std::vector<std::string> offered_tokens(const UpgradeRequest& req, const boost::urls::url_view* target) {
  std::vector<std::string> out;
  if (auto a = req[http::field::authorization]; a.size() > 7) out.emplace_back(trim(a.substr(7)));
  for (auto [it, end] = req.equal_range(http::field::sec_websocket_protocol); it != end; ++it) {
    std::string_view list = it->value();
    for (auto pos = list.find("bearer."); pos != std::string_view::npos; pos = list.find("bearer.", pos + 1)) {
      std::string_view rest = list.substr(pos + 7);
      out.emplace_back(trim(rest.substr(0, rest.find(','))));
    }
  }
  if (target != nullptr) {
    for (auto p : target->params()) {
      if (p.key == "token" && p.has_value) out.push_back(p.value);
    }
  }
  return out;
}

bool offers_notify_subprotocol(const UpgradeRequest& req) {
  for (auto [it, end] = req.equal_range(http::field::sec_websocket_protocol); it != end; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      const auto comma = list.find(',');
      if (trim(list.substr(0, comma)) == notify::gateway::kSubprotocol) return true;
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  return false;
}

void check_decision(const UpgradeDecision& d, const UpgradeRequest& req, const GatewaySettings& settings,
                    const notify::auth::JwtVerifier* verifier, bool draining, bool target_ok,
                    const std::vector<std::string>& tokens) {
  if (draining) {
    FUZZ_CHECK(!d.accept && d.status == http::status::service_unavailable &&
               d.reason == HandshakeFailure::shutting_down);
    return;
  }
  if (!target_ok) FUZZ_CHECK(!d.accept && d.status == http::status::bad_request);
  if (!d.accept) {
    FUZZ_CHECK(!d.message.empty());
    const auto code = static_cast<unsigned>(d.status);
    FUZZ_CHECK(code >= 400 && code < 600);
    // 401 exactly when a token problem is reported.
    FUZZ_CHECK(d.token_error.has_value() == (d.status == http::status::unauthorized));
    FUZZ_CHECK((d.reason == HandshakeFailure::unauthorized) == (d.status == http::status::unauthorized));
    for (const auto& t : tokens) {
      // Token-shaped strings only (base64url and at least two dots): other
      // text may spell part of a fixed message, as "bearer.e notify.v1
      // subprotocol together with bearer.<toke" did (regressions/).
      const bool jwt_alphabet = std::all_of(t.begin(), t.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
      });
      if (t.size() >= 24 && jwt_alphabet && std::count(t.begin(), t.end(), '.') >= 2) {
        FUZZ_CHECK(d.message.find(t) == std::string::npos);
      }
    }
    return;
  }
  // Accepted.
  FUZZ_CHECK(target_ok);
  FUZZ_CHECK(settings.allowed_origins.allows(req[http::field::origin], req[http::field::host]));
  FUZZ_CHECK(notify::rules::valid_user_id(d.user_id));
  FUZZ_CHECK(!d.token_error);
  FUZZ_CHECK(d.subprotocol.empty() || d.subprotocol == notify::gateway::kSubprotocol);
  FUZZ_CHECK(d.subprotocol.empty() != offers_notify_subprotocol(req));
  if (d.all_topics) {
    // The development identity: only with --insecure-dev, never expiring.
    FUZZ_CHECK(settings.insecure_dev);
    FUZZ_CHECK(d.expires_at == 0 && d.topics.empty());
  } else {
    // A verified token: there is a verifier, and it has not expired.
    FUZZ_CHECK(verifier != nullptr);
    FUZZ_CHECK(d.expires_at > fuzzkeys::kFuzzNow);
  }
}

void route(const UpgradeRequest& req, bool draining, const notify::auth::JwtVerifier* verifier) {
  // HttpSession::route_gateway
  const auto target = boost::urls::parse_origin_form(req.target());
  if (target) {
    const std::string path = target->path();
    (void)path;
    for (auto p : target->params()) (void)p;  // decode every parameter
  }
  (void)beast::websocket::is_upgrade(req);
  (void)req.keep_alive();

  // HttpSession::upgrade: the client address behind trusted proxies.
  std::vector<std::string_view> forwarded;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) forwarded.push_back(it->value());
  static const auto peer_v4 = boost::asio::ip::make_address("10.1.2.3");
  static const auto peer_v6 = boost::asio::ip::make_address("::ffff:127.0.0.1");

  const auto tokens = offered_tokens(req, target ? &*target : nullptr);
  for (const auto& v : variants()) {
    (void)v.settings.trusted_proxies.client_address(peer_v4, forwarded);
    (void)v.settings.trusted_proxies.client_address(peer_v6, forwarded);
    const UpgradeDecision d = notify::gateway::decide_upgrade(req, v.settings, verifier, draining, fuzzkeys::kFuzzNow);
    check_decision(d, req, v.settings, verifier, draining, target.has_value(), tokens);
    if (d.accept) {
      // What the session does next with the grants.
      (void)d.topics.allows("news");
      (void)v.settings.public_topics.allows("public:x");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzzkeys::verifier_with_jwks();
  fuzzkeys::verifier_without_jwks();
  variants();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const bool draining = (selector & 1) != 0;
  const notify::auth::JwtVerifier* verifier = nullptr;
  switch ((selector >> 1) & 3) {
    case 1:
      verifier = &fuzzkeys::verifier_without_jwks();
      break;
    case 2:
      verifier = nullptr;
      break;
    default:
      verifier = &fuzzkeys::verifier_with_jwks();
  }
  const std::size_t n = selector >> 3;
  const std::size_t chunk = n == 0 ? SIZE_MAX : n * n;
  const char* in = reinterpret_cast<const char*>(data + 1);
  const std::size_t in_size = size - 1;

  // As HttpSession::do_read sets it up.
  beast::flat_buffer buffer(kMaxHeaderBytes + kMaxBodyBytes + 1024);
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(kMaxHeaderBytes));
  parser.body_limit(kMaxBodyBytes);
  parser.eager(true);  // what http::async_read(stream, buffer, parser) sets

  // As http::async_read drives http::async_read_some until the message is done.
  std::size_t pos = 0;
  beast::error_code ec;
  while (!ec && !parser.is_done()) {
    bool need_read = buffer.size() == 0;
    for (;;) {
      if (!need_read) {
        const std::size_t used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec != http::error::need_more) break;
      }
      need_read = false;
      const std::size_t room = buffer.max_size() - buffer.size();
      if (room == 0) {
        ec = http::error::buffer_overflow;
        break;
      }
      if (pos == in_size) {  // the client closed
        ec = {};
        if (parser.got_some()) {
          parser.put_eof(ec);
          if (!ec) FUZZ_CHECK(parser.is_done());
        } else {
          ec = http::error::end_of_stream;
        }
        break;
      }
      const std::size_t take = std::min({room, chunk, in_size - pos, std::size_t{65536}});
      auto mb = buffer.prepare(take);
      std::memcpy(mb.data(), in + pos, take);
      buffer.commit(take);
      pos += take;
      ec = {};
    }
  }
  if (ec) {
    // HttpSession::on_read answers these (400, 413, 431 or nothing). Note that
    // header_limit also comes from a folded (obs-fold) value longer than
    // Beast's fixed buffer, so it does not imply a head above 8192 bytes.
    return 0;
  }
  FUZZ_CHECK(parser.is_done());
  UpgradeRequest req = parser.release();
  FUZZ_CHECK(req.body().size() <= kMaxBodyBytes);
  route(req, draining, verifier);
  return 0;
}
