// decide_upgrade(): who may open a WebSocket, from the upgrade request alone:
// draining, Origin, where the token comes from (Authorization, the bearer
// subprotocol, ?token=), the development identity, and the subprotocol echoed.
#include "gateway/upgrade_policy.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "auth/key_set.hpp"
#include "tests/support/crypto_fixtures.hpp"

namespace notify::gateway {
namespace {

namespace fx = notify::testing;
namespace http = boost::beast::http;
using Strings = std::vector<std::string>;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::int64_t kExp = kNow + 600;
constexpr std::int64_t kLeeway = 30;
const std::string kSecret = "upgrade-policy-test-secret-0123456789";
const std::string kHost = "gw.example.com";

std::string token_for(const std::string& sub, std::int64_t exp = kExp, const std::string& extra = "") {
  std::string payload = R"({"sub":")" + sub + R"(","exp":)" + std::to_string(exp);
  if (!extra.empty()) payload += "," + extra;
  return fx::make_jwt("HS256", kSecret, payload + "}");
}

// A WebSocket upgrade request; headers are inserted (so repeats stay separate lines).
UpgradeRequest request(const std::string& target, const std::vector<std::pair<http::field, std::string>>& headers = {},
                       const std::string& host = kHost) {
  UpgradeRequest req{http::verb::get, target, 11};
  if (!host.empty()) req.set(http::field::host, host);
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::sec_websocket_version, "13");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  for (const auto& [field, value] : headers) req.insert(field, value);
  return req;
}

class UpgradePolicy : public ::testing::Test {
 protected:
  UpgradePolicy() {
    auth::KeySources sources;
    sources.secret = kSecret;
    auth::JwtPolicy policy;
    policy.leeway = std::chrono::seconds(kLeeway);
    verifier_ = std::make_unique<auth::JwtVerifier>(policy, auth::KeySet::load(sources));
  }

  UpgradeDecision decide(const UpgradeRequest& req, bool draining = false) const {
    return decide_upgrade(req, settings_, verifier_.get(), draining, kNow);
  }

  GatewaySettings settings_;
  std::unique_ptr<auth::JwtVerifier> verifier_;
};

::testing::AssertionResult AcceptedAs(const UpgradeDecision& d, const std::string& user) {
  if (!d.accept) {
    return ::testing::AssertionFailure() << "refused " << static_cast<int>(d.status) << ": " << d.message;
  }
  if (d.user_id != user) return ::testing::AssertionFailure() << "accepted as \"" << d.user_id << "\"";
  return ::testing::AssertionSuccess();
}

// 401 with that token error, and a message that does not quote the token.
::testing::AssertionResult Unauthorized(const UpgradeDecision& d, TokenError error, const std::string& token = "") {
  if (d.accept) return ::testing::AssertionFailure() << "accepted as \"" << d.user_id << "\"";
  if (d.status != http::status::unauthorized) {
    return ::testing::AssertionFailure() << "status " << static_cast<int>(d.status) << ": " << d.message;
  }
  if (d.reason != HandshakeFailure::unauthorized) return ::testing::AssertionFailure() << "reason is not unauthorized";
  if (!d.token_error) return ::testing::AssertionFailure() << "no token_error";
  if (*d.token_error != error) {
    return ::testing::AssertionFailure() << "token_error " << to_string(*d.token_error) << ", expected "
                                         << to_string(error) << " (" << d.message << ")";
  }
  if (d.message.empty()) return ::testing::AssertionFailure() << "empty message";
  if (!token.empty() && d.message.find(token) != std::string::npos) {
    return ::testing::AssertionFailure() << "message quotes the token: " << d.message;
  }
  if (!d.user_id.empty()) return ::testing::AssertionFailure() << "user_id set on a refusal";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RefusedWith(const UpgradeDecision& d, http::status status, HandshakeFailure reason) {
  if (d.accept) return ::testing::AssertionFailure() << "accepted as \"" << d.user_id << "\"";
  if (d.status != status) {
    return ::testing::AssertionFailure() << "status " << static_cast<int>(d.status) << ": " << d.message;
  }
  if (d.reason != reason) return ::testing::AssertionFailure() << "reason " << static_cast<int>(d.reason);
  if (d.message.empty()) return ::testing::AssertionFailure() << "empty message";
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------- before the token

TEST_F(UpgradePolicy, DrainingRefusesEverything) {
  const auto d = decide(request("/ws", {{http::field::authorization, "Bearer " + token_for("alice")}}), true);
  EXPECT_TRUE(RefusedWith(d, http::status::service_unavailable, HandshakeFailure::shutting_down));
  EXPECT_FALSE(d.token_error.has_value());
  settings_.insecure_dev = true;
  EXPECT_TRUE(RefusedWith(decide(request("/ws?user=alice"), true), http::status::service_unavailable,
                          HandshakeFailure::shutting_down));
}

TEST_F(UpgradePolicy, MalformedTargetIsBadRequest) {
  for (const std::string& target : Strings{"ws", "http://gw.example.com/ws", "/ws?token=%zz", "*", "/ws#frag"}) {
    const auto d = decide(request(target, {{http::field::authorization, "Bearer " + token_for("alice")}}));
    EXPECT_TRUE(RefusedWith(d, http::status::bad_request, HandshakeFailure::bad_request)) << target;
  }
}

TEST_F(UpgradePolicy, ForbiddenOrigin) {
  const auto token = token_for("alice");
  const auto d = decide(
      request("/ws", {{http::field::authorization, "Bearer " + token}, {http::field::origin, "https://evil.example"}}));
  EXPECT_TRUE(RefusedWith(d, http::status::forbidden, HandshakeFailure::forbidden_origin));
  EXPECT_FALSE(d.token_error.has_value());
  EXPECT_TRUE(RefusedWith(decide(request("/ws", {{http::field::origin, "null"}})), http::status::forbidden,
                          HandshakeFailure::forbidden_origin));
}

TEST_F(UpgradePolicy, SameHostAndAbsentOriginsPass) {
  const auto bearer = std::pair{http::field::authorization, "Bearer " + token_for("alice")};
  EXPECT_TRUE(AcceptedAs(decide(request("/ws", {bearer})), "alice"));
  EXPECT_TRUE(AcceptedAs(decide(request("/ws", {bearer, {http::field::origin, "https://gw.example.com"}})), "alice"));
  EXPECT_TRUE(AcceptedAs(
      decide(request("/ws", {bearer, {http::field::origin, "http://gw.example.com:8080"}}, "gw.example.com:8080")),
      "alice"));
}

TEST_F(UpgradePolicy, ConfiguredOrigins) {
  settings_.allowed_origins = auth::OriginPolicy::parse("https://app.example.com");
  const auto bearer = std::pair{http::field::authorization, "Bearer " + token_for("alice")};
  EXPECT_TRUE(AcceptedAs(decide(request("/ws", {bearer, {http::field::origin, "https://app.example.com"}})), "alice"));
  EXPECT_TRUE(RefusedWith(decide(request("/ws", {bearer, {http::field::origin, "https://gw.example.com"}})),
                          http::status::forbidden, HandshakeFailure::forbidden_origin));
}

// ---------------------------------------------------------------- Authorization header

TEST_F(UpgradePolicy, AuthorizationBearerAccepted) {
  const auto d = decide(
      request("/ws", {{http::field::authorization, "Bearer " + token_for("alice", kExp, R"("topics":["post:*"])")}}));
  ASSERT_TRUE(AcceptedAs(d, "alice"));
  EXPECT_EQ(d.expires_at, kExp);
  EXPECT_FALSE(d.all_topics);
  EXPECT_TRUE(d.topics.allows("post:1"));
  EXPECT_FALSE(d.topics.allows("user:bob"));
  EXPECT_TRUE(d.subprotocol.empty());  // none offered
  EXPECT_FALSE(d.token_error.has_value());
}

TEST_F(UpgradePolicy, AuthorizationSchemeIsCaseInsensitiveAndTrimmed) {
  const auto token = token_for("alice");
  for (const std::string& value :
       Strings{"bearer " + token, "BEARER " + token, "Bearer   " + token + "  ", "Bearer \t" + token}) {
    EXPECT_TRUE(AcceptedAs(decide(request("/ws", {{http::field::authorization, value}})), "alice")) << value;
  }
}

TEST_F(UpgradePolicy, AuthorizationOtherSchemesAreMalformed) {
  const auto token = token_for("alice");
  for (const std::string& value : Strings{"Basic YWxpY2U6cGFzc3dvcmQ=", "Bearer", "Bearer" + token, token,
                                          "Token " + token, "Bearer:" + token, "Bearer\t" + token}) {
    EXPECT_TRUE(
        Unauthorized(decide(request("/ws", {{http::field::authorization, value}})), TokenError::malformed, token))
        << value;
  }
}

TEST_F(UpgradePolicy, AuthorizationWithInvalidTokens) {
  struct Case {
    std::string token;
    TokenError error;
  };
  const std::vector<Case> cases = {
      {token_for("alice", kNow - 100), TokenError::expired},
      {fx::make_jwt("HS256", "some-other-secret-of-32-bytes-or-more", R"({"sub":"alice","exp":1700000600})"),
       TokenError::bad_signature},
      {"not.a.jwt", TokenError::malformed},
      {"abc", TokenError::malformed},
      {fx::make_jwt("HS256", kSecret, R"({"sub":"alice"})"), TokenError::missing_expiry},
      {fx::make_jwt("HS256", kSecret, R"({"sub":"a b","exp":1700000600})"), TokenError::invalid_subject},
      {fx::sign_jwt(R"({"alg":"none"})", R"({"sub":"alice","exp":1700000600})", "none", ""),
       TokenError::unsupported_algorithm},
      {token_for("alice", kExp, R"("nbf":1800000000)"), TokenError::not_yet_valid},
  };
  for (const auto& c : cases) {
    EXPECT_TRUE(
        Unauthorized(decide(request("/ws", {{http::field::authorization, "Bearer " + c.token}})), c.error, c.token))
        << c.token;
    EXPECT_TRUE(Unauthorized(decide(request("/ws?token=" + c.token)), c.error, c.token)) << c.token;
  }
}

TEST_F(UpgradePolicy, WrongAudienceFromThePolicy) {
  auth::KeySources sources;
  sources.secret = kSecret;
  auth::JwtPolicy policy;
  policy.audience = "notify";
  verifier_ = std::make_unique<auth::JwtVerifier>(policy, auth::KeySet::load(sources));
  const auto wrong = token_for("alice", kExp, R"("aud":"other")");
  EXPECT_TRUE(Unauthorized(decide(request("/ws", {{http::field::authorization, "Bearer " + wrong}})),
                           TokenError::wrong_audience, wrong));
  const auto right = token_for("alice", kExp, R"("aud":"notify")");
  EXPECT_TRUE(AcceptedAs(decide(request("/ws", {{http::field::authorization, "Bearer " + right}})), "alice"));
}

// ---------------------------------------------------------------- bearer subprotocol

TEST_F(UpgradePolicy, BearerSubprotocolWithNotifyV1) {
  const auto token = token_for("bob");
  for (const std::string& offer : Strings{"notify.v1, bearer." + token, "bearer." + token + ", notify.v1",
                                          "chat,notify.v1,bearer." + token, "  notify.v1 ,  bearer." + token + "  "}) {
    const auto d = decide(request("/ws", {{http::field::sec_websocket_protocol, offer}}));
    ASSERT_TRUE(AcceptedAs(d, "bob")) << offer;
    EXPECT_EQ(d.subprotocol, "notify.v1");
    EXPECT_EQ(d.expires_at, kExp);
  }
  // The two entries on separate header lines.
  const auto d = decide(request("/ws", {{http::field::sec_websocket_protocol, "notify.v1"},
                                        {http::field::sec_websocket_protocol, "bearer." + token}}));
  EXPECT_TRUE(AcceptedAs(d, "bob"));
  EXPECT_EQ(d.subprotocol, "notify.v1");
}

TEST_F(UpgradePolicy, BearerSubprotocolWithoutNotifyV1IsBadRequest) {
  const auto token = token_for("bob");
  for (const std::string& offer : Strings{"bearer." + token, "chat, bearer." + token, "notify.v2, bearer." + token,
                                          "Notify.v1, bearer." + token}) {
    const auto d = decide(request("/ws", {{http::field::sec_websocket_protocol, offer}}));
    EXPECT_TRUE(RefusedWith(d, http::status::bad_request, HandshakeFailure::bad_request)) << offer;
    EXPECT_EQ(d.message.find(token), std::string::npos);
  }
}

TEST_F(UpgradePolicy, InvalidBearerSubprotocolToken) {
  const auto expired = token_for("bob", kNow - 3600);
  EXPECT_TRUE(
      Unauthorized(decide(request("/ws", {{http::field::sec_websocket_protocol, "notify.v1, bearer." + expired}})),
                   TokenError::expired, expired));
}

TEST_F(UpgradePolicy, NotifyV1OfferedWithoutTokenIsSelectedInDevMode) {
  settings_.insecure_dev = true;
  const auto d = decide(request("/ws?user=alice", {{http::field::sec_websocket_protocol, "chat, notify.v1"}}));
  ASSERT_TRUE(AcceptedAs(d, "alice"));
  EXPECT_EQ(d.subprotocol, "notify.v1");
}

TEST_F(UpgradePolicy, NotifyV1SelectedWithAuthorizationOrQueryToken) {
  const auto token = token_for("alice");
  const auto a = decide(request(
      "/ws", {{http::field::authorization, "Bearer " + token}, {http::field::sec_websocket_protocol, "notify.v1"}}));
  ASSERT_TRUE(AcceptedAs(a, "alice"));
  EXPECT_EQ(a.subprotocol, "notify.v1");
  const auto q = decide(request("/ws?token=" + token, {{http::field::sec_websocket_protocol, "notify.v1"}}));
  ASSERT_TRUE(AcceptedAs(q, "alice"));
  EXPECT_EQ(q.subprotocol, "notify.v1");
  // Another protocol alone is not selected.
  const auto other = decide(request("/ws?token=" + token, {{http::field::sec_websocket_protocol, "chat"}}));
  ASSERT_TRUE(AcceptedAs(other, "alice"));
  EXPECT_TRUE(other.subprotocol.empty());
}

// ---------------------------------------------------------------- ?token=

TEST_F(UpgradePolicy, QueryToken) {
  const auto token = token_for("carol");
  const auto d = decide(request("/ws?token=" + token));
  ASSERT_TRUE(AcceptedAs(d, "carol"));
  EXPECT_EQ(d.expires_at, kExp);
  EXPECT_TRUE(AcceptedAs(decide(request("/ws?x=1&token=" + token + "&y=2")), "carol"));
  EXPECT_TRUE(AcceptedAs(decide(request("/other/path?token=" + token)), "carol"));
}

TEST_F(UpgradePolicy, PercentEncodedQueryTokenIsDecoded) {
  const auto token = token_for("carol");
  std::string encoded;
  for (const char c : token)
    encoded += c == '.' ? std::string("%2E") : c == '-' ? std::string("%2d") : std::string(1, c);
  ASSERT_NE(encoded, token);
  EXPECT_TRUE(AcceptedAs(decide(request("/ws?token=" + encoded)), "carol"));
}

TEST_F(UpgradePolicy, EmptyQueryTokenIsMissing) {
  EXPECT_TRUE(Unauthorized(decide(request("/ws?token=")), TokenError::missing));
  EXPECT_TRUE(Unauthorized(decide(request("/ws?token")), TokenError::missing));
}

// ---------------------------------------------------------------- precedence

TEST_F(UpgradePolicy, AuthorizationWinsOverSubprotocolAndQuery) {
  const auto alice = token_for("alice");
  const auto bob = token_for("bob");
  const auto carol = token_for("carol");
  EXPECT_TRUE(AcceptedAs(
      decide(request("/ws?token=" + carol, {{http::field::authorization, "Bearer " + alice},
                                            {http::field::sec_websocket_protocol, "notify.v1, bearer." + bob}})),
      "alice"));
  // An invalid Authorization token is not rescued by a valid one elsewhere.
  const auto expired = token_for("alice", kNow - 3600);
  EXPECT_TRUE(Unauthorized(decide(request("/ws?token=" + carol, {{http::field::authorization, "Bearer " + expired}})),
                           TokenError::expired, expired));
  EXPECT_TRUE(Unauthorized(decide(request("/ws", {{http::field::authorization, "Basic eDp5"},
                                                  {http::field::sec_websocket_protocol, "notify.v1, bearer." + bob}})),
                           TokenError::malformed));
  // With Authorization present, a bearer subprotocol without notify.v1 does not matter.
  EXPECT_TRUE(AcceptedAs(decide(request("/ws", {{http::field::authorization, "Bearer " + alice},
                                                {http::field::sec_websocket_protocol, "bearer." + bob}})),
                         "alice"));
}

TEST_F(UpgradePolicy, SubprotocolWinsOverQuery) {
  const auto bob = token_for("bob");
  const auto carol = token_for("carol");
  EXPECT_TRUE(AcceptedAs(
      decide(request("/ws?token=" + carol, {{http::field::sec_websocket_protocol, "notify.v1, bearer." + bob}})),
      "bob"));
  const auto expired = token_for("bob", kNow - 3600);
  EXPECT_TRUE(Unauthorized(
      decide(request("/ws?token=" + carol, {{http::field::sec_websocket_protocol, "notify.v1, bearer." + expired}})),
      TokenError::expired, expired));
}

// ---------------------------------------------------------------- no verifier, no token, development identity

TEST_F(UpgradePolicy, TokenWithoutVerifierIsUnauthorized) {
  const auto token = token_for("alice");
  for (const bool dev : {false, true}) {
    settings_.insecure_dev = dev;
    for (const auto& req :
         {request("/ws?user=alice", {{http::field::authorization, "Bearer " + token}}),
          request("/ws?user=alice", {{http::field::sec_websocket_protocol, "notify.v1, bearer." + token}}),
          request("/ws?user=alice&token=" + token)}) {
      const auto d = decide_upgrade(req, settings_, nullptr, false, kNow);
      EXPECT_FALSE(d.accept);
      EXPECT_EQ(d.status, http::status::unauthorized);
      EXPECT_EQ(d.reason, HandshakeFailure::unauthorized);
      EXPECT_TRUE(d.token_error.has_value());
      EXPECT_EQ(d.message.find(token), std::string::npos);
    }
  }
}

TEST_F(UpgradePolicy, NoTokenIsMissing) {
  EXPECT_TRUE(Unauthorized(decide(request("/ws")), TokenError::missing));
  // ?user= means nothing outside development mode.
  EXPECT_TRUE(Unauthorized(decide(request("/ws?user=alice")), TokenError::missing));
  EXPECT_TRUE(
      Unauthorized(decide(request("/ws", {{http::field::sec_websocket_protocol, "notify.v1"}})), TokenError::missing));
  EXPECT_TRUE(
      Unauthorized(decide_upgrade(request("/ws?user=alice"), settings_, nullptr, false, kNow), TokenError::missing));
}

TEST_F(UpgradePolicy, DevelopmentIdentity) {
  settings_.insecure_dev = true;
  for (const auth::JwtVerifier* verifier : std::vector<const auth::JwtVerifier*>{verifier_.get(), nullptr}) {
    const auto d = decide_upgrade(request("/ws?user=alice"), settings_, verifier, false, kNow);
    ASSERT_TRUE(AcceptedAs(d, "alice"));
    EXPECT_TRUE(d.all_topics);
    EXPECT_EQ(d.expires_at, 0);
    EXPECT_TRUE(d.topics.empty());
    EXPECT_TRUE(d.subprotocol.empty());
  }
  EXPECT_TRUE(AcceptedAs(decide(request("/ws?user=alice%40example.com")), "alice@example.com"));
  EXPECT_TRUE(AcceptedAs(decide(request("/ws?a=1&user=" + std::string(128, 'u'))), std::string(128, 'u')));
}

TEST_F(UpgradePolicy, BadDevelopmentUser) {
  settings_.insecure_dev = true;
  for (const std::string& target :
       Strings{"/ws", "/ws?user=", "/ws?user", "/ws?user=a%20b", "/ws?user=a/b", "/ws?user=%00",
               "/ws?user=" + std::string(129, 'u'), "/ws?User=alice", "/ws?user=%C3%A9"}) {
    EXPECT_TRUE(RefusedWith(decide(request(target)), http::status::bad_request, HandshakeFailure::invalid_user))
        << target;
  }
}

TEST_F(UpgradePolicy, TokenTakesPrecedenceOverDevelopmentUser) {
  settings_.insecure_dev = true;
  const auto token = token_for("alice", kExp, R"("topics":["post:1"])");
  const auto d = decide(request("/ws?user=mallory", {{http::field::authorization, "Bearer " + token}}));
  ASSERT_TRUE(AcceptedAs(d, "alice"));
  EXPECT_FALSE(d.all_topics);
  EXPECT_EQ(d.expires_at, kExp);
  EXPECT_TRUE(d.topics.allows("post:1"));
  EXPECT_FALSE(d.topics.allows("post:2"));
  EXPECT_TRUE(AcceptedAs(decide(request("/ws?user=mallory&token=" + token)), "alice"));
  EXPECT_TRUE(AcceptedAs(decide(request("/ws?token=" + token + "&user=mallory")), "alice"));
  // An invalid token is refused, not replaced by ?user=.
  const auto expired = token_for("alice", kNow - 3600);
  EXPECT_TRUE(Unauthorized(decide(request("/ws?user=mallory", {{http::field::authorization, "Bearer " + expired}})),
                           TokenError::expired, expired));
  EXPECT_TRUE(Unauthorized(decide(request("/ws?user=mallory", {{http::field::authorization, "Basic eDp5"}})),
                           TokenError::malformed));
}

// ---------------------------------------------------------------- expiry arithmetic

TEST_F(UpgradePolicy, ExpiryIncludesLeewayAndFractionsAreTruncated) {
  const auto token = fx::make_jwt("HS256", kSecret, R"({"sub":"alice","exp":1700000600.9})");
  const auto d = decide(request("/ws?token=" + token));
  ASSERT_TRUE(AcceptedAs(d, "alice"));
  EXPECT_EQ(d.expires_at, 1700000600);
  // Within the leeway after exp the token still connects; expires_at is its
  // exp, and the session closes it once the leeway has passed too.
  const auto recent = token_for("alice", kNow - 10);
  const auto r = decide(request("/ws?token=" + recent));
  ASSERT_TRUE(AcceptedAs(r, "alice"));
  EXPECT_EQ(r.expires_at, kNow - 10);
  EXPECT_GT(r.expires_at + kLeeway, kNow);
}

TEST_F(UpgradePolicy, FarFutureExpiryDoesNotOverflow) {
  // The verifier caps "exp" at the end of year 9999 (auth::kMaxUnixSeconds),
  // so adding the leeway (and later converting to milliseconds) can't
  // overflow, whatever the token claims.
  constexpr std::int64_t kCentury = 100LL * 366 * 24 * 3600;
  for (const std::string& exp : Strings{"1e300", "9223372036854775807", "9223372036854775800"}) {
    const auto token = fx::make_jwt("HS256", kSecret, R"({"sub":"alice","exp":)" + exp + "}");
    const auto d = decide(request("/ws?token=" + token));
    ASSERT_TRUE(AcceptedAs(d, "alice")) << exp;
    EXPECT_GT(d.expires_at, kNow + kCentury) << "exp " << exp << " gave expires_at " << d.expires_at;
  }
  const auto edge = std::numeric_limits<std::int64_t>::max() - kLeeway;
  const auto token = fx::make_jwt("HS256", kSecret, R"({"sub":"alice","exp":)" + std::to_string(edge) + "}");
  const auto d = decide(request("/ws?token=" + token));
  ASSERT_TRUE(AcceptedAs(d, "alice"));
  EXPECT_EQ(d.expires_at, auth::kMaxUnixSeconds);
  EXPECT_LT(d.expires_at, std::numeric_limits<std::int64_t>::max() / 1000);  // safe in milliseconds too
}

}  // namespace
}  // namespace notify::gateway
