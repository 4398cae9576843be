#include "auth/jwt_verifier.hpp"

#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>

#include "auth/base64url.hpp"
#include "common/validation.hpp"

namespace notify::auth {
namespace json = boost::json;
namespace {

constexpr std::size_t kMaxTokenBytes = 16 * 1024;

// Short printable ASCII only: such a value may be quoted in an error.
bool printable(std::string_view s) {
  return s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool jwt_media_type(std::string_view typ) {
  for (std::string_view accepted : {"jwt", "at+jwt", "application/jwt", "application/at+jwt"}) {
    if (boost::beast::iequals(typ, accepted)) return true;
  }
  return false;
}

VerifyResult fail(TokenError error, std::string detail) {
  VerifyResult r;
  r.error = error;
  r.detail = std::move(detail);
  return r;
}

std::optional<json::object> decode_object(std::string_view part) {
  auto bytes = base64url_decode(part);
  if (!bytes) return std::nullopt;
  json::parse_options opts;
  opts.max_depth = 16;
  boost::system::error_code ec;
  auto value = json::parse(*bytes, ec, {}, opts);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.get_object());
}

bool verify_hmac(const std::string& secret, std::string_view input, const std::string& signature) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len) == nullptr) {
    return false;
  }
  return signature.size() == len && CRYPTO_memcmp(mac, signature.data(), len) == 0;
}

bool verify_digest(EVP_PKEY* key, std::string_view input, const unsigned char* sig, std::size_t sig_len) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
         EVP_DigestVerify(ctx.get(), sig, sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                          input.size()) == 1;
}

// JOSE carries ECDSA signatures as raw r||s; OpenSSL verifies DER.
bool verify_es256(EVP_PKEY* key, std::string_view input, const std::string& signature) {
  if (signature.size() != 64) return false;
  const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(raw, 32, nullptr);
  BIGNUM* s = BN_bin2bn(raw + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return false;
  const bool ok = verify_digest(key, input, der, static_cast<std::size_t>(der_len));
  OPENSSL_free(der);
  return ok;
}

bool verify_with(const KeySet::Key& key, std::string_view input, const std::string& signature) {
  switch (key.alg) {
    case Alg::hs256:
      return verify_hmac(key.secret, input, signature);
    case Alg::rs256:
      return verify_digest(key.pkey.get(), input, reinterpret_cast<const unsigned char*>(signature.data()),
                           signature.size());
    case Alg::es256:
      return verify_es256(key.pkey.get(), input, signature);
  }
  return false;
}

std::optional<Alg> parse_alg(std::string_view name) {
  if (name == "HS256") return Alg::hs256;
  if (name == "RS256") return Alg::rs256;
  if (name == "ES256") return Alg::es256;
  return std::nullopt;
}

// A NumericDate claim: absent (nullopt, ok), a number (value), or invalid.
bool numeric_claim(const json::object& claims, const char* name, std::optional<std::int64_t>& out) {
  const auto* v = claims.if_contains(name);
  if (v == nullptr) return true;
  if (v->is_int64()) {
    out = v->get_int64();
  } else if (v->is_uint64()) {
    out = static_cast<std::int64_t>(std::min<std::uint64_t>(v->get_uint64(), INT64_MAX));
  } else if (v->is_double()) {
    const double d = v->get_double();  // clamp: casting an out-of-range double is undefined
    out = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : static_cast<std::int64_t>(d);
  } else {
    return false;
  }
  return true;
}

}  // namespace

JwtVerifier::JwtVerifier(JwtPolicy policy, std::shared_ptr<const KeySet> keys) : policy_(std::move(policy)) {
  keys_.store(std::move(keys));
}

VerifyResult JwtVerifier::verify(std::string_view token) const {
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return verify(token, now);
}

VerifyResult JwtVerifier::verify(std::string_view token, std::int64_t now) const {
  if (token.empty()) return fail(TokenError::missing, "no token");
  if (token.size() > kMaxTokenBytes) return fail(TokenError::malformed, "token longer than 16 KiB");
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return fail(TokenError::malformed, "a token has three dot-separated parts");
  }
  const auto header = decode_object(token.substr(0, dot1));
  const auto claims = decode_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
  const auto signature = base64url_decode(token.substr(dot2 + 1));
  if (!header || !claims || !signature) return fail(TokenError::malformed, "header or payload is not base64url JSON");

  // --- header: algorithm and key
  const auto* alg_value = header->if_contains("alg");
  if (alg_value == nullptr || !alg_value->is_string()) return fail(TokenError::malformed, "no \"alg\" in the header");
  const auto alg = parse_alg(alg_value->get_string());
  if (!alg) {
    const std::string_view name = alg_value->get_string();
    return fail(TokenError::unsupported_algorithm,
                (name.size() <= 16 ? "algorithm \"" + std::string(name) + "\"" : std::string("the algorithm")) +
                    " is not accepted (HS256, RS256, ES256 are)");
  }
  if (header->contains("crit")) return fail(TokenError::malformed, "\"crit\" header extensions are not supported");
  // "typ" is a media type, compared case-insensitively (RFC 7515 4.1.9).
  if (const auto* typ = header->if_contains("typ");
      typ != nullptr && (!typ->is_string() || !jwt_media_type(typ->get_string()))) {
    return fail(TokenError::malformed, "\"typ\" is not JWT");
  }
  std::string_view kid;
  if (const auto* k = header->if_contains("kid")) {
    if (!k->is_string()) return fail(TokenError::malformed, "\"kid\" is not a string");
    kid = k->get_string();
  }

  const auto keys = keys_.load();
  const KeySet::Key* key = nullptr;
  bool kid_known = false;
  for (const auto& candidate : keys->keys()) {
    if (!kid.empty() && candidate.kid == kid) {
      kid_known = true;
      if (candidate.alg == *alg) key = &candidate;
      break;
    }
  }
  if (!kid.empty() && !kid_known && keys->has_jwks()) {
    return fail(TokenError::unknown_key,
                printable(kid) ? "no key with kid \"" + std::string(kid) + "\"" : std::string("no key with that kid"));
  }
  if (key == nullptr && !kid_known) {
    // No kid (or no JWKS to look it up in): the keys without a kid.
    for (const auto& candidate : keys->keys()) {
      if (candidate.kid.empty() && candidate.alg == *alg) {
        key = &candidate;
        break;
      }
    }
  }
  if (key == nullptr) {
    return fail(TokenError::unsupported_algorithm,
                "no " + std::string(to_string(*alg)) + " key is configured for this token");
  }
  const std::string_view signing_input = token.substr(0, dot2);
  if (!verify_with(*key, signing_input, *signature)) return fail(TokenError::bad_signature, "signature mismatch");

  // --- claims
  const auto leeway = policy_.leeway.count();
  std::optional<std::int64_t> exp, nbf, iat;
  if (!numeric_claim(*claims, "exp", exp) || !numeric_claim(*claims, "nbf", nbf) ||
      !numeric_claim(*claims, "iat", iat)) {
    return fail(TokenError::invalid_claims, "exp, nbf and iat must be numbers");
  }
  if (!exp) return fail(TokenError::missing_expiry, "tokens must carry \"exp\"");
  // Dates beyond year 9999 are capped, so expiry arithmetic downstream
  // (leeway, milliseconds) can't overflow.
  exp = std::min(*exp, kMaxUnixSeconds);
  if (now - leeway >= *exp) return fail(TokenError::expired, "token expired");
  if (nbf && now + leeway < *nbf) return fail(TokenError::not_yet_valid, "token not valid yet (nbf)");
  if (iat && now + leeway < *iat) return fail(TokenError::issued_in_future, "token issued in the future (iat)");

  if (!policy_.issuer.empty()) {
    const auto* iss = claims->if_contains("iss");
    if (iss == nullptr || !iss->is_string() || iss->get_string() != policy_.issuer) {
      return fail(TokenError::wrong_issuer, "issuer is not " + policy_.issuer);
    }
  }
  if (!policy_.audience.empty()) {
    const auto* aud = claims->if_contains("aud");
    bool match = false;
    if (aud != nullptr && aud->is_string()) {
      match = aud->get_string() == policy_.audience;
    } else if (aud != nullptr && aud->is_array()) {
      for (const auto& a : aud->get_array()) match = match || (a.is_string() && a.get_string() == policy_.audience);
    }
    if (!match) return fail(TokenError::wrong_audience, "audience does not include " + policy_.audience);
  }

  Identity identity;
  const auto* sub = claims->if_contains("sub");
  if (sub == nullptr || !sub->is_string() || !rules::valid_user_id(sub->get_string())) {
    return fail(TokenError::invalid_subject, "\"sub\" must be a user id: 1 to 128 characters from [A-Za-z0-9_.:@-]");
  }
  identity.user_id = sub->get_string();
  identity.expires_at = *exp;
  if (const auto* topics = claims->if_contains("topics")) {
    if (!topics->is_array()) return fail(TokenError::invalid_claims, "\"topics\" must be an array of patterns");
    for (const auto& t : topics->get_array()) {
      if (!t.is_string() || !identity.topics.add(t.get_string())) {
        return fail(TokenError::invalid_claims, "\"topics\" holds a malformed pattern");
      }
    }
  }
  VerifyResult ok;
  ok.identity = std::move(identity);
  return ok;
}

}  // namespace notify::auth
