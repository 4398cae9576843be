// The admin API against the real server: real gRPC stubs, real WebSockets.
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>

#include <future>

#include "common/ids.hpp"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/support/process.hpp"
#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

using v1::NotificationService;

// One request/response on a fresh reflection stream, as grpcurl does per question.
grpc::reflection::v1alpha::ServerReflectionResponse ask_reflection(
    const std::shared_ptr<grpc::Channel>& channel, const grpc::reflection::v1alpha::ServerReflectionRequest& request) {
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  set_deadline(ctx);
  auto stream = reflection->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  EXPECT_TRUE(stream->Write(request));
  EXPECT_TRUE(stream->Read(&response));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  return response;
}
grpc::reflection::v1alpha::ServerReflectionResponse ask_reflection(
    TestServer& server, const grpc::reflection::v1alpha::ServerReflectionRequest& request) {
  return ask_reflection(server.channel(), request);
}

std::size_t open_on_loop(TestServer& server, std::size_t loop) {
  const auto& m = server.app().metrics().loop(loop);
  return m.connections_accepted.value() - m.connections_closed.value();
}

TEST(GrpcApi, NotifyReachesEveryConnectionOfTheUserOnEveryLoopAndNoOneElse) {
  TestServer server;
  std::vector<std::unique_ptr<WsClient>> alice;
  for (int i = 0; i < 16; ++i) alice.push_back(connect_user(server, "alice"));
  auto bob = connect_user(server, "bob");
  auto carol = connect_user(server, "carol");
  // The kernel spreads connections over both loops (SO_REUSEPORT).
  ASSERT_GT(open_on_loop(server, 0), 0u);
  ASSERT_GT(open_on_loop(server, 1), 0u);

  const auto before = unix_millis();
  const auto resp = notify(server, {"alice"}, "like", R"({"post":42,"by":"bob"})");
  EXPECT_EQ(resp.delivered_connections(), 16u);
  EXPECT_EQ(resp.id().size(), 36u);
  for (auto& c : alice) {
    auto frame = c->next_json();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->at("type"), "notification");
    EXPECT_EQ(frame->at("id"), resp.id().c_str());
    EXPECT_EQ(frame->at("event"), "like");
    EXPECT_EQ(frame->at("data"), boost::json::parse(R"({"post":42,"by":"bob"})"));
    EXPECT_FALSE(frame->as_object().contains("topic"));
    const auto ts = frame->at("ts").to_number<std::int64_t>();
    EXPECT_GE(ts, before);
    EXPECT_LE(ts, unix_millis());
  }
  EXPECT_FALSE(bob->next(std::chrono::milliseconds(200)).has_value());
  EXPECT_FALSE(carol->next(std::chrono::milliseconds(50)).has_value());
}

TEST(GrpcApi, NotifySeveralUsersDeduplicatesAndKeepsCallerId) {
  TestServer server;
  auto alice = connect_user(server, "alice");
  auto bob = connect_user(server, "bob");
  v1::NotifyRequest req;
  for (const char* u : {"alice", "bob", "alice", "nobody"}) req.add_user_ids(u);
  req.mutable_notification()->set_event("comment");
  req.mutable_notification()->set_id("comment-123");
  v1::NotifyResponse resp;
  grpc::ClientContext ctx;
  set_deadline(ctx);
  ASSERT_TRUE(server.stub()->Notify(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.id(), "comment-123");
  EXPECT_EQ(resp.delivered_connections(), 2u);
  EXPECT_EQ(std::vector<std::string>(resp.offline_user_ids().begin(), resp.offline_user_ids().end()),
            std::vector<std::string>{"nobody"});
  auto a = alice->next_json();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->at("id"), "comment-123");
  EXPECT_TRUE(a->at("data").is_null());  // empty data_json
  EXPECT_TRUE(bob->next_json().has_value());
  EXPECT_FALSE(alice->next(std::chrono::milliseconds(200)).has_value());  // once, not twice
}

TEST(GrpcApi, NotifyToAbsentUserDeliversToNoConnection) {
  TestServer server;
  const auto resp = notify(server, {"ghost"}, "like", "{}");
  EXPECT_EQ(resp.delivered_connections(), 0u);
  ASSERT_EQ(resp.offline_user_ids_size(), 1);
  EXPECT_EQ(resp.offline_user_ids(0), "ghost");
}

// The delivery report: who had no connection, in the order asked, each
// once; a user whose last connection closed is offline again.
TEST(GrpcApi, NotifyReportsTheOfflineUsersInRequestOrder) {
  TestServer server;
  auto bob = connect_user(server, "bob");
  auto carol = connect_user(server, "carol");
  const auto offline = [&](std::vector<std::string> users) {
    const auto resp = notify(server, users, "like", "{}");
    return std::vector<std::string>(resp.offline_user_ids().begin(), resp.offline_user_ids().end());
  };
  EXPECT_EQ(offline({"zed", "bob", "amy", "zed", "carol"}), (std::vector<std::string>{"zed", "amy"}));
  EXPECT_EQ(offline({"bob", "carol"}), std::vector<std::string>{});
  disconnect(server, {"carol"}, "bye");
  EXPECT_TRUE(eventually([&] { return offline({"bob", "carol"}) == std::vector<std::string>{"carol"}; }));
}

TEST(GrpcApi, BroadcastWithoutTopicReachesEveryone) {
  TestServer server;
  auto a = connect_user(server, "alice");
  auto b = connect_user(server, "bob");
  const auto resp = broadcast(server, "", "maintenance", R"("in 5 minutes")");
  EXPECT_EQ(resp.delivered_connections(), 2u);
  for (auto* c : {a.get(), b.get()}) {
    auto frame = c->next_json();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->at("event"), "maintenance");
    EXPECT_EQ(frame->at("data"), "in 5 minutes");
    EXPECT_FALSE(frame->as_object().contains("topic"));
  }
}

TEST(GrpcApi, BroadcastToTopicReachesOnlySubscribers) {
  TestServer server;
  auto a = connect_user(server, "alice");
  auto b = connect_user(server, "bob");
  a->send(R"({"type":"subscribe","topic":"post:42"})");
  ASSERT_TRUE(a->next_of_type("subscribed"));
  const auto resp = broadcast(server, "post:42", "view", R"({"views":120})");
  EXPECT_EQ(resp.delivered_connections(), 1u);
  auto frame = a->next_json();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("topic"), "post:42");
  EXPECT_EQ(frame->at("data").at("views"), 120);
  EXPECT_FALSE(b->next(std::chrono::milliseconds(200)).has_value());
}

TEST(GrpcApi, BadArgumentsAreInvalidArgumentWithAReason) {
  TestServer server({"--max-ids-per-request", "3", "--max-payload-bytes", "64", "--send-queue-max-bytes", "65536",
                     "--grpc-max-message-bytes", "131072"});
  struct Case {
    std::string name;
    std::function<void(v1::NotifyRequest&)> mutate;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"no users", [](auto& r) { r.clear_user_ids(); }, "user_ids"},
      {"bad user", [](auto& r) { r.set_user_ids(0, "no spaces"); }, "user_ids[0]"},
      {"too many",
       [](auto& r) {
         for (int i = 0; i < 3; ++i) r.add_user_ids("u" + std::to_string(i));
       },
       "limit is 3"},
      {"no notification", [](auto& r) { r.clear_notification(); }, "notification is required"},
      {"no event", [](auto& r) { r.mutable_notification()->clear_event(); }, "notification.event"},
      {"bad json", [](auto& r) { r.mutable_notification()->set_data_json("{\"a\":}"); }, "not valid JSON"},
      {"too big", [](auto& r) { r.mutable_notification()->set_data_json("\"" + std::string(100, 'x') + "\""); },
       "limit is 64"},
      {"bad id", [](auto& r) { r.mutable_notification()->set_id("white space"); }, "notification.id"},
  };
  for (const auto& c : cases) {
    v1::NotifyRequest req;
    req.add_user_ids("alice");
    req.mutable_notification()->set_event("like");
    req.mutable_notification()->set_data_json("{}");
    c.mutate(req);
    v1::NotifyResponse resp;
    grpc::ClientContext ctx;
    set_deadline(ctx);
    const auto status = server.stub()->Notify(&ctx, req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_NE(status.error_message().find(c.expect), std::string::npos) << c.name << ": " << status.error_message();
  }

  v1::BroadcastRequest breq;
  breq.set_topic("bad topic");
  breq.mutable_notification()->set_event("x");
  v1::BroadcastResponse bresp;
  grpc::ClientContext bctx;
  set_deadline(bctx);
  EXPECT_EQ(server.stub()->Broadcast(&bctx, breq, &bresp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::DisconnectRequest dreq;
  dreq.add_user_ids("alice");
  dreq.set_reason(std::string(200, 'r'));
  v1::DisconnectResponse dresp;
  grpc::ClientContext dctx;
  set_deadline(dctx);
  EXPECT_EQ(server.stub()->Disconnect(&dctx, dreq, &dresp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(server.metric("notify_grpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"Notify\"}"), 8);
  EXPECT_EQ(server.metric("notify_limit_rejections_total{limit=\"ids_per_request\"}"), 1);
  EXPECT_EQ(server.metric("notify_limit_rejections_total{limit=\"payload_size\"}"), 1);
  // The server keeps serving.
  auto alice = connect_user(server, "alice");
  EXPECT_EQ(notify(server, {"alice"}, "like", "{}").delivered_connections(), 1u);
}

TEST(GrpcApi, OversizedRequestIsRefusedByTheTransport) {
  TestServer server({"--grpc-max-message-bytes", "131072"});
  v1::NotifyRequest req;
  req.add_user_ids("alice");
  req.mutable_notification()->set_event("like");
  req.mutable_notification()->set_data_json("\"" + std::string(200'000, 'x') + "\"");
  v1::NotifyResponse resp;
  grpc::ClientContext ctx;
  set_deadline(ctx);
  EXPECT_EQ(server.stub()->Notify(&ctx, req, &resp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(GrpcApi, DisconnectClosesTheUsersConnectionsWithCode4000) {
  TestServer server;
  auto a1 = connect_user(server, "alice");
  auto a2 = connect_user(server, "alice");
  auto bob = connect_user(server, "bob");
  EXPECT_EQ(disconnect(server, {"alice"}, "account suspended").closed_connections(), 2u);
  for (auto* c : {a1.get(), a2.get()}) {
    auto closed = c->wait_closed();
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4000);
    EXPECT_EQ(closed->reason, "account suspended");
  }
  EXPECT_FALSE(bob->closed());
  EXPECT_TRUE(eventually([&] { return server.metric("notify_connections_open") == 1; }));
  EXPECT_EQ(notify(server, {"alice", "bob"}, "like", "{}").delivered_connections(), 1u);
}

TEST(GrpcApi, GetPresenceCountsLiveConnections) {
  TestServer server;
  auto a1 = connect_user(server, "alice");
  auto a2 = connect_user(server, "alice");
  auto b = connect_user(server, "bob");
  auto presence = [&] { return get_presence(server, {"alice", "bob", "carol"}); };
  EXPECT_EQ(presence(), (std::map<std::string, std::uint32_t>{{"alice", 2}, {"bob", 1}, {"carol", 0}}));
  a1->close();
  ASSERT_TRUE(a1->wait_closed());
  EXPECT_TRUE(eventually([&] { return presence().at("alice") == 1; }));
}

TEST(GrpcApi, HealthServiceReportsServing) {
  TestServer server;
  auto health = grpc::health::v1::Health::NewStub(server.channel());
  for (const char* service : {"", "notify.v1.NotificationService"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    set_deadline(ctx);
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

TEST(GrpcApi, ReflectionDescribesTheServiceForGrpcurl) {
  TestServer server;
  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("");
  const auto listed = ask_reflection(server, list);
  std::vector<std::string> names;
  for (const auto& s : listed.list_services_response().service()) names.push_back(s.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "notify.v1.NotificationService"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());

  grpc::reflection::v1alpha::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("notify.v1.NotificationService");
  const auto described = ask_reflection(server, symbol);
  ASSERT_GT(described.file_descriptor_response().file_descriptor_proto_size(), 0);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(described.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.package(), "notify.v1");
}

// grpcurl's "grpc.health.v1.Health/Check" first asks reflection for the
// file defining the service. The test binary links health stubs of its own,
// so only the real binary shows whether the gateway can describe it.
TEST(GrpcApi, TheBinaryDescribesTheHealthServiceForGrpcurl) {
  GatewayProcess gateway(GatewayProcess::default_args());
  ASSERT_TRUE(gateway.wait_listening()) << gateway.output();
  const auto channel = grpc_channel(gateway.grpc_port());
  for (const std::string symbol : {"grpc.health.v1.Health", "notify.v1.NotificationService"}) {
    grpc::reflection::v1alpha::ServerReflectionRequest ask;
    ask.set_file_containing_symbol(symbol);
    const auto answer = ask_reflection(channel, ask);
    ASSERT_GT(answer.file_descriptor_response().file_descriptor_proto_size(), 0)
        << symbol << ": " << answer.error_response().error_message();
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(answer.file_descriptor_response().file_descriptor_proto(0)));
    EXPECT_EQ(file.package() + "." + file.service(0).name(), symbol);
  }
}

// What grpcurl does with the README's command, without any compiled stub:
// fetch the schema by reflection, turn the JSON into a message of the
// method's input type, call the method by name, print the reply as JSON.
TEST(GrpcApi, ReadmeGrpcurlCommandWorksThroughReflectionAlone) {
  TestServer server;
  auto alice = connect_user(server, "alice");

  grpc::reflection::v1alpha::ServerReflectionRequest ask;
  ask.set_file_containing_symbol("notify.v1.NotificationService");
  const auto answer = ask_reflection(server, ask);

  google::protobuf::DescriptorPool pool;
  for (const auto& bytes : answer.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    ASSERT_NE(pool.BuildFile(file), nullptr) << file.name();
  }
  const auto* method = pool.FindMethodByName("notify.v1.NotificationService.Notify");
  ASSERT_NE(method, nullptr);
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> request(factory.GetPrototype(method->input_type())->New());
  const std::string readme_json =
      R"({"user_ids":["alice"],"notification":{"event":"like","data_json":"{\"post\":42,\"by\":\"bob\"}"}})";
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(readme_json, request.get()).ok());

  grpc::GenericStub generic(server.channel());
  grpc::ClientContext ctx;
  set_deadline(ctx);
  const std::string wire = request->SerializeAsString();
  grpc::Slice slice(wire);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, "/notify.v1.NotificationService/Notify", grpc::StubOptions(), &request_buffer,
                    &response_buffer, [&](grpc::Status status) { done.set_value(status); });
  const grpc::Status status = done.get_future().get();
  ASSERT_TRUE(status.ok()) << status.error_message();

  grpc::Slice reply_slice;
  ASSERT_TRUE(response_buffer.DumpToSingleSlice(&reply_slice).ok());
  std::unique_ptr<google::protobuf::Message> response(factory.GetPrototype(method->output_type())->New());
  ASSERT_TRUE(
      response->ParseFromString(std::string(reinterpret_cast<const char*>(reply_slice.begin()), reply_slice.size())));
  std::string reply_json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(*response, &reply_json).ok());
  const auto reply = boost::json::parse(reply_json);
  EXPECT_EQ(reply.at("deliveredConnections"), 1);

  auto frame = alice->next_json();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("id"), reply.at("id"));
  EXPECT_EQ(frame->at("data"), boost::json::parse(R"({"post":42,"by":"bob"})"));
}

}  // namespace
}  // namespace notify::testing
