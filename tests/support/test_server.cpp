#include "tests/support/test_server.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/ws_client.hpp"

namespace notify::testing {

TestServer::TestServer(std::vector<std::string> extra_flags)
    : TestServer(std::move(extra_flags), DevIdentity::enabled) {}

TestServer::TestServer(std::vector<std::string> extra_flags, DevIdentity dev_identity) {
  std::vector<std::string> args = {
      "notify-gateway", "--bind", "127.0.0.1", "--ws-port", "0",           "--grpc-port", "0",
      "--metrics-port", "0",      "--threads", "2",         "--log-level", "error"};
  if (dev_identity == DevIdentity::enabled) args.push_back("--insecure-dev");
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  auto parsed = app::parse_config(static_cast<int>(argv.size()), argv.data());
  if (!parsed.config) throw std::runtime_error("test flags rejected: " + parsed.output);
  log::configure(parsed.config->log_format, parsed.config->log_level);
  app_ = std::make_unique<app::Application>(std::move(*parsed.config));
  app_->start();
}

TestServer::~TestServer() { app_->shutdown(); }

std::shared_ptr<grpc::Channel> TestServer::channel() const { return grpc_channel(grpc_port()); }

std::unique_ptr<v1::NotificationService::Stub> TestServer::stub() const {
  return v1::NotificationService::NewStub(channel());
}

std::string TestServer::scrape() const { return http_request(metrics_port(), "GET", "/metrics").body; }

double TestServer::metric(const std::string& sample) const { return sample_value(scrape(), sample); }

std::unique_ptr<WsClient> connect_user(TestServer& server, const std::string& user) {
  auto client = WsClient::connect(server.ws_port(), "/ws?user=" + user);
  auto welcome = client->next_of_type("welcome");
  EXPECT_TRUE(welcome.has_value());
  if (welcome) {
    EXPECT_EQ(welcome->at("user_id"), user.c_str());
  }
  return client;
}

std::shared_ptr<grpc::Channel> grpc_channel(std::uint16_t port) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
}

namespace {

// One unary call with the test deadline; a failed status fails the test
// unless `status_out` is given to receive it.
template <typename Request, typename Response>
Response call(v1::NotificationService::Stub& stub,
              grpc::Status (v1::NotificationService::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
              const Request& req, grpc::Status* status_out) {
  Response resp;
  grpc::ClientContext ctx;
  set_deadline(ctx);
  const grpc::Status status = (stub.*method)(&ctx, req, &resp);
  if (status_out) {
    *status_out = status;
  } else {
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  return resp;
}

}  // namespace

v1::NotifyResponse notify(v1::NotificationService::Stub& stub, std::vector<std::string> users, const std::string& event,
                          const std::string& data, grpc::Status* status_out) {
  v1::NotifyRequest req;
  for (auto& u : users) req.add_user_ids(u);
  req.mutable_notification()->set_event(event);
  req.mutable_notification()->set_data_json(data);
  return call(stub, &v1::NotificationService::Stub::Notify, req, status_out);
}

v1::NotifyResponse notify(TestServer& server, std::vector<std::string> users, const std::string& event,
                          const std::string& data, grpc::Status* status_out) {
  return notify(*server.stub(), std::move(users), event, data, status_out);
}

v1::NotifyResponse notify_acked(TestServer& server, std::vector<std::string> users, const std::string& id,
                                std::uint32_t ack_timeout_ms, grpc::Status* status_out) {
  v1::NotifyRequest req;
  for (auto& u : users) req.add_user_ids(u);
  auto* n = req.mutable_notification();
  n->set_event("like");
  n->set_data_json(R"({"post":42})");
  n->set_id(id);
  n->set_require_ack(true);
  n->set_ack_timeout_ms(ack_timeout_ms);
  return call(*server.stub(), &v1::NotificationService::Stub::Notify, req, status_out);
}

v1::NotifyResponse notify_persisted(v1::NotificationService::Stub& stub, std::vector<std::string> users,
                                    const std::string& id, std::uint32_t ttl_seconds, grpc::Status* status_out) {
  v1::NotifyRequest req;
  for (auto& u : users) req.add_user_ids(u);
  auto* n = req.mutable_notification();
  n->set_event("comment");
  n->set_data_json(R"({"id":")" + id + R"("})");
  n->set_id(id);
  n->set_persist(true);
  n->set_persist_ttl_seconds(ttl_seconds);
  return call(stub, &v1::NotificationService::Stub::Notify, req, status_out);
}

v1::BroadcastResponse broadcast(TestServer& server, const std::string& topic, const std::string& event,
                                const std::string& data) {
  v1::BroadcastRequest req;
  req.set_topic(topic);
  req.mutable_notification()->set_event(event);
  req.mutable_notification()->set_data_json(data);
  return call(*server.stub(), &v1::NotificationService::Stub::Broadcast, req, nullptr);
}

v1::DisconnectResponse disconnect(TestServer& server, std::vector<std::string> users, const std::string& reason) {
  v1::DisconnectRequest req;
  for (auto& u : users) req.add_user_ids(u);
  req.set_reason(reason);
  return call(*server.stub(), &v1::NotificationService::Stub::Disconnect, req, nullptr);
}

std::map<std::string, std::uint32_t> get_presence(TestServer& server, std::vector<std::string> users,
                                                  grpc::Status* status_out) {
  v1::GetPresenceRequest req;
  for (auto& u : users) req.add_user_ids(u);
  const auto resp = call(*server.stub(), &v1::NotificationService::Stub::GetPresence, req, status_out);
  return {resp.connections().begin(), resp.connections().end()};
}

double sample_value(const std::string& exposition, const std::string& sample) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 && line[sample.size()] == ' ') {
      return std::stod(line.substr(sample.size() + 1));
    }
  }
  return -1;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void set_deadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

}  // namespace notify::testing
