// The inbox on the real gateway (in process): notifications sent with
// persist wait for a user who is offline and are pushed when they connect;
// the unread count follows every change on every connection of the user.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::vector<std::string> ids_of(const json::value& page) {
  std::vector<std::string> ids;
  for (const auto& n : page.at("notifications").as_array()) ids.emplace_back(n.at("id").as_string());
  return ids;
}

// The next frame, which must be of `type`.
json::value expect(WsClient& client, const std::string& type) {
  auto frame = client.next_json();
  EXPECT_TRUE(frame) << "no " << type << " frame";
  if (!frame) return json::value();
  EXPECT_EQ(frame->at("type"), type.c_str()) << json::serialize(*frame);
  return *frame;
}

TEST(Inbox, WhatWasPersistedForAnOfflineUserArrivesWhenTheyConnectThenTheCount) {
  TestServer server;
  auto stub = server.stub();
  for (const char* id : {"c-1", "c-2", "c-3"}) {
    auto resp = notify_persisted(*stub, {"alice"}, id);
    ASSERT_EQ(resp.offline_user_ids_size(), 1);
  }
  notify(*stub, {"alice"}, "like", "1");  // not persisted: gone
  auto alice = WsClient::connect(server.ws_port(), "/ws?user=alice");
  expect(*alice, "welcome");
  for (const char* id : {"c-1", "c-2", "c-3"}) {
    auto n = expect(*alice, "notification");
    EXPECT_EQ(n.at("id"), id);
    EXPECT_EQ(n.at("inbox"), true);
    EXPECT_EQ(n.at("data").at("id"), id);
    EXPECT_EQ(n.at("event"), "comment");
  }
  auto unread = expect(*alice, "unread");
  EXPECT_EQ(unread.at("count"), 3);
  EXPECT_FALSE(alice->next_json(300ms)) << "nothing else";
  EXPECT_EQ(server.metric("notify_inbox_pushed_total"), 3);

  // Pushed once: a new connection gets the count, not the notifications again.
  auto again = WsClient::connect(server.ws_port(), "/ws?user=alice");
  expect(*again, "welcome");
  EXPECT_EQ(expect(*again, "unread").at("count"), 3);
}

class InboxBothWays : public ::testing::TestWithParam<bool> {};

// With history (frames with offsets) and without (the fan-out's fast path).
TEST_P(InboxBothWays, TheCountFollowsNewNotificationsAndMarkReadOnEveryConnection) {
  TestServer server(GetParam() ? std::vector<std::string>{} : std::vector<std::string>{"--history-size", "0"});
  auto stub = server.stub();
  auto tab1 = WsClient::connect(server.ws_port(), "/ws?user=alice");
  auto tab2 = WsClient::connect(server.ws_port(), "/ws?user=alice");
  for (auto* tab : {tab1.get(), tab2.get()}) expect(*tab, "welcome");
  ASSERT_EQ(notify_persisted(*stub, {"alice"}, "c-1").offline_user_ids_size(), 0);
  notify_persisted(*stub, {"alice"}, "c-2");
  for (auto* tab : {tab1.get(), tab2.get()}) {
    for (int i = 1; i <= 2; ++i) {
      auto n = expect(*tab, "notification");
      EXPECT_EQ(n.at("inbox"), true);
      EXPECT_EQ(expect(*tab, "unread").at("count"), i);
    }
  }
  tab1->send(R"({"type":"mark_read","id":5,"ids":["c-1"]})");
  auto reply = expect(*tab1, "unread");
  EXPECT_EQ(reply.at("count"), 1);
  EXPECT_EQ(reply.at("id"), 5);
  auto pushed = expect(*tab2, "unread");
  EXPECT_EQ(pushed.at("count"), 1);
  EXPECT_FALSE(pushed.as_object().contains("id"));
  EXPECT_FALSE(tab1->next_json(200ms)) << "the tab that asked gets its reply only";

  tab2->send(R"({"type":"mark_read","all":true})");
  EXPECT_EQ(expect(*tab2, "unread").at("count"), 0);
  EXPECT_EQ(expect(*tab1, "unread").at("count"), 0);
  // Read: a new connection has nothing waiting, and is told nothing.
  auto later = WsClient::connect(server.ws_port(), "/ws?user=alice");
  expect(*later, "welcome");
  EXPECT_FALSE(later->next_json(300ms));
}

INSTANTIATE_TEST_SUITE_P(History, InboxBothWays, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "On" : "Off"; });

TEST(Inbox, ListingPagesNewestFirst) {
  TestServer server;
  auto stub = server.stub();
  for (int i = 1; i <= 5; ++i) notify_persisted(*stub, {"alice"}, "c-" + std::to_string(i));
  auto alice = WsClient::connect(server.ws_port(), "/ws?user=alice");
  ASSERT_TRUE(alice->next_of_type("unread"));
  alice->send(R"({"type":"inbox","id":1,"limit":2})");
  auto page = expect(*alice, "inbox");
  EXPECT_EQ(page.at("id"), 1);
  EXPECT_EQ(page.at("unread"), 5);
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{"c-5", "c-4"}));
  EXPECT_EQ(page.at("more"), true);
  alice->send(R"({"type":"inbox","limit":2,"before":"c-4"})");
  page = expect(*alice, "inbox");
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{"c-3", "c-2"}));
  alice->send(R"({"type":"inbox","limit":2,"before":"c-2"})");
  page = expect(*alice, "inbox");
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{"c-1"}));
  EXPECT_EQ(page.at("more"), false);
  alice->send(R"({"type":"inbox"})");
  EXPECT_EQ(ids_of(expect(*alice, "inbox")).size(), 5u) << "20 by default";

  // A cursor read meanwhile: an error, never a page from the newest again.
  alice->send(R"({"type":"mark_read","ids":["c-4"]})");
  expect(*alice, "unread");
  alice->send(R"({"type":"inbox","id":7,"limit":2,"before":"c-4"})");
  auto error = expect(*alice, "error");
  EXPECT_EQ(error.at("code"), "not_found");
  EXPECT_EQ(error.at("id"), 7);
}

TEST(Inbox, EntriesExpireAndTheInboxIsBounded) {
  TestServer server({"--inbox-size", "3"});
  auto stub = server.stub();
  notify_persisted(*stub, {"alice"}, "short", 1);
  for (int i = 1; i <= 5; ++i) notify_persisted(*stub, {"bob"}, "b-" + std::to_string(i));
  std::this_thread::sleep_for(1100ms);
  auto alice = WsClient::connect(server.ws_port(), "/ws?user=alice");
  expect(*alice, "welcome");
  alice->send(R"({"type":"inbox"})");
  EXPECT_EQ(expect(*alice, "inbox").at("unread"), 0) << "expired after its 1 s";
  auto bob = WsClient::connect(server.ws_port(), "/ws?user=bob");
  expect(*bob, "welcome");
  for (const char* id : {"b-3", "b-4", "b-5"}) EXPECT_EQ(expect(*bob, "notification").at("id"), id);
  EXPECT_EQ(expect(*bob, "unread").at("count"), 3) << "the oldest left first";
}

TEST(Inbox, BadRequestsAreRefusedWithAReason) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  for (const char* bad : {R"({"type":"inbox","limit":0})", R"({"type":"inbox","limit":51})",
                          R"({"type":"inbox","before":"no spaces"})", R"({"type":"mark_read"})",
                          R"({"type":"mark_read","ids":[]})", R"({"type":"mark_read","all":true,"ids":["a"]})"}) {
    alice->send(bad);
    auto reply = alice->next_json();
    ASSERT_TRUE(reply) << bad;
    EXPECT_EQ(reply->at("code"), "bad_request") << bad;
  }
  grpc::Status status;
  notify_persisted(*server.stub(), {"alice"}, "x", 30 * 86400 + 1, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("persist_ttl_seconds"), std::string::npos) << status.error_message();

  v1::BroadcastRequest b;
  b.mutable_notification()->set_event("news");
  b.mutable_notification()->set_persist(true);
  grpc::ClientContext ctx;
  v1::BroadcastResponse resp;
  status = server.stub()->Broadcast(&ctx, b, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("persist"), std::string::npos) << status.error_message();

  TestServer without({"--inbox-size", "0"});
  notify_persisted(*without.stub(), {"alice"}, "x", 0, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("--inbox-size 0"), std::string::npos) << status.error_message();
  auto bob = connect_user(without, "bob");
  bob->send(R"({"type":"inbox","id":2})");
  auto reply = bob->next_json();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->at("code"), "no_inbox");
}

}  // namespace
}  // namespace notify::testing
