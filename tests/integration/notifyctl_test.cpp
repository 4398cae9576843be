// notifyctl, the real binary, against the real gateway on port 0: every
// subcommand, its JSON output and exit codes, API keys, TLS and mutual TLS,
// and bad input refused before any call.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/crypto_fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

namespace json = boost::json;

constexpr int kUsage = 2;
int status_exit(grpc::StatusCode code) { return 64 + static_cast<int>(code); }

std::vector<std::string> with_server(std::uint16_t grpc_port, std::vector<std::string> args) {
  args.insert(args.begin(), {"--server", "127.0.0.1:" + std::to_string(grpc_port)});
  return args;
}

// notifyctl pointed at `server` (plaintext) with `args` after the connection flags.
CommandResult ctl(std::uint16_t grpc_port, std::vector<std::string> args, const std::string& input = {},
                  const std::vector<std::string>& env = {}) {
  return run_command(NOTIFYCTL_BINARY, with_server(grpc_port, std::move(args)), input, env);
}
CommandResult ctl(TestServer& server, std::vector<std::string> args, const std::string& input = {}) {
  return ctl(server.grpc_port(), std::move(args), input);
}

// The same, left running (tail, stream).
std::unique_ptr<ChildProcess> ctl_child(TestServer& server, std::vector<std::string> args) {
  return std::make_unique<ChildProcess>(NOTIFYCTL_BINARY, with_server(server.grpc_port(), std::move(args)));
}

// Writes `count` valid Notify requests (to alice) on a stream's input.
void feed_requests(ChildProcess& stream, int count) {
  for (int i = 0; i < count; ++i)
    stream.write_stdin(R"({"user_ids":["alice"],"notification":{"event":"n"}})"
                       "\n");
}

// stdout holds exactly one JSON line: its value.
json::value one_json_line(const CommandResult& r) {
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  return json::parse(r.out);
}

std::vector<json::value> json_lines(const std::string& text) {
  std::vector<json::value> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

// The number of calls the gateway has answered, all methods and codes.
double grpc_calls(TestServer& server) {
  double total = 0;
  std::istringstream in(server.scrape());
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("notify_grpc_requests_total{", 0) == 0) total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

// ------------------------------------------------------------------ notify

TEST(Notifyctl, NotifyDeliversToTheUsersAndPrintsTheResponseAsJson) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  auto bob = connect_user(server, "bob");

  auto r = ctl(server, {"notify", "--user", "alice", "--event", "like", "--data", R"({"post":42})", "--id", "n-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"id\":\"n-1\",\"deliveredConnections\":1,\"offlineUserIds\":[]}\n");
  EXPECT_EQ(r.err, "");
  auto frame = alice->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("id"), "n-1");
  EXPECT_EQ(frame->at("event"), "like");
  EXPECT_EQ(frame->at("data"), json::parse(R"({"post":42})"));

  // Several users, repeated and comma-separated; no --id: the gateway makes
  // one; no --data: null.
  r = ctl(server, {"notify", "--user", "alice", "--user", "bob,carol", "--event", "ping"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto response = one_json_line(r);
  EXPECT_EQ(response.at("deliveredConnections"), 2);
  const std::string id(response.at("id").as_string());
  EXPECT_EQ(id.size(), 36u) << id;  // a UUIDv7
  for (auto* client : {alice.get(), bob.get()}) {
    auto note = client->next_of_type("notification");
    ASSERT_TRUE(note);
    EXPECT_EQ(note->at("id"), id.c_str());
    EXPECT_TRUE(note->at("data").is_null());
  }

  // Nobody connected: deliveredConnections is printed as 0, not left out,
  // and the offline users are listed for a fallback channel.
  r = ctl(server, {"notify", "--user", "dave,alice,erin", "--event", "like"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(one_json_line(r).at("deliveredConnections"), 1);
  EXPECT_EQ(one_json_line(r).at("offlineUserIds"), json::parse(R"(["dave","erin"])"));
}

TEST(Notifyctl, ACollapseKeyReachesTheClientAndABadOneIsAUsageError) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  auto r = ctl(server, {"notify", "--user", "alice", "--event", "count", "--data", "7", "--collapse-key", "views:42"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto frame = alice->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("collapse_key"), "views:42");

  r = ctl(server, {"broadcast", "--event", "count", "--collapse-key", "no spaces"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--collapse-key \"no spaces\" is not a collapse key"), std::string::npos) << r.err;
}

TEST(Notifyctl, ARequestTheGatewayRefusesExitsWith64PlusItsStatusCode) {
  TestServer server({"--max-ids-per-request", "2"});
  auto r = ctl(server, {"notify", "--user", "a,b,c", "--event", "like"});
  EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "notifyctl notify: INVALID_ARGUMENT: user_ids has 3 entries; the limit is 2\n");
}

TEST(Notifyctl, AGatewayThatIsNotThereIsUnavailable) {
  // A port bound but not listening: connections to it are refused, and no
  // other test can take it meanwhile.
  const int holder = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length), 0);
  auto r = ctl(ntohs(address.sin_port), {"notify", "--user", "alice", "--event", "like"});
  close(holder);
  EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::UNAVAILABLE));
  // One line: what failed and why, without gRPC's own log lines.
  EXPECT_EQ(r.err.rfind("notifyctl notify: UNAVAILABLE: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// --------------------------------------------------------------- broadcast

TEST(Notifyctl, BroadcastReachesATopicsSubscribersOrEveryone) {
  TestServer server;
  auto subscriber = connect_user(server, "alice");
  auto other = connect_user(server, "bob");
  subscriber->send(R"({"type":"subscribe","topic":"post:42"})");
  ASSERT_TRUE(subscriber->next_of_type("subscribed"));

  auto r = ctl(server, {"broadcast", "--topic", "post:42", "--event", "comment", "--data", R"("hi")", "--id", "b-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"id\":\"b-1\",\"deliveredConnections\":1}\n");
  auto frame = subscriber->next_of_type("notification");
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("topic"), "post:42");
  EXPECT_EQ(frame->at("data"), "hi");

  r = ctl(server, {"broadcast", "--event", "maintenance", "--data", "[1,2]"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(one_json_line(r).at("deliveredConnections"), 2);
  for (auto* client : {subscriber.get(), other.get()}) {
    auto note = client->next_of_type("notification");
    ASSERT_TRUE(note);
    EXPECT_EQ(note->at("event"), "maintenance");
    EXPECT_FALSE(note->as_object().contains("topic"));
  }
  // Only the two broadcasts went out to the subscriber.
  EXPECT_FALSE(subscriber->next_of_type("notification", std::chrono::milliseconds(200)));
}

// -------------------------------------------------------------- disconnect

TEST(Notifyctl, DisconnectClosesTheUsersConnectionsWithTheReason) {
  TestServer server;
  auto a1 = connect_user(server, "alice");
  auto a2 = connect_user(server, "alice");
  auto bob = connect_user(server, "bob");
  auto r = ctl(server, {"disconnect", "--user", "alice", "--reason", "account suspended"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"closedConnections\":2}\n");
  for (auto* c : {a1.get(), a2.get()}) {
    auto closed = c->wait_closed();
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4000);
    EXPECT_EQ(closed->reason, "account suspended");
  }
  EXPECT_FALSE(bob->closed());
}

// ---------------------------------------------------------------- presence

TEST(Notifyctl, PresenceCountsEveryUsersConnections) {
  TestServer server;
  auto a1 = connect_user(server, "alice");
  auto a2 = connect_user(server, "alice");
  auto r = ctl(server, {"presence", "--user", "alice", "--user", "bob"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(one_json_line(r), json::parse(R"({"connections":{"alice":2,"bob":0}})"));
}

// ------------------------------------------------------------------ health

TEST(Notifyctl, HealthExitsZeroOnlyWhenServing) {
  TestServer server;
  auto r = ctl(server, {"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"status\":\"SERVING\"}\n");
  r = ctl(server, {"health", "--service", "notify.v1.NotificationService"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"status\":\"SERVING\"}\n");
  r = ctl(server, {"health", "--service", "no.such.Service"});
  EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(r.err.rfind("notifyctl health: NOT_FOUND", 0), 0u) << r.err;
}

TEST(Notifyctl, HealthExitsOneWhileTheGatewayDrains) {
  TestServer server({"--shutdown-timeout", "30", "--close-timeout", "30"});
  // A client that reads nothing never answers the close: the drain lasts
  // until it goes away.
  WsOptions options;
  options.start_reading = false;
  auto stuck = WsClient::connect(server.ws_port(), "/ws?user=alice", options);
  std::thread shutdown([&] { server.app().shutdown(); });
  CommandResult r;
  const bool not_serving = eventually(
      [&] {
        r = ctl(server, {"health"});
        return r.exit_code != 0;
      },
      std::chrono::milliseconds(10000));
  stuck.reset();  // the drain ends
  shutdown.join();
  ASSERT_TRUE(not_serving);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "{\"status\":\"NOT_SERVING\"}\n");
}

// -------------------------------------------------------------------- tail

TEST(Notifyctl, TailPrintsWhatClientsSendAsJsonLines) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  auto tail = ctl_child(server, {"tail", "--count", "2"});
  ASSERT_TRUE(eventually([&] { return server.metric("notify_client_stream_consumers") == 1; }));
  alice->send(R"({"type":"message","id":7,"data":{"text":"hello"}})");
  alice->send(R"({"type":"message","data":"second"})");
  ASSERT_EQ(tail->wait_exit(std::chrono::milliseconds(5000)), 0) << tail->err();
  const auto lines = json_lines(tail->out());
  ASSERT_EQ(lines.size(), 2u) << tail->out();
  EXPECT_EQ(lines[0].at("userId"), "alice");
  EXPECT_EQ(json::parse(lines[0].at("dataJson").as_string()), json::parse(R"({"text":"hello"})"));
  EXPECT_EQ(lines[0].at("clientMessageId"), "7");
  EXPECT_FALSE(lines[0].at("connectionId").as_string().empty());
  EXPECT_TRUE(lines[0].at("ts").is_string());  // int64 in proto3 JSON
  EXPECT_EQ(lines[1].at("dataJson"), "\"second\"");
  EXPECT_EQ(lines[1].at("clientMessageId"), "");
}

TEST(Notifyctl, TailRunsUntilInterruptedAndThenExitsZero) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  auto tail = ctl_child(server, {"tail"});
  ASSERT_TRUE(eventually([&] { return server.metric("notify_client_stream_consumers") == 1; }));
  alice->send(R"({"type":"message","data":1})");
  ASSERT_TRUE(tail->wait_lines(1, std::chrono::milliseconds(5000)));  // printed as it arrived
  EXPECT_FALSE(tail->wait_exit(std::chrono::milliseconds(0)));
  tail->signal(SIGINT);
  EXPECT_EQ(tail->wait_exit(std::chrono::milliseconds(3000)), 0) << tail->err();
  EXPECT_TRUE(eventually([&] { return server.metric("notify_client_stream_consumers") == 0; }));
}

TEST(Notifyctl, TailEndsWithZeroWhenTheGatewayShutsDown) {
  TestServer server;
  auto tail = ctl_child(server, {"tail"});
  ASSERT_TRUE(eventually([&] { return server.metric("notify_client_stream_consumers") == 1; }));
  server.app().shutdown();
  EXPECT_EQ(tail->wait_exit(std::chrono::milliseconds(5000)), 0) << tail->err();
  EXPECT_EQ(tail->err(), "notifyctl tail: the gateway ended the stream (it is shutting down)\n");
}

// ----------------------------------------------------------------- reports

TEST(Notifyctl, ReportsPrintsTheOutcomeOfARequireAckNotification) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  auto reports = ctl_child(server, {"reports", "--count", "1"});
  ASSERT_TRUE(eventually([&] { return server.metric("notify_delivery_report_consumers") == 1; }));
  const auto sent = ctl(server, {"notify", "--user", "alice", "--event", "order", "--id", "order-17", "--require-ack",
                                 "--ack-timeout-ms", "200"});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  auto frame = alice->next_json();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("require_ack"), true);
  ASSERT_EQ(reports->wait_exit(std::chrono::milliseconds(5000)), 0) << reports->err();
  const auto lines = json_lines(reports->out());
  ASSERT_EQ(lines.size(), 1u) << reports->out();
  EXPECT_EQ(lines[0].at("notificationId"), "order-17");
  EXPECT_EQ(lines[0].at("userId"), "alice");
  EXPECT_EQ(lines[0].at("outcome"), "TIMED_OUT");  // nobody acknowledged it within 200 ms

  const auto persisted = ctl(server, {"notify", "--user", "bob", "--event", "comment", "--id", "c-1", "--persist"});
  ASSERT_EQ(persisted.exit_code, 0) << persisted.err;
  EXPECT_NE(persisted.out.find(R"("offlineUserIds":["bob"])"), std::string::npos) << persisted.out;
  auto bob = WsClient::connect(server.ws_port(), "/ws?user=bob");
  ASSERT_TRUE(bob->next_of_type("welcome"));
  auto waited = bob->next_json();
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->at("id"), "c-1");
  EXPECT_EQ(waited->at("inbox"), true);

  const auto refused = ctl(server, {"notify", "--user", "alice", "--event", "order", "--ack-timeout-ms", "200"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--ack-timeout-ms needs --require-ack"), std::string::npos) << refused.err;
}

// ------------------------------------------------------------------ stream

TEST(Notifyctl, StreamAnswersEveryLineInOrderAndDeliversTheValidOnes) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  const std::string input =
      R"({"user_ids":["alice"],"notification":{"event":"like","id":"s-1","data_json":"{\"post\":1}"}})"
      "\n"
      "\n"  // blank: skipped, no result
      "{not json\n"
      R"({"userIds":["alice"],"notification":{"event":"no spaces allowed"}})"
      "\n"
      R"({"user_ids":["alice"],"notification":{"event":"like","id":"s-5"},"extra":1})"
      "\n"
      R"({"userIds":["alice","bob"],"notification":{"event":"like","id":"s-6","dataJson":"[6]"}})"
      "\n";
  const auto file = write_temp_file("requests.jsonl", input);
  auto r = ctl(server, {"stream", "--file", file});
  EXPECT_EQ(r.exit_code, 1) << r.err;  // some requests failed
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;

  EXPECT_EQ(
      lines[0],
      json::parse(
          R"({"line":1,"sequence":0,"id":"s-1","deliveredConnections":1,"offlineUserIds":[],"code":0,"status":"OK"})"));
  // Refused before sending: no sequence.
  EXPECT_EQ(lines[1].at("line"), 3);
  EXPECT_FALSE(lines[1].as_object().contains("sequence"));
  EXPECT_EQ(lines[1].at("status"), "INVALID_ARGUMENT");
  EXPECT_EQ(std::string(lines[1].at("errorMessage").as_string()).rfind("not valid JSON", 0), 0u) << lines[1];
  // Refused by the gateway: its result.
  EXPECT_EQ(lines[2].at("line"), 4);
  EXPECT_EQ(lines[2].at("sequence"), 1);
  EXPECT_EQ(lines[2].at("code"), 3);
  EXPECT_EQ(lines[2].at("errorMessage"), "notification.event must be 1 to 64 characters from [A-Za-z0-9_.:-]");
  // An unknown field is not a NotifyRequest.
  EXPECT_EQ(lines[3].at("line"), 5);
  EXPECT_NE(std::string(lines[3].at("errorMessage").as_string()).find("not a NotifyRequest"), std::string::npos);
  EXPECT_EQ(
      lines[4],
      json::parse(
          R"({"line":6,"sequence":2,"id":"s-6","deliveredConnections":1,"offlineUserIds":["bob"],"code":0,"status":"OK"})"));

  // The valid lines reached alice, in order, and nothing else did.
  auto first = alice->next_of_type("notification");
  auto second = alice->next_of_type("notification");
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->at("id"), "s-1");
  EXPECT_EQ(second->at("id"), "s-6");
  EXPECT_EQ(second->at("data"), json::parse("[6]"));
  EXPECT_FALSE(alice->next_of_type("notification", std::chrono::milliseconds(200)));
  EXPECT_EQ(r.err, "notifyctl stream: 3 of the requests failed (see their result lines)\n");
}

TEST(Notifyctl, StreamReadsStandardInputAndExitsZeroWhenAllSucceed) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  constexpr int kRequests = 3000;  // more than the gateway's 1024-result window
  std::string input;
  for (int i = 0; i < kRequests; ++i) {
    input += R"({"user_ids":["alice"],"notification":{"event":"n","id":"m-)" + std::to_string(i) + "\"}}\n";
  }
  auto r = ctl(server, {"stream", "--file", "-"}, input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(lines[i].at("line"), i + 1);
    ASSERT_EQ(lines[i].at("id"), ("m-" + std::to_string(i)).c_str());
    ASSERT_EQ(lines[i].at("deliveredConnections"), 1);
  }
  for (int i = 0; i < kRequests; ++i) {
    auto note = alice->next_of_type("notification");
    ASSERT_TRUE(note) << i;
    ASSERT_EQ(note->at("id"), ("m-" + std::to_string(i)).c_str());
  }
}

TEST(Notifyctl, StreamSaysHowFarItGotWhenTheGatewayShutsDown) {
  TestServer server;
  auto stream = ctl_child(server, {"stream", "--file", "-"});
  feed_requests(*stream, 5);
  ASSERT_TRUE(stream->wait_lines(5, std::chrono::milliseconds(5000))) << stream->out() << stream->err();
  // Standard input stays open: notifyctl must not wait for more of it once
  // the call is over.
  server.app().shutdown();
  EXPECT_EQ(stream->wait_exit(std::chrono::milliseconds(5000)), status_exit(grpc::StatusCode::UNAVAILABLE))
      << stream->err();
  for (const auto& line : json_lines(stream->out())) EXPECT_EQ(line.at("code"), 0) << line;
  EXPECT_EQ(stream->err(),
            "notifyctl stream: UNAVAILABLE: server shutting down\n"
            "notifyctl stream: 5 requests sent; input read up to line 5; a request without an OK result was not "
            "handled\n");
}

TEST(Notifyctl, StreamStopsReadingAtASignalAndSaysHowFarItGot) {
  TestServer server;
  auto stream = ctl_child(server, {"stream", "--file", "-"});
  feed_requests(*stream, 3);
  ASSERT_TRUE(stream->wait_lines(3, std::chrono::milliseconds(5000))) << stream->out() << stream->err();
  stream->signal(SIGINT);
  EXPECT_EQ(stream->wait_exit(std::chrono::milliseconds(5000)), 128 + SIGINT) << stream->err();
  EXPECT_EQ(json_lines(stream->out()).size(), 3u);
  EXPECT_NE(stream->err().find("notifyctl stream: stopped by a signal\n"
                               "notifyctl stream: 3 requests sent; input read up to line 3"),
            std::string::npos)
      << stream->err();
}

TEST(Notifyctl, StreamRefusesARequestAboveTheGatewaysMessageLimitAndGoesOn) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  // 5 MiB of data: above gRPC's 4 MiB message limit, which would end the
  // whole call; notifyctl refuses it alone.
  const std::string big = "\"" + std::string(5 << 20, 'x') + "\"";
  const std::string input = R"({"user_ids":["alice"],"notification":{"event":"big","data_json":)" +
                            json::serialize(json::value(big)) + "}}\n" +
                            R"({"user_ids":["alice"],"notification":{"event":"small","id":"after"}})"
                            "\n";
  auto r = ctl(server, {"stream", "--file", write_temp_file("big.jsonl", input)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out.substr(0, 2000);
  EXPECT_EQ(lines[0].at("line"), 1);
  EXPECT_FALSE(lines[0].as_object().contains("sequence"));
  EXPECT_NE(std::string(lines[0].at("errorMessage").as_string()).find("--max-request-bytes 4194304"), std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[1].at("status"), "OK");
  auto note = alice->next_of_type("notification");
  ASSERT_TRUE(note);
  EXPECT_EQ(note->at("id"), "after");
}

// ------------------------------------------------------- API keys and TLS

const std::string kFullKey = "ctl-full-key-0123456789abcdef";
const std::string kPresenceKey = "ctl-presence-key-0123456789";

TEST(Notifyctl, SendsTheApiKeyFromItsFileOrTheEnvironment) {
  TestServer server({"--admin-api-keys-file", write_temp_file("keys", kFullKey + "\n" + kPresenceKey + " presence\n")});
  const std::vector<std::string> presence = {"presence", "--user", "alice"};

  auto r = ctl(server, presence);
  EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_EQ(r.err.rfind("notifyctl presence: UNAUTHENTICATED: ", 0), 0u) << r.err;

  // The key is the first word of the first line that isn't a comment, so a
  // line of the gateway's key file works as it is.
  const auto key_file = write_temp_file("key", "# the backend's key\n" + kPresenceKey + " presence\n");
  auto args = presence;
  args.insert(args.begin(), {"--api-key-file", key_file});
  r = ctl(server, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"connections\":{\"alice\":0}}\n");

  r = ctl(server.grpc_port(), presence, {}, {"NOTIFY_API_KEY_FILE=" + key_file});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // That key lacks the notify scope; the full one has it.
  r = ctl(server.grpc_port(), {"notify", "--user", "alice", "--event", "like"}, {},
          {"NOTIFY_API_KEY_FILE=" + key_file});
  EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::PERMISSION_DENIED)) << r.err;
  r = ctl(server, {"notify", "--user", "alice", "--event", "like", "--api-key-file", write_temp_file("k", kFullKey)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

std::vector<std::string> admin_tls_flags() {
  const auto& pki = test_pki();
  return {"--admin-tls-cert", write_temp_file("admin.crt", pki.server_cert_pem), "--admin-tls-key",
          write_temp_file("admin.key", pki.server_key_pem)};
}

TEST(Notifyctl, TalksTlsToAGatewayWhoseCertificateItTrusts) {
  const auto& pki = test_pki();
  TestServer server(admin_tls_flags());
  const auto ca = write_temp_file("ca.crt", pki.ca_cert_pem);
  const auto rogue_ca = write_temp_file("rogue.crt", pki.rogue_cert_pem);

  // The server certificate names localhost and 127.0.0.1.
  auto r = ctl(server, {"--ca-file", ca, "health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = ctl(server, {"--ca-file", ca, "--tls-server-name", "localhost", "notify", "--user", "a", "--event", "e"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = ctl(server.grpc_port(), {"health"}, {}, {"NOTIFY_CA_FILE=" + ca});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // Plaintext, a CA that did not sign it, or a name it doesn't carry: no connection.
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"health"},
                                             {"--ca-file", rogue_ca, "health"},
                                             {"--ca-file", ca, "--tls-server-name", "gateway.example", "health"}}) {
    r = ctl(server, args);
    EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::UNAVAILABLE)) << args[0] << ": " << r.err;
  }
}

TEST(Notifyctl, NotifyTlsTurnsTlsOn) {
  TestServer plaintext;
  auto r = ctl(plaintext.grpc_port(), {"health"}, {}, {"NOTIFY_TLS=true"});
  EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::UNAVAILABLE)) << r.err;
  r = ctl(plaintext.grpc_port(), {"health"}, {}, {"NOTIFY_TLS=false"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(Notifyctl, PresentsItsClientCertificateForMutualTls) {
  const auto& pki = test_pki();
  auto flags = admin_tls_flags();
  flags.insert(flags.end(), {"--admin-client-ca", write_temp_file("client-ca.crt", pki.ca_cert_pem)});
  TestServer server(flags);
  const auto ca = write_temp_file("ca.crt", pki.ca_cert_pem);
  const auto cert = write_temp_file("client.crt", pki.client_cert_pem);
  const auto key = write_temp_file("client.key", pki.client_key_pem);

  auto r = ctl(server, {"--ca-file", ca, "--cert-file", cert, "--key-file", key, "presence", "--user", "a"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = ctl(server.grpc_port(), {"presence", "--user", "a"}, {},
          {"NOTIFY_CA_FILE=" + ca, "NOTIFY_CERT_FILE=" + cert, "NOTIFY_KEY_FILE=" + key});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = ctl(server, {"--ca-file", ca, "presence", "--user", "a"});
  EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::UNAVAILABLE)) << r.err;
  const auto rogue_cert = write_temp_file("rogue.crt", pki.rogue_cert_pem);
  const auto rogue_key = write_temp_file("rogue.key", pki.rogue_key_pem);
  r = ctl(server, {"--ca-file", ca, "--cert-file", rogue_cert, "--key-file", rogue_key, "presence", "--user", "a"});
  EXPECT_EQ(r.exit_code, status_exit(grpc::StatusCode::UNAVAILABLE)) << r.err;
}

// --------------------------------------------------------------- bad input

TEST(Notifyctl, RefusesBadInputBeforeAnyCall) {
  TestServer server;
  const double calls_before = grpc_calls(server);
  struct Case {
    std::vector<std::string> args;
    std::string message;  // part of stderr
  };
  const std::vector<Case> cases = {
      {{"notify", "--user", "alice", "--event", "like", "--data", "{post:42}"}, "--data is not valid JSON"},
      {{"notify", "--user", "alice", "--event", "like", "--data", "hi"}, "a string needs JSON quotes"},
      {{"notify", "--user", "alice", "--event", "like", "--data", ""}, "--data is empty"},
      {{"notify", "--user", "alice", "--event", "like", "--data", std::string(65, '[') + std::string(65, ']')},
       "--data is not valid JSON"},
      {{"notify", "--event", "like"}, "--user is required"},
      {{"notify", "--user", "alice"}, "--event is required"},
      {{"notify", "--user", "al ice", "--event", "like"}, "--user \"al ice\" is not a user id"},
      {{"notify", "--user", "alice", "--event", "no spaces"}, "--event \"no spaces\" is not an event name"},
      {{"notify", "--user", "alice", "--event", "like", "--bogus"}, "--bogus"},
      {{"broadcast", "--topic", "bad topic", "--event", "like"}, "--topic \"bad topic\" is not a topic"},
      {{"disconnect", "--user", "alice", "--reason", std::string(124, 'x')}, "--reason is 124 bytes"},
      {{"presence"}, "--user is required"},
      {{"frobnicate"}, "\"frobnicate\" is not a subcommand"},
      {{}, "A subcommand is required"},
      {{"stream", "--file", "/nonexistent/requests.jsonl"}, "--file /nonexistent/requests.jsonl: cannot open"},
      {{"stream", "--file", ::testing::TempDir()}, "is a folder, not a file"},
      {{"--api-key-file", "/nonexistent/key", "health"}, "--api-key-file /nonexistent/key: cannot open"},
      {{"--api-key-file", write_temp_file("empty-key", "# nothing\n\n"), "health"}, "no key in the file"},
      {{"--ca-file", write_temp_file("not-pem", "hello"), "health"}, "not a PEM file"},
      {{"--cert-file", write_temp_file("c.pem", test_pki().client_cert_pem), "health"},
       "--cert-file and --key-file go together"},
      {{"--timeout", "0", "health"}, "--timeout"},
  };
  for (const auto& c : cases) {
    const auto r = ctl(server, c.args);
    const std::string what = c.args.empty() ? "(no arguments)" : c.args.back();
    EXPECT_EQ(r.exit_code, kUsage) << what << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << what << ": " << r.err;
    EXPECT_EQ(r.out, "") << what;
  }
  EXPECT_EQ(grpc_calls(server), calls_before);
}

TEST(Notifyctl, HelpListsEverySubcommandAndExitsZero) {
  auto r = run_command(NOTIFYCTL_BINARY, {"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* sub : {"notify", "broadcast", "disconnect", "presence", "tail", "stream", "health"}) {
    EXPECT_NE(r.out.find(std::string("\n  ") + sub + " "), std::string::npos) << sub;
    const auto sub_help = run_command(NOTIFYCTL_BINARY, {sub, "--help"});
    EXPECT_EQ(sub_help.exit_code, 0) << sub;
    EXPECT_NE(sub_help.out.find(std::string("notifyctl ") + sub), std::string::npos) << sub_help.out;
  }
  for (const char* flag : {"--server", "--api-key-file", "--tls", "--ca-file", "--cert-file", "--key-file", "--timeout",
                           "NOTIFY_SERVER", "Exit codes"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace notify::testing
