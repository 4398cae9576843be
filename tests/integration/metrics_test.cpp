// /metrics on its own port: the families the issue lists, moving with real
// traffic, in a format promtool accepts.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

TEST(MetricsEndpoint, CountsRealTraffic) {
  TestServer server;
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice");
  ASSERT_TRUE(client->next_of_type("welcome"));
  client->send(R"({"type":"ping"})");
  ASSERT_TRUE(client->next_of_type("pong"));
  try {
    WsClient::connect(server.ws_port(), "/ws?user=");
  } catch (const UpgradeRefused&) {
  }
  ASSERT_EQ(notify(server, {"alice"}, "like", "").delivered_connections(), 1u);
  ASSERT_TRUE(client->next_of_type("notification"));

  EXPECT_TRUE(eventually([&] { return server.metric("notify_frames_delivered_total") == 3; }));
  const std::string text = server.scrape();
  EXPECT_EQ(sample_value(text, "notify_connections_open"), 1);
  EXPECT_EQ(sample_value(text, "notify_connections_accepted_total"), 1);
  EXPECT_EQ(sample_value(text, "notify_connections_max"),
            static_cast<double>(server.app().config().gateway.max_connections));
  EXPECT_GT(sample_value(text, "notify_connections_max"), 0);
  EXPECT_EQ(sample_value(text, "notify_handshake_failures_total{reason=\"invalid_user\"}"), 1);
  EXPECT_EQ(sample_value(text, "notify_notifications_received_total"), 1);
  EXPECT_EQ(sample_value(text, "notify_broadcasts_received_total"), 0);
  EXPECT_EQ(sample_value(text, "notify_client_messages_total{type=\"ping\"}"), 1);
  EXPECT_GT(sample_value(text, "notify_bytes_sent_total"), 50);
  EXPECT_EQ(sample_value(text, "notify_delivery_latency_seconds_count"), 1);
  EXPECT_EQ(sample_value(text, "notify_grpc_requests_total{code=\"OK\",method=\"Notify\"}"), 1);
  EXPECT_EQ(sample_value(text, "notify_grpc_request_duration_seconds_count{method=\"Notify\"}"), 1);
  EXPECT_EQ(sample_value(text, "notify_messages_dropped_total"), 0);
  EXPECT_EQ(sample_value(text, "notify_slow_consumer_closes_total"), 0);
  EXPECT_GT(sample_value(text, "process_resident_memory_bytes"), 0);
  EXPECT_GT(sample_value(text, "process_open_fds"), 0);
  EXPECT_GE(sample_value(text, "process_cpu_seconds_total"), 0);
}

TEST(MetricsEndpoint, OnlyMetricsIsServedThere) {
  TestServer server;
  const auto res = http_request(server.metrics_port(), "GET", "/metrics");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(http_request(server.metrics_port(), "GET", "/").status, 404);
  EXPECT_EQ(http_request(server.ws_port(), "GET", "/metrics").status, 404);
}

TEST(MetricsEndpoint, PassesPromtoolCheckMetrics) {
  const std::string promtool = PROMTOOL;
  ASSERT_FALSE(promtool.empty()) << "promtool is missing: apt-get install prometheus";
  TestServer server;
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice");
  ASSERT_TRUE(client->next_of_type("welcome"));
  const std::string path = ::testing::TempDir() + "metrics.txt";
  std::ofstream(path) << server.scrape();
  const std::string command = promtool + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) output += buf;
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace notify::testing
