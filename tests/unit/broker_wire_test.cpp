// The Redis broker's pure parts: --redis-url parsing, the shard hash, the
// envelope replicas exchange.
#include <gtest/gtest.h>

#include <map>

#include "broker/channel_hash.hpp"
#include "broker/envelope.hpp"
#include "broker/redis_url.hpp"

namespace notify::broker {
namespace {

TEST(RedisUrl, ParsesPlainShardsWithPasswordAndDatabase) {
  auto shards = parse_redis_urls("  redis://127.0.0.1:6379   redis://:s3cret@redis-b:7000/3 redis://[::1]:6380 ");
  ASSERT_EQ(shards.size(), 3u);
  EXPECT_EQ(shards[0].address.host, "127.0.0.1");
  EXPECT_EQ(shards[0].address.port, 6379);
  EXPECT_EQ(shards[0].db, 0);
  EXPECT_TRUE(shards[0].password.empty());
  EXPECT_EQ(shards[1].address.host, "redis-b");
  EXPECT_EQ(shards[1].address.port, 7000);
  EXPECT_EQ(shards[1].password, "s3cret");
  EXPECT_EQ(shards[1].db, 3);
  EXPECT_EQ(shards[2].address.host, "::1");
  EXPECT_EQ(shards[2].address.port, 6380);
  EXPECT_EQ(parse_redis_urls("redis://cache")[0].address.port, 6379) << "the default port";
}

TEST(RedisUrl, ParsesSentinelShards) {
  auto shards = parse_redis_urls("redis-sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster");
  ASSERT_EQ(shards.size(), 1u);
  const auto& s = shards[0];
  ASSERT_TRUE(s.uses_sentinel());
  ASSERT_EQ(s.sentinels.size(), 3u);
  EXPECT_EQ(s.sentinels[0].host, "s1");
  EXPECT_EQ(s.sentinels[1].port, 26379) << "Sentinel's default port";
  EXPECT_EQ(s.sentinels[2].host, "::1");
  EXPECT_EQ(s.sentinels[2].port, 26380);
  EXPECT_EQ(s.master, "mymaster");
  EXPECT_EQ(s.password, "pw");
}

TEST(RedisUrl, DescribeNeverShowsThePassword) {
  auto shards = parse_redis_urls("redis://:hunter2@h:1/2 redis-sentinel://:hunter2@a:1,b:2/m");
  for (const auto& s : shards) EXPECT_EQ(s.describe().find("hunter2"), std::string::npos) << s.describe();
  EXPECT_EQ(shards[0].describe(), "redis://:***@h:1/2");
  EXPECT_EQ(shards[1].describe(), "redis-sentinel://:***@a:1,b:2/m");
}

TEST(RedisUrl, RefusesMalformedUrlsWithAReasonAndNoPassword) {
  const std::map<std::string, std::string> cases = {
      {"http://h:1", "expected redis://"},
      {"redis://", "no host"},
      {"redis://h:0", "port"},
      {"redis://h:99999", "port"},
      {"redis://h:12x", "port"},
      {"redis://h:1/16", "database"},
      {"redis://h:1/x", "database"},
      {"redis://user:hunter2@h:1", "ACL user names"},
      {"redis://hunter2@h:1", ":PASSWORD@"},
      {"redis://a:1,b:2", "redis-sentinel://"},
      {"redis-sentinel://a:1", "master name"},
      {"redis://h:1 redis://h:1", "twice"},
  };
  for (const auto& [url, expected] : cases) {
    try {
      parse_redis_urls(url);
      ADD_FAILURE() << url << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << url << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << "password in: " << e.what();
    }
  }
  EXPECT_TRUE(parse_redis_urls("   ").empty());
}

TEST(ChannelHash, IsStableAndSpreadsEvenly) {
  // Reference values of FNV-1a 64.
  EXPECT_EQ(fnv1a64(""), 14695981039346656037ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  std::vector<int> per_shard(4);
  for (int i = 0; i < 4000; ++i) ++per_shard[shard_of("notify:user:u" + std::to_string(i), 4)];
  for (int n : per_shard) EXPECT_NEAR(n, 1000, 150);
  EXPECT_EQ(shard_of("anything", 1), 0u);
}

TEST(ChannelHash, AddingAShardMovesOnlyItsShare) {
  int moved = 0;
  constexpr int kChannels = 5000;
  for (int i = 0; i < kChannels; ++i) {
    const std::string c = "notify:topic:t" + std::to_string(i);
    const auto before = shard_of(c, 3), after = shard_of(c, 4);
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, 3u) << "a channel moved between old shards";
    }
  }
  EXPECT_NEAR(moved, kChannels / 4, kChannels / 20);
}

Envelope publication() {
  Envelope e;
  e.kind = Envelope::Kind::publication;
  e.node = "node-1";
  e.publication = {.id = "n-1",
                   .event = "like",
                   .topic = "post:42",
                   .data_json = R"({"post":42,"s":"é\n"})",
                   .ts_ms = 1700000000123,
                   .collapse_key = {}};
  return e;
}

TEST(Envelope, RoundTripsEveryKind) {
  std::string why;
  auto p = decode(encode(publication()), 1024, why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(p->kind, Envelope::Kind::publication);
  EXPECT_EQ(p->node, "node-1");
  EXPECT_EQ(p->publication.id, "n-1");
  EXPECT_EQ(p->publication.event, "like");
  EXPECT_EQ(p->publication.topic, "post:42");
  EXPECT_EQ(p->publication.data_json, R"({"post":42,"s":"é\n"})") << "data must travel byte for byte";
  EXPECT_EQ(p->publication.ts_ms, 1700000000123);
  EXPECT_EQ(p->publication.collapse_key, "");

  Envelope keyed = publication();
  keyed.publication.collapse_key = "views:42";
  EXPECT_NE(encode(keyed).find("\"ck\":\"views:42\""), std::string::npos);
  EXPECT_EQ(encode(publication()).find("\"ck\""), std::string::npos) << "absent unless set, for older replicas";
  auto k = decode(encode(keyed), 1024, why);
  ASSERT_TRUE(k) << why;
  EXPECT_EQ(k->publication.collapse_key, "views:42");

  Envelope d{.kind = Envelope::Kind::disconnect,
             .node = "n",
             .publication = {},
             .reason = "bye",
             .message = {},
             .report = {},
             .unread = {},
             .probe = 0,
             .position = {}};
  auto dd = decode(encode(d), 1024, why);
  ASSERT_TRUE(dd) << why;
  EXPECT_EQ(dd->reason, "bye");

  Envelope m{.kind = Envelope::Kind::client_message,
             .node = "n",
             .publication = {},
             .reason = {},
             .message = {.id = "m-1",
                         .user_id = "alice",
                         .connection_id = "c-1",
                         .data_json = "[1]",
                         .client_message_id = "7",
                         .ts_ms = 5},
             .report = {},
             .unread = {},
             .probe = 0,
             .position = {}};
  auto mm = decode(encode(m), 1024, why);
  ASSERT_TRUE(mm) << why;
  EXPECT_EQ(mm->message.user_id, "alice");
  EXPECT_EQ(mm->message.data_json, "[1]");
  EXPECT_EQ(mm->message.client_message_id, "7");

  Envelope probe{.kind = Envelope::Kind::probe,
                 .node = "n",
                 .publication = {},
                 .reason = {},
                 .message = {},
                 .report = {},
                 .unread = {},
                 .probe = 42,
                 .position = {}};
  auto pp = decode(encode(probe), 1024, why);
  ASSERT_TRUE(pp) << why;
  EXPECT_EQ(pp->probe, 42u);

  Envelope r{.kind = Envelope::Kind::report,
             .node = "n",
             .publication = {},
             .reason = {},
             .message = {},
             .report = {.notification_id = "n-1",
                        .user_id = "alice",
                        .connection_id = "c-1",
                        .outcome = gateway::DeliveryReport::Outcome::timed_out,
                        .ts_ms = 9,
                        .published_ts_ms = 7},
             .unread = {},
             .probe = 0,
             .position = {}};
  auto rr = decode(encode(r), 1024, why);
  ASSERT_TRUE(rr) << why;
  EXPECT_EQ(rr->report.notification_id, "n-1");
  EXPECT_EQ(rr->report.user_id, "alice");
  EXPECT_EQ(rr->report.connection_id, "c-1");
  EXPECT_EQ(rr->report.outcome, gateway::DeliveryReport::Outcome::timed_out);
  EXPECT_EQ(rr->report.ts_ms, 9);
  EXPECT_EQ(rr->report.published_ts_ms, 7);

  Envelope acked = publication();
  acked.publication.ack_deadline_ms = 1234;
  auto aa = decode(encode(acked), 1024, why);
  ASSERT_TRUE(aa) << why;
  EXPECT_EQ(aa->publication.ack_deadline_ms, 1234);
  EXPECT_EQ(encode(publication()).find("\"ak\""), std::string::npos) << "absent unless set, for older replicas";
}

TEST(Envelope, RefusesWhatNoReplicaWouldSend) {
  auto with = [](auto change) {
    Envelope e = publication();
    change(e);
    return encode(e);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not JSON"},
      {"[]", "not a JSON object"},
      {R"({"v":2,"k":"n","node":"x"})", "version"},
      {R"({"v":1,"k":"z","node":"x"})", "unknown kind"},
      {R"({"v":1,"k":"n"})", "node"},
      {with([](Envelope& e) { e.publication.data_json = "{bad"; }), "not valid JSON"},
      {with([](Envelope& e) { e.publication.data_json = std::string(2000, '1'); }), "above the limit"},
      {with([](Envelope& e) { e.publication.event = "bad event"; }), "malformed event"},
      {with([](Envelope& e) { e.publication.topic = "bad topic"; }), "malformed topic"},
      {with([](Envelope& e) { e.publication.id = ""; }), "malformed id"},
      {with([](Envelope& e) { e.publication.collapse_key = "bad key"; }), "malformed collapse key"},
      {R"({"v":1,"k":"d","node":"x","reason":")" + std::string(200, 'r') + "\"}", "malformed reason"},
      {R"({"v":1,"k":"m","node":"x","id":"m","user":"bad user","conn":"c","data":"1","cid":"","ts":1})",
       "malformed user"},
      {R"({"v":1,"k":"n","node":"x","id":"a","event":"e","topic":"","data":"1","ts":"soon"})", "ts"},
      {R"({"v":1,"k":"n","node":"x","id":"a","event":"e","topic":"","data":"1","ts":1,"ak":-5})",
       "malformed ack deadline"},
      {R"({"v":1,"k":"r","node":"x","id":"a","user":"u","conn":"c","out":9,"ts":1,"pts":1})", "malformed outcome"},
      {R"({"v":1,"k":"r","node":"x","id":"a","user":"bad user","conn":"c","out":1,"ts":1,"pts":1})", "malformed user"},
  };
  for (const auto& [text, expected] : cases) {
    std::string why;
    EXPECT_FALSE(decode(text, 1024, why)) << text;
    EXPECT_NE(why.find(expected), std::string::npos) << text << " -> " << why;
  }
}

}  // namespace
}  // namespace notify::broker
