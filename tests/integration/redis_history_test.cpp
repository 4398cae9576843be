// History in Redis (--redis-url with history on, the default): every replica
// numbers a stream the same way, and a client resumes on any replica, with
// no gap and no duplicate, against a real redis-server.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "tests/support/consumer.hpp"
#include "tests/support/redis_process.hpp"
#include "tests/support/resume_helpers.hpp"
#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// Notify through one replica.
void send_seq(TestServer& server, const std::string& user, int seq) { testing::send_seq(*server.stub(), user, seq); }

std::uint64_t u64(const json::value& v) { return v.to_number<std::uint64_t>(); }

class RedisHistory : public ::testing::Test {
 protected:
  void start_replicas(std::size_t n, std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = {"--redis-url", redis_.url(), "--presence-ttl", "3"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    for (std::size_t i = 0; i < n; ++i) replicas_.push_back(std::make_unique<TestServer>(flags));
  }
  TestServer& replica(std::size_t i) { return *replicas_[i]; }

  RedisProcess redis_;
  std::vector<std::unique_ptr<TestServer>> replicas_;
};

TEST_F(RedisHistory, EveryReplicaNumbersAStreamTheSameWay) {
  start_replicas(3);
  auto on_a = WsClient::connect(replica(0).ws_port(), "/ws?user=alice");
  auto on_b = WsClient::connect(replica(1).ws_port(), "/ws?user=alice");
  auto welcome_a = on_a->next_json();
  auto welcome_b = on_b->next_json();
  ASSERT_TRUE(welcome_a && welcome_b);
  // The welcome waits for Redis: it still carries the position, the same on both.
  EXPECT_EQ(welcome_a->at("streams").at("user:alice"), welcome_b->at("streams").at("user:alice"));
  const std::string epoch(welcome_a->at("streams").at("user:alice").at("epoch").as_string());
  ASSERT_TRUE(eventually([&] { return get_presence(replica(2), {"alice"}).at("alice") == 2; }));
  constexpr int kCount = 30;
  for (int i = 1; i <= kCount; ++i) send_seq(replica(static_cast<std::size_t>(i) % 3), "alice", i);
  for (auto* client : {on_a.get(), on_b.get()}) {
    for (int i = 1; i <= kCount; ++i) {
      auto frame = client->next_json();
      ASSERT_TRUE(frame) << i;
      EXPECT_EQ(frame->at("stream"), "user:alice");
      EXPECT_EQ(frame->at("epoch").as_string(), epoch);
      EXPECT_EQ(u64(frame->at("offset")), static_cast<std::uint64_t>(i));
      EXPECT_EQ(frame->at("data").at("seq"), i);
    }
  }
}

TEST_F(RedisHistory, AClientResumesOnAnotherReplicaWithWhatItMissed) {
  start_replicas(3);
  auto first = WsClient::connect(replica(0).ws_port(), "/ws?user=alice");
  auto welcome = first->next_json();
  ASSERT_TRUE(welcome);
  first->send(R"({"type":"subscribe","topic":"news"})");
  auto subscribed = first->next_json();
  ASSERT_TRUE(subscribed);
  ASSERT_EQ(subscribed->at("type"), "subscribed");
  const std::string user_epoch(welcome->at("streams").at("user:alice").at("epoch").as_string());
  const std::string news_epoch(subscribed->at("epoch").as_string());
  send_seq(replica(1), "alice", 1);
  EXPECT_EQ(first->next_json()->at("offset"), 1);
  first->close();
  ASSERT_TRUE(eventually([&] { return replica(0).metric("notify_connections_open") == 0; }));

  // Sent while alice is away, through every replica.
  for (int i = 2; i <= 6; ++i) send_seq(replica(static_cast<std::size_t>(i) % 3), "alice", i);
  for (int i = 1; i <= 3; ++i) broadcast(replica(static_cast<std::size_t>(i) % 3), "news", "n", std::to_string(i));

  auto again = WsClient::connect(replica(2).ws_port(), "/ws?user=alice&resume=1");
  ASSERT_TRUE(again->next_of_type("welcome"));
  again->send(resume_message({{"user:alice", at(user_epoch, 1)}, {"topic:news", at(news_epoch, 0)}}));
  std::vector<int> seqs;
  std::vector<std::string> news;
  for (;;) {
    auto frame = again->next_json();
    ASSERT_TRUE(frame);
    if (frame->at("type") == "resumed") break;
    ASSERT_EQ(frame->at("type"), "notification") << json::serialize(*frame);
    if (frame->at("stream") == "topic:news") {
      news.push_back(json::serialize(frame->at("data")));
    } else {
      seqs.push_back(static_cast<int>(frame->at("data").at("seq").as_int64()));
    }
  }
  EXPECT_EQ(seqs, (std::vector<int>{2, 3, 4, 5, 6}));
  EXPECT_EQ(news, (std::vector<std::string>{"1", "2", "3"}));
  // Live from here, on the topic the resume subscribed to.
  broadcast(replica(0), "news", "n", "4");
  auto live = again->next_json();
  ASSERT_TRUE(live);
  EXPECT_EQ(live->at("offset"), 4);
  EXPECT_FALSE(again->next(300ms));
}

TEST_F(RedisHistory, LostHistoryIsAnEpochChangeAndTooOldIsExplicit) {
  start_replicas(2, {"--history-size", "3"});
  auto first = WsClient::connect(replica(0).ws_port(), "/ws?user=alice");
  auto welcome = first->next_json();
  ASSERT_TRUE(welcome);
  const std::string epoch(welcome->at("streams").at("user:alice").at("epoch").as_string());
  first->close();
  for (int i = 1; i <= 5; ++i) send_seq(replica(1), "alice", i);

  auto resume_and_read = [&](const std::string& position) {
    auto client = WsClient::connect(replica(1).ws_port(), "/ws?user=alice&resume=1");
    EXPECT_TRUE(client->next_of_type("welcome"));
    client->send(resume_message({{"user:alice", position}}));
    return client->next_json();
  };
  auto too_old = resume_and_read(at(epoch, 1));
  ASSERT_TRUE(too_old);
  EXPECT_EQ(too_old->at("type"), "resume_failed");
  EXPECT_EQ(too_old->at("reason"), "too_old");
  EXPECT_EQ(too_old->at("offset"), 5);
  auto ok = resume_and_read(at(epoch, 2));  // 3, 4, 5 are kept
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->at("offset"), 3);

  // History is tied to the Redis process that wrote it (its run_id): another
  // generation (a failover, a restart from a snapshot) means a new epoch.
  const std::string info = redis_.command({"INFO", "server"});
  const auto at_id = info.find("run_id:");
  ASSERT_NE(at_id, std::string::npos);
  EXPECT_EQ(redis_.command({"GET", "notify:gen"}), info.substr(at_id + 7, 40));
  redis_.command({"SET", "notify:gen", "another-redis-process"});
  auto other_generation = resume_and_read(at(epoch, 5));
  ASSERT_TRUE(other_generation);
  EXPECT_EQ(other_generation->at("reason"), "epoch_changed");

  // Redis loses everything: the next resume learns it, explicitly.
  redis_.command({"FLUSHALL"});
  auto lost = resume_and_read(at(epoch, 5));
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->at("type"), "resume_failed");
  EXPECT_EQ(lost->at("reason"), "epoch_changed");
  EXPECT_NE(lost->at("epoch").as_string(), epoch);
}

TEST_F(RedisHistory, NoGapAndNoDuplicateWhileHoppingBetweenReplicasUnderASteadyStream) {
  constexpr int kTotal = 800;
  start_replicas(2, {"--history-size", "1000"});
  std::jthread backend([&] {
    for (int i = 1; i <= kTotal; ++i) send_seq(replica(static_cast<std::size_t>(i) % 2), "alice", i);
  });
  std::vector<int> got;
  int connections = 0;
  receive_while_reconnecting([&](int n) { return replica(static_cast<std::size_t>(n) % 2).ws_port(); }, "alice", kTotal,
                             23, 400, got, connections);
  backend.join();  // a jthread: also joined if an assertion returns early
  ASSERT_EQ(static_cast<int>(got.size()), kTotal);
  // Each call returned before the next was made: Redis numbered them in order.
  for (int i = 0; i < kTotal; ++i) ASSERT_EQ(got[i], i + 1);
  std::printf("redis history seam: %d notifications over %d connections on 2 replicas, none lost or repeated\n", kTotal,
              connections);
}

TEST_F(RedisHistory, WithoutRedisAResumeIsPutOffWith1013AndANewClientWorksWithoutHistory) {
  start_replicas(1, {"--redis-timeout", "0.3"});
  redis_.kill();
  auto resuming = WsClient::connect(replica(0).ws_port(), "/ws?user=alice&resume=1");
  const auto closed = resuming->wait_closed(10s);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->code, 1013) << closed->reason;
  EXPECT_EQ(resuming->frames_received(), 0u) << "no welcome: nothing it could resume from";

  auto fresh = WsClient::connect(replica(0).ws_port(), "/ws?user=bob");
  auto welcome = fresh->next_json(10s);
  ASSERT_TRUE(welcome);
  EXPECT_EQ(welcome->at("type"), "welcome");
  EXPECT_FALSE(welcome->as_object().contains("streams"));
}

// require_ack across replicas: the backend's report stream is on one
// replica, the notification goes through another, the client is on a third
// and later resumes on a fourth place; every outcome reaches the stream.
TEST_F(RedisHistory, DeliveryReportsReachAConsumerOnAnyReplica) {
  using Outcome = v1::DeliveryReport::Outcome;
  start_replicas(3);
  ReportConsumer reports(replica(0));
  auto alice = WsClient::connect(replica(1).ws_port(), "/ws?user=alice");
  auto welcome = alice->next_json();
  ASSERT_TRUE(welcome);
  const std::string connection(welcome->at("connection_id").as_string());
  const std::string epoch(welcome->at("streams").at("user:alice").at("epoch").as_string());
  ASSERT_TRUE(eventually([&] { return get_presence(replica(2), {"alice"}).at("alice") == 1; }));
  // The consumer's replica subscribes to notify:reports just after the
  // stream opens; a report published before that reaches nobody.
  std::optional<v1::DeliveryReport> report;
  std::uint64_t offset = 0;
  for (int i = 0; i < 20 && !report; ++i) {
    const std::string id = "probe-" + std::to_string(i);
    notify_acked(replica(2), {"alice"}, id);
    auto frame = alice->next_json();
    ASSERT_TRUE(frame);
    ASSERT_EQ(frame->at("require_ack"), true) << "require_ack survives the trip through Redis";
    offset = u64(frame->at("offset"));
    alice->send(ack_message(id));
    report = reports.next(500ms);
  }
  ASSERT_TRUE(report) << "no report reached the consumer on another replica";
  EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_ACKED);
  EXPECT_EQ(report->user_id(), "alice");
  EXPECT_EQ(report->connection_id(), connection);
  while (reports.next(300ms)) {
  }

  notify_acked(replica(2), {"alice"}, "unanswered", 300);
  ASSERT_TRUE(alice->next_json());
  report = reports.next(3s);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_TIMED_OUT);
  EXPECT_EQ(report->notification_id(), "unanswered");
  ++offset;

  // Sent while alice is away; she resumes on replica 0 and still owes the ack
  // (the deadline travels in history), then leaves without giving it.
  alice->close();
  ASSERT_TRUE(eventually([&] { return replica(1).metric("notify_connections_open") == 0; }));
  notify_acked(replica(2), {"alice"}, "while-away");
  auto back = WsClient::connect(replica(0).ws_port(), "/ws?user=alice&resume=1");
  auto back_welcome = back->next_json();
  ASSERT_TRUE(back_welcome);
  back->send(resume_message({{"user:alice", at(epoch, offset)}}));
  auto missed = back->next_json();
  ASSERT_TRUE(missed);
  EXPECT_EQ(missed->at("id"), "while-away");
  EXPECT_EQ(missed->at("require_ack"), true);
  back->close();
  report = reports.next();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_CONNECTION_CLOSED);
  EXPECT_EQ(report->notification_id(), "while-away");
  EXPECT_EQ(report->connection_id(), std::string(back_welcome->at("connection_id").as_string()));
  EXPECT_FALSE(reports.next(500ms)) << "a report arrived twice";
}

// The inbox in Redis: what waited for an offline user is pushed once,
// wherever they connect; the unread count is the same on every replica and
// follows mark_read on all of the user's connections.
TEST_F(RedisHistory, TheInboxIsOneAcrossReplicas) {
  start_replicas(3);
  auto stub = replica(0).stub();
  for (const char* id : {"c-1", "c-2"}) {
    auto resp = notify_persisted(*stub, {"alice"}, id);
    ASSERT_EQ(resp.offline_user_ids_size(), 1);
  }
  auto on_b = WsClient::connect(replica(1).ws_port(), "/ws?user=alice");
  ASSERT_EQ(on_b->next_json()->at("type"), "welcome");
  for (const char* id : {"c-1", "c-2"}) {
    auto n = on_b->next_json();
    ASSERT_TRUE(n);
    EXPECT_EQ(n->at("id"), id);
    EXPECT_EQ(n->at("inbox"), true);
  }
  auto count = on_b->next_json();
  ASSERT_TRUE(count);
  EXPECT_EQ(count->at("type"), "unread");
  EXPECT_EQ(count->at("count"), 2);

  // Pushed once: another connection, on another replica, gets the count only.
  auto on_c = WsClient::connect(replica(2).ws_port(), "/ws?user=alice");
  ASSERT_EQ(on_c->next_json()->at("type"), "welcome");
  count = on_c->next_json();
  ASSERT_TRUE(count);
  EXPECT_EQ(count->at("type"), "unread");
  EXPECT_EQ(count->at("count"), 2);
  ASSERT_TRUE(eventually([&] { return get_presence(replica(0), {"alice"}).at("alice") == 2; }));

  // Live while online: both connections get it, then the new count.
  auto resp = notify_persisted(*stub, {"alice"}, "c-3");
  EXPECT_EQ(resp.offline_user_ids_size(), 0);
  for (auto* c : {on_b.get(), on_c.get()}) {
    auto n = c->next_json();
    ASSERT_TRUE(n);
    EXPECT_EQ(n->at("id"), "c-3");
    auto u = c->next_json();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->at("type"), "unread");
    EXPECT_EQ(u->at("count"), 3);
  }

  on_b->send(R"({"type":"mark_read","id":9,"ids":["c-1","c-3"]})");
  auto reply = on_b->next_json();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->at("type"), "unread");
  EXPECT_EQ(reply->at("count"), 1);
  EXPECT_EQ(reply->at("id"), 9);
  auto pushed = on_c->next_json();
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->at("count"), 1);
  EXPECT_FALSE(on_b->next_json(300ms)) << "the asking connection got the push too";

  on_c->send(R"({"type":"inbox","id":1})");
  auto page = on_c->next_json();
  ASSERT_TRUE(page);
  EXPECT_EQ(page->at("type"), "inbox");
  on_c->send(R"({"type":"inbox","id":2,"before":"c-1"})");  // read meanwhile
  auto gone = on_c->next_json();
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->at("code"), "not_found");
  ASSERT_EQ(page->at("notifications").as_array().size(), 1u);
  EXPECT_EQ(page->at("notifications").at(0).at("id"), "c-2");

  // A request sent before the welcome (it waits for history) still lets
  // the push follow: erin subscribes at once and gets what waited after.
  notify_persisted(*stub, {"erin"}, "e-1");
  auto erin = WsClient::connect(replica(2).ws_port(), "/ws?user=erin");
  erin->send(R"({"type":"subscribe","topic":"news","id":1})");
  std::vector<std::string> types;
  for (int i = 0; i < 4; ++i) {
    auto f = erin->next_json();
    ASSERT_TRUE(f) << "frame " << i;
    types.emplace_back(f->at("type").as_string());
  }
  ASSERT_EQ(types[0], "welcome");
  std::sort(types.begin() + 1, types.end());  // the subscription and the push may interleave
  EXPECT_EQ(types, (std::vector<std::string>{"welcome", "notification", "subscribed", "unread"}));

  // A reconnect on the first replica: the same count.
  on_b->close();
  auto on_a = WsClient::connect(replica(0).ws_port(), "/ws?user=alice");
  ASSERT_EQ(on_a->next_json()->at("type"), "welcome");
  count = on_a->next_json();
  ASSERT_TRUE(count);
  EXPECT_EQ(count->at("type"), "unread");
  EXPECT_EQ(count->at("count"), 1);
}

}  // namespace
}  // namespace notify::testing
