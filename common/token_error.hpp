#pragma once
// Why a client token was refused. Shared vocabulary: auth/ produces these,
// metrics count them (notify_auth_failures_total{reason}), the protocol
// reports them.
#include <cstddef>
#include <string_view>

namespace notify {

enum class TokenError : std::size_t {
  missing,                // no token at all
  malformed,              // not three base64url parts of JSON objects
  unsupported_algorithm,  // "alg" is none, unknown, or has no key of its type configured
  unknown_key,            // "kid" names no configured key
  bad_signature,
  expired,
  not_yet_valid,     // nbf in the future
  issued_in_future,  // iat in the future
  wrong_audience,
  wrong_issuer,
  invalid_subject,  // "sub" missing or not a valid user id
  missing_expiry,   // no "exp": tokens must expire
  invalid_claims,   // a claim of the wrong type, or a malformed "topics" pattern
  count
};

constexpr std::string_view to_string(TokenError error) {
  switch (error) {
    case TokenError::missing:
      return "missing";
    case TokenError::malformed:
      return "malformed";
    case TokenError::unsupported_algorithm:
      return "unsupported_algorithm";
    case TokenError::unknown_key:
      return "unknown_key";
    case TokenError::bad_signature:
      return "bad_signature";
    case TokenError::expired:
      return "expired";
    case TokenError::not_yet_valid:
      return "not_yet_valid";
    case TokenError::issued_in_future:
      return "issued_in_future";
    case TokenError::wrong_audience:
      return "wrong_audience";
    case TokenError::wrong_issuer:
      return "wrong_issuer";
    case TokenError::invalid_subject:
      return "invalid_subject";
    case TokenError::missing_expiry:
      return "missing_expiry";
    case TokenError::invalid_claims:
      return "invalid_claims";
    case TokenError::count:
      break;
  }
  return "unknown";
}

}  // namespace notify
