// Upstream messages: WebSocket {"type":"message"} frames reaching a backend
// through StreamClientMessages.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "common/ids.hpp"
#include "tests/support/consumer.hpp"
#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

TEST(ClientMessages, ReachTheConsumerWithSenderAndAreAcknowledged) {
  TestServer server;
  Consumer consumer(server);
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice");
  auto welcome = client->next_of_type("welcome");
  ASSERT_TRUE(welcome);
  const auto before = unix_millis();
  client->send(R"({"type":"message","id":17,"data":{"text":"Hello, world","tags":["a","b"]}})");

  auto ack = client->next_json();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->at("type"), "ack");
  EXPECT_EQ(ack->at("id"), 17);

  auto message = consumer.next();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->user_id(), "alice");
  EXPECT_EQ(message->connection_id(), welcome->at("connection_id").as_string().c_str());
  EXPECT_EQ(boost::json::parse(message->data_json()),
            boost::json::parse(R"({"text":"Hello, world","tags":["a","b"]})"));
  EXPECT_EQ(message->client_message_id(), "17");
  EXPECT_EQ(message->id(), ack->at("message_id").as_string().c_str());
  EXPECT_GE(message->ts(), before);
  EXPECT_LE(message->ts(), unix_millis());
}

TEST(ClientMessages, EveryConsumerGetsEveryMessageInOrder) {
  TestServer server;
  Consumer first(server);
  Consumer second(server);
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice");
  for (int i = 0; i < 20; ++i) client->send(R"({"type":"message","data":)" + std::to_string(i) + "}");
  for (Consumer* c : {&first, &second}) {
    for (int i = 0; i < 20; ++i) {
      auto m = c->next();
      ASSERT_TRUE(m) << i;
      EXPECT_EQ(m->data_json(), std::to_string(i));
    }
  }
  EXPECT_EQ(server.metric("notify_client_stream_consumers"), 2);
}

TEST(ClientMessages, WithoutConsumerTheClientIsToldNothingWasDelivered) {
  TestServer server;
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice");
  ASSERT_TRUE(client->next_of_type("welcome"));
  client->send(R"({"type":"message","id":"m1","data":"lost?"})");
  auto reply = client->next_json();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->at("type"), "error");
  EXPECT_EQ(reply->at("code"), "no_consumer");
  EXPECT_EQ(reply->at("id"), "m1");
}

TEST(ClientMessages, AConsumerThatLeavesStopsCounting) {
  TestServer server;
  auto consumer = std::make_unique<Consumer>(server);
  EXPECT_TRUE(eventually([&] { return server.metric("notify_client_stream_consumers") == 1; }));
  consumer->cancel();
  ASSERT_TRUE(consumer->wait_done(std::chrono::milliseconds(5000)));
  consumer.reset();
  EXPECT_TRUE(eventually([&] { return server.metric("notify_client_stream_consumers") == 0; }));
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice");
  ASSERT_TRUE(client->next_of_type("welcome"));
  client->send(R"({"type":"message","data":1})");
  EXPECT_EQ(client->next_json()->at("code"), "no_consumer");
}

TEST(ClientMessages, AStalledConsumerCostsAtMostItsByteBudget) {
  TestServer server({"--client-stream-buffer", "100000", "--client-stream-buffer-bytes", "1048576"});
  Consumer stalled(server, /*read=*/false);
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice");
  ASSERT_TRUE(client->next_of_type("welcome"));
  const std::string payload = R"({"type":"message","data":")" + std::string(60000, 'x') + "\"}";
  for (int i = 0; i < 200; ++i) {  // 12 MB against a 1 MiB budget (plus transport buffers)
    client->send(payload);
    ASSERT_TRUE(client->next_of_type("ack")) << i;
  }
  // Far below the message count limit: only the byte budget can drop.
  EXPECT_GT(server.metric("notify_client_messages_dropped_total"), 0);
}

TEST(ClientMessages, StreamCountIsLimited) {
  TestServer server({"--max-client-streams", "1"});
  Consumer first(server);
  Consumer second(server);
  ASSERT_TRUE(second.wait_done(std::chrono::milliseconds(5000)));
  EXPECT_EQ(second.status().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(server.metric("notify_client_stream_consumers"), 1);
  EXPECT_EQ(server.metric("notify_limit_rejections_total{limit=\"client_streams\"}"), 1);
}

TEST(ClientMessages, StreamsEndCleanlyOnShutdown) {
  auto server = std::make_unique<TestServer>();
  Consumer consumer(*server);
  EXPECT_TRUE(eventually([&] { return server->metric("notify_client_stream_consumers") == 1; }));
  std::thread stopper([&] { server->app().shutdown(); });
  ASSERT_TRUE(consumer.wait_done(std::chrono::milliseconds(5000)));
  stopper.join();
  EXPECT_TRUE(consumer.status().ok()) << consumer.status().error_message();
}

}  // namespace
}  // namespace notify::testing
