#include "tests/support/resume_helpers.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/test_server.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {

namespace json = boost::json;

void send_seq(v1::NotificationService::Stub& stub, const std::string& user, int seq, const std::string& collapse_key) {
  v1::NotifyRequest req;
  req.add_user_ids(user);
  req.mutable_notification()->set_event("n");
  req.mutable_notification()->set_data_json("{\"seq\":" + std::to_string(seq) + "}");
  req.mutable_notification()->set_collapse_key(collapse_key);
  grpc::ClientContext ctx;
  set_deadline(ctx);
  v1::NotifyResponse resp;
  const auto status = stub.Notify(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

std::unique_ptr<WsClient> stalled_client(TestServer& server, const std::string& user, int count) {
  WsOptions options;
  options.start_reading = false;
  options.receive_buffer_bytes = 4096;
  auto client = WsClient::connect(server.ws_port(), "/ws?user=" + user, options);
  if (!eventually([&] { return server.metric("notify_connections_open") >= 1; })) {
    ADD_FAILURE() << user << " never connected";
    return nullptr;
  }
  auto stub = server.stub();
  const std::string big = "\"" + std::string(60 * 1024, 'x') + "\"";
  for (int i = 0; i < count; ++i) notify(*stub, {user}, "big", big);
  return client;
}

std::string ack_message(const std::string& id) { return R"({"type":"ack","ids":[")" + id + R"("]})"; }

std::string at(const std::string& epoch, std::uint64_t offset) {
  return json::serialize(json::object{{"epoch", epoch}, {"offset", offset}});
}

std::string resume_message(const std::vector<std::pair<std::string, std::string>>& streams, int id) {
  std::string out = R"({"type":"resume","id":)" + std::to_string(id) + R"(,"streams":{)";
  for (std::size_t i = 0; i < streams.size(); ++i) {
    if (i > 0) out += ',';
    out += json::serialize(json::value(streams[i].first)) + ":" + streams[i].second;
  }
  return out + "}}";
}

void receive_while_reconnecting(const std::function<std::uint16_t(int)>& port_for, const std::string& user, int total,
                                int quota_mod, int max_connections, std::vector<int>& seqs, int& connections) {
  using namespace std::chrono_literals;
  const std::string stream = "user:" + user;
  std::string epoch;
  std::uint64_t offset = 0;
  connections = 0;
  while (static_cast<int>(seqs.size()) < total && connections < max_connections) {
    ++connections;
    auto client = WsClient::connect(port_for(connections), "/ws?user=" + user + "&resume=1");
    auto welcome = client->next_json();
    ASSERT_TRUE(welcome);
    if (epoch.empty()) epoch = std::string(welcome->at("streams").at(stream).at("epoch").as_string());
    client->send(resume_message({{stream, at(epoch, offset)}}));
    int taken = 0;
    const int quota = 1 + connections % quota_mod;  // leave after a varying number of notifications
    while (taken < quota && static_cast<int>(seqs.size()) < total) {
      auto frame = client->next_json(10s);
      ASSERT_TRUE(frame) << "stalled after " << seqs.size();
      const auto type = frame->at("type").as_string();
      ASSERT_NE(type, "resume_failed") << json::serialize(*frame);
      if (type != "notification") continue;
      ASSERT_EQ(frame->at("offset").to_number<std::uint64_t>(), offset + 1) << "gap or duplicate";
      offset = frame->at("offset").to_number<std::uint64_t>();
      seqs.push_back(static_cast<int>(frame->at("data").at("seq").as_int64()));
      ++taken;
    }
    client->close();
  }
}

}  // namespace notify::testing
