#include "common/metrics.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/support/test_server.hpp"

namespace notify {
namespace {

using testing::sample_value;

TEST(Metrics, LoopCountersAreSummedAcrossLoops) {
  Metrics m(3);
  m.loop(0).frames_delivered.add(2);
  m.loop(2).frames_delivered.add(5);
  m.loop(1).connections_accepted.add(4);
  m.loop(1).connections_closed.add(1);
  m.loop(0).client_message(ClientMessageType::ping);
  const std::string text = m.scrape();
  EXPECT_EQ(sample_value(text, "notify_frames_delivered_total"), 7);
  EXPECT_EQ(sample_value(text, "notify_connections_open"), 3);
  EXPECT_EQ(sample_value(text, "notify_connections_accepted_total"), 4);
  EXPECT_EQ(sample_value(text, "notify_client_messages_total{type=\"ping\"}"), 1);
  EXPECT_EQ(sample_value(text, "notify_client_messages_total{type=\"message\"}"), 0);
}

TEST(Metrics, DeliveryHistogramIsCumulative) {
  Metrics m(2);
  m.loop(0).delivery_latency.observe(std::chrono::microseconds(50));  // <= 0.0001
  m.loop(1).delivery_latency.observe(std::chrono::milliseconds(3));   // <= 0.005
  m.loop(1).delivery_latency.observe(std::chrono::seconds(20));       // +Inf
  const std::string text = m.scrape();
  EXPECT_EQ(sample_value(text, "notify_delivery_latency_seconds_bucket{le=\"0.0001\"}"), 1);
  EXPECT_EQ(sample_value(text, "notify_delivery_latency_seconds_bucket{le=\"0.0025\"}"), 1);
  EXPECT_EQ(sample_value(text, "notify_delivery_latency_seconds_bucket{le=\"0.005\"}"), 2);
  EXPECT_EQ(sample_value(text, "notify_delivery_latency_seconds_bucket{le=\"+Inf\"}"), 3);
  EXPECT_EQ(sample_value(text, "notify_delivery_latency_seconds_count"), 3);
  EXPECT_NEAR(sample_value(text, "notify_delivery_latency_seconds_sum"), 20.00305, 1e-6);
}

TEST(Metrics, GrpcRequestsByMethodAndCode) {
  Metrics m(1);
  m.grpc_request(grpc_method_from_path("/notify.v1.NotificationService/Notify"), 0, std::chrono::milliseconds(2));
  m.grpc_request(grpc_method_from_path("/notify.v1.NotificationService/Notify"), 3, std::chrono::milliseconds(1));
  m.grpc_request(grpc_method_from_path("/notify.v1.NotificationService/Notify"), 3, std::chrono::milliseconds(1));
  m.grpc_request(grpc_method_from_path("/evil.Service/RandomName12345"), 12, std::chrono::milliseconds(1));
  const std::string text = m.scrape();
  EXPECT_EQ(sample_value(text, "notify_grpc_requests_total{code=\"OK\",method=\"Notify\"}"), 1);
  EXPECT_EQ(sample_value(text, "notify_grpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"Notify\"}"), 2);
  EXPECT_EQ(sample_value(text, "notify_grpc_requests_total{code=\"UNIMPLEMENTED\",method=\"other\"}"), 1);
  EXPECT_EQ(text.find("RandomName12345"), std::string::npos);  // no unbounded label values
  EXPECT_EQ(sample_value(text, "notify_grpc_request_duration_seconds_count{method=\"Notify\"}"), 3);
}

// A series born with its first call would start above 0, and rate() would
// never count that call: every pair is there, at 0, before any call.
TEST(Metrics, EveryGrpcMethodAndCodeExistsFromTheStart) {
  Metrics m(1);
  const std::string text = m.scrape();
  std::size_t series = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("notify_grpc_requests_total{", 0) == 0) {
      ++series;
      EXPECT_EQ(line.substr(line.rfind(' ') + 1), "0") << line;
    }
  }
  EXPECT_EQ(series, 10u * 17u);
  EXPECT_EQ(sample_value(text, "notify_grpc_requests_total{code=\"UNAVAILABLE\",method=\"Broadcast\"}"), 0);
  EXPECT_EQ(sample_value(text, "notify_grpc_requests_total{code=\"DATA_LOSS\",method=\"other\"}"), 0);
}

TEST(Metrics, MethodPathsMapToBoundedLabels) {
  EXPECT_EQ(grpc_method_from_path("/notify.v1.NotificationService/Broadcast"), GrpcMethod::broadcast);
  EXPECT_EQ(grpc_method_from_path("/notify.v1.NotificationService/StreamClientMessages"),
            GrpcMethod::stream_client_messages);
  EXPECT_EQ(grpc_method_from_path("/notify.v1.NotificationService/Nope"), GrpcMethod::other);
  EXPECT_EQ(grpc_method_from_path("/grpc.health.v1.Health/Check"), GrpcMethod::health);
  EXPECT_EQ(grpc_method_from_path("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            GrpcMethod::reflection);
  EXPECT_EQ(grpc_method_from_path(""), GrpcMethod::other);
}

TEST(Metrics, ProcessMetricsAreReadFromProc) {
  Metrics m(1);
  const std::string text = m.scrape();
  EXPECT_GT(sample_value(text, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(sample_value(text, "process_open_fds"), 2);
  EXPECT_GT(sample_value(text, "process_max_fds"), 0);
  EXPECT_GE(sample_value(text, "process_cpu_seconds_total"), 0);
  EXPECT_GT(sample_value(text, "process_start_time_seconds"), 1.6e9);
}

TEST(Metrics, HandshakeFailuresHaveEveryReasonFromTheStart) {
  Metrics m(1);
  m.handshake_failed(HandshakeFailure::invalid_user);
  const std::string text = m.scrape();
  EXPECT_EQ(sample_value(text, "notify_handshake_failures_total{reason=\"invalid_user\"}"), 1);
  EXPECT_EQ(sample_value(text, "notify_handshake_failures_total{reason=\"timeout\"}"), 0);
}

}  // namespace
}  // namespace notify
