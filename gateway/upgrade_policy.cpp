#include "gateway/upgrade_policy.hpp"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>
#include <vector>

#include "common/validation.hpp"

namespace notify::gateway {
namespace http = boost::beast::http;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

UpgradeDecision refuse(http::status status, HandshakeFailure reason, std::string message) {
  UpgradeDecision d;
  d.status = status;
  d.reason = reason;
  d.message = std::move(message);
  return d;
}

UpgradeDecision unauthorized(TokenError error, std::string message) {
  UpgradeDecision d = refuse(http::status::unauthorized, HandshakeFailure::unauthorized, std::move(message));
  d.token_error = error;
  return d;
}

struct Offered {
  std::vector<std::string_view> protocols;
  std::string_view bearer;  // the token of a "bearer.<token>" entry
};

Offered offered_subprotocols(const UpgradeRequest& request) {
  Offered out;
  for (auto [it, end] = request.equal_range(http::field::sec_websocket_protocol); it != end; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      const auto comma = list.find(',');
      const std::string_view item = trim(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (item.empty()) continue;
      if (item.starts_with(kBearerSubprotocolPrefix)) {
        out.bearer = item.substr(kBearerSubprotocolPrefix.size());
      } else {
        out.protocols.push_back(item);
      }
    }
  }
  return out;
}

}  // namespace

UpgradeDecision decide_upgrade(const UpgradeRequest& request, const GatewaySettings& settings,
                               const auth::JwtVerifier* verifier, bool draining, std::int64_t now) {
  if (draining)
    return refuse(http::status::service_unavailable, HandshakeFailure::shutting_down, "server shutting down");
  const auto target = boost::urls::parse_origin_form(request.target());
  if (!target) return refuse(http::status::bad_request, HandshakeFailure::bad_request, "malformed request target");

  if (!settings.allowed_origins.allows(request[http::field::origin], request[http::field::host])) {
    return refuse(http::status::forbidden, HandshakeFailure::forbidden_origin,
                  "origin not allowed (see --allowed-origins)");
  }

  // The token: Authorization header, then subprotocol, then ?token=.
  const Offered offered = offered_subprotocols(request);
  const bool notify_offered =
      std::find(offered.protocols.begin(), offered.protocols.end(), kSubprotocol) != offered.protocols.end();
  std::string token;
  if (const auto authorization = request[http::field::authorization]; !authorization.empty()) {
    if (authorization.size() < 7 || !boost::beast::iequals(authorization.substr(0, 7), "Bearer ")) {
      return unauthorized(TokenError::malformed, "Authorization must be \"Bearer <token>\"");
    }
    token = trim(authorization.substr(7));
  } else if (!offered.bearer.empty()) {
    if (!notify_offered) {
      return refuse(http::status::bad_request, HandshakeFailure::bad_request,
                    "offer the notify.v1 subprotocol together with bearer.<token>");
    }
    token = offered.bearer;
  } else {
    const auto params = target->params();
    if (const auto it = params.find("token"); it != params.end() && (*it).has_value) token = (*it).value;
  }

  UpgradeDecision d;
  if (!token.empty()) {
    if (verifier == nullptr) {
      return unauthorized(TokenError::unsupported_algorithm, "tokens can't be checked: no JWT keys are configured");
    }
    auto result = verifier->verify(token, now);
    if (!result.identity) return unauthorized(result.error, "invalid token: " + result.detail);
    d.user_id = std::move(result.identity->user_id);
    d.expires_at = result.identity->expires_at;
    d.topics = std::move(result.identity->topics);
  } else if (settings.insecure_dev) {
    const auto params = target->params();
    const auto user = params.find("user");
    if (user == params.end() || !(*user).has_value || !rules::valid_user_id((*user).value)) {
      return refuse(http::status::bad_request, HandshakeFailure::invalid_user,
                    "?user= must be 1 to 128 characters from [A-Za-z0-9_.:@-] (development identity mode)");
    }
    d.user_id = (*user).value;
    d.all_topics = true;
  } else {
    return unauthorized(TokenError::missing,
                        "a token is required: Authorization: Bearer <token>, the subprotocols notify.v1 and "
                        "bearer.<token>, or ?token=<token>");
  }
  if (notify_offered) d.subprotocol = kSubprotocol;
  {
    const auto params = target->params();
    if (const auto it = params.find("resume"); it != params.end()) {
      const std::string v = (*it).has_value ? std::string((*it).value) : std::string("1");
      if (v != "1" && v != "0") {
        return refuse(http::status::bad_request, HandshakeFailure::bad_request, "?resume= must be 1 or 0");
      }
      d.resume = v == "1";
    }
  }
  d.accept = true;
  return d;
}

}  // namespace notify::gateway
