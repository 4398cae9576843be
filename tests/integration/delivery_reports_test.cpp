// require_ack and StreamDeliveryReports on the real gateway (in process):
// every connection a notification reaches owes an ack, and the backend hears
// of each outcome (acked, timed out, connection closed) with user, id,
// connection and time.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>
#include <thread>

#include "common/ids.hpp"
#include "tests/support/consumer.hpp"
#include "tests/support/resume_helpers.hpp"
#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

using namespace std::chrono_literals;
using Outcome = v1::DeliveryReport::Outcome;

std::string str(const boost::json::value& v, const char* key) { return std::string(v.at(key).as_string()); }

// With history (frames with offsets) and without (the fan-out's fast path).
class DeliveryReportsBothWays : public ::testing::TestWithParam<bool> {};

TEST_P(DeliveryReportsBothWays, AnAckIsReportedWithUserIdConnectionAndTime) {
  TestServer server(GetParam() ? std::vector<std::string>{} : std::vector<std::string>{"--history-size", "0"});
  ReportConsumer reports(server);
  auto alice = WsClient::connect(server.ws_port(), "/ws?user=alice");
  auto welcome = alice->next_of_type("welcome");
  ASSERT_TRUE(welcome);
  notify_acked(server, {"alice"}, "n-1");
  auto frame = alice->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("require_ack"), true);
  const auto before_ack = unix_millis();
  alice->send(ack_message("n-1"));
  auto report = reports.next();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_ACKED);
  EXPECT_EQ(report->notification_id(), "n-1");
  EXPECT_EQ(report->user_id(), "alice");
  EXPECT_EQ(report->connection_id(), str(*welcome, "connection_id"));
  EXPECT_EQ(report->published_ts(), frame->at("ts").as_int64());
  EXPECT_GE(report->ts(), before_ack);
  EXPECT_LE(report->ts(), unix_millis());
  // Acknowledged once: a second ack of the same id reports nothing.
  alice->send(ack_message("n-1"));
  EXPECT_FALSE(reports.next(300ms)) << "an ack was reported twice";
  EXPECT_EQ(server.metric(R"(notify_delivery_reports_total{outcome="acked"})"), 1);
  EXPECT_EQ(server.metric(R"(notify_client_messages_total{type="ack"})"), 2);
}

INSTANTIATE_TEST_SUITE_P(History, DeliveryReportsBothWays, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "On" : "Off"; });

TEST(DeliveryReports, WithoutAnAckByTheDeadlineItIsReportedTimedOutAndTheConnectionStays) {
  TestServer server;
  ReportConsumer reports(server);
  auto alice = connect_user(server, "alice");
  notify_acked(server, {"alice"}, "n-late", 300);
  auto frame = alice->next_of_type("notification");
  ASSERT_TRUE(frame);
  auto report = reports.next(3s);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_TIMED_OUT);
  EXPECT_EQ(report->notification_id(), "n-late");
  EXPECT_GE(report->ts() - report->published_ts(), 300);
  EXPECT_LT(report->ts() - report->published_ts(), 2000);
  // Too late: the ack is ignored (no error, no second report).
  alice->send(ack_message("n-late"));
  alice->send(R"({"type":"ping","id":1})");
  auto pong = alice->next_json();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->at("type"), "pong");
  EXPECT_FALSE(reports.next(300ms));
  EXPECT_FALSE(alice->closed());
}

TEST(DeliveryReports, EveryConnectionReachedReportsItsOwnOutcome) {
  TestServer server;
  ReportConsumer reports(server);
  auto alice1 = WsClient::connect(server.ws_port(), "/ws?user=alice");
  auto alice2 = WsClient::connect(server.ws_port(), "/ws?user=alice");
  auto bob = WsClient::connect(server.ws_port(), "/ws?user=bob");
  std::map<std::string, std::string> user_of;  // connection id -> user
  for (auto* c : {alice1.get(), alice2.get(), bob.get()}) {
    auto welcome = c->next_of_type("welcome");
    ASSERT_TRUE(welcome);
    user_of[str(*welcome, "connection_id")] = str(*welcome, "user_id");
  }
  auto resp = notify_acked(server, {"alice", "bob", "carol"}, "n-3");
  EXPECT_EQ(resp.delivered_connections(), 3u);
  ASSERT_EQ(resp.offline_user_ids_size(), 1);
  EXPECT_EQ(resp.offline_user_ids(0), "carol");
  for (auto* c : {alice1.get(), alice2.get(), bob.get()}) ASSERT_TRUE(c->next_of_type("notification"));
  alice1->send(ack_message("n-3"));
  bob->send(ack_message("n-3"));
  alice2->close();  // leaves without acknowledging
  std::map<std::string, Outcome> outcomes;
  for (int i = 0; i < 3; ++i) {
    auto report = reports.next();
    ASSERT_TRUE(report) << "report " << i << " missing";
    EXPECT_EQ(report->notification_id(), "n-3");
    EXPECT_EQ(user_of[report->connection_id()], report->user_id());
    outcomes[report->connection_id()] = report->outcome();
  }
  ASSERT_EQ(outcomes.size(), 3u) << "one report per connection";
  std::multiset<Outcome> seen;
  for (auto& [connection, outcome] : outcomes) seen.insert(outcome);
  EXPECT_EQ(seen.count(Outcome::DeliveryReport_Outcome_ACKED), 2u);
  EXPECT_EQ(seen.count(Outcome::DeliveryReport_Outcome_CONNECTION_CLOSED), 1u);
  EXPECT_FALSE(reports.next(300ms));
}

TEST(DeliveryReports, AConnectionThatResumesOwesTheAckOfWhatItMissed) {
  TestServer server;
  ReportConsumer reports(server);
  std::string epoch;
  {
    auto first = WsClient::connect(server.ws_port(), "/ws?user=alice");
    auto welcome = first->next_of_type("welcome");
    ASSERT_TRUE(welcome);
    epoch = str(welcome->at("streams").at("user:alice"), "epoch");
    first->close();
  }
  ASSERT_TRUE(eventually([&] { return server.metric("notify_connections_open") == 0; }));
  auto resp = notify_acked(server, {"alice"}, "while-away");
  ASSERT_EQ(resp.offline_user_ids_size(), 1);
  auto again = WsClient::connect(server.ws_port(), "/ws?user=alice&resume=1");
  auto welcome = again->next_of_type("welcome");
  ASSERT_TRUE(welcome);
  again->send(resume_message({{"user:alice", at(epoch, 0)}}));
  auto frame = again->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("id"), "while-away");
  EXPECT_EQ(frame->at("require_ack"), true);
  ASSERT_TRUE(again->next_of_type("resumed"));
  again->send(ack_message("while-away"));
  auto report = reports.next();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_ACKED);
  EXPECT_EQ(report->connection_id(), str(*welcome, "connection_id"));
}

TEST(DeliveryReports, ShutdownReportsWhatOpenConnectionsOwedBeforeTheStreamEnds) {
  TestServer server;
  ReportConsumer reports(server);
  auto alice = connect_user(server, "alice");
  notify_acked(server, {"alice"}, "n-owed");
  ASSERT_TRUE(alice->next_of_type("notification"));
  std::thread stopper([&] { server.app().shutdown(); });
  auto report = reports.next();
  stopper.join();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_CONNECTION_CLOSED);
  EXPECT_EQ(report->notification_id(), "n-owed");
  ASSERT_TRUE(reports.wait_done(5s));
  EXPECT_TRUE(reports.status().ok()) << reports.status().error_message();
}

TEST(DeliveryReports, ANotificationReplacedByItsCollapseKeyBeforeItWasSentIsReportedReplaced) {
  TestServer server({"--send-queue-max-bytes", "33554432", "--send-queue-max-messages", "100000"});
  ReportConsumer reports(server);
  auto stub = server.stub();
  auto slow = stalled_client(server, "alice");  // later frames wait in its queue
  ASSERT_TRUE(slow);
  constexpr int kViews = 5;
  for (int i = 1; i <= kViews; ++i) {
    v1::NotifyRequest req;
    req.add_user_ids("alice");
    auto* n = req.mutable_notification();
    n->set_event("views");
    n->set_data_json(std::to_string(i));
    n->set_id("views-" + std::to_string(i));
    n->set_collapse_key("views");
    n->set_require_ack(true);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    v1::NotifyResponse resp;
    ASSERT_TRUE(stub->Notify(&ctx, req, &resp).ok());
  }
  // All but the latest were replaced while waiting.
  std::set<std::string> replaced;
  for (int i = 1; i < kViews; ++i) {
    auto report = reports.next();
    ASSERT_TRUE(report) << "report " << i;
    EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_REPLACED);
    replaced.insert(report->notification_id());
  }
  EXPECT_EQ(replaced, (std::set<std::string>{"views-1", "views-2", "views-3", "views-4"}));
  slow->start_reading();
  for (;;) {
    auto frame = slow->next_json(10s);
    ASSERT_TRUE(frame);
    if (frame->at("type") == "notification" && frame->at("event") == "views") {
      EXPECT_EQ(frame->at("id"), "views-5");
      break;
    }
  }
  slow->send(ack_message("views-5"));
  auto report = reports.next();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_ACKED);
  EXPECT_EQ(report->notification_id(), "views-5");
  EXPECT_EQ(server.metric(R"(notify_delivery_reports_total{outcome="replaced"})"), kViews - 1);
}

// Reports come in bursts (one ack frame settles many): a stream writes every
// report waiting as one batch, so a burst far above its buffer (1024) loses
// nothing.
TEST(DeliveryReports, ABurstOfReportsIsBatchedAndNoneIsLost) {
  TestServer server;
  ReportConsumer reports(server);
  constexpr int kConnections = 40;
  constexpr int kNotifications = 100;
  std::vector<std::unique_ptr<WsClient>> tabs;
  for (int i = 0; i < kConnections; ++i) tabs.push_back(connect_user(server, "alice"));
  for (int n = 0; n < kNotifications; ++n) notify_acked(server, {"alice"}, "n-" + std::to_string(n));
  std::string ids;
  for (int n = 0; n < kNotifications; ++n) ids += (n ? ",\"n-" : "\"n-") + std::to_string(n) + "\"";
  for (auto& tab : tabs) {
    for (int n = 0; n < kNotifications; ++n) ASSERT_TRUE(tab->next_of_type("notification"));
  }
  for (auto& tab : tabs) tab->send(R"({"type":"ack","ids":[)" + ids + "]}");
  std::set<std::pair<std::string, std::string>> seen;  // (connection, notification)
  for (int i = 0; i < kConnections * kNotifications; ++i) {
    auto report = reports.next();
    ASSERT_TRUE(report) << "report " << i
                        << " missing; dropped: " << server.metric("notify_delivery_reports_dropped_total")
                        << ", acked: " << server.metric(R"(notify_delivery_reports_total{outcome="acked"})");
    EXPECT_EQ(report->outcome(), Outcome::DeliveryReport_Outcome_ACKED);
    seen.emplace(report->connection_id(), report->notification_id());
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kConnections * kNotifications));
  EXPECT_EQ(server.metric("notify_delivery_reports_dropped_total"), 0);
  EXPECT_LT(reports.batches(), static_cast<std::size_t>(kConnections * kNotifications / 4))
      << "reports are written in batches";
}

TEST(DeliveryReports, NotificationsWithoutRequireAckAreNotReported) {
  TestServer server;
  ReportConsumer reports(server);
  auto alice = connect_user(server, "alice");
  notify(server, {"alice"}, "like", "1");
  auto frame = alice->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_FALSE(frame->as_object().contains("require_ack"));
  alice->close();
  EXPECT_FALSE(reports.next(500ms));
}

TEST(DeliveryReports, BadAcksAndBadRequestsAreRefusedWithAReason) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  for (const char* bad : {R"({"type":"ack","id":7})", R"({"type":"ack","ids":[]})", R"({"type":"ack","ids":["a b"]})",
                          R"({"type":"ack","ids":[1]})"}) {
    alice->send(bad);
    auto reply = alice->next_json();
    ASSERT_TRUE(reply) << bad;
    EXPECT_EQ(reply->at("type"), "error") << bad;
    EXPECT_EQ(reply->at("code"), "bad_request") << bad;
  }
  grpc::Status status;
  notify_acked(server, {"alice"}, "x", 600'001, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("ack_timeout_ms"), std::string::npos) << status.error_message();

  v1::NotifyRequest req;
  req.add_user_ids("alice");
  req.mutable_notification()->set_event("like");
  req.mutable_notification()->set_ack_timeout_ms(100);
  grpc::ClientContext ctx;
  v1::NotifyResponse resp;
  status = server.stub()->Notify(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("require_ack"), std::string::npos) << status.error_message();

  v1::BroadcastRequest b;
  b.mutable_notification()->set_event("like");
  b.mutable_notification()->set_require_ack(true);
  grpc::ClientContext bctx;
  v1::BroadcastResponse bresp;
  status = server.stub()->Broadcast(&bctx, b, &bresp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("require_ack"), std::string::npos) << status.error_message();
}

}  // namespace
}  // namespace notify::testing
