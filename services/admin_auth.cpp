#include "services/admin_auth.hpp"

#include <boost/beast/core/string.hpp>

namespace notify::services {

grpc::Status AdminAuth::check(const grpc::CallbackServerContext& context, auth::Scope scope) const {
  const auto keys = keys_.load();
  if (!keys) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    metrics_.admin_auth_failed(AdminAuthFailure::missing_key);
    return {grpc::StatusCode::UNAUTHENTICATED, "missing \"authorization: Bearer <api key>\" metadata"};
  }
  std::string_view value(it->second.data(), it->second.size());
  if (value.size() < 7 || !boost::beast::iequals(value.substr(0, 7), "Bearer ")) {
    metrics_.admin_auth_failed(AdminAuthFailure::missing_key);
    return {grpc::StatusCode::UNAUTHENTICATED, "the authorization metadata must be \"Bearer <api key>\""};
  }
  switch (keys->check(value.substr(7), scope)) {
    case auth::ApiKeys::Check::ok:
      return grpc::Status::OK;
    case auth::ApiKeys::Check::unknown:
      metrics_.admin_auth_failed(AdminAuthFailure::invalid_key);
      return {grpc::StatusCode::UNAUTHENTICATED, "invalid API key"};
    case auth::ApiKeys::Check::forbidden:
      break;
  }
  metrics_.admin_auth_failed(AdminAuthFailure::forbidden_scope);
  return {grpc::StatusCode::PERMISSION_DENIED,
          "this API key lacks the \"" + std::string(auth::to_string(scope)) + "\" scope"};
}

}  // namespace notify::services
