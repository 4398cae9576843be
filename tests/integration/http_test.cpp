// The plain HTTP side of the gateway port: page, probes, and every refusal.
#include <gtest/gtest.h>

#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

TEST(Http, ServesTheBrowserPage) {
  TestServer server;
  const auto res = http_request(server.ws_port(), "GET", "/");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(res.body.find("<title>notify-gateway</title>"), std::string::npos);
  // The page asks the server how to authenticate, then opens /ws through
  // the client library, which the gateway serves too.
  EXPECT_NE(res.body.find("/config.json"), std::string::npos);
  EXPECT_NE(res.body.find("'/ws'"), std::string::npos);
  EXPECT_NE(res.body.find("from '/notify-client.js'"), std::string::npos);
  const auto lib = http_request(server.ws_port(), "GET", "/notify-client.js");
  EXPECT_EQ(lib.status, 200);
  EXPECT_EQ(lib.headers.at("content-type"), "text/javascript; charset=utf-8");
  EXPECT_NE(lib.body.find("export class NotifyClient"), std::string::npos);
  EXPECT_NE(lib.body.find("'bearer.'"), std::string::npos);  // the token travels as a subprotocol
  EXPECT_NE(lib.body.find("resume=1"), std::string::npos);
}

TEST(Http, ConfigTellsThePageHowToAuthenticate) {
  TestServer server;  // --insecure-dev, no JWT keys
  const auto res = http_request(server.ws_port(), "GET", "/config.json");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.at("content-type"), "application/json");
  const auto v = boost::json::parse(res.body);
  EXPECT_EQ(v.at("insecure_dev"), true);
  EXPECT_EQ(v.at("tokens"), false);
  EXPECT_EQ(v.at("subprotocol"), "notify.v1");
}

TEST(Http, HealthAndReadiness) {
  TestServer server;
  auto health = http_request(server.ws_port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  auto ready = http_request(server.ws_port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready\n");
  auto head = http_request(server.ws_port(), "HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.headers.at("content-length"), "3");
}

TEST(Http, ReadinessFailsAndUpgradesAreRefusedWhileDraining) {
  TestServer server({"--close-timeout", "3"});
  WsOptions options;
  options.start_reading = false;  // keeps the drain waiting on this client
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice", options);
  std::thread drain([&] { server.app().shutdown(); });
  EXPECT_TRUE(eventually([&] { return http_request(server.ws_port(), "GET", "/readyz").status == 503; }));
  EXPECT_EQ(http_request(server.ws_port(), "GET", "/healthz").status, 200);
  try {
    WsClient::connect(server.ws_port(), "/ws?user=late");
    ADD_FAILURE() << "upgrade accepted while draining";
  } catch (const UpgradeRefused& e) {
    EXPECT_EQ(e.status, 503);
  }
  client->start_reading();
  auto closed = client->wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->code, 1001);
  drain.join();
}

TEST(Http, UnknownPathsMethodsAndPlainGetsOnWs) {
  TestServer server;
  EXPECT_EQ(http_request(server.ws_port(), "GET", "/nope").status, 404);
  const auto post = http_request(server.ws_port(), "POST", "/");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers.at("allow"), "GET, HEAD");
  const auto plain = http_request(server.ws_port(), "GET", "/ws?user=alice");
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(plain.headers.at("upgrade"), "websocket");
}

TEST(Http, OversizedHeadersAre431) {
  TestServer server({"--max-header-bytes", "4096"});
  const auto res = http_request(server.ws_port(), "GET", "/", {{"X-Filler", std::string(8000, 'a')}});
  EXPECT_EQ(res.status, 431);
  EXPECT_EQ(server.metric("notify_handshake_failures_total{reason=\"header_too_large\"}"), 1);
  EXPECT_EQ(server.metric("notify_limit_rejections_total{limit=\"header_size\"}"), 1);
}

TEST(Http, MalformedRequestsAre400) {
  TestServer server;
  const std::string reply = raw_exchange(server.ws_port(), "GARBAGE\x01 / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_EQ(server.metric("notify_handshake_failures_total{reason=\"bad_request\"}"), 1);
}

TEST(Http, EndlessChunkExtensionIsRefusedWithinABoundedBuffer) {
  TestServer server;
  // Beast bounds headers and bodies but not chunk extensions: the session's
  // buffer limit must stop this instead of growing with every byte.
  const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=";
  const std::string reply = raw_exchange(server.ws_port(), head + std::string(256 * 1024, 'a'));
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply.substr(0, 200);
  EXPECT_EQ(server.metric("notify_handshake_failures_total{reason=\"bad_request\"}"), 1);
}

TEST(Http, SlowHandshakeIsCutOffAndOthersAreServed) {
  TestServer server({"--handshake-timeout", "0.5"});
  const auto start = std::chrono::steady_clock::now();
  // Half a request, then silence: the server hangs up after the timeout.
  const std::string reply =
      raw_exchange(server.ws_port(), "GET /ws?user=slowloris HTTP/1.1\r\nHost: x\r\n", std::chrono::seconds(5));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(reply.empty()) << reply;
  EXPECT_LT(elapsed, std::chrono::seconds(4));
  EXPECT_TRUE(eventually([&] { return server.metric("notify_handshake_failures_total{reason=\"timeout\"}") == 1; }));
  EXPECT_EQ(server.metric("notify_limit_rejections_total{limit=\"handshake_timeout\"}"), 1);
  EXPECT_EQ(http_request(server.ws_port(), "GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace notify::testing
