// History and resume (docs/protocol.md#history-and-resume) on the real
// gateway: offsets in frames, replay of what a client missed, resume_failed
// when history can't cover the gap, and no gap or duplicate across the seam
// between replay and live delivery.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "tests/support/resume_helpers.hpp"
#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string position_json(const json::value& frame, const std::string& stream) {
  const auto& p = frame.at("streams").at(stream);
  return json::serialize(json::object{{"epoch", p.at("epoch")}, {"offset", p.at("offset")}});
}

TEST(History, FramesCarryTheirStreamEpochAndConsecutiveOffsets) {
  TestServer server;
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice");
  auto welcome = client->next_json();
  ASSERT_TRUE(welcome);
  const auto& user = welcome->at("streams").at("user:alice");
  EXPECT_EQ(user.at("offset"), 0);
  const std::string epoch(user.at("epoch").as_string());
  EXPECT_FALSE(epoch.empty());
  EXPECT_TRUE(welcome->at("streams").as_object().contains("all"));

  auto stub = server.stub();
  for (int i = 1; i <= 3; ++i) send_seq(*stub, "alice", i);
  for (std::uint64_t i = 1; i <= 3; ++i) {
    auto frame = client->next_json();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->at("stream"), "user:alice");
    EXPECT_EQ(frame->at("epoch").as_string(), epoch);
    EXPECT_EQ(frame->at("offset"), i);
  }

  // A topic stream: the subscription says where it starts; broadcasts count from there.
  broadcast(server, "news", "n", "1");  // nobody subscribed yet: offset 1, kept
  client->send(R"({"type":"subscribe","topic":"news","id":1})");
  auto subscribed = client->next_json();
  ASSERT_TRUE(subscribed);
  EXPECT_EQ(subscribed->at("stream"), "topic:news");
  EXPECT_EQ(subscribed->at("offset"), 1);
  broadcast(server, "news", "n", "2");
  auto news = client->next_json();
  ASSERT_TRUE(news);
  EXPECT_EQ(news->at("stream"), "topic:news");
  EXPECT_EQ(news->at("offset"), 2);
  EXPECT_EQ(news->at("epoch"), subscribed->at("epoch"));

  // A Notify to several users: each frame is numbered in its own stream.
  auto bob = WsClient::connect(server.ws_port(), "/ws?user=bob");
  ASSERT_TRUE(bob->next_of_type("welcome"));
  notify(server, {"alice", "bob"}, "both", "null");
  EXPECT_EQ(client->next_json()->at("offset"), 4);
  auto to_bob = bob->next_json();
  ASSERT_TRUE(to_bob);
  EXPECT_EQ(to_bob->at("stream"), "user:bob");
  EXPECT_EQ(to_bob->at("offset"), 1);
}

TEST(History, AResumedClientGetsWhatItMissedInOrderThenLiveOnes) {
  TestServer server;
  auto stub = server.stub();
  auto first = WsClient::connect(server.ws_port(), "/ws?user=alice");
  auto welcome = first->next_json();
  ASSERT_TRUE(welcome);
  first->send(R"({"type":"subscribe","topic":"news"})");
  auto subscribed = first->next_json();
  ASSERT_TRUE(subscribed);
  send_seq(*stub, "alice", 1);
  broadcast(server, "news", "n", R"({"seq":1})");
  EXPECT_EQ(first->next_json()->at("offset"), 1);
  const auto news1 = first->next_json();
  ASSERT_TRUE(news1);
  const std::string user_epoch(welcome->at("streams").at("user:alice").at("epoch").as_string());
  const std::string news_epoch(news1->at("epoch").as_string());
  first->close();
  ASSERT_TRUE(eventually([&] { return server.metric("notify_connections_open") == 0; }));

  // Missed while away.
  for (int i = 2; i <= 5; ++i) send_seq(*stub, "alice", i);
  broadcast(server, "news", "n", R"({"seq":2})");

  auto again = WsClient::connect(server.ws_port(), "/ws?user=alice&resume=1");
  ASSERT_TRUE(again->next_of_type("welcome"));
  // Live ones sent before the resume arrives wait behind the replay.
  send_seq(*stub, "alice", 6);
  again->send(resume_message({{"user:alice", at(user_epoch, 1)}, {"topic:news", at(news_epoch, 1)}}, 7));
  std::vector<int> user_seqs;
  std::vector<std::uint64_t> user_offsets;
  int news_seen = 0;
  for (;;) {
    auto frame = again->next_json();
    ASSERT_TRUE(frame);
    const auto type = frame->at("type").as_string();
    if (type == "resumed") {
      EXPECT_EQ(frame->at("id"), 7);
      EXPECT_EQ(frame->at("streams").at("topic:news").at("offset"), 2);
      break;
    }
    ASSERT_EQ(type, "notification") << json::serialize(*frame);
    if (frame->at("stream") == "topic:news") {
      EXPECT_EQ(frame->at("offset"), 2);
      ++news_seen;
      continue;
    }
    user_seqs.push_back(static_cast<int>(frame->at("data").at("seq").as_int64()));
    user_offsets.push_back(frame->at("offset").to_number<std::uint64_t>());
  }
  // The held live one (6) comes after `resumed` unless it was appended
  // before the resume was read, in which case it is part of the replay.
  if (user_seqs.size() == 4) {
    auto live = again->next_json();
    ASSERT_TRUE(live);
    user_seqs.push_back(static_cast<int>(live->at("data").at("seq").as_int64()));
    user_offsets.push_back(live->at("offset").to_number<std::uint64_t>());
  }
  EXPECT_EQ(user_seqs, (std::vector<int>{2, 3, 4, 5, 6}));
  EXPECT_EQ(user_offsets, (std::vector<std::uint64_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(news_seen, 1);
  // Resuming the topic subscribed to it.
  broadcast(server, "news", "n", R"({"seq":3})");
  auto live_news = again->next_json();
  ASSERT_TRUE(live_news);
  EXPECT_EQ(live_news->at("offset"), 3);
  EXPECT_EQ(server.metric("notify_streams_resumed_total"), 2);
  EXPECT_EQ(server.metric("notify_client_messages_total{type=\"resume\"}"), 1);
  // Nothing more: no duplicate of anything.
  EXPECT_FALSE(again->next(300ms));
}

TEST(History, ResumeFailsExplicitlyAndReplaysNothingWhenHistoryCannotCoverTheGap) {
  TestServer server({"--history-size", "3"});
  auto stub = server.stub();
  auto first = WsClient::connect(server.ws_port(), "/ws?user=alice");
  auto welcome = first->next_json();
  ASSERT_TRUE(welcome);
  const std::string epoch(welcome->at("streams").at("user:alice").at("epoch").as_string());
  first->close();
  for (int i = 1; i <= 5; ++i) send_seq(*stub, "alice", i);  // 1 and 2 fall out of a 3-entry history

  struct Case {
    std::string stream, position, reason;
  };
  const std::vector<Case> cases = {
      {"user:alice", at(epoch, 1), "too_old"},      {"user:alice", at("not-" + epoch, 4), "epoch_changed"},
      {"user:alice", at(epoch, 9), "ahead"},        {"user:bob", at(epoch, 0), "unknown_stream"},
      {"nonsense", at(epoch, 0), "unknown_stream"},
  };
  std::uint64_t head = 5;
  for (const Case& c : cases) {
    auto client = WsClient::connect(server.ws_port(), "/ws?user=alice&resume=1");
    ASSERT_TRUE(client->next_of_type("welcome"));
    client->send(resume_message({{c.stream, c.position}}));
    auto failed = client->next_json();
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->at("type"), "resume_failed") << c.reason;
    EXPECT_EQ(failed->at("reason").as_string(), c.reason);
    EXPECT_EQ(failed->at("stream").as_string(), c.stream);
    if (c.stream == "user:alice") {
      // Where live delivery goes on.
      EXPECT_EQ(failed->at("epoch").as_string(), epoch);
      EXPECT_EQ(failed->at("offset"), head);
    }
    auto resumed = client->next_json();
    ASSERT_TRUE(resumed);
    EXPECT_EQ(resumed->at("type"), "resumed") << "nothing partial before it: " << json::serialize(*resumed);
    send_seq(*stub, "alice", 100);
    ++head;
    auto live = client->next_json();
    ASSERT_TRUE(live);
    EXPECT_EQ(live->at("data").at("seq"), 100);
    client->close();
  }
  // Exactly at the edge: 2 is the last trimmed offset, so a client at 2 misses nothing lost.
  auto edge = WsClient::connect(server.ws_port(), "/ws?user=alice&resume=1");
  ASSERT_TRUE(edge->next_of_type("welcome"));
  edge->send(resume_message({{"user:alice", at(epoch, head - 3)}}));
  for (std::uint64_t o = head - 2; o <= head; ++o) EXPECT_EQ(edge->next_json()->at("offset"), o);
  EXPECT_EQ(edge->next_json()->at("type"), "resumed");
  EXPECT_GE(server.metric("notify_streams_resume_failed_total"), 3);
}

TEST(History, ResumeMustBeAnnouncedAndComesOnce) {
  TestServer server;
  auto client = connect_user(server, "alice");
  client->send(resume_message({{"user:alice", at("x", 0)}}));
  auto error = client->next_json();
  ASSERT_TRUE(error);
  EXPECT_EQ(error->at("type"), "error");
  EXPECT_EQ(error->at("code"), "bad_request");

  auto announced = WsClient::connect(server.ws_port(), "/ws?user=alice&resume=1");
  auto welcome = announced->next_json();
  ASSERT_TRUE(welcome);
  announced->send(resume_message({{"user:alice", position_json(*welcome, "user:alice")}}));
  EXPECT_EQ(announced->next_json()->at("type"), "resumed");
  announced->send(resume_message({{"user:alice", position_json(*welcome, "user:alice")}}));
  EXPECT_EQ(announced->next_json()->at("code"), "bad_request");

  EXPECT_THROW(WsClient::connect(server.ws_port(), "/ws?user=alice&resume=maybe"), UpgradeRefused);
}

TEST(History, AnyOtherFirstMessageEndsTheWaitForAResume) {
  TestServer server;
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice&resume=1");
  ASSERT_TRUE(client->next_of_type("welcome"));
  notify(server, {"alice"}, "held", "null");
  EXPECT_FALSE(client->next(200ms)) << "held until the client speaks";
  client->send(R"({"type":"ping","id":1})");
  // The ping ends the wait: the held notification comes out (before or after the pong).
  std::vector<std::string> types;
  for (int i = 0; i < 2; ++i) types.emplace_back(client->next_json()->at("type").as_string());
  std::sort(types.begin(), types.end());
  EXPECT_EQ(types, (std::vector<std::string>{"notification", "pong"}));
}

TEST(History, CollapsedNotificationsLeaveAMarkerInTheQueueAndOnlyTheLatestInHistory) {
  TestServer server({"--send-queue-max-bytes", "33554432", "--send-queue-max-messages", "100000"});
  auto stub = server.stub();
  // Big plain frames fill the socket so that later ones wait in the queue.
  constexpr std::uint64_t kBig = 160;  // 9.4 MiB: more than the socket takes, less than the queue
  auto slow = stalled_client(server, "alice", kBig);
  ASSERT_TRUE(slow);
  for (int i = 1; i <= 20; ++i) send_seq(*stub, "alice", i, "views");
  ASSERT_TRUE(eventually([&] { return server.metric("notify_messages_collapsed_total") > 0; }));
  slow->start_reading();
  std::uint64_t expected = 1;
  int last_views = 0;
  int skipped = 0;
  while (expected <= kBig + 20) {
    auto frame = slow->next_json(10s);
    ASSERT_TRUE(frame) << "offset " << expected;
    const auto type = frame->at("type").as_string();
    if (type == "welcome") continue;
    // Every offset once, in order, in a frame or in a marker's range.
    if (type == "skipped") {
      EXPECT_EQ(frame->at("stream"), "user:alice");
      EXPECT_EQ(frame->at("from"), expected);
      EXPECT_GE(frame->at("offset").to_number<std::uint64_t>(), expected);
      skipped += static_cast<int>(frame->at("offset").to_number<std::uint64_t>() - expected + 1);
      expected = frame->at("offset").to_number<std::uint64_t>() + 1;
      continue;
    }
    EXPECT_EQ(frame->at("offset"), expected);
    if (frame->at("event") == "n") last_views = static_cast<int>(frame->at("data").at("seq").as_int64());
    ++expected;
  }
  EXPECT_GT(skipped, 0);
  EXPECT_EQ(last_views, 20);

  // History kept only the latest "views": a resume from before them gets the big ones and seq 20.
  auto resumed = WsClient::connect(server.ws_port(), "/ws?user=alice&resume=1");
  auto welcome = resumed->next_json();
  ASSERT_TRUE(welcome);
  const std::string epoch(welcome->at("streams").at("user:alice").at("epoch").as_string());
  resumed->send(resume_message({{"user:alice", at(epoch, kBig - 1)}}));
  auto last_big = resumed->next_json();
  ASSERT_TRUE(last_big);
  EXPECT_EQ(last_big->at("offset"), kBig);
  auto latest = resumed->next_json();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->at("offset"), kBig + 20);
  EXPECT_EQ(latest->at("data").at("seq"), 20);
  EXPECT_EQ(resumed->next_json()->at("type"), "resumed");
}

TEST(History, NoGapAndNoDuplicateAcrossReconnectsUnderASteadyStream) {
  // A backend sends 1..N to alice without pause while alice's client drops
  // its connection every few notifications and resumes: the client ends up
  // with every one exactly once, in order.
  constexpr int kTotal = 1500;
  TestServer server({"--history-size", "2000"});
  std::jthread backend([&] {
    auto stub = server.stub();
    for (int i = 1; i <= kTotal; ++i) send_seq(*stub, "alice", i);
  });
  std::vector<int> got;
  int connections = 0;
  receive_while_reconnecting([&](int) { return server.ws_port(); }, "alice", kTotal, 37, 500, got, connections);
  backend.join();  // a jthread: also joined if an assertion returns early
  ASSERT_EQ(static_cast<int>(got.size()), kTotal);
  for (int i = 0; i < kTotal; ++i) ASSERT_EQ(got[i], i + 1);
  std::printf("history seam: %d notifications over %d connections, none lost or repeated\n", kTotal, connections);
}

TEST(History, SizeZeroTurnsHistoryOff) {
  TestServer server({"--history-size", "0"});
  auto client = WsClient::connect(server.ws_port(), "/ws?user=alice&resume=1");
  auto welcome = client->next_json();
  ASSERT_TRUE(welcome);
  EXPECT_FALSE(welcome->as_object().contains("streams"));
  notify(server, {"alice"}, "n", "null");
  auto frame = client->next_json();
  ASSERT_TRUE(frame) << "no hold without history";
  EXPECT_FALSE(frame->as_object().contains("offset"));
  client->send(resume_message({{"user:alice", at("e", 1)}}));
  auto failed = client->next_json();
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->at("type"), "resume_failed");
  EXPECT_EQ(failed->at("reason"), "no_history");
}

}  // namespace
}  // namespace notify::testing
