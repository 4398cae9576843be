#pragma once
// The keys tokens are checked against, loaded from --jwt-secret-file (or
// NOTIFY_JWT_SECRET), --jwt-public-key-file and --jwks-file. Immutable once
// built: a reload builds a new KeySet and swaps it in. Thread-safe to share.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;

namespace notify::auth {

enum class Alg { hs256, rs256, es256 };
std::string_view to_string(Alg alg);

struct KeySources {
  std::string secret_file;      // HS256 secret, the file's bytes (one trailing newline ignored)
  std::string secret;           // HS256 secret given directly (NOTIFY_JWT_SECRET)
  std::string public_key_file;  // RS256 (RSA >= 2048 bits) or ES256 (P-256) public key, PEM
  std::string jwks_file;        // RFC 7517 key set; RSA and EC P-256 public keys selected by "kid"

  bool any() const { return !secret_file.empty() || !secret.empty() || !public_key_file.empty() || !jwks_file.empty(); }
};

class KeySet {
 public:
  struct Key {
    std::string kid;  // empty for keys from the secret or the PEM file
    Alg alg;
    std::string secret;              // hs256
    std::shared_ptr<EVP_PKEY> pkey;  // rs256 / es256
  };

  // Reads every configured source; throws std::runtime_error naming the file
  // and the problem (missing, unreadable, weak secret, unsupported key type...).
  static std::shared_ptr<const KeySet> load(const KeySources& sources);
  // Parses a JWKS document (exposed for tests and fuzzing); throws like load().
  static std::vector<Key> parse_jwks(std::string_view json, const std::string& origin);

  const std::vector<Key>& keys() const { return keys_; }
  bool has_jwks() const { return has_jwks_; }
  std::string describe() const;  // e.g. "HS256 secret, 2 JWKS keys (kid a, b)"

 private:
  std::vector<Key> keys_;
  bool has_jwks_ = false;
};

}  // namespace notify::auth
