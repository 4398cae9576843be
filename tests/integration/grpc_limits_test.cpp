// Admission control of the admin API, with the real gRPC server wired to a
// hub whose event loop is held still, so requests stay in flight on purpose.
#include <gtest/gtest.h>

#include "broker/local_broker.hpp"
#include "common/metrics.hpp"
#include "gateway/event_loops.hpp"
#include "gateway/hub.hpp"
#include "services/grpc_server.hpp"
#include "services/upstream_bus.hpp"
#include "tests/support/test_server.hpp"

namespace notify::testing {
namespace {

TEST(GrpcLimits, RequestsBeyondTheInFlightLimitAreResourceExhausted) {
  Metrics metrics(1);
  gateway::EventLoops loops(1);  // not started yet: fan-outs wait
  gateway::Shard shard(0, loops.context(0), metrics.loop(0));
  gateway::Hub hub({&shard});
  services::ServiceSettings settings;
  settings.bind_address = "127.0.0.1";
  settings.port = 0;
  settings.max_inflight_requests = 2;
  services::UpstreamBus bus(metrics, settings);
  broker::LocalBroker broker(hub, nullptr);
  services::GrpcServer server(
      settings, broker, [&]() -> boost::asio::io_context& { return hub.next_context(); }, bus, metrics, nullptr);
  server.start();
  auto stub = v1::NotificationService::NewStub(grpc_channel(server.port()));

  v1::NotifyRequest req;
  req.add_user_ids("alice");
  req.mutable_notification()->set_event("like");
  // Two broadcasts fill the limit and stay in flight (their deadline ends
  // them client-side). Not Notify: alice is on no loop, so a Notify to her
  // completes at once without waiting for one.
  v1::BroadcastRequest broadcast;
  broadcast.mutable_notification()->set_event("like");
  for (int i = 0; i < 2; ++i) {
    v1::BroadcastResponse resp;
    grpc::ClientContext ctx;
    set_deadline(ctx, std::chrono::milliseconds(200));
    EXPECT_EQ(stub->Broadcast(&ctx, broadcast, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  v1::NotifyResponse resp;
  grpc::ClientContext ctx;
  set_deadline(ctx);
  const auto status = stub->Notify(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("in flight"), std::string::npos) << status.error_message();
  EXPECT_EQ(sample_value(metrics.scrape(), "notify_limit_rejections_total{limit=\"inflight_requests\"}"), 1);

  // Once the loop runs, the waiting fan-outs complete and capacity returns.
  loops.start();
  EXPECT_TRUE(eventually([&] {
    v1::NotifyResponse ok_resp;
    grpc::ClientContext ok_ctx;
    set_deadline(ok_ctx);
    return stub->Notify(&ok_ctx, req, &ok_resp).ok();
  }));
  server.begin_shutdown();
  server.stop(std::chrono::milliseconds(1000));
  loops.stop();
}

}  // namespace
}  // namespace notify::testing
