// Security end to end, on the real server with real clients: who may connect
// (JWTs over every transport and algorithm, origins, connection limits), what
// a connection may do (topics, refresh and expiry, message rate), the admin
// API's keys and TLS, wss://, and credential reloads. Every refusal is
// checked three ways: the exact answer, the counter in /metrics, and that the
// server still serves a well-behaved client afterwards.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/crypto_fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- key material

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const std::string& hs_secret() {
  static const std::string secret = "integration-test-hs256-secret-0123456789abcdef";
  return secret;
}
const KeyPair& rsa_key() {
  static const KeyPair key = make_rsa_key();
  return key;
}
const KeyPair& ec_key() {
  static const KeyPair key = make_ec_p256_key();
  return key;
}
const KeyPair& ec_key2() {
  static const KeyPair key = make_ec_p256_key();
  return key;
}

// {"sub":sub,"exp":exp,<extra>}; `extra` is more members, e.g. R"("topics":["a"])".
std::string claims(const std::string& sub, std::int64_t exp, const std::string& extra = "") {
  std::string out = R"({"sub":")" + sub + R"(","exp":)" + std::to_string(exp);
  if (!extra.empty()) out += "," + extra;
  return out + "}";
}

std::string hs_token(const std::string& sub, std::int64_t ttl_seconds = 300, const std::string& extra = "") {
  return make_jwt("HS256", hs_secret(), claims(sub, now_s() + ttl_seconds, extra));
}

std::string ec_token(const KeyPair& key, const std::string& kid, const std::string& sub) {
  return make_jwt("ES256", key.private_pem, claims(sub, now_s() + 300), kid);
}

// Replaces a file the way Kubernetes updates a mounted Secret: atomically.
void replace_file(const std::string& path, const std::string& content) {
  const std::string temporary = path + ".new";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << content;
  }
  std::filesystem::rename(temporary, path);
}

// ---------------------------------------------------------------- metrics

// A counter's value; 0 while it has no sample yet (created on first use).
double counter(const TestServer& server, const std::string& sample) {
  const double value = server.metric(sample);
  return value < 0 ? 0 : value;
}
std::string auth_failures(const std::string& reason) { return "notify_auth_failures_total{reason=\"" + reason + "\"}"; }
std::string handshake_failures(const std::string& reason) {
  return "notify_handshake_failures_total{reason=\"" + reason + "\"}";
}
std::string limit_rejections(const std::string& limit) {
  return "notify_limit_rejections_total{limit=\"" + limit + "\"}";
}
std::string admin_auth_failures(const std::string& reason) {
  return "notify_admin_auth_failures_total{reason=\"" + reason + "\"}";
}
std::string grpc_requests(const std::string& method, const std::string& code) {
  return "notify_grpc_requests_total{code=\"" + code + "\",method=\"" + method + "\"}";
}
std::string credential_reloads(const std::string& result) {
  return "notify_credential_reloads_total{result=\"" + result + "\"}";
}
std::string client_messages(const std::string& type) { return "notify_client_messages_total{type=\"" + type + "\"}"; }
const std::string kAccepted = "notify_connections_accepted_total";

// ---------------------------------------------------------------- WebSocket clients

WsOptions bearer_header(const std::string& token) {
  WsOptions options;
  options.headers.emplace_back("Authorization", "Bearer " + token);
  return options;
}

WsOptions bearer_subprotocol(const std::string& token) {
  WsOptions options;
  options.subprotocols = {"notify.v1", "bearer." + token};
  return options;
}

// Connects; the upgrade must be refused with `status`. Returns the refusal's text.
std::string expect_refused(std::uint16_t port, const std::string& target, const WsOptions& options, int status) {
  try {
    WsClient::connect(port, target, options);
    ADD_FAILURE() << "connected; expected HTTP " << status;
  } catch (const UpgradeRefused& e) {
    EXPECT_EQ(e.status, status) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected HTTP " << status << ", got: " << e.what();
  }
  return {};
}

// Connects and consumes the welcome frame, which must name `user`.
std::unique_ptr<WsClient> connect_as(std::uint16_t port, const std::string& target, const WsOptions& options,
                                     const std::string& user) {
  std::unique_ptr<WsClient> client;
  try {
    client = WsClient::connect(port, target, options);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "connect as " << user << " failed: " << e.what();
    return nullptr;
  }
  const auto welcome = client->next_of_type("welcome", 3s);
  EXPECT_TRUE(welcome.has_value()) << "no welcome for " << user;
  if (welcome) {
    EXPECT_EQ(welcome->at("user_id"), user.c_str());
  }
  return client;
}

std::unique_ptr<WsClient> connect_token(TestServer& server, const std::string& token, const std::string& user) {
  return connect_as(server.ws_port(), "/ws", bearer_header(token), user);
}

// Sends a frame and returns the first reply of `type` (nullopt if none in time).
std::optional<boost::json::value> exchange(WsClient& client, const std::string& frame, const std::string& type) {
  client.send(frame);
  return client.next_of_type(type, 3s);
}

bool ping_pong(WsClient& client) {
  static std::atomic<int> id{0};
  const int n = ++id;
  const auto pong = exchange(client, R"({"type":"ping","id":)" + std::to_string(n) + "}", "pong");
  return pong && pong->at("id") == n;
}

// ---------------------------------------------------------------- the admin API

// How a test reaches the admin API: a channel and the API key to present.
struct Admin {
  std::shared_ptr<grpc::Channel> channel;
  std::string api_key;  // empty: no authorization metadata
};

Admin plain_admin(const TestServer& server, std::string api_key = "") {
  return Admin{server.channel(), std::move(api_key)};
}

Admin via_channel(std::shared_ptr<grpc::Channel> channel) { return Admin{std::move(channel), ""}; }

void prepare(grpc::ClientContext& context, const std::string& api_key) {
  set_deadline(context, 3000ms);
  if (!api_key.empty()) context.AddMetadata("authorization", "Bearer " + api_key);
}

grpc::Status call_notify(const Admin& admin, const std::string& user, const std::string& event) {
  v1::NotifyRequest req;
  req.add_user_ids(user);
  req.mutable_notification()->set_event(event);
  req.mutable_notification()->set_data_json(R"({"ok":true})");
  v1::NotifyResponse resp;
  grpc::ClientContext context;
  prepare(context, admin.api_key);
  return v1::NotificationService::NewStub(admin.channel)->Notify(&context, req, &resp);
}

grpc::Status call_broadcast(const Admin& admin, const std::string& topic, const std::string& event,
                            std::uint32_t* delivered = nullptr) {
  v1::BroadcastRequest req;
  req.set_topic(topic);
  req.mutable_notification()->set_event(event);
  v1::BroadcastResponse resp;
  grpc::ClientContext context;
  prepare(context, admin.api_key);
  const auto status = v1::NotificationService::NewStub(admin.channel)->Broadcast(&context, req, &resp);
  if (delivered) *delivered = resp.delivered_connections();
  return status;
}

std::string describe(const grpc::Status& status) {
  return "gRPC " + std::to_string(status.error_code()) + " " + status.error_message();
}

std::string unique_event() {
  static std::atomic<int> n{0};
  return "evt-" + std::to_string(++n);
}

// A Notify through `admin` reaches `client`, connected as `user`.
void expect_notified(WsClient& client, const std::string& user, const Admin& admin) {
  const std::string event = unique_event();
  const auto status = call_notify(admin, user, event);
  ASSERT_TRUE(status.ok()) << describe(status);
  const auto frame = client.next_of_type("notification", 3s);
  ASSERT_TRUE(frame.has_value()) << "no notification for " << user;
  EXPECT_EQ(frame->at("event"), event.c_str());
}

// Opens a well-behaved client as the given user (its welcome consumed).
using Connector = std::function<std::unique_ptr<WsClient>(const std::string& user)>;

Connector by_token(TestServer& server) {
  return [&server](const std::string& user) { return connect_token(server, hs_token(user), user); };
}
Connector by_dev_identity(TestServer& server, WsOptions options = {}) {
  return [&server, options](const std::string& user) {
    return connect_as(server.ws_port(), "/ws?user=" + user, options, user);
  };
}

// The server still serves others: a fresh, well-behaved client connects and
// receives a Notify.
void expect_still_serving(const Connector& connect, const Admin& admin) {
  static std::atomic<int> n{0};
  const std::string user = "bystander-" + std::to_string(++n);
  const auto client = connect(user);
  ASSERT_NE(client, nullptr) << "a well-behaved client can no longer connect";
  expect_notified(*client, user, admin);
}

// A server that takes tokens only: HS256, RS256 (PEM) and ES256 (JWKS, kid "ec-1").
std::vector<std::string> all_key_flags() {
  return {"--jwt-secret-file",     write_temp_file("hs256.secret", hs_secret()),
          "--jwt-public-key-file", write_temp_file("rsa.pub.pem", rsa_key().public_pem),
          "--jwks-file",           write_temp_file("jwks.json", jwks_json({jwk_for(ec_key(), "ec-1")}))};
}

std::vector<std::string> with(std::vector<std::string> flags, const std::vector<std::string>& more) {
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

// ================================================================ 1. tokens accepted

TEST(SecurityTokens, EveryTransportAndAlgorithmConnectsAsTheSubject) {
  TestServer server(with(all_key_flags(), {"--jwt-leeway", "0"}), DevIdentity::disabled);
  const Admin admin = plain_admin(server);
  const double accepted_before = counter(server, kAccepted);
  const std::int64_t exp = now_s() + 600;

  struct Alg {
    std::string name;
    std::function<std::string(const std::string& sub)> sign;
  };
  const std::vector<Alg> algs = {
      {"HS256", [&](const std::string& sub) { return make_jwt("HS256", hs_secret(), claims(sub, exp)); }},
      {"RS256", [&](const std::string& sub) { return make_jwt("RS256", rsa_key().private_pem, claims(sub, exp)); }},
      {"ES256",
       [&](const std::string& sub) { return make_jwt("ES256", ec_key().private_pem, claims(sub, exp), "ec-1"); }},
  };
  int connected = 0;
  for (const auto& alg : algs) {
    for (const std::string transport : {"header", "subprotocol", "query"}) {
      SCOPED_TRACE(alg.name + " via " + transport);
      const std::string user = "user-" + alg.name + "-" + transport;
      const std::string token = alg.sign(user);
      std::unique_ptr<WsClient> client;
      try {
        if (transport == "header") client = WsClient::connect(server.ws_port(), "/ws", bearer_header(token));
        if (transport == "subprotocol") client = WsClient::connect(server.ws_port(), "/ws", bearer_subprotocol(token));
        if (transport == "query") client = WsClient::connect(server.ws_port(), "/ws?token=" + token);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        continue;
      }
      ++connected;
      if (transport == "subprotocol") {
        // The server selects notify.v1 and never echoes the token back.
        EXPECT_EQ(client->subprotocol(), "notify.v1");
        EXPECT_EQ(client->response_headers().at("sec-websocket-protocol"), "notify.v1");
      } else {
        EXPECT_EQ(client->subprotocol(), "");
      }
      const auto welcome = client->next_of_type("welcome", 3s);
      ASSERT_TRUE(welcome.has_value());
      EXPECT_EQ(welcome->at("user_id"), user.c_str());
      ASSERT_TRUE(welcome->as_object().contains("expires_at")) << boost::json::serialize(*welcome);
      EXPECT_EQ(welcome->at("expires_at").to_number<std::int64_t>(), exp);
      expect_notified(*client, user, admin);
    }
  }
  EXPECT_EQ(connected, 9);
  EXPECT_TRUE(eventually([&] { return counter(server, kAccepted) - accepted_before == 9; }, 3s));
  EXPECT_EQ(counter(server, handshake_failures("unauthorized")), 0);
}

// The welcome frame and the refreshed frame both report "expires_at"; a
// client schedules its refresh from it, so both must mean the same thing:
// the token's exp. The server closes the connection only at exp + leeway.
TEST(SecurityTokens, ExpiresAtIsTheTokenExpAndTheLeewayDelaysTheClose) {
  TestServer server({"--jwt-secret-file", write_temp_file("hs256.secret", hs_secret()), "--jwt-leeway", "2"},
                    DevIdentity::disabled);
  const std::int64_t exp = now_s() + 1;
  const std::string token = make_jwt("HS256", hs_secret(), claims("ann", exp));
  auto lapsing = WsClient::connect(server.ws_port(), "/ws", bearer_header(token));
  auto renewing = WsClient::connect(server.ws_port(), "/ws", bearer_header(token));
  const auto welcome = lapsing->next_of_type("welcome", 3s);
  ASSERT_TRUE(welcome.has_value());
  ASSERT_TRUE(renewing->next_of_type("welcome", 3s).has_value());
  const std::int64_t exp2 = now_s() + 600;
  const auto refreshed = exchange(
      *renewing, R"({"type":"refresh","token":")" + make_jwt("HS256", hs_secret(), claims("ann", exp2)) + "\"}",
      "refreshed");
  ASSERT_TRUE(refreshed.has_value());
  EXPECT_EQ(refreshed->at("expires_at").to_number<std::int64_t>(), exp2);
  // BUG: (found by this test; fixed meanwhile in the working tree by a
  // concurrent change to gateway/upgrade_policy.cpp and websocket_session.cpp)
  // on_accept() sent encode_welcome(connection_id_, user_id_, expires_at_)
  // with expires_at_ = exp + --jwt-leeway, while handle_refresh() sent
  // expires_at_ - leeway: the welcome reported a time `leeway` seconds later
  // than the token's exp and than what refreshed reports.
  EXPECT_EQ(welcome->at("expires_at").to_number<std::int64_t>(), exp)
      << "welcome expires_at includes the leeway; refreshed does not";

  const auto closed = lapsing->wait_closed(5s);
  ASSERT_TRUE(closed.has_value()) << "not closed within 5 s of exp + leeway";
  EXPECT_EQ(closed->code, 4001);
  EXPECT_EQ(closed->reason, "token expired");
  EXPECT_GE(now_s(), exp + 2) << "closed before exp + --jwt-leeway";
  EXPECT_TRUE(ping_pong(*renewing));
  expect_still_serving(by_token(server), plain_admin(server));
}

// ================================================================ 2. tokens refused

TEST(SecurityTokens, RefusedTokensGet401AndCountTheReason) {
  const std::string aud_iss = R"("aud":"notify-gateway","iss":"https://auth.example")";
  TestServer server(with(all_key_flags(), {"--jwt-audience", "notify-gateway", "--jwt-issuer", "https://auth.example",
                                           "--jwt-leeway", "5"}),
                    DevIdentity::disabled);
  const Admin admin = plain_admin(server);
  const Connector good = [&](const std::string& user) {
    return connect_token(server, hs_token(user, 300, aud_iss), user);
  };
  const std::int64_t now = now_s();
  struct Case {
    std::string name;
    WsOptions options;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"expired", bearer_header(make_jwt("HS256", hs_secret(), claims("eve", now - 60, aud_iss))), "expired"},
      {"not yet valid (nbf)",
       bearer_header(make_jwt("HS256", hs_secret(),
                              claims("eve", now + 600, aud_iss + R"(,"nbf":)" + std::to_string(now + 120)))),
       "not_yet_valid"},
      {"wrong audience",
       bearer_header(make_jwt("HS256", hs_secret(),
                              claims("eve", now + 600, R"("aud":"someone-else","iss":"https://auth.example")"))),
       "wrong_audience"},
      {"wrong issuer",
       bearer_header(make_jwt("HS256", hs_secret(),
                              claims("eve", now + 600, R"("aud":"notify-gateway","iss":"https://evil.example")"))),
       "wrong_issuer"},
      {"bad signature",
       bearer_header(
           make_jwt("HS256", "another-secret-of-at-least-32-bytes-xxxxxxxx", claims("eve", now + 600, aud_iss))),
       "bad_signature"},
      {"alg none",
       bearer_header(sign_jwt(R"({"alg":"none","typ":"JWT"})", claims("eve", now + 600, aud_iss), "none", "")),
       "unsupported_algorithm"},
      {"unknown kid", bearer_header(make_jwt("ES256", ec_key().private_pem, claims("eve", now + 600, aud_iss), "nope")),
       "unknown_key"},
      {"missing token", WsOptions{}, "missing"},
      {"not a Bearer header",
       [] {
         WsOptions o;
         o.headers.emplace_back("Authorization", "Basic ZXZlOnNlY3JldA==");
         return o;
       }(),
       "malformed"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const double reason_before = counter(server, auth_failures(c.reason));
    const double unauthorized_before = counter(server, handshake_failures("unauthorized"));
    expect_refused(server.ws_port(), "/ws", c.options, 401);
    EXPECT_EQ(counter(server, auth_failures(c.reason)) - reason_before, 1);
    EXPECT_EQ(counter(server, handshake_failures("unauthorized")) - unauthorized_before, 1);
    expect_still_serving(good, admin);
  }
  // The same refusal whichever way the bad token comes.
  const std::string expired = make_jwt("HS256", hs_secret(), claims("eve", now - 60, aud_iss));
  const double expired_before = counter(server, auth_failures("expired"));
  expect_refused(server.ws_port(), "/ws", bearer_subprotocol(expired), 401);
  expect_refused(server.ws_port(), "/ws?token=" + expired, {}, 401);
  EXPECT_EQ(counter(server, auth_failures("expired")) - expired_before, 2);
  EXPECT_EQ(counter(server, auth_failures("missing")), 1);

  // The 401 tells the client which scheme to use, and doesn't echo the token.
  const auto raw = http_request(server.ws_port(), "GET", "/ws?token=" + expired,
                                {{"Connection", "Upgrade"},
                                 {"Upgrade", "websocket"},
                                 {"Sec-WebSocket-Version", "13"},
                                 {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
  EXPECT_EQ(raw.status, 401);
  EXPECT_EQ(raw.headers.count("www-authenticate") ? raw.headers.at("www-authenticate") : "", "Bearer");
  EXPECT_EQ(raw.body.find(expired), std::string::npos) << raw.body;
  EXPECT_EQ(counter(server, auth_failures("expired")) - expired_before, 3);
  expect_still_serving(good, admin);
}

TEST(SecurityTokens, RsaPublicKeyUsedAsHmacSecretIsRefused) {
  // Algorithm confusion: only an RSA public key is configured; an HS256
  // token "signed" with that public PEM as the HMAC secret must not verify.
  TestServer server({"--jwt-public-key-file", write_temp_file("rsa.pub.pem", rsa_key().public_pem)},
                    DevIdentity::disabled);
  const Admin admin = plain_admin(server);
  for (const std::string& secret :
       {rsa_key().public_pem, rsa_key().public_pem.substr(0, rsa_key().public_pem.size() - 1)}) {
    const std::string forged = make_jwt("HS256", secret, claims("mallory", now_s() + 600));
    const double before = counter(server, auth_failures("unsupported_algorithm"));
    expect_refused(server.ws_port(), "/ws", bearer_header(forged), 401);
    EXPECT_EQ(counter(server, auth_failures("unsupported_algorithm")) - before, 1);
  }
  expect_still_serving(
      [&](const std::string& user) {
        return connect_token(server, make_jwt("RS256", rsa_key().private_pem, claims(user, now_s() + 600)), user);
      },
      admin);
}

TEST(SecurityTokens, BearerSubprotocolWithoutNotifyV1Is400) {
  TestServer server({"--jwt-secret-file", write_temp_file("hs256.secret", hs_secret())}, DevIdentity::disabled);
  const std::string token = hs_token("bob");
  for (const std::vector<std::string>& offered :
       {std::vector<std::string>{"bearer." + token}, std::vector<std::string>{"chat.v2", "bearer." + token}}) {
    WsOptions options;
    options.subprotocols = offered;
    const double before = counter(server, handshake_failures("bad_request"));
    const std::string text = expect_refused(server.ws_port(), "/ws", options, 400);
    EXPECT_NE(text.find("notify.v1"), std::string::npos) << text;
    EXPECT_EQ(counter(server, handshake_failures("bad_request")) - before, 1);
  }
  expect_still_serving(by_token(server), plain_admin(server));
}

// ================================================================ 3. origins

TEST(SecurityOrigins, DefaultIsTheGatewaysOwnHost) {
  TestServer server({"--jwt-secret-file", write_temp_file("hs256.secret", hs_secret())}, DevIdentity::disabled);
  const std::string own = "http://127.0.0.1:" + std::to_string(server.ws_port());
  auto options = bearer_header(hs_token("olga"));
  options.headers.emplace_back("Origin", own);
  const auto client = connect_as(server.ws_port(), "/ws", options, "olga");
  ASSERT_NE(client, nullptr);

  for (const std::string origin : {"http://evil.example", "http://127.0.0.1:1", "null"}) {
    SCOPED_TRACE(origin);
    auto bad = bearer_header(hs_token("olga"));
    bad.headers.emplace_back("Origin", origin);
    const double before = counter(server, handshake_failures("forbidden_origin"));
    expect_refused(server.ws_port(), "/ws", bad, 403);
    EXPECT_EQ(counter(server, handshake_failures("forbidden_origin")) - before, 1);
  }
  EXPECT_EQ(counter(server, handshake_failures("unauthorized")), 0);  // the origin is checked first
  expect_notified(*client, "olga", plain_admin(server));
  expect_still_serving(by_token(server), plain_admin(server));
}

TEST(SecurityOrigins, AllowedOriginsExactAndWildcardEntries) {
  TestServer server({"--jwt-secret-file", write_temp_file("hs256.secret", hs_secret()), "--allowed-origins",
                     "https://app.example.org, *.example.com"},
                    DevIdentity::disabled);
  auto with_origin = [](const std::string& origin) {
    auto options = bearer_header(hs_token("otto"));
    options.headers.emplace_back("Origin", origin);
    return options;
  };
  for (const std::string origin : {"https://app.example.org", "https://app.example.org:443", "https://chat.example.com",
                                   "http://a.b.example.com:8080"}) {
    SCOPED_TRACE(origin);
    EXPECT_NE(connect_as(server.ws_port(), "/ws", with_origin(origin), "otto"), nullptr);
  }
  const std::vector<std::string> refused = {
      "http://app.example.org",                               // exact entry: scheme differs
      "https://app.example.org:8443",                         // exact entry: port differs
      "https://example.com",                                  // a wildcard doesn't cover the bare domain
      "https://evilexample.com",                              // nor a lookalike
      "https://example.com.evil.net",                         // nor a suffix trick
      "http://127.0.0.1:" + std::to_string(server.ws_port())  // the own host is no longer implicit
  };
  const double before = counter(server, handshake_failures("forbidden_origin"));
  for (const auto& origin : refused) {
    SCOPED_TRACE(origin);
    expect_refused(server.ws_port(), "/ws", with_origin(origin), 403);
  }
  EXPECT_EQ(counter(server, handshake_failures("forbidden_origin")) - before, static_cast<double>(refused.size()));
  expect_still_serving(by_token(server), plain_admin(server));
}

// ================================================================ 4. topics

TEST(SecurityTopics, TokenGrantsAndPublicTopics) {
  const std::string secret_file = write_temp_file("hs256.secret", hs_secret());
  TestServer server({"--jwt-secret-file", secret_file}, DevIdentity::disabled);
  const Admin admin = plain_admin(server);
  auto client = connect_token(server, hs_token("tom", 300, R"("topics":["post:*"])"), "tom");
  ASSERT_NE(client, nullptr);
  const double subscribes_before = counter(server, client_messages("subscribe"));

  const auto ok = exchange(*client, R"({"type":"subscribe","topic":"post:1","id":1})", "subscribed");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->at("topic"), "post:1");
  const auto refused = exchange(*client, R"({"type":"subscribe","topic":"news","id":2})", "error");
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->at("code"), "forbidden_topic");
  EXPECT_EQ(refused->at("id"), 2);
  EXPECT_TRUE(ping_pong(*client)) << "a forbidden topic is not a reason to close";
  EXPECT_TRUE(eventually([&] { return counter(server, client_messages("subscribe")) - subscribes_before == 2; }, 3s));

  // A broadcast to the forbidden topic doesn't reach it; one to the granted topic does.
  std::uint32_t delivered = 99;
  ASSERT_TRUE(call_broadcast(admin, "news", "news-event", &delivered).ok());
  EXPECT_EQ(delivered, 0u);
  ASSERT_TRUE(call_broadcast(admin, "post:1", "post-event", &delivered).ok());
  EXPECT_EQ(delivered, 1u);
  const auto frame = client->next_of_type("notification", 3s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->at("event"), "post-event");
  EXPECT_EQ(frame->at("topic"), "post:1");

  // A token without a "topics" claim gets no topics at all.
  auto bare = connect_token(server, hs_token("tina"), "tina");
  ASSERT_NE(bare, nullptr);
  const auto bare_refused = exchange(*bare, R"({"type":"subscribe","topic":"post:1"})", "error");
  ASSERT_TRUE(bare_refused.has_value());
  EXPECT_EQ(bare_refused->at("code"), "forbidden_topic");
  expect_still_serving(by_token(server), admin);

  // --public-topics opens a topic to every token.
  TestServer open_news({"--jwt-secret-file", secret_file, "--public-topics", "news"}, DevIdentity::disabled);
  auto reader = connect_token(open_news, hs_token("tom", 300, R"("topics":["post:*"])"), "tom");
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(exchange(*reader, R"({"type":"subscribe","topic":"news"})", "subscribed").has_value());
  const auto still_refused = exchange(*reader, R"({"type":"subscribe","topic":"sports"})", "error");
  ASSERT_TRUE(still_refused.has_value());
  EXPECT_EQ(still_refused->at("code"), "forbidden_topic");
  ASSERT_TRUE(call_broadcast(plain_admin(open_news), "news", "public-news").ok());
  const auto news = reader->next_of_type("notification", 3s);
  ASSERT_TRUE(news.has_value());
  EXPECT_EQ(news->at("event"), "public-news");
}

// ================================================================ 5. expiry and refresh

TEST(SecurityExpiry, ExpiredTokenClosesWith4001AndRefreshKeepsTheConnection) {
  TestServer server({"--jwt-secret-file", write_temp_file("hs256.secret", hs_secret()), "--jwt-leeway", "0"},
                    DevIdentity::disabled);
  const Admin admin = plain_admin(server);
  const auto started = Clock::now();
  const std::int64_t exp = now_s() + 2;

  // Never refreshes: closed at exp.
  auto lapsing = connect_token(server, make_jwt("HS256", hs_secret(), claims("lapse", exp)), "lapse");
  // Refreshes with a later token that drops one of its topics.
  auto renewing = connect_token(
      server, make_jwt("HS256", hs_secret(), claims("renew", exp, R"("topics":["post:*","chat:*"])")), "renew");
  // Tries to refresh with someone else's token, and with an expired one.
  auto hijacker = connect_token(server, hs_token("carol"), "carol");
  ASSERT_TRUE(lapsing && renewing && hijacker);
  const double refreshes_before = counter(server, client_messages("refresh"));

  ASSERT_TRUE(exchange(*renewing, R"({"type":"subscribe","topic":"post:1"})", "subscribed").has_value());
  ASSERT_TRUE(exchange(*renewing, R"({"type":"subscribe","topic":"chat:1"})", "subscribed").has_value());
  const std::int64_t new_exp = now_s() + 120;
  renewing->send(R"({"type":"refresh","id":7,"token":")" +
                 make_jwt("HS256", hs_secret(), claims("renew", new_exp, R"("topics":["post:*"])")) + "\"}");
  const auto dropped = renewing->next_json(3s);
  ASSERT_TRUE(dropped.has_value());
  EXPECT_EQ(dropped->at("type"), "unsubscribed") << boost::json::serialize(*dropped);
  EXPECT_EQ(dropped->at("topic"), "chat:1");
  EXPECT_EQ(dropped->at("reason"), "forbidden");
  const auto refreshed = renewing->next_json(3s);
  ASSERT_TRUE(refreshed.has_value());
  EXPECT_EQ(refreshed->at("type"), "refreshed") << boost::json::serialize(*refreshed);
  EXPECT_EQ(refreshed->at("expires_at").to_number<std::int64_t>(), new_exp);
  EXPECT_EQ(refreshed->at("id"), 7);

  const auto foreign =
      exchange(*hijacker, R"({"type":"refresh","token":")" + hs_token("mallory") + "\",\"id\":1}", "error");
  ASSERT_TRUE(foreign.has_value());
  EXPECT_EQ(foreign->at("code"), "invalid_token");
  const double expired_before = counter(server, auth_failures("expired"));
  const auto stale = exchange(
      *hijacker,
      R"({"type":"refresh","token":")" + make_jwt("HS256", hs_secret(), claims("carol", now_s() - 10)) + "\",\"id\":2}",
      "error");
  ASSERT_TRUE(stale.has_value());
  EXPECT_EQ(stale->at("code"), "invalid_token");
  EXPECT_EQ(counter(server, auth_failures("expired")) - expired_before, 1);
  EXPECT_TRUE(ping_pong(*hijacker)) << "a refused refresh must not close the connection";

  // The lapsing connection is closed with 4001 at its exp (leeway 0).
  const auto closed = lapsing->wait_closed(5s);
  ASSERT_TRUE(closed.has_value()) << "not closed within 5 s of a 2 s token";
  EXPECT_EQ(closed->code, 4001);
  EXPECT_EQ(closed->reason, "token expired");
  EXPECT_LE(Clock::now() - started, 4s);
  EXPECT_GE(now_s(), exp);

  // Past the original exp the refreshed connection lives on, with the new grants.
  while (now_s() <= exp) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(renewing->closed());
  EXPECT_TRUE(ping_pong(*renewing));
  std::uint32_t delivered = 99;
  ASSERT_TRUE(call_broadcast(admin, "chat:1", "chat-event", &delivered).ok());
  EXPECT_EQ(delivered, 0u);
  ASSERT_TRUE(call_broadcast(admin, "post:1", "post-event", &delivered).ok());
  EXPECT_EQ(delivered, 1u);
  const auto post = renewing->next_of_type("notification", 3s);
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->at("event"), "post-event");
  expect_notified(*renewing, "renew", admin);
  EXPECT_FALSE(hijacker->closed());
  EXPECT_EQ(counter(server, client_messages("refresh")) - refreshes_before, 3);
  EXPECT_TRUE(eventually([&] { return counter(server, "notify_connections_open") == 2; }, 3s));
  expect_still_serving(by_token(server), admin);
}

// ================================================================ 6. message rate

TEST(SecurityLimits, MessageFloodIsRateLimitedThenClosed) {
  // A fractional rate: the refusal must say 0.5, not 0.
  TestServer server({"--client-message-rate", "0.5", "--client-message-burst", "5", "--max-invalid-messages", "3"});
  const Admin admin = plain_admin(server);
  auto flooder = connect_user(server, "flooder");
  auto polite = connect_user(server, "polite");

  for (int i = 0; i < 20; ++i) flooder->send(R"({"type":"ping","id":)" + std::to_string(i) + "}");
  int pongs = 0;
  int limited = 0;
  for (;;) {
    const auto frame = flooder->next_json(3s);
    if (!frame) break;
    const auto& type = frame->at("type");
    if (type == "pong") ++pongs;
    if (type == "error") {
      EXPECT_EQ(frame->at("code"), "rate_limited") << boost::json::serialize(*frame);
      EXPECT_EQ(frame->at("message"), "too many messages: at most 0.5 per second");
      ++limited;
    }
  }
  const auto closed = flooder->wait_closed(3s);
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->code, 1008);
  EXPECT_EQ(closed->reason, "too many invalid messages");
  EXPECT_GE(pongs, 5);  // the burst
  EXPECT_LE(pongs, 6);  // plus what refilled while the flood arrived
  EXPECT_EQ(limited, 3);
  EXPECT_EQ(counter(server, limit_rejections("message_rate")), 3);

  // A client within the rate is never limited.
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(ping_pong(*polite));
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_FALSE(polite->closed());
  EXPECT_EQ(counter(server, limit_rejections("message_rate")), 3);
  expect_notified(*polite, "polite", admin);
  expect_still_serving(by_dev_identity(server), admin);
}

// ================================================================ 7. connection limits

// Retries while the upgrade is refused (a closed connection frees its slot
// a moment after the client sees the close); nullptr if it never succeeds.
std::unique_ptr<WsClient> connect_eventually(std::uint16_t port, const std::string& target,
                                             const WsOptions& options = {},
                                             std::chrono::milliseconds timeout = 3000ms) {
  std::unique_ptr<WsClient> client;
  eventually(
      [&] {
        try {
          client = WsClient::connect(port, target, options);
          return true;
        } catch (const UpgradeRefused&) {
          return false;
        }
      },
      timeout);
  return client;
}

TEST(SecurityLimits, PerAddressConnectionLimitIs429) {
  TestServer server({"--max-connections-per-ip", "2"});
  const Admin admin = plain_admin(server);
  auto first = connect_user(server, "p1");
  auto second = connect_user(server, "p2");
  // X-Forwarded-For from an untrusted peer changes nothing.
  WsOptions spoofed;
  spoofed.headers.emplace_back("X-Forwarded-For", "10.9.9.9");
  const std::string text = expect_refused(server.ws_port(), "/ws?user=p3", spoofed, 429);
  EXPECT_NE(text.find("too many connections"), std::string::npos) << text;
  EXPECT_EQ(counter(server, limit_rejections("connections_per_ip")), 1);
  EXPECT_EQ(counter(server, handshake_failures("ip_connection_limit")), 1);
  expect_notified(*second, "p2", admin);  // the admitted ones are unaffected

  // A freed slot is available again.
  first.reset();
  auto again = connect_eventually(server.ws_port(), "/ws?user=p4");
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(again->next_of_type("welcome", 3s).has_value());
  expect_notified(*again, "p4", admin);
}

TEST(SecurityLimits, TrustedProxyConnectionsCountPerForwardedAddress) {
  TestServer server({"--max-connections-per-ip", "2", "--trusted-proxies", "127.0.0.1"});
  const Admin admin = plain_admin(server);
  auto via = [](const std::string& forwarded_for) {
    WsOptions options;
    options.headers.emplace_back("X-Forwarded-For", forwarded_for);
    return options;
  };
  std::vector<std::unique_ptr<WsClient>> clients;
  clients.push_back(connect_as(server.ws_port(), "/ws?user=a1", via("203.0.113.1"), "a1"));
  clients.push_back(connect_as(server.ws_port(), "/ws?user=a2", via("203.0.113.1"), "a2"));
  expect_refused(server.ws_port(), "/ws?user=a3", via("203.0.113.1"), 429);
  // The nearest untrusted hop is the client: the same address again.
  expect_refused(server.ws_port(), "/ws?user=a4", via("198.51.100.7, 203.0.113.1"), 429);
  EXPECT_EQ(counter(server, limit_rejections("connections_per_ip")), 2);
  // Other forwarded addresses, and the proxy itself, have their own budgets.
  clients.push_back(connect_as(server.ws_port(), "/ws?user=b1", via("203.0.113.2"), "b1"));
  clients.push_back(connect_as(server.ws_port(), "/ws?user=b2", via("203.0.113.2"), "b2"));
  clients.push_back(connect_as(server.ws_port(), "/ws?user=c1", via("2001:db8::1"), "c1"));
  clients.push_back(connect_as(server.ws_port(), "/ws?user=d1", {}, "d1"));
  for (const auto& c : clients) ASSERT_NE(c, nullptr);
  expect_refused(server.ws_port(), "/ws?user=b3", via("203.0.113.2"), 429);
  EXPECT_EQ(counter(server, limit_rejections("connections_per_ip")), 3);
  EXPECT_EQ(counter(server, handshake_failures("ip_connection_limit")), 3);
  expect_notified(*clients[4], "c1", admin);
  expect_still_serving(by_dev_identity(server, via("192.0.2.99")), admin);
}

TEST(SecurityLimits, TotalConnectionLimitIs503) {
  TestServer server({"--max-connections", "3"});
  const Admin admin = plain_admin(server);
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_user(server, "t" + std::to_string(i)));
  const std::string text = expect_refused(server.ws_port(), "/ws?user=t3", {}, 503);
  EXPECT_NE(text.find("connection limit"), std::string::npos) << text;
  EXPECT_EQ(counter(server, limit_rejections("connections")), 1);
  EXPECT_EQ(counter(server, handshake_failures("connection_limit")), 1);
  expect_notified(*clients[2], "t2", admin);
  clients.erase(clients.begin());
  auto again = connect_eventually(server.ws_port(), "/ws?user=t4");
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(again->next_of_type("welcome", 3s).has_value());
  expect_notified(*again, "t4", admin);
}

// ================================================================ 8. admin API keys

const std::string kFullKey = "full-key-0123456789abcdef";
const std::string kNotifyKey = "notify-only-key-0123456789";

TEST(SecurityAdmin, ApiKeysAndScopes) {
  TestServer server({"--admin-api-keys-file",
                     write_temp_file("api-keys", "# admin keys\n" + kFullKey + "\n" + kNotifyKey + " notify\n")});
  auto client = connect_user(server, "ada");
  ASSERT_TRUE(exchange(*client, R"({"type":"subscribe","topic":"news"})", "subscribed").has_value());

  struct Case {
    std::string name;
    std::string key;  // sent as "Bearer <key>"; empty: no metadata
    std::string method;
    grpc::StatusCode code;
    std::string reason;  // notify_admin_auth_failures_total; empty: none
  };
  const std::vector<Case> cases = {
      {"no metadata", "", "Notify", grpc::StatusCode::UNAUTHENTICATED, "missing_key"},
      {"wrong key", "wrong-key-0123456789abcdef", "Notify", grpc::StatusCode::UNAUTHENTICATED, "invalid_key"},
      {"scoped key, other scope", kNotifyKey, "Broadcast", grpc::StatusCode::PERMISSION_DENIED, "forbidden_scope"},
      {"scoped key, its scope", kNotifyKey, "Notify", grpc::StatusCode::OK, ""},
      {"full key", kFullKey, "Broadcast", grpc::StatusCode::OK, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const double failures_before = c.reason.empty() ? 0 : counter(server, admin_auth_failures(c.reason));
    const auto code_name = c.code == grpc::StatusCode::OK                ? "OK"
                           : c.code == grpc::StatusCode::UNAUTHENTICATED ? "UNAUTHENTICATED"
                                                                         : "PERMISSION_DENIED";
    const double requests_before = counter(server, grpc_requests(c.method, code_name));
    const Admin admin = plain_admin(server, c.key);
    const std::string event = unique_event();
    const auto status = c.method == "Notify" ? call_notify(admin, "ada", event) : call_broadcast(admin, "news", event);
    EXPECT_EQ(status.error_code(), c.code) << describe(status);
    if (!c.reason.empty()) {
      EXPECT_EQ(counter(server, admin_auth_failures(c.reason)) - failures_before, 1);
    }
    EXPECT_TRUE(
        eventually([&] { return counter(server, grpc_requests(c.method, code_name)) - requests_before == 1; }, 3s));
    const auto frame = client->next_of_type("notification", c.code == grpc::StatusCode::OK ? 3000ms : 200ms);
    EXPECT_EQ(frame.has_value(), c.code == grpc::StatusCode::OK) << "a refused call must deliver nothing";
    if (frame) {
      EXPECT_EQ(frame->at("event"), event.c_str());
    }
  }
  // A malformed authorization value is a missing key.
  {
    grpc::ClientContext context;
    set_deadline(context, 3000ms);
    context.AddMetadata("authorization", "Basic " + kFullKey);
    v1::GetPresenceRequest req;
    req.add_user_ids("ada");
    v1::GetPresenceResponse resp;
    const double before = counter(server, admin_auth_failures("missing_key"));
    EXPECT_EQ(server.stub()->GetPresence(&context, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(counter(server, admin_auth_failures("missing_key")) - before, 1);
  }
  // Scoped key on the other methods.
  {
    grpc::ClientContext context;
    prepare(context, kNotifyKey);
    v1::DisconnectRequest req;
    req.add_user_ids("ada");
    v1::DisconnectResponse resp;
    EXPECT_EQ(server.stub()->Disconnect(&context, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // The client stream: without a key, and with a key lacking "stream".
  for (const std::string& key : {std::string(), kNotifyKey}) {
    SCOPED_TRACE("StreamClientMessages with key '" + key + "'");
    grpc::ClientContext context;
    prepare(context, key);
    auto stub = server.stub();
    auto reader = stub->StreamClientMessages(&context, v1::StreamClientMessagesRequest{});
    v1::ClientMessage message;
    EXPECT_FALSE(reader->Read(&message));
    const auto status = reader->Finish();
    EXPECT_EQ(status.error_code(),
              key.empty() ? grpc::StatusCode::UNAUTHENTICATED : grpc::StatusCode::PERMISSION_DENIED)
        << describe(status);
  }
  EXPECT_TRUE(
      eventually([&] { return counter(server, grpc_requests("StreamClientMessages", "UNAUTHENTICATED")) == 1; }, 3s));
  EXPECT_EQ(counter(server, admin_auth_failures("forbidden_scope")), 3);  // Broadcast, Disconnect, the stream

  // Health checks need no key (probes carry none).
  {
    auto health = grpc::health::v1::Health::NewStub(server.channel());
    grpc::ClientContext context;
    set_deadline(context, 3000ms);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    const auto status = health->Check(&context, req, &resp);
    ASSERT_TRUE(status.ok()) << describe(status);
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  EXPECT_FALSE(client->closed());
  expect_still_serving(by_dev_identity(server), plain_admin(server, kFullKey));
}

TEST(SecurityAdmin, NotifyStreamNeedsTheNotifyScopeWhenItOpens) {
  const std::string broadcast_key = "broadcast-only-key-0123456789";
  TestServer server({"--admin-api-keys-file",
                     write_temp_file("api-keys", kNotifyKey + " notify\n" + broadcast_key + " broadcast\n")});
  auto client = connect_user(server, "ada");
  struct Case {
    std::string key;
    grpc::StatusCode code;
  };
  for (const Case& c :
       {Case{"", grpc::StatusCode::UNAUTHENTICATED},
        Case{"wrong-key-0123456789abcdef", grpc::StatusCode::UNAUTHENTICATED},
        Case{broadcast_key, grpc::StatusCode::PERMISSION_DENIED}, Case{kNotifyKey, grpc::StatusCode::OK}}) {
    SCOPED_TRACE("key '" + c.key + "'");
    grpc::ClientContext context;
    prepare(context, c.key);
    auto stub = server.stub();
    auto stream = stub->NotifyStream(&context);
    v1::NotifyRequest req;
    req.add_user_ids("ada");
    req.mutable_notification()->set_event("stream-" + std::to_string(static_cast<int>(c.code)));
    // A refused stream may already be closed when the request goes out.
    stream->Write(req);
    stream->WritesDone();
    v1::NotifyStreamResponse response;
    std::size_t results = 0;
    while (stream->Read(&response)) results += static_cast<std::size_t>(response.results_size());
    const auto status = stream->Finish();
    EXPECT_EQ(status.error_code(), c.code) << describe(status);
    EXPECT_EQ(results, c.code == grpc::StatusCode::OK ? 1u : 0u);
    const auto frame = client->next_of_type("notification", c.code == grpc::StatusCode::OK ? 3000ms : 200ms);
    EXPECT_EQ(frame.has_value(), c.code == grpc::StatusCode::OK) << "a refused stream must deliver nothing";
  }
  EXPECT_EQ(counter(server, admin_auth_failures("missing_key")), 1);
  EXPECT_EQ(counter(server, admin_auth_failures("invalid_key")), 1);
  EXPECT_EQ(counter(server, admin_auth_failures("forbidden_scope")), 1);
}

// ================================================================ 9. gRPC over TLS

std::shared_ptr<grpc::Channel> tls_channel(std::uint16_t port, const std::string& roots, const std::string& cert = "",
                                           const std::string& key = "") {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = roots;
  options.pem_cert_chain = cert;
  options.pem_private_key = key;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // no connection shared between the test's channels
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(options), args);
}

std::shared_ptr<grpc::Channel> plaintext_channel(std::uint16_t port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args);
}

std::vector<std::string> admin_tls_flags() {
  const auto& pki = test_pki();
  return {"--admin-tls-cert", write_temp_file("admin.crt", pki.server_cert_pem), "--admin-tls-key",
          write_temp_file("admin.key", pki.server_key_pem)};
}

TEST(SecurityAdminTls, TlsClientTrustingTheCaWorksPlaintextFails) {
  TestServer server(admin_tls_flags());
  const auto& pki = test_pki();
  const Admin good = via_channel(tls_channel(server.grpc_port(), pki.ca_cert_pem));
  auto client = connect_user(server, "tls-user");
  expect_notified(*client, "tls-user", good);

  const auto plaintext = call_notify(via_channel(plaintext_channel(server.grpc_port())), "tls-user", "plain");
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << describe(plaintext);
  // A client that doesn't trust the server's issuer refuses it.
  const auto untrusting =
      call_notify(via_channel(tls_channel(server.grpc_port(), pki.rogue_cert_pem)), "tls-user", "rogue");
  EXPECT_EQ(untrusting.error_code(), grpc::StatusCode::UNAVAILABLE) << describe(untrusting);
  EXPECT_FALSE(client->next_of_type("notification", 200ms).has_value());
  EXPECT_TRUE(eventually([&] { return counter(server, grpc_requests("Notify", "OK")) == 1; }, 3s));

  expect_notified(*client, "tls-user", good);
  EXPECT_TRUE(eventually([&] { return counter(server, grpc_requests("Notify", "OK")) == 2; }, 3s));
  expect_still_serving(by_dev_identity(server), good);
}

TEST(SecurityAdminTls, MutualTlsAcceptsOnlyClientCertificatesFromTheCa) {
  const auto& pki = test_pki();
  TestServer server(with(admin_tls_flags(), {"--admin-client-ca", write_temp_file("client-ca.crt", pki.ca_cert_pem)}));
  const Admin good =
      via_channel(tls_channel(server.grpc_port(), pki.ca_cert_pem, pki.client_cert_pem, pki.client_key_pem));
  auto client = connect_user(server, "mtls-user");
  expect_notified(*client, "mtls-user", good);

  struct Bad {
    std::string name;
    Admin admin;
  };
  const std::vector<Bad> bad = {
      {"rogue certificate",
       via_channel(tls_channel(server.grpc_port(), pki.ca_cert_pem, pki.rogue_cert_pem, pki.rogue_key_pem))},
      {"no certificate", via_channel(tls_channel(server.grpc_port(), pki.ca_cert_pem))},
      {"plaintext", via_channel(plaintext_channel(server.grpc_port()))},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b.name);
    const auto status = call_notify(b.admin, "mtls-user", "intruder");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << describe(status);
  }
  EXPECT_FALSE(client->next_of_type("notification", 200ms).has_value());
  EXPECT_TRUE(eventually([&] { return counter(server, grpc_requests("Notify", "OK")) == 1; }, 3s));
  // The good backend is unaffected, on its existing and on a new connection.
  expect_notified(*client, "mtls-user", good);
  const Admin fresh =
      via_channel(tls_channel(server.grpc_port(), pki.ca_cert_pem, pki.client_cert_pem, pki.client_key_pem));
  expect_still_serving(by_dev_identity(server), fresh);
}

// ================================================================ 10. wss://

TlsOptions trusting(const std::string& ca_pem, const std::string& server_name = "localhost") {
  TlsOptions tls;
  tls.ca_pem = ca_pem;
  tls.server_name = server_name;
  return tls;
}

TEST(SecurityWss, TlsWebSocketPort) {
  const auto& pki = test_pki();
  TestServer server({"--tls-cert", write_temp_file("ws.crt", pki.server_cert_pem), "--tls-key",
                     write_temp_file("ws.key", pki.server_key_pem), "--jwt-secret-file",
                     write_temp_file("hs256.secret", hs_secret())});
  const Admin admin = plain_admin(server);
  WsOptions tls;
  tls.tls = trusting(pki.ca_cert_pem);
  auto client = connect_as(server.ws_port(), "/ws?user=sam", tls, "sam");
  ASSERT_NE(client, nullptr);
  expect_notified(*client, "sam", admin);

  // A token in the subprotocol over wss://, as a browser sends it.
  WsOptions with_token = bearer_subprotocol(hs_token("tess"));
  with_token.tls = trusting(pki.ca_cert_pem);
  auto token_client = connect_as(server.ws_port(), "/ws", with_token, "tess");
  ASSERT_NE(token_client, nullptr);
  EXPECT_EQ(token_client->subprotocol(), "notify.v1");
  expect_notified(*token_client, "tess", admin);

  // https:// on the same port.
  const auto health = https_request(server.ws_port(), "GET", "/healthz", trusting(pki.ca_cert_pem));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");

  // Plain ws:// (and http://) to the TLS port fail, and are counted.
  const double bad_before = counter(server, handshake_failures("bad_request"));
  WsOptions plain;
  plain.timeout = 2000ms;
  EXPECT_THROW(WsClient::connect(server.ws_port(), "/ws?user=plain", plain), std::runtime_error);
  EXPECT_THROW(http_request(server.ws_port(), "GET", "/healthz", {}, 2000ms), std::runtime_error);
  EXPECT_TRUE(eventually([&] { return counter(server, handshake_failures("bad_request")) - bad_before == 2; }, 3s));

  // A client that doesn't trust the issuer, or expects another name, refuses the server.
  WsOptions untrusting;
  untrusting.tls = trusting(pki.rogue_cert_pem);
  EXPECT_THROW(WsClient::connect(server.ws_port(), "/ws?user=u1", untrusting), std::runtime_error);
  WsOptions other_name;
  other_name.tls = trusting(pki.ca_cert_pem, "gateway.example.org");
  EXPECT_THROW(WsClient::connect(server.ws_port(), "/ws?user=u2", other_name), std::runtime_error);

  EXPECT_FALSE(client->closed());
  expect_notified(*client, "sam", admin);
  expect_still_serving(by_dev_identity(server, tls), admin);
  EXPECT_TRUE(eventually([&] { return counter(server, kAccepted) == 3; }, 3s));
}

// ================================================================ 11. credential reloads

TEST(SecurityReload, RotatedJwksAndApiKeysAreTakenUpWhenTheFilesChange) {
  const std::string jwks = write_temp_file("jwks.json", jwks_json({jwk_for(ec_key(), "k1")}));
  const std::string keys = write_temp_file("api-keys", kFullKey + "\n");
  TestServer server({"--jwks-file", jwks, "--admin-api-keys-file", keys}, DevIdentity::disabled);
  const Admin old_admin = plain_admin(server, kFullKey);
  const std::string new_key = "rotated-key-0123456789abcdef";
  const Admin new_admin = plain_admin(server, new_key);
  {
    auto before = connect_token(server, ec_token(ec_key(), "k1", "kim"), "kim");
    ASSERT_NE(before, nullptr);
    expect_notified(*before, "kim", old_admin);
  }

  const auto rotated_at = Clock::now();
  replace_file(jwks, jwks_json({jwk_for(ec_key2(), "k2")}));
  replace_file(keys, new_key + "\n");
  std::unique_ptr<WsClient> after;
  EXPECT_TRUE(eventually(
      [&] {
        try {
          after = WsClient::connect(server.ws_port(), "/ws", bearer_header(ec_token(ec_key2(), "k2", "kim")));
          return true;
        } catch (const UpgradeRefused&) {
          return false;
        }
      },
      5s))
      << "the new kid is not accepted within 5 s of the file change";
  EXPECT_LT(Clock::now() - rotated_at, 5s);
  ASSERT_NE(after, nullptr);
  ASSERT_TRUE(after->next_of_type("welcome", 3s).has_value());
  // Both files were replaced at once; a poll may still fall between them.
  EXPECT_TRUE(eventually([&] { return call_notify(new_admin, "nobody", "probe").ok(); }, 5s));
  EXPECT_GE(counter(server, credential_reloads("success")), 1);
  EXPECT_EQ(counter(server, credential_reloads("error")), 0);

  // The old kid is gone; so is the old API key.
  const double unknown_before = counter(server, auth_failures("unknown_key"));
  expect_refused(server.ws_port(), "/ws", bearer_header(ec_token(ec_key(), "k1", "kim")), 401);
  EXPECT_EQ(counter(server, auth_failures("unknown_key")) - unknown_before, 1);
  const double invalid_before = counter(server, admin_auth_failures("invalid_key"));
  EXPECT_EQ(call_notify(old_admin, "kim", "old-key").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(counter(server, admin_auth_failures("invalid_key")) - invalid_before, 1);
  expect_notified(*after, "kim", new_admin);
  expect_still_serving(
      [&](const std::string& user) { return connect_token(server, ec_token(ec_key2(), "k2", user), user); }, new_admin);
}

TEST(SecurityReload, AnOpenNotifyStreamEndsWhenItsApiKeyIsRevoked) {
  const std::string keys = write_temp_file("api-keys", kFullKey + "\n" + kNotifyKey + " notify\n");
  TestServer server({"--admin-api-keys-file", keys});
  auto client = connect_user(server, "rey");
  auto stub = server.stub();
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::NotifyRequest, v1::NotifyStreamResponse>> call;
  };
  Stream revoked, kept;
  for (auto [stream, key] : {std::pair{&revoked, kNotifyKey}, std::pair{&kept, kFullKey}}) {
    prepare(stream->context, key);
    stream->context.set_deadline(std::chrono::system_clock::now() + 20s);
    stream->call = stub->NotifyStream(&stream->context);
  }
  v1::NotifyRequest req;
  req.add_user_ids("rey");
  req.mutable_notification()->set_event("before");
  // One request each, answered, before the rotation.
  for (Stream* stream : {&revoked, &kept}) {
    ASSERT_TRUE(stream->call->Write(req));
    v1::NotifyStreamResponse response;
    ASSERT_TRUE(stream->call->Read(&response));
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_EQ(response.results(0).code(), 0);
    ASSERT_TRUE(client->next_of_type("notification", 3s).has_value());
  }

  replace_file(keys, kFullKey + "\n");
  EXPECT_TRUE(eventually(
      [&] {
        return call_notify(plain_admin(server, kNotifyKey), "nobody", "probe").error_code() ==
               grpc::StatusCode::UNAUTHENTICATED;
      },
      5s));
  const double invalid_before = counter(server, admin_auth_failures("invalid_key"));

  // The stream opened with the removed key ends at its next request, which
  // is not handled; the other one goes on.
  req.mutable_notification()->set_event("after");
  revoked.call->Write(req);
  v1::NotifyStreamResponse response;
  EXPECT_FALSE(revoked.call->Read(&response));
  const auto status = revoked.call->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << describe(status);
  EXPECT_EQ(status.error_message(), "invalid API key");
  EXPECT_EQ(counter(server, admin_auth_failures("invalid_key")) - invalid_before, 1);

  ASSERT_TRUE(kept.call->Write(req));
  ASSERT_TRUE(kept.call->Read(&response));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).code(), 0);
  EXPECT_EQ(response.results(0).delivered_connections(), 1u);
  // Exactly one "after" notification: the kept stream's.
  const auto frame = client->next_of_type("notification", 3s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->at("event"), "after");
  EXPECT_FALSE(client->next_of_type("notification", 300ms).has_value());
  kept.call->WritesDone();
  EXPECT_FALSE(kept.call->Read(&response));
  EXPECT_TRUE(kept.call->Finish().ok());
}

TEST(SecurityReload, BrokenFilesKeepTheCurrentKeys) {
  const std::string jwks = write_temp_file("jwks.json", jwks_json({jwk_for(ec_key(), "k1")}));
  const std::string keys = write_temp_file("api-keys", kFullKey + "\n");
  TestServer server({"--jwks-file", jwks, "--admin-api-keys-file", keys}, DevIdentity::disabled);
  const Admin admin = plain_admin(server, kFullKey);
  const Connector k1 = [&](const std::string& user) {
    return connect_token(server, ec_token(ec_key(), "k1", user), user);
  };
  auto connected = k1("kai");
  ASSERT_NE(connected, nullptr);

  // A JWKS file broken at runtime, noticed by the file watcher.
  replace_file(jwks, R"({"keys":[{"kty":"EC","kid":"k2","crv":"P-256","x":"AAAA")");
  EXPECT_EQ(server.metric("notify_credentials_last_reload_successful"), 1);
  EXPECT_TRUE(eventually([&] { return counter(server, credential_reloads("error")) >= 1; }, 5s));
  EXPECT_EQ(counter(server, credential_reloads("success")), 0);
  // Stale keys in use: the gauge the alert watches says so until a reload works.
  EXPECT_EQ(server.metric("notify_credentials_last_reload_successful"), 0);
  expect_still_serving(k1, admin);

  // A valid JWKS with a broken API key file: all or nothing, nothing changes.
  replace_file(keys, "short\n");
  replace_file(jwks, jwks_json({jwk_for(ec_key2(), "k2")}));
  EXPECT_FALSE(server.app().reload_credentials());
  EXPECT_GE(counter(server, credential_reloads("error")), 2);
  EXPECT_EQ(counter(server, credential_reloads("success")), 0);
  expect_refused(server.ws_port(), "/ws", bearer_header(ec_token(ec_key2(), "k2", "kai")), 401);
  expect_still_serving(k1, admin);
  expect_notified(*connected, "kai", admin);
  EXPECT_EQ(server.metric("notify_credentials_last_reload_successful"), 0);

  // Fixed: the next reload succeeds and the gauge is back to 1.
  replace_file(keys, kFullKey + "\n");
  EXPECT_TRUE(server.app().reload_credentials());
  EXPECT_EQ(server.metric("notify_credentials_last_reload_successful"), 1);
}

TEST(SecurityReload, SighupReloadsCredentials) {
  const std::string jwks = write_temp_file("jwks.json", jwks_json({jwk_for(ec_key(), "k1")}));
  GatewayProcess gateway({"--bind", "127.0.0.1", "--ws-port", "0", "--grpc-port", "0", "--metrics-port", "0",
                          "--log-format", "json", "--jwks-file", jwks});
  ASSERT_TRUE(gateway.wait_listening()) << gateway.output();
  auto reloads = [&](const std::string& result) {
    return sample_value(http_request(gateway.metrics_port(), "GET", "/metrics").body, credential_reloads(result));
  };
  auto connects = [&](const KeyPair& key, const std::string& kid) {
    try {
      WsClient::connect(gateway.ws_port(), "/ws", bearer_header(ec_token(key, kid, "hal")));
      return true;
    } catch (const UpgradeRefused&) {
      return false;
    }
  };
  EXPECT_TRUE(connects(ec_key(), "k1"));
  EXPECT_EQ(reloads("success"), 0);

  // The file is unchanged, so only the signal can cause this reload.
  gateway.signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return gateway.output().find("credentials reloaded") != std::string::npos; }, 3s))
      << gateway.output();
  EXPECT_EQ(reloads("success"), 1);
  EXPECT_TRUE(connects(ec_key(), "k1"));

  // Rotated file plus SIGHUP: the new kid at once.
  replace_file(jwks, jwks_json({jwk_for(ec_key2(), "k2")}));
  gateway.signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return connects(ec_key2(), "k2"); }, 3s));
  EXPECT_FALSE(connects(ec_key(), "k1"));

  // Broken file plus SIGHUP: logged, counted, current keys kept.
  replace_file(jwks, "not json");
  gateway.signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return gateway.output().find("credential reload failed") != std::string::npos; }, 3s))
      << gateway.output();
  EXPECT_GE(reloads("error"), 1);
  EXPECT_TRUE(connects(ec_key2(), "k2"));

  gateway.signal(SIGTERM);
  EXPECT_EQ(gateway.wait_exit(10s), 0) << gateway.output();
}

}  // namespace
}  // namespace notify::testing
