#pragma once
// Who may open a WebSocket, decided from the upgrade request alone: origin,
// token (or development identity) and subprotocol. A pure function so the
// whole decision can be unit-tested and fuzzed without sockets; connection
// limits, which need shared counters, are applied by the HTTP session after.
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "auth/jwt_verifier.hpp"
#include "common/metrics.hpp"
#include "gateway/settings.hpp"

namespace notify::gateway {

// The subprotocol a client offers alongside "bearer.<JWT>" and that the
// gateway selects, so the token itself is never echoed in the response.
inline constexpr std::string_view kSubprotocol = "notify.v1";
inline constexpr std::string_view kBearerSubprotocolPrefix = "bearer.";

struct UpgradeDecision {
  bool accept = false;

  // Refused: the HTTP answer and what to count.
  boost::beast::http::status status = boost::beast::http::status::bad_request;
  HandshakeFailure reason = HandshakeFailure::bad_request;
  std::optional<TokenError> token_error;
  std::string message;

  // Accepted: who connected and what they may do.
  std::string user_id;
  std::int64_t expires_at = 0;  // the token's exp, unix seconds; 0 = never (development identity)
  bool all_topics = false;      // development identity: any topic
  auth::TopicGrants topics;     // from the token's "topics" claim
  std::string subprotocol;      // to select in the 101 response, or empty
  bool resume = false;          // ?resume=1: a resume message follows the welcome; hold live notifications
};

using UpgradeRequest = boost::beast::http::request<boost::beast::http::string_body>;

UpgradeDecision decide_upgrade(const UpgradeRequest& request, const GatewaySettings& settings,
                               const auth::JwtVerifier* verifier, bool draining, std::int64_t now_unix_seconds);

}  // namespace notify::gateway
