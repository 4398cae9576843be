// libFuzzer target: client tokens and the key material behind them.
//
// Every input is used three ways:
//   1. as a compact JWS, checked by JwtVerifier::verify at a fixed "now"
//      against two fixed key sets (fuzz_keys.hpp);
//   2. as a JWKS document for KeySet::parse_jwks;
//   3. as base64url text for base64url_decode, and as bytes for base64url_encode.
// Crashes, sanitizer reports, uncaught exceptions and the invariants below
// (FUZZ_CHECK) are findings.
#include <algorithm>
#include <boost/system/system_error.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

#include "auth/base64url.hpp"
#include "auth/jwt_verifier.hpp"
#include "auth/key_set.hpp"
#include "common/validation.hpp"
#include "fuzz_check.hpp"
#include "fuzz_keys.hpp"

namespace {

using notify::TokenError;
using notify::auth::JwtVerifier;
using notify::auth::KeySet;

void check_verify(const JwtVerifier& verifier, std::string_view token) {
  const auto now = fuzzkeys::kFuzzNow;
  const auto result = verifier.verify(token, now);
  // The detail is logged and sent in 401 bodies: it must never echo the token.
  // (Only for dotted tokens: an undotted one may spell a fixed message, e.g.
  // "a token has three dot-separated parts", and be "echoed" by coincidence.)
  if (token.size() >= 24 && std::count(token.begin(), token.end(), '.') >= 2) {
    FUZZ_CHECK(result.detail.find(token) == std::string::npos);
  }
  if (!result.identity) {
    FUZZ_CHECK(result.error != TokenError::count);
    if (token.empty()) FUZZ_CHECK(result.error == TokenError::missing);
    return;
  }
  // Accepted: exactly three parts, a sane subject, not expired at `now`.
  const auto& id = *result.identity;
  FUZZ_CHECK(!token.empty() && token.size() <= 16 * 1024);
  std::size_t dots = 0;
  for (char c : token) dots += c == '.';
  FUZZ_CHECK(dots == 2);
  FUZZ_CHECK(notify::rules::valid_user_id(id.user_id));
  FUZZ_CHECK(now - verifier.policy().leeway.count() < id.expires_at);
  FUZZ_CHECK(result.detail.empty());
  // An unsigned token can never verify: the signature part is never empty.
  FUZZ_CHECK(token.back() != '.');
}

void check_jwks(std::string_view text) {
  static const std::string origin = "fuzz-jwks";
  try {
    const auto keys = KeySet::parse_jwks(text, origin);
    FUZZ_CHECK(!keys.empty());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      FUZZ_CHECK(!keys[i].kid.empty());
      FUZZ_CHECK(keys[i].pkey != nullptr);
      FUZZ_CHECK(keys[i].alg == notify::auth::Alg::rs256 || keys[i].alg == notify::auth::Alg::es256);
      for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(keys[i].kid != keys[j].kid);
    }
  } catch (const boost::system::system_error& e) {
    // Derives from std::runtime_error, but is Boost.JSON throwing from an
    // accessor used on the wrong kind: a bug, not a reported failure.
    std::fprintf(stderr, "parse_jwks threw boost::system::system_error: %s\n", e.what());
    __builtin_trap();
  } catch (const std::runtime_error& e) {
    // The defined failure; the message names where the problem is.
    FUZZ_CHECK(std::string_view(e.what()).starts_with(origin));
  }
}

void check_base64url(std::string_view text) {
  using notify::auth::base64url_decode;
  using notify::auth::base64url_encode;
  if (const auto decoded = base64url_decode(text)) {
    FUZZ_CHECK(decoded->size() == text.size() * 3 / 4);
    FUZZ_CHECK(base64url_encode(*decoded) == text);  // strict: one spelling per byte string
  }
  const std::string encoded = base64url_encode(text);
  FUZZ_CHECK(encoded.size() == (text.size() * 4 + 2) / 3);
  const auto back = base64url_decode(encoded);
  FUZZ_CHECK(back && *back == text);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzzkeys::verifier_with_jwks();
  fuzzkeys::verifier_without_jwks();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_verify(fuzzkeys::verifier_with_jwks(), input);
  check_verify(fuzzkeys::verifier_without_jwks(), input);
  check_jwks(input);
  check_base64url(input);
  return 0;
}
