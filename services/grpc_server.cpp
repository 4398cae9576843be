#include "services/grpc_server.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <stdexcept>

#include "services/metrics_interceptor.hpp"

namespace notify::services {

namespace {

constexpr const char* kServiceName = "notify.v1.NotificationService";

std::string listen_address(const std::string& host, std::uint16_t port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

GrpcServer::GrpcServer(const ServiceSettings& settings, gateway::Hub& hub, ClientMessageBus& bus, Metrics& metrics)
    : settings_(settings), bus_(bus), metrics_(metrics), service_(hub, bus, metrics, settings) {}

GrpcServer::~GrpcServer() { stop(std::chrono::milliseconds(0)); }

void GrpcServer::start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  const std::string address = listen_address(settings_.bind_address, settings_.port);
  int selected_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(&service_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(settings_.max_receive_message_bytes));
  // gRPC sets SO_REUSEPORT by default, which would let a second gateway
  // share this port and take half the RPCs; a taken port must fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Find dead StreamClientMessages consumers within a minute.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(metrics_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server_ = builder.BuildAndStart();
  if (!server_ || selected_port == 0) {
    server_.reset();
    throw std::runtime_error("cannot listen on " + address + " for gRPC (address in use or not available)");
  }
  port_ = static_cast<std::uint16_t>(selected_port);
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);
}

void GrpcServer::begin_shutdown() {
  if (!server_) return;
  server_->GetHealthCheckService()->SetServingStatus(false);
  service_.begin_shutdown();
  bus_.close_all();
}

void GrpcServer::stop(std::chrono::milliseconds grace) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
}

}  // namespace notify::services
