#include "services/metrics_interceptor.hpp"

#include <grpcpp/server_context.h>

#include <chrono>

namespace notify::services {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Created when a call arrives, destroyed by gRPC when it ends.
class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics& metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics),
        info_(info),
        method_(grpc_method_from_path(info->method() ? info->method() : "")),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      auto code = methods->GetSendStatus().error_code();
      // A call cancelled before its request arrived is answered by gRPC's own
      // placeholder reactor with UNIMPLEMENTED; count it as what it was.
      if (code == grpc::StatusCode::UNIMPLEMENTED && method_ != GrpcMethod::other &&
          info_->server_context()->IsCancelled()) {
        code = grpc::StatusCode::CANCELLED;
      }
      metrics_.grpc_request(method_, static_cast<int>(code), std::chrono::steady_clock::now() - start_);
    }
    methods->Proceed();
  }

 private:
  Metrics& metrics_;
  grpc::experimental::ServerRpcInfo* info_;
  GrpcMethod method_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(metrics_, info);
}

}  // namespace notify::services
