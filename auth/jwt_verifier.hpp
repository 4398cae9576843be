#pragma once
// Checks a compact JWS token (RFC 7515/7519) against the configured keys and
// claims policy, and turns it into the connection's identity. Only HS256,
// RS256 and ES256 are accepted, each only with a key of its own type, so
// "alg":"none" and algorithm confusion (an RSA public key used as an HMAC
// secret) can't verify. Thread-safe: keys are swapped atomically on reload.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/key_set.hpp"
#include "auth/topic_grants.hpp"
#include "common/token_error.hpp"

namespace notify::auth {

// The latest expiry a token can carry: 9999-12-31T23:59:59Z.
inline constexpr std::int64_t kMaxUnixSeconds = 253402300799;

struct Identity {
  std::string user_id;          // "sub"
  std::int64_t expires_at = 0;  // "exp", unix seconds
  TopicGrants topics;           // "topics" claim
};

struct VerifyResult {
  std::optional<Identity> identity;
  TokenError error = TokenError::missing;
  std::string detail;  // for logs and the 401 body; never contains the token
};

struct JwtPolicy {
  std::string audience;  // required in "aud" when set
  std::string issuer;    // required as "iss" when set
  std::chrono::seconds leeway{30};
};

class JwtVerifier {
 public:
  JwtVerifier(JwtPolicy policy, std::shared_ptr<const KeySet> keys);

  VerifyResult verify(std::string_view token, std::int64_t now_unix_seconds) const;
  VerifyResult verify(std::string_view token) const;

  void set_keys(std::shared_ptr<const KeySet> keys) { keys_.store(std::move(keys)); }
  std::shared_ptr<const KeySet> keys() const { return keys_.load(); }
  const JwtPolicy& policy() const { return policy_; }

 private:
  JwtPolicy policy_;
  std::atomic<std::shared_ptr<const KeySet>> keys_;
};

}  // namespace notify::auth
