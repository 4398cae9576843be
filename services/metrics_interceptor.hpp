#pragma once
// Counts every gRPC request by method and status code and times it, for all
// services on the server (health and reflection included).
#include <grpcpp/support/server_interceptor.h>

#include "common/metrics.hpp"

namespace notify::services {

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(Metrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics& metrics_;
};

}  // namespace notify::services
