// NotifyStream against the real server: a real gRPC bidirectional stream,
// real WebSocket clients receiving what it delivers.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

using namespace std::chrono_literals;

v1::NotifyRequest request(std::vector<std::string> users, const std::string& event, const std::string& data) {
  v1::NotifyRequest r;
  for (auto& u : users) r.add_user_ids(u);
  r.mutable_notification()->set_event(event);
  r.mutable_notification()->set_data_json(data);
  return r;
}

// Reads every NotifyStreamResponse until the stream ends; results by sequence.
struct Outcome {
  std::map<std::uint64_t, v1::NotifyResult> results;
  std::size_t responses = 0;
  std::size_t duplicates = 0;
  grpc::Status status;
};

Outcome read_all(grpc::ClientReaderWriter<v1::NotifyRequest, v1::NotifyStreamResponse>& stream) {
  Outcome out;
  v1::NotifyStreamResponse response;
  while (stream.Read(&response)) {
    ++out.responses;
    for (const auto& r : response.results()) {
      if (!out.results.emplace(r.sequence(), r).second) ++out.duplicates;
    }
  }
  out.status = stream.Finish();
  return out;
}

// Writes `requests`, half-closes, and reads the results.
Outcome run_stream(TestServer& server, const std::vector<v1::NotifyRequest>& requests) {
  auto stub = server.stub();
  grpc::ClientContext context;
  set_deadline(context, 20s);
  auto stream = stub->NotifyStream(&context);
  for (const auto& r : requests) EXPECT_TRUE(stream->Write(r));
  EXPECT_TRUE(stream->WritesDone());
  return read_all(*stream);
}

TEST(NotifyStream, EveryRequestGetsOneResultAndDeliveriesKeepTheRequestOrder) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  auto alice_again = connect_user(server, "alice");
  auto bob = connect_user(server, "bob");
  constexpr int kRequests = 300;
  std::vector<v1::NotifyRequest> requests;
  for (int i = 0; i < kRequests; ++i) {
    // Every third goes to nobody connected; the rest to alice.
    requests.push_back(request({i % 3 == 2 ? "nobody" : "alice"}, "like", "{\"n\":" + std::to_string(i) + "}"));
  }
  requests[7].mutable_notification()->set_id("caller-id-7");

  const Outcome out = run_stream(server, requests);
  ASSERT_TRUE(out.status.ok()) << out.status.error_message();
  EXPECT_EQ(out.duplicates, 0u);
  ASSERT_EQ(out.results.size(), static_cast<std::size_t>(kRequests));
  EXPECT_EQ(out.results.begin()->first, 0u);
  EXPECT_EQ(out.results.rbegin()->first, static_cast<std::uint64_t>(kRequests - 1));
  for (const auto& [sequence, r] : out.results) {
    SCOPED_TRACE("sequence " + std::to_string(sequence));
    EXPECT_EQ(r.code(), 0);
    EXPECT_TRUE(r.error_message().empty());
    EXPECT_EQ(r.delivered_connections(), sequence % 3 == 2 ? 0u : 2u);
    EXPECT_EQ(r.offline_user_ids_size(), sequence % 3 == 2 ? 1 : 0);
    if (r.offline_user_ids_size() == 1) {
      EXPECT_EQ(r.offline_user_ids(0), "nobody");
    }
    EXPECT_EQ(r.id().size(), sequence == 7 ? 11u : 36u);
  }
  EXPECT_EQ(out.results.at(7).id(), "caller-id-7");

  // Both of alice's connections get her notifications in request order,
  // with the ids the results reported.
  for (auto* client : {alice.get(), alice_again.get()}) {
    for (int i = 0; i < kRequests; ++i) {
      if (i % 3 == 2) continue;
      auto frame = client->next_of_type("notification");
      ASSERT_TRUE(frame.has_value()) << "notification " << i;
      EXPECT_EQ(frame->at("data").at("n").to_number<int>(), i);
      EXPECT_EQ(frame->at("id"), out.results.at(static_cast<std::uint64_t>(i)).id().c_str());
    }
  }
  EXPECT_FALSE(bob->next(200ms).has_value());
  EXPECT_EQ(server.metric("notify_notify_stream_requests_total{code=\"OK\"}"), kRequests);
  EXPECT_EQ(server.metric("notify_notifications_received_total"), kRequests);
  EXPECT_TRUE(eventually(
      [&] { return server.metric("notify_grpc_requests_total{code=\"OK\",method=\"NotifyStream\"}") == 1; }));
}

TEST(NotifyStream, AnInvalidRequestGetsItsErrorAndTheStreamGoesOn) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  std::vector<v1::NotifyRequest> requests = {
      request({"alice"}, "like", R"({"n":0})"), request({}, "like", "{}"),
      request({"alice"}, "bad event!", "{}"),   request({"alice"}, "like", "{not json"),
      request({"alice"}, "like", R"({"n":4})"),
  };
  const Outcome out = run_stream(server, requests);
  ASSERT_TRUE(out.status.ok()) << out.status.error_message();
  ASSERT_EQ(out.results.size(), 5u);
  EXPECT_EQ(out.results.at(0).code(), 0);
  EXPECT_EQ(out.results.at(4).code(), 0);
  EXPECT_EQ(out.results.at(4).delivered_connections(), 1u);
  const std::map<std::uint64_t, std::string> errors = {
      {1, "user_ids must name at least one user"},
      {2, "notification.event must be 1 to 64 characters from [A-Za-z0-9_.:-]"},
      {3, "notification.data_json is not valid JSON"},
  };
  for (const auto& [sequence, message] : errors) {
    const auto& r = out.results.at(sequence);
    EXPECT_EQ(r.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << sequence;
    EXPECT_EQ(r.error_message().rfind(message, 0), 0u) << r.error_message();
    EXPECT_TRUE(r.id().empty());
    EXPECT_EQ(r.delivered_connections(), 0u);
  }
  for (int n : {0, 4}) {
    auto frame = alice->next_of_type("notification");
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->at("data").at("n").to_number<int>(), n);
  }
  EXPECT_FALSE(alice->next(200ms).has_value());
  EXPECT_EQ(server.metric("notify_notify_stream_requests_total{code=\"OK\"}"), 2);
  EXPECT_EQ(server.metric("notify_notify_stream_requests_total{code=\"INVALID_ARGUMENT\"}"), 3);
}

TEST(NotifyStream, ASenderThatReadsNoResultsIsHeldBackAndLosesNothing) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  constexpr int kRequests = 40000;
  // A client that takes in no more than HTTP/2's initial window (64 KiB)
  // of results it doesn't read; by default gRPC would buffer them all.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = v1::NotificationService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(server.grpc_port()), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  set_deadline(context, 60s);
  auto stream = stub->NotifyStream(&context);
  // The writer runs ahead while no result is read: the server must stop
  // handling requests (its window is 1024 unwritten results) rather than
  // queue results without bound.
  std::atomic<int> written{0};
  std::thread writer([&] {
    v1::NotifyRequest r = request({"alice"}, "view", "1");
    for (int i = 0; i < kRequests; ++i) {
      if (!stream->Write(r)) break;
      written.fetch_add(1);
    }
    stream->WritesDone();
  });
  std::this_thread::sleep_for(1s);
  const double handled_while_not_reading = server.metric("notify_notify_stream_requests_total{code=\"OK\"}");
  // The server's window (1024) plus the results that fit the client's
  // 64 KiB (about 1,500). What the writer sent beyond that waits in gRPC's
  // receive buffers, under HTTP/2 flow control, not in the gateway.
  EXPECT_GE(handled_while_not_reading, 1024);
  EXPECT_LT(handled_while_not_reading, 4000);

  const Outcome out = read_all(*stream);
  writer.join();
  ASSERT_TRUE(out.status.ok()) << out.status.error_message();
  EXPECT_EQ(written.load(), kRequests);
  EXPECT_EQ(out.results.size(), static_cast<std::size_t>(kRequests));
  EXPECT_EQ(out.duplicates, 0u);
  // Results were batched: far fewer responses than results.
  EXPECT_LT(out.responses, out.results.size());
  int received = 0;
  while (received < kRequests && alice->next_of_type("notification", 3s).has_value()) ++received;
  EXPECT_EQ(received, kRequests);
  std::printf("handled while the sender read nothing: %.0f of %d; %zu responses for %zu results\n",
              handled_while_not_reading, kRequests, out.responses, out.results.size());
}

TEST(NotifyStream, ShutdownAnswersWhatWasReadThenEndsUnavailable) {
  auto server = std::make_unique<TestServer>();
  auto stub = server->stub();
  grpc::ClientContext context;
  set_deadline(context, 10s);
  auto stream = stub->NotifyStream(&context);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(stream->Write(request({"nobody"}, "like", std::to_string(i))));
  // All three answered before the shutdown begins.
  std::map<std::uint64_t, v1::NotifyResult> results;
  v1::NotifyStreamResponse response;
  while (results.size() < 3 && stream->Read(&response)) {
    for (const auto& r : response.results()) results.emplace(r.sequence(), r);
  }
  ASSERT_EQ(results.size(), 3u);
  // The stream stays open (no half-close): shutdown must end it.
  std::thread stopper([&] { server->app().shutdown(); });
  const Outcome rest = read_all(*stream);
  stopper.join();
  EXPECT_EQ(rest.status.error_code(), grpc::StatusCode::UNAVAILABLE) << rest.status.error_message();
  EXPECT_EQ(rest.status.error_message(), "server shutting down");
  EXPECT_TRUE(rest.results.empty());
  for (const auto& [sequence, r] : results) EXPECT_EQ(r.code(), 0) << sequence;
}

}  // namespace
}  // namespace notify::testing
