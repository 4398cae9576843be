#include "services/metrics_interceptor.hpp"

#include <chrono>

namespace notify::services {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Created when a call arrives, destroyed by gRPC when it ends.
class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics& metrics, GrpcMethod method)
      : metrics_(metrics), method_(method), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.grpc_request(method_, static_cast<int>(methods->GetSendStatus().error_code()),
                            std::chrono::steady_clock::now() - start_);
    }
    methods->Proceed();
  }

 private:
  Metrics& metrics_;
  GrpcMethod method_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(metrics_, grpc_method_from_path(info->method() ? info->method() : ""));
}

}  // namespace notify::services
