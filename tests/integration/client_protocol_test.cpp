// The client protocol (docs/protocol.md) spoken by a real WebSocket client.
#include <gtest/gtest.h>

#include <boost/asio.hpp>

#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

TEST(ClientProtocol, WelcomeComesFirstWithIdentity) {
  TestServer server;
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice%40example.com");
  auto welcome = client->next_json();
  ASSERT_TRUE(welcome);
  EXPECT_EQ(welcome->at("type"), "welcome");
  EXPECT_EQ(welcome->at("user_id"), "alice@example.com");
  EXPECT_EQ(welcome->at("connection_id").as_string().size(), 16u);
}

TEST(ClientProtocol, TheUpgradeResponseAndWelcomeFitTheSmallestSendQueue) {
  // A one-frame queue under either policy: the 101 response and the welcome
  // must neither overflow it (4008) nor be dropped.
  for (const char* policy : {"close", "drop-oldest"}) {
    TestServer server({"--send-queue-max-messages", "1", "--slow-consumer-policy", policy});
    auto client = connect_user(server, "alice");
    client->send(R"({"type":"ping","id":1})");
    const auto pong = client->next_json();
    ASSERT_TRUE(pong) << policy;
    EXPECT_EQ(pong->at("type"), "pong") << policy;
    EXPECT_FALSE(client->closed()) << policy;
    // welcome + pong; counted once written, which may be just after the client read it.
    EXPECT_TRUE(eventually([&] { return server.metric("notify_frames_delivered_total") == 2; })) << policy;
  }
}

TEST(ClientProtocol, PingIsAnsweredWithPongAndTheSameId) {
  TestServer server;
  auto client = connect_user(server, "alice");
  client->send(R"({"type":"ping","id":"p-1"})");
  auto pong = client->next_json();
  ASSERT_TRUE(pong);
  EXPECT_EQ(*pong, boost::json::parse(R"({"type":"pong","id":"p-1"})"));
  client->send(R"({"type":"ping"})");
  EXPECT_EQ(*client->next_json(), boost::json::parse(R"({"type":"pong"})"));
}

TEST(ClientProtocol, SubscribeAndUnsubscribeAreIdempotentAndAcknowledged) {
  TestServer server({"--history-size", "0"});  // with history, "subscribed" also says where the topic's stream is
  auto client = connect_user(server, "alice");
  client->send(R"({"type":"subscribe","topic":"post:1","id":1})");
  EXPECT_EQ(*client->next_json(), boost::json::parse(R"({"type":"subscribed","topic":"post:1","id":1})"));
  client->send(R"({"type":"subscribe","topic":"post:1","id":2})");
  EXPECT_EQ(client->next_json()->at("type"), "subscribed");
  client->send(R"({"type":"unsubscribe","topic":"post:1","id":3})");
  EXPECT_EQ(*client->next_json(), boost::json::parse(R"({"type":"unsubscribed","topic":"post:1","id":3})"));
  client->send(R"({"type":"unsubscribe","topic":"never","id":4})");
  EXPECT_EQ(client->next_json()->at("type"), "unsubscribed");
}

TEST(ClientProtocol, TopicLimitPerConnection) {
  TestServer server({"--max-topics-per-connection", "2"});
  auto client = connect_user(server, "alice");
  for (const char* t : {"a", "b"}) {
    client->send(std::string(R"({"type":"subscribe","topic":")") + t + "\"}");
    EXPECT_EQ(client->next_json()->at("type"), "subscribed");
  }
  client->send(R"({"type":"subscribe","topic":"c","id":9})");
  auto error = client->next_json();
  ASSERT_TRUE(error);
  EXPECT_EQ(error->at("type"), "error");
  EXPECT_EQ(error->at("code"), "too_many_topics");
  EXPECT_EQ(error->at("id"), 9);
  client->send(R"({"type":"unsubscribe","topic":"a"})");
  EXPECT_EQ(client->next_json()->at("type"), "unsubscribed");
  client->send(R"({"type":"subscribe","topic":"c"})");
  EXPECT_EQ(client->next_json()->at("type"), "subscribed");
}

TEST(ClientProtocol, BadFramesGetErrorFramesAndTheConnectionStays) {
  TestServer server;
  auto client = connect_user(server, "alice");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "bad_json"},
      {R"([1,2,3])", "bad_request"},
      {R"({"type":"dance","id":5})", "unknown_type"},
      {R"({"type":"subscribe","topic":"bad topic"})", "invalid_topic"},
  };
  for (const auto& [frame, code] : cases) {
    client->send(frame);
    auto error = client->next_json();
    ASSERT_TRUE(error) << frame;
    EXPECT_EQ(error->at("type"), "error") << frame;
    EXPECT_EQ(error->at("code"), code.c_str()) << frame;
    EXPECT_FALSE(error->at("message").as_string().empty());
  }
  client->send(R"({"type":"ping"})");
  EXPECT_EQ(client->next_json()->at("type"), "pong");
  EXPECT_EQ(server.metric("notify_client_messages_total{type=\"invalid\"}"), 4);
}

TEST(ClientProtocol, RepeatedAbuseClosesWith1008) {
  TestServer server({"--max-invalid-messages", "3"});
  auto abuser = connect_user(server, "mallory");
  auto bystander = connect_user(server, "alice");
  for (int i = 0; i < 3; ++i) abuser->send("garbage");
  auto closed = abuser->wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->code, 1008);
  // Every error frame was still delivered before the close.
  bystander->send(R"({"type":"ping"})");
  EXPECT_EQ(bystander->next_json()->at("type"), "pong");
}

TEST(ClientProtocol, BinaryFramesCloseWith1003) {
  TestServer server;
  auto client = connect_user(server, "alice");
  client->send_binary(std::string("\x00\x01\x02", 3));
  auto closed = client->wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->code, 1003);
}

TEST(ClientProtocol, OversizedFramesCloseWith1009) {
  TestServer server({"--max-message-bytes", "1024"});
  auto client = connect_user(server, "alice");
  client->send(R"({"type":"message","data":")" + std::string(2000, 'x') + "\"}");
  auto closed = client->wait_closed();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->code, 1009);
  EXPECT_TRUE(eventually([&] { return server.metric("notify_limit_rejections_total{limit=\"message_size\"}") == 1; }));
  auto other = connect_user(server, "bob");  // still serving
  other->send(R"({"type":"ping"})");
  EXPECT_EQ(other->next_json()->at("type"), "pong");
}

TEST(ClientProtocol, AClientCutOffMidFrameStillReceivesTheCloseCode) {
  // The client is still writing megabytes when the server closes: unless the
  // server drains before closing, the kernel resets the connection and the
  // client loses the close frame (browsers report 1006).
  TestServer server({"--max-message-bytes", "65536"});
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto client = connect_user(server, "alice");
    client->send(R"({"type":"message","data":")" + std::string(4 << 20, 'x') + "\"}");
    auto closed = client->wait_closed(std::chrono::milliseconds(10000));
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1009) << "attempt " << attempt;
  }
}

TEST(ClientProtocol, AClientThatSentItsCloseFrameIsNoLongerCounted) {
  TestServer server;
  // A raw client: upgrade, then a masked close frame, and the TCP connection
  // left open (as a client waiting for the server's FIN would).
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket(ioc);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), server.ws_port()});
  boost::asio::write(socket, boost::asio::buffer(upgrade_request("/ws?user=alice")));
  boost::asio::streambuf response;
  boost::asio::read_until(socket, response, "\r\n\r\n");
  ASSERT_TRUE(eventually([&] { return server.metric("notify_connections_open") == 1; }));
  boost::asio::write(socket, boost::asio::buffer(client_frame(0x88, std::string("\x03\xe8", 2))));

  EXPECT_TRUE(eventually([&] { return server.metric("notify_connections_open") == 0; }));
  EXPECT_EQ(notify(server, {"alice"}, "like", "{}").delivered_connections(), 0u);
}

TEST(ClientProtocol, FramesPipelinedWithTheUpgradeFragmentedOrInterleavedAreAllAnswered) {
  TestServer server;
  // One write: the request, a ping message, the same split in three
  // fragments with a control ping between them, then a close frame.
  const std::string bytes = upgrade_request("/ws?user=alice") + client_frame(0x81, R"({"type":"ping","id":7})") +
                            client_frame(0x01, R"({"type":)") + client_frame(0x89, "hb") +
                            client_frame(0x00, R"("ping",)") + client_frame(0x80, R"("id":8})") +
                            client_frame(0x88, std::string("\x03\xe8", 2) + "bye");
  const auto received = raw_exchange(server.ws_port(), bytes);
  ASSERT_NE(received.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos) << received;
  const auto frames = server_frames(received);
  ASSERT_EQ(frames.size(), 5u) << received;
  EXPECT_NE(frames[0].payload.find(R"("type":"welcome")"), std::string::npos);
  EXPECT_EQ(frames[1].payload, R"({"type":"pong","id":7})");
  EXPECT_EQ(frames[2].opcode(), 0xau);  // the control ping's pong comes as soon as it is read
  EXPECT_EQ(frames[2].payload, "hb");
  EXPECT_EQ(frames[3].payload, R"({"type":"pong","id":8})");
  EXPECT_EQ(frames[4].opcode(), 0x8u);
  EXPECT_EQ(frames[4].close_code(), 1000u);  // the client's code echoed
  EXPECT_TRUE(eventually([&] { return server.metric("notify_connections_open") == 0; }));
}

TEST(ClientProtocol, ProtocolViolationsCloseWithTheCodeTheRfcNames) {
  TestServer server;
  struct Case {
    const char* name;
    std::string frame;
    unsigned code;
  };
  const Case cases[] = {
      {"unmasked frame", client_frame(0x81, R"({"type":"ping"})", false), 1002},
      {"reserved bit (no extension was negotiated)", client_frame(0xc1, R"({"type":"ping"})"), 1002},
      {"fragmented ping", client_frame(0x09, "x"), 1002},
      {"continuation without a message", client_frame(0x80, "x"), 1002},
      {"invalid UTF-8 in a text message", client_frame(0x81, "\xc3\x28"), 1007},
      {"close code 1005 on the wire", client_frame(0x88, std::string("\x03\xed", 2)), 1002},
  };
  for (const auto& c : cases) {
    const auto frames = server_frames(raw_exchange(server.ws_port(), upgrade_request("/ws?user=alice") + c.frame));
    ASSERT_FALSE(frames.empty()) << c.name;
    EXPECT_EQ(frames.back().opcode(), 0x8u) << c.name;  // the server closed, and said why
    EXPECT_EQ(frames.back().close_code(), c.code) << c.name;
  }
  EXPECT_TRUE(eventually([&] { return server.metric("notify_connections_open") == 0; }));
  auto client = connect_user(server, "bob");  // still serving
  client->send(R"({"type":"ping"})");
  EXPECT_EQ(client->next_json()->at("type"), "pong");
}

TEST(ClientProtocol, MalformedUpgradesAreRefusedWithTheReason) {
  TestServer server;
  auto request = upgrade_request("/ws?user=alice");
  const auto version = request.find("Sec-WebSocket-Version: 13");
  const auto old_version = std::string(request).replace(version, 25, "Sec-WebSocket-Version: 8");
  const auto response = raw_exchange(server.ws_port(), old_version);
  EXPECT_EQ(response.rfind("HTTP/1.1 426", 0), 0u) << response;
  EXPECT_NE(response.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << response;

  const auto key = request.find("Sec-WebSocket-Key: ");
  const auto bad_key = std::string(request).replace(key + 19, 24, "short");
  EXPECT_EQ(raw_exchange(server.ws_port(), bad_key).rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_TRUE(
      eventually([&] { return server.metric("notify_handshake_failures_total{reason=\"bad_request\"}") == 2; }));
}

TEST(ClientProtocol, MissingOrInvalidUserIsRefusedWith400) {
  TestServer server;
  for (const char* target : {"/ws", "/ws?user=", "/ws?user=has%20space", "/ws?user=a%2Fb"}) {
    try {
      WsClient::connect(server.ws_port(), target);
      ADD_FAILURE() << target << " was accepted";
    } catch (const UpgradeRefused& e) {
      EXPECT_EQ(e.status, 400) << target;
    }
  }
  EXPECT_EQ(server.metric("notify_handshake_failures_total{reason=\"invalid_user\"}"), 4);
}

TEST(ClientProtocol, UpgradeOnAnotherPathIs404) {
  TestServer server;
  try {
    WsClient::connect(server.ws_port(), "/socket?user=alice");
    ADD_FAILURE() << "accepted";
  } catch (const UpgradeRefused& e) {
    EXPECT_EQ(e.status, 404);
  }
}

TEST(ClientProtocol, ServerPingsKeepAReadingClientAliveAndDropASilentOne) {
  TestServer server({"--idle-timeout", "1"});
  auto reading = connect_user(server, "alice");
  // A client that never reads can't answer the server's pings.
  WsOptions silent_options;
  silent_options.start_reading = false;
  auto silent = WsClient::connect(server.ws_port(), "/ws?user=bob", silent_options);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE(reading->closed());
  reading->send(R"({"type":"ping"})");
  EXPECT_EQ(reading->next_of_type("pong").has_value(), true);
  // The silent one was dropped by the server (no close frame from a dead peer).
  EXPECT_TRUE(eventually([&] { return server.metric("notify_connections_open") == 1; }));
  EXPECT_TRUE(silent->wait_closed(std::chrono::milliseconds(2000)).has_value());
}

}  // namespace
}  // namespace notify::testing
