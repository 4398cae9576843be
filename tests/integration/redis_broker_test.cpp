// Several gateways acting as one through a real Redis (redis-server started
// on a free loopback port): every admin call behaves the same whichever
// replica receives it, and Redis going away, slowing down or carrying junk
// is survived.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "tests/support/consumer.hpp"
#include "tests/support/redis_process.hpp"
#include "tests/support/tcp_proxy.hpp"
#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> redis_flags(const std::string& urls) { return {"--redis-url", urls, "--presence-ttl", "3"}; }

// Connections of `user` across replicas, as `server` answers GetPresence;
// -1 if the call failed.
int presence(TestServer& server, const std::string& user) {
  grpc::Status status;
  const auto connections = get_presence(server, {user}, &status);
  if (!status.ok()) return -1;
  return static_cast<int>(connections.at(user));
}

grpc::Status try_notify(TestServer& server, const std::string& user, const std::string& data,
                        v1::NotifyResponse* resp) {
  v1::NotifyRequest req;
  req.add_user_ids(user);
  req.mutable_notification()->set_event("n");
  req.mutable_notification()->set_data_json(data);
  grpc::ClientContext ctx;
  set_deadline(ctx);
  return server.stub()->Notify(&ctx, req, resp);
}

std::string data_of(const boost::json::value& frame) { return boost::json::serialize(frame.at("data")); }

class RedisBroker : public ::testing::Test {
 protected:
  void start_replicas(std::size_t n, const std::string& urls) {
    for (std::size_t i = 0; i < n; ++i) replicas_.push_back(std::make_unique<TestServer>(redis_flags(urls)));
  }
  TestServer& replica(std::size_t i) { return *replicas_[i]; }
  // Waits until every replica's presence shows `user` with `count` connections.
  void await_presence(const std::string& user, int count) {
    for (auto& r : replicas_) {
      ASSERT_TRUE(eventually([&] { return presence(*r, user) == count; }, 5s))
          << user << " never showed " << count << " connections (last: " << presence(*r, user) << ")";
    }
  }

  RedisProcess redis_;
  std::vector<std::unique_ptr<TestServer>> replicas_;
};

TEST_F(RedisBroker, NotifyThroughOneReplicaReachesEveryConnectionOnEveryReplicaOnceAndInOrder) {
  start_replicas(3, redis_.url());
  auto alice_b = connect_user(replica(1), "alice");
  auto alice_c = connect_user(replica(2), "alice");
  auto bob_a = connect_user(replica(0), "bob");
  await_presence("alice", 2);
  await_presence("bob", 1);

  constexpr int kCount = 40;
  for (int i = 0; i < kCount; ++i) {
    v1::NotifyResponse resp;
    ASSERT_TRUE(try_notify(replica(i % 3), "alice", std::to_string(i), &resp).ok());
    EXPECT_EQ(resp.delivered_connections(), 2u) << "counted from presence on every replica";
  }
  for (auto* client : {alice_b.get(), alice_c.get()}) {
    for (int i = 0; i < kCount; ++i) {
      auto frame = client->next_of_type("notification");
      ASSERT_TRUE(frame) << "notification " << i << " missing";
      EXPECT_EQ(data_of(*frame), std::to_string(i)) << "out of order or duplicated";
    }
    EXPECT_FALSE(client->next(300ms)) << "a notification arrived twice";
  }
  EXPECT_FALSE(bob_a->next(100ms)) << "bob got alice's notifications";

  // Several users in one call, on different replicas.
  v1::NotifyResponse resp = notify(replica(2), {"alice", "bob", "nobody"}, "n", "\"all\"");
  EXPECT_EQ(resp.delivered_connections(), 3u);
  for (auto* client : {alice_b.get(), alice_c.get(), bob_a.get()}) {
    auto frame = client->next_of_type("notification");
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->at("id").as_string(), resp.id());
  }
  EXPECT_GE(replica(0).metric("notify_broker_messages_published_total"), kCount / 3.0);
  EXPECT_EQ(replica(0).metric("notify_broker_up{shard=\"0\"}"), 1);
  EXPECT_EQ(resp.offline_user_ids_size(), 1);

  // A collapse key travels through Redis to the other replicas' clients.
  v1::NotifyRequest keyed;
  keyed.add_user_ids("alice");
  keyed.mutable_notification()->set_event("count");
  keyed.mutable_notification()->set_collapse_key("views:42");
  v1::NotifyResponse keyed_resp;
  grpc::ClientContext ctx;
  set_deadline(ctx);
  ASSERT_TRUE(replica(0).stub()->Notify(&ctx, keyed, &keyed_resp).ok());
  for (auto* client : {alice_b.get(), alice_c.get()}) {
    auto frame = client->next_of_type("notification");
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->at("collapse_key"), "views:42");
  }
}

// NotifyStream on top of the broker: each result counts the connections on
// every replica, and the notifications arrive in the stream's order.
TEST_F(RedisBroker, NotifyStreamThroughOneReplicaReachesTheOthersInOrder) {
  start_replicas(2, redis_.url());
  auto alice = connect_user(replica(1), "alice");
  await_presence("alice", 1);
  grpc::ClientContext context;
  set_deadline(context, 10s);
  auto stream = replica(0).stub()->NotifyStream(&context);
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) {
    v1::NotifyRequest req;
    req.add_user_ids("alice");
    req.mutable_notification()->set_event("n");
    req.mutable_notification()->set_data_json(std::to_string(i));
    ASSERT_TRUE(stream->Write(req));
  }
  ASSERT_TRUE(stream->WritesDone());
  std::map<std::uint64_t, v1::NotifyResult> results;
  v1::NotifyStreamResponse response;
  while (stream->Read(&response)) {
    for (const auto& r : response.results()) results.emplace(r.sequence(), r);
  }
  const grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kCount));
  for (const auto& [sequence, r] : results) {
    EXPECT_EQ(r.code(), 0) << sequence << ": " << r.error_message();
    EXPECT_EQ(r.delivered_connections(), 1u) << sequence;
  }
  for (int i = 0; i < kCount; ++i) {
    auto frame = alice->next_of_type("notification");
    ASSERT_TRUE(frame) << "notification " << i << " missing";
    EXPECT_EQ(data_of(*frame), std::to_string(i));
  }
}

TEST_F(RedisBroker, BroadcastsReachTopicSubscribersAndEveryoneOnEveryReplica) {
  start_replicas(3, redis_.url());
  std::vector<std::unique_ptr<WsClient>> subscribers;
  for (std::size_t i = 0; i < 3; ++i) {
    auto c = connect_user(replica(i), "sub" + std::to_string(i));
    c->send(R"({"type":"subscribe","topic":"post:42"})");
    ASSERT_TRUE(c->next_of_type("subscribed"));
    subscribers.push_back(std::move(c));
  }
  auto other = connect_user(replica(1), "other");
  for (std::size_t i = 0; i < 3; ++i) await_presence("sub" + std::to_string(i), 1);
  await_presence("other", 1);

  // The topic's subscriptions reach Redis after the subscribe reply; a
  // broadcast answers how many it counted, so wait until all three count.
  ASSERT_TRUE(eventually([&] { return broadcast(replica(0), "post:42", "warmup", "0").delivered_connections() == 3; }));
  for (auto& c : subscribers) {
    while (auto f = c->next_of_type("notification", 300ms)) {
      if (f->at("event") != "warmup") FAIL() << "unexpected " << boost::json::serialize(*f);
    }
  }
  auto topic = broadcast(replica(2), "post:42", "comment", "\"hi\"");
  EXPECT_EQ(topic.delivered_connections(), 3u);
  for (auto& c : subscribers) {
    auto f = c->next_of_type("notification");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->at("topic"), "post:42");
    EXPECT_EQ(f->at("id").as_string(), topic.id());
  }
  EXPECT_FALSE(other->next(200ms)) << "a topic broadcast reached a connection that did not subscribe";

  auto all = broadcast(replica(1), "", "maintenance", "null");
  EXPECT_EQ(all.delivered_connections(), 4u);
  for (auto* c : {subscribers[0].get(), subscribers[1].get(), subscribers[2].get(), other.get()}) {
    auto f = c->next_of_type("notification");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->at("event"), "maintenance");
    EXPECT_FALSE(c->next(100ms)) << "broadcast delivered twice";
  }
}

TEST_F(RedisBroker, DisconnectAndPresenceSpanEveryReplica) {
  start_replicas(3, redis_.url());
  auto a1 = connect_user(replica(1), "alice");
  auto a2 = connect_user(replica(2), "alice");
  auto a3 = connect_user(replica(2), "alice");
  auto bob = connect_user(replica(0), "bob");
  await_presence("alice", 3);

  EXPECT_EQ(disconnect(replica(0), {"alice"}, "account suspended").closed_connections(), 3u);
  for (auto* c : {a1.get(), a2.get(), a3.get()}) {
    auto status = c->wait_closed();
    ASSERT_TRUE(status);
    EXPECT_EQ(status->code, 4000);
    EXPECT_EQ(status->reason, "account suspended");
  }
  await_presence("alice", 0);
  EXPECT_FALSE(bob->closed());
  EXPECT_EQ(presence(replica(2), "bob"), 1);
}

TEST_F(RedisBroker, ClientMessagesFromEveryReplicaReachEveryConsumerOnce) {
  start_replicas(3, redis_.url());
  Consumer consumer_a(replica(0));
  Consumer consumer_c(replica(2));
  std::vector<std::unique_ptr<WsClient>> senders;
  for (std::size_t i = 0; i < 3; ++i) senders.push_back(connect_user(replica(i), "writer" + std::to_string(i)));
  await_presence("writer1", 1);
  // A replica learns that consumers exist elsewhere within about a second
  // (polled slowly: the client's message rate is limited).
  ASSERT_TRUE(eventually(
      [&] {
        std::this_thread::sleep_for(200ms);
        senders[1]->send(R"({"type":"message","data":"probe"})");
        auto reply = senders[1]->next_json(2s);
        return reply && reply->at("type") == "ack";
      },
      10s));
  while (consumer_a.next(300ms)) {
  }
  while (consumer_c.next(300ms)) {
  }
  for (std::size_t i = 0; i < 3; ++i) {
    senders[i]->send(R"({"type":"message","id":7,"data":{"from":)" + std::to_string(i) + "}}");
    auto ack = senders[i]->next_json();
    ASSERT_TRUE(ack);
    ASSERT_EQ(ack->at("type"), "ack") << boost::json::serialize(*ack);
  }
  for (auto* consumer : {&consumer_a, &consumer_c}) {
    std::set<std::string> users;
    for (int i = 0; i < 3; ++i) {
      auto m = consumer->next();
      ASSERT_TRUE(m) << "message " << i << " missing";
      users.insert(m->user_id());
      EXPECT_EQ(m->client_message_id(), "7");
    }
    EXPECT_EQ(users, (std::set<std::string>{"writer0", "writer1", "writer2"}));
    EXPECT_FALSE(consumer->next(300ms)) << "a client message arrived twice";
  }
}

TEST_F(RedisBroker, RedisGoneAnswersUnavailablePromptlyKeepsClientsAndRecovers) {
  start_replicas(2, redis_.url());
  auto alice = connect_user(replica(1), "alice");
  await_presence("alice", 1);

  redis_.kill();
  const auto started = std::chrono::steady_clock::now();
  v1::NotifyResponse resp;
  grpc::Status status = try_notify(replica(0), "alice", "1", &resp);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_LT(elapsed, 1500ms);
  EXPECT_NE(status.error_message().find("Redis"), std::string::npos) << status.error_message();
  EXPECT_EQ(presence(replica(0), "alice"), -1) << "presence must fail, not answer 0";

  // The WebSocket stays open and served.
  alice->send(R"({"type":"ping","id":1})");
  auto pong = alice->next_of_type("pong", 1s);
  ASSERT_TRUE(pong) << "the connection stopped being served without Redis";
  EXPECT_FALSE(alice->closed());
  ASSERT_TRUE(eventually([&] { return replica(0).metric("notify_broker_up{shard=\"0\"}") == 0; }, 2s));
  // Readiness stays up: every replica loses Redis at once, and taking them
  // all out of the Service would drop every client for nothing (the local
  // connections are still served).
  EXPECT_EQ(http_request(replica(0).ws_port(), "GET", "/readyz").status, 200);

  redis_.restart();  // empty: presence and subscriptions must be rebuilt by the replicas
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        v1::NotifyResponse r;
        return try_notify(replica(0), "alice", "2", &r).ok() && r.delivered_connections() == 1;
      },
      10s))
      << "delivery did not resume within 10 s of Redis coming back";
  std::cout << "[ figures  ] delivery resumed "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - back).count()
            << " ms after Redis came back\n";
  auto frame = alice->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_EQ(data_of(*frame), "2");
  EXPECT_GE(replica(0).metric("notify_broker_reconnects_total{shard=\"0\"}"), 1);
  EXPECT_GE(replica(0).metric("notify_broker_errors_total{op=\"publish\"}"), 1);
}

TEST_F(RedisBroker, MalformedMessagesFromRedisAreCountedAndDropped) {
  start_replicas(2, redis_.url());
  auto alice = connect_user(replica(1), "alice");
  await_presence("alice", 1);
  for (const std::string junk :
       {"{not json", R"({"v":1,"k":"n","node":"x","id":"a","event":"e","topic":"","data":"{bad","ts":1})",
        R"({"v":1,"k":"m","node":"x"})", R"({"v":9,"k":"n"})", "[]"}) {
    EXPECT_EQ(redis_.command({"PUBLISH", "notify:user:alice", junk}), "1");
  }
  ASSERT_TRUE(eventually([&] { return replica(1).metric("notify_broker_malformed_messages_total") == 5; }));
  v1::NotifyResponse resp;
  ASSERT_TRUE(try_notify(replica(0), "alice", "\"fine\"", &resp).ok());
  auto frame = alice->next_json();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("type"), "notification") << "junk reached the client: " << boost::json::serialize(*frame);
  EXPECT_EQ(data_of(*frame), "\"fine\"");
}

TEST_F(RedisBroker, TwoShardsSpreadTheChannelsAndDeliverEverything) {
  RedisProcess second;
  start_replicas(2, redis_.url() + " " + second.url());
  std::vector<std::unique_ptr<WsClient>> clients;
  constexpr int kUsers = 24;
  for (int i = 0; i < kUsers; ++i) clients.push_back(connect_user(replica(i % 2), "u" + std::to_string(i)));
  for (int i = 0; i < kUsers; ++i) await_presence("u" + std::to_string(i), 1);
  const auto channels = [](RedisProcess& r) {
    const std::string list = r.command({"PUBSUB", "CHANNELS", "notify:user:*"});
    return list.empty() ? 0 : 1 + static_cast<int>(std::count(list.begin(), list.end(), '\n'));
  };
  const int first_count = channels(redis_), second_count = channels(second);
  EXPECT_EQ(first_count + second_count, kUsers);
  EXPECT_GT(first_count, 0) << "every user channel landed on the second shard";
  EXPECT_GT(second_count, 0) << "every user channel landed on the first shard";
  for (int i = 0; i < kUsers; ++i) {
    auto resp = notify(replica((i + 1) % 2), {"u" + std::to_string(i)}, "n", std::to_string(i));
    EXPECT_EQ(resp.delivered_connections(), 1u);
  }
  for (int i = 0; i < kUsers; ++i) {
    auto frame = clients[i]->next_of_type("notification");
    ASSERT_TRUE(frame) << "u" << i;
    EXPECT_EQ(data_of(*frame), std::to_string(i));
  }
  EXPECT_EQ(broadcast(replica(0), "", "all", "1").delivered_connections(), static_cast<unsigned>(kUsers));

  // The delivery report across shards and replicas: every online user is
  // counted wherever its channel and its connection are, and the offline
  // ones come back in the order asked, whichever shard counted them.
  std::vector<std::string> asked, expected_offline;
  for (int i = 0; i < kUsers; ++i) {
    asked.push_back("u" + std::to_string(i));
    if (i % 4 == 0) {
      asked.push_back("off" + std::to_string(i));
      expected_offline.push_back("off" + std::to_string(i));
    }
  }
  const auto resp = notify(replica(0), asked, "n", "1");
  EXPECT_EQ(resp.delivered_connections(), static_cast<unsigned>(kUsers));
  EXPECT_EQ(std::vector<std::string>(resp.offline_user_ids().begin(), resp.offline_user_ids().end()), expected_offline);
}

// A replica subscribes to a user's or a topic's channel only while one of
// its own connections needs it, and leaves it with the last one.
TEST_F(RedisBroker, EachReplicaSubscribesOnlyToWhatItsOwnConnectionsNeed) {
  start_replicas(2, redis_.url());
  const auto subscribers = [&](const std::string& channel) {
    const std::string reply = redis_.command({"PUBSUB", "NUMSUB", channel});  // "<channel>\n<count>"
    return std::stoi(reply.substr(reply.find('\n') + 1));
  };
  const double idle = replica(0).metric("notify_broker_subscriptions");
  {
    auto alice = connect_user(replica(1), "alice");
    auto alice_again = connect_user(replica(1), "alice");
    await_presence("alice", 2);
    EXPECT_EQ(subscribers("notify:user:alice"), 1) << "one subscription for alice's two connections, on replica 1 only";
    alice->send(R"({"type":"subscribe","topic":"post:7","id":1})");
    ASSERT_TRUE(alice->next_of_type("subscribed"));
    ASSERT_TRUE(eventually([&] { return subscribers("notify:topic:post:7") == 1; }));
    EXPECT_EQ(subscribers("notify:all"), 1) << "broadcasts to everyone: only replica 1 has someone to give them to";
    EXPECT_EQ(replica(0).metric("notify_broker_subscriptions"), idle) << "replica 0 holds none of alice's connections";
    EXPECT_EQ(replica(1).metric("notify_broker_subscriptions"), idle + 3);  // alice, post:7, everyone
    alice.reset();  // alice's second connection still needs her channel, not the topic
    ASSERT_TRUE(eventually([&] { return subscribers("notify:topic:post:7") == 0; }));
    EXPECT_EQ(subscribers("notify:user:alice"), 1);
  }
  ASSERT_TRUE(eventually([&] { return subscribers("notify:user:alice") == 0; }))
      << "replica 1 kept alice's channel after her last connection left";
  EXPECT_TRUE(eventually([&] { return subscribers("notify:all") == 0; }));
  EXPECT_EQ(replica(1).metric("notify_broker_subscriptions"), idle);
}

// A host name instead of an address: looked up off the broker's thread, and
// every address it has is tried in turn.
TEST_F(RedisBroker, AHostNameWorksLikeAnAddress) {
  start_replicas(2, "redis://localhost:" + std::to_string(redis_.port()));
  auto alice = connect_user(replica(1), "alice");
  await_presence("alice", 1);
  EXPECT_EQ(notify(replica(0), {"alice"}, "n", "\"by name\"").delivered_connections(), 1u);
  auto frame = alice->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_EQ(data_of(*frame), "\"by name\"");
}

TEST_F(RedisBroker, ASlowRedisDoesNotDelayPingsAndCallsAnswerWithinTheTimeout) {
  start_replicas(2, redis_.url());
  auto alice = connect_user(replica(1), "alice");
  await_presence("alice", 1);
  auto sleeper = std::async(std::launch::async, [&] { return redis_.command({"DEBUG", "SLEEP", "2"}, 5s); });
  std::this_thread::sleep_for(100ms);
  auto started = std::chrono::steady_clock::now();
  alice->send(R"({"type":"ping"})");
  ASSERT_TRUE(alice->next_of_type("pong", 1s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms) << "a ping waited on Redis";
  started = std::chrono::steady_clock::now();
  v1::NotifyResponse resp;
  const grpc::Status status = try_notify(replica(0), "alice", "1", &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1500ms);
  EXPECT_EQ(sleeper.get(), "OK");
  ASSERT_TRUE(eventually(
      [&] {
        v1::NotifyResponse r;
        return try_notify(replica(0), "alice", "2", &r).ok() && r.delivered_connections() == 1;
      },
      10s));
  auto frame = alice->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_EQ(data_of(*frame), "2") << "the notification refused during the sleep was delivered anyway";
}

TEST_F(RedisBroker, AReplicaKilledWithoutGoodbyeLeavesPresenceWithinTheTtl) {
  start_replicas(1, redis_.url());
  auto args = GatewayProcess::default_args();
  for (auto& f : redis_flags(redis_.url())) args.push_back(f);
  GatewayProcess doomed(args);
  ASSERT_TRUE(doomed.wait_listening()) << doomed.output();
  auto alice = WsClient::connect(doomed.ws_port(), "/ws?user=alice");
  ASSERT_TRUE(alice);
  auto bob = connect_user(replica(0), "bob");
  await_presence("alice", 1);

  doomed.signal(SIGKILL);
  ASSERT_TRUE(doomed.wait_exit(5s));
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return presence(replica(0), "alice") == 0; }, 5s));
  const auto gone = std::chrono::steady_clock::now() - killed;
  EXPECT_LE(gone, 3500ms) << "presence outlived --presence-ttl 3";
  std::cout << "[ figures  ] a killed replica left presence after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(gone).count() << " ms (TTL 3000 ms)\n";
  EXPECT_EQ(notify(replica(0), {"bob"}, "n", "1").delivered_connections(), 1u);
  EXPECT_TRUE(bob->next_of_type("notification"));
}

}  // namespace
}  // namespace notify::testing

namespace notify::testing {
namespace {

TEST(RedisBrokerAuth, PasswordWorksAndNeverAppearsInLogsOrMetrics) {
  RedisProcess redis({"--requirepass", "s3cr3t-pw"});
  auto args = GatewayProcess::default_args();
  args.insert(args.end(),
              {"--redis-url", "redis://:s3cr3t-pw@127.0.0.1:" + std::to_string(redis.port()), "--log-level", "debug"});
  GatewayProcess good(args);
  ASSERT_TRUE(good.wait_listening()) << good.output();
  auto wrong_args = GatewayProcess::default_args();
  wrong_args.insert(wrong_args.end(), {"--redis-url", "redis://:not-the-pw@127.0.0.1:" + std::to_string(redis.port())});
  GatewayProcess wrong(wrong_args);
  ASSERT_TRUE(wrong.wait_listening()) << wrong.output();

  auto alice = WsClient::connect(good.ws_port(), "/ws?user=alice");
  ASSERT_TRUE(alice);
  ASSERT_TRUE(alice->next_of_type("welcome"));
  const auto result = [](GatewayProcess& g, std::uint32_t* delivered) {
    grpc::Status status;
    *delivered = notify(*v1::NotificationService::NewStub(grpc_channel(g.grpc_port())), {"alice"}, "n", "", &status)
                     .delivered_connections();
    return status;
  };
  std::uint32_t delivered = 0;
  ASSERT_TRUE(eventually([&] { return result(good, &delivered).ok() && delivered == 1; }));
  EXPECT_TRUE(alice->next_of_type("notification"));
  const grpc::Status refused = result(wrong, &delivered);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(eventually([&] { return wrong.output().find("WRONGPASS") != std::string::npos; }))
      << "the log should say why Redis refused: " << wrong.output();

  const std::string metrics = http_request(good.metrics_port(), "GET", "/metrics").body +
                              http_request(wrong.metrics_port(), "GET", "/metrics").body;
  for (const std::string secret : {"s3cr3t-pw", "not-the-pw"}) {
    EXPECT_EQ(good.output().find(secret), std::string::npos) << good.output();
    EXPECT_EQ(wrong.output().find(secret), std::string::npos) << wrong.output();
    EXPECT_EQ(metrics.find(secret), std::string::npos);
  }
  EXPECT_NE(good.output().find("redis://:***@127.0.0.1"), std::string::npos) << good.output();
}

}  // namespace
}  // namespace notify::testing

namespace notify::testing {
namespace {

TEST(RedisBrokerSentinel, FollowsTheNewMasterAfterAFailoverAndLosesNothingAfterIt) {
  RedisProcess master;
  RedisProcess replica({"--replicaof", "127.0.0.1", "0"});
  ASSERT_EQ(replica.command({"REPLICAOF", "127.0.0.1", std::to_string(master.port())}), "OK");
  ASSERT_TRUE(eventually([&] { return replica.command({"ROLE"}).find("connected") != std::string::npos; }, 10s))
      << replica.command({"ROLE"});
  SentinelProcess sentinel(master.port(), 1000ms);
  ASSERT_TRUE(eventually(
      [&] {
        return sentinel.command({"SENTINEL", "replicas", "mymaster"}).find(std::to_string(replica.port())) !=
               std::string::npos;
      },
      10s))
      << "the Sentinel never discovered the replica";
  const std::string url = "redis-sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/mymaster";
  TestServer a(redis_flags(url));
  TestServer b(redis_flags(url));
  auto alice = connect_user(b, "alice");
  ASSERT_TRUE(eventually([&] { return presence(a, "alice") == 1; }, 5s));
  EXPECT_EQ(notify(a, {"alice"}, "n", "\"before\"").delivered_connections(), 1u);
  ASSERT_TRUE(alice->next_of_type("notification"));

  master.kill();
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        v1::NotifyResponse r;
        return try_notify(a, "alice", "\"probe\"", &r).ok() && r.delivered_connections() == 1;
      },
      20s))
      << "delivery did not resume on the new master";
  std::cout << "[ figures  ] delivery resumed "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed).count()
            << " ms after the master was killed (Sentinel down-after 1000 ms)\n";
  EXPECT_NE(replica.command({"ROLE"}).find("master"), std::string::npos) << "the replica was not promoted";
  // Each replica finds the new master on its own: b too before it is used.
  ASSERT_TRUE(eventually(
      [&] {
        v1::NotifyResponse r;
        return try_notify(b, "alice", "\"probe\"", &r).ok() && r.delivered_connections() == 1;
      },
      20s))
      << "delivery did not resume through the second replica";
  // Everything published after recovery arrives, in order, once.
  while (alice->next_of_type("notification", 300ms)) {
  }
  for (int i = 0; i < 20; ++i) {
    v1::NotifyResponse r;
    ASSERT_TRUE(try_notify(i % 2 ? a : b, "alice", std::to_string(i), &r).ok());
  }
  for (int i = 0; i < 20; ++i) {
    auto frame = alice->next_of_type("notification");
    ASSERT_TRUE(frame) << i;
    EXPECT_EQ(data_of(*frame), std::to_string(i));
  }
  EXPECT_FALSE(alice->next(300ms));
}

}  // namespace
}  // namespace notify::testing

namespace notify::testing {
namespace {

// A master that stops answering without closing anything (SIGSTOP, as behind
// a network partition): Sentinel promotes the replica, the publish
// connection times out and follows, and the pub/sub connection, silent on
// the frozen master (Centrifugo #1189), must be found out by the probe.
TEST(RedisBrokerSentinel, AFrozenMasterIsLeftAndItsSilentSubscriptionsRebuilt) {
  RedisProcess master;
  RedisProcess replica({"--replicaof", "127.0.0.1", std::to_string(master.port())});
  ASSERT_TRUE(eventually([&] { return replica.command({"ROLE"}).find("connected") != std::string::npos; }, 10s));
  SentinelProcess sentinel(master.port(), 1000ms);
  ASSERT_TRUE(eventually(
      [&] {
        return sentinel.command({"SENTINEL", "replicas", "mymaster"}).find(std::to_string(replica.port())) !=
               std::string::npos;
      },
      10s));
  const std::string url = "redis-sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/mymaster";
  TestServer a(redis_flags(url));
  TestServer b(redis_flags(url));
  auto alice = connect_user(b, "alice");
  ASSERT_TRUE(eventually([&] { return presence(a, "alice") == 1; }, 5s));

  master.freeze();
  ASSERT_TRUE(eventually([&] { return replica.command({"ROLE"}).rfind("master", 0) == 0; }, 20s))
      << "Sentinel did not promote the replica";
  const auto switched = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        v1::NotifyResponse r;
        if (!try_notify(a, "alice", "\"after\"", &r).ok()) return false;
        return alice->next_of_type("notification", 200ms).has_value();
      },
      20s))
      << "notifications never reached alice again after the failover";
  std::cout
      << "[ figures  ] delivery resumed "
      << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - switched).count()
      << " ms after the promotion (old master frozen)\n";
  // B's pub/sub connection was left on the frozen master: rebuilt either by
  // the probe (its message never came back) or because B asked Sentinel and
  // followed the new master first, whichever the timing gives; the probe alone
  // is the next test.
  EXPECT_GE(b.metric("notify_broker_probe_failures_total{shard=\"0\"}") +
                b.metric("notify_broker_reconnects_total{shard=\"0\"}"),
            1)
      << "alice's subscription came back without B rebuilding its connections";
  master.thaw();
}

// The probe alone: Redis is healthy, B's command connection too, but its
// pub/sub connection stays open and receives nothing (a proxy drops what
// Redis sends on it). Nothing but the probe can tell; B rebuilds the
// connection and alice gets notifications again.
TEST(RedisBrokerProbe, ASilentSubscriptionIsFoundAndRebuilt) {
  RedisProcess redis;
  TcpProxy proxy(redis.port());
  TestServer a(redis_flags(redis.url()));
  TestServer b(redis_flags(proxy.url()));
  auto alice = connect_user(b, "alice");
  ASSERT_TRUE(eventually([&] { return presence(a, "alice") == 1; }, 5s));
  v1::NotifyResponse r;
  ASSERT_TRUE(eventually([&] {
    return try_notify(a, "alice", "\"before\"", &r).ok() && alice->next_of_type("notification", 200ms).has_value();
  }));

  ASSERT_GE(proxy.mute_pubsub_connections(), 1);
  const auto muted = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        return try_notify(a, "alice", "\"after\"", &r).ok() && alice->next_of_type("notification", 200ms).has_value();
      },
      20s))
      << "alice never got notifications again: the silent subscription was not rebuilt";
  std::cout << "[ figures  ] delivery resumed "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - muted).count()
            << " ms after B's pub/sub connection went silent\n";
  EXPECT_GE(b.metric("notify_broker_probe_failures_total{shard=\"0\"}"), 1);
  EXPECT_EQ(a.metric("notify_broker_probe_failures_total{shard=\"0\"}"), 0) << "A's connections were never touched";
}

}  // namespace
}  // namespace notify::testing
