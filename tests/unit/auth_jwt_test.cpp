// JwtVerifier: which tokens become an identity and which are refused, with
// the exact TokenError, for HS256 / RS256 / ES256 keys from a secret, a PEM
// file and a JWKS. Keys and tokens come from tests/support/crypto_fixtures.
#include "auth/jwt_verifier.hpp"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/key_set.hpp"
#include "common/validation.hpp"
#include "tests/support/crypto_fixtures.hpp"

namespace notify::auth {
namespace {

namespace fx = notify::testing;
using fx::KeyPair;
using Strings = std::vector<std::string>;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::int64_t kExp = kNow + 3600;
const std::string kSecret = "an-hs256-secret-of-at-least-32-bytes!";
const std::string kOtherSecret = "another-hs256-secret-at-least-32-bytes";

// --- keys: generated once per process (RSA keygen is slow) ---

const KeyPair& rsa_key() {
  static const KeyPair key = fx::make_rsa_key();
  return key;
}
const KeyPair& rsa_other_key() {
  static const KeyPair key = fx::make_rsa_key();
  return key;
}
const KeyPair& ec_key() {
  static const KeyPair key = fx::make_ec_p256_key();
  return key;
}
const KeyPair& ec_other_key() {
  static const KeyPair key = fx::make_ec_p256_key();
  return key;
}

std::shared_ptr<const KeySet> secret_keys(const std::string& secret = kSecret) {
  KeySources sources;
  sources.secret = secret;
  return KeySet::load(sources);
}

std::shared_ptr<const KeySet> pem_keys(const KeyPair& key) {
  KeySources sources;
  sources.public_key_file = fx::write_temp_file("jwt-public.pem", key.public_pem);
  return KeySet::load(sources);
}

std::shared_ptr<const KeySet> jwks_keys(const std::vector<std::string>& jwks, const std::string& secret = "") {
  KeySources sources;
  sources.jwks_file = fx::write_temp_file("jwks.json", fx::jwks_json(jwks));
  sources.secret = secret;
  return KeySet::load(sources);
}

JwtVerifier make_verifier(std::shared_ptr<const KeySet> keys, JwtPolicy policy = {}) {
  return JwtVerifier(std::move(policy), std::move(keys));
}

JwtPolicy leeway_policy(std::int64_t seconds) {
  JwtPolicy policy;
  policy.leeway = std::chrono::seconds(seconds);
  return policy;
}

// {"sub":sub,"exp":exp[,extra]}
std::string claims(const std::string& sub = "alice", std::int64_t exp = kExp, const std::string& extra = "") {
  std::string out = R"({"sub":")" + sub + R"(","exp":)" + std::to_string(exp);
  if (!extra.empty()) out += "," + extra;
  return out + "}";
}

std::string hs256(const std::string& payload, const std::string& secret = kSecret) {
  return fx::make_jwt("HS256", secret, payload);
}

std::vector<std::string> split(std::string_view token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto dot = token.find('.', start);
    parts.emplace_back(token.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "." : "") + parts[i];
  return out;
}

// Changes the first character of a base64url part (always 6 full bits, so the
// result stays canonical base64url, just different bytes).
std::string flip_first(std::string part) {
  part[0] = part[0] == 'A' ? 'B' : 'A';
  return part;
}

// True if `detail` quotes the token or any sizeable piece of it.
bool leaks(std::string_view detail, std::string_view token) {
  if (token.size() >= 8 && detail.find(token) != std::string_view::npos) return true;
  for (const auto& part : split(token)) {
    if (part.size() >= 12 && detail.find(part) != std::string_view::npos) return true;
  }
  return false;
}

::testing::AssertionResult Refused(const VerifyResult& r, TokenError expected, std::string_view token) {
  if (r.identity) return ::testing::AssertionFailure() << "accepted as \"" << r.identity->user_id << "\"";
  if (r.error != expected) {
    return ::testing::AssertionFailure() << "error " << to_string(r.error) << ", expected " << to_string(expected)
                                         << " (detail: " << r.detail << ")";
  }
  if (r.detail.empty()) return ::testing::AssertionFailure() << "empty detail";
  if (leaks(r.detail, token)) return ::testing::AssertionFailure() << "detail contains the token: " << r.detail;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Accepted(const VerifyResult& r, const std::string& user = "alice") {
  if (!r.identity) {
    return ::testing::AssertionFailure() << "refused: " << to_string(r.error) << " (" << r.detail << ")";
  }
  if (r.identity->user_id != user) return ::testing::AssertionFailure() << "user " << r.identity->user_id;
  return ::testing::AssertionSuccess();
}

// DER ECDSA-Sig-Value from a JOSE r||s signature.
std::string jose_to_der(const std::string& raw) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    throw std::runtime_error("ECDSA_SIG");
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

// ---------------------------------------------------------------- acceptance

TEST(JwtAccept, Hs256WithTheSecret) {
  const auto verifier = make_verifier(secret_keys());
  const auto token = hs256(claims());
  const auto r = verifier.verify(token, kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity->expires_at, kExp);
  EXPECT_TRUE(r.identity->topics.empty());
}

TEST(JwtAccept, Rs256WithThePublicKeyPem) {
  const auto verifier = make_verifier(pem_keys(rsa_key()));
  const auto r = verifier.verify(fx::make_jwt("RS256", rsa_key().private_pem, claims("bob")), kNow);
  ASSERT_TRUE(Accepted(r, "bob"));
  EXPECT_EQ(r.identity->expires_at, kExp);
}

TEST(JwtAccept, Es256WithThePublicKeyPem) {
  const auto verifier = make_verifier(pem_keys(ec_key()));
  const auto r = verifier.verify(fx::make_jwt("ES256", ec_key().private_pem, claims("carol")), kNow);
  ASSERT_TRUE(Accepted(r, "carol"));
  EXPECT_EQ(r.identity->expires_at, kExp);
}

TEST(JwtAccept, SecretAndPemSideBySide) {
  KeySources sources;
  sources.secret = kSecret;
  sources.public_key_file = fx::write_temp_file("both.pem", rsa_key().public_pem);
  const auto verifier = make_verifier(KeySet::load(sources));
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims()), kNow)));
  EXPECT_TRUE(Accepted(verifier.verify(fx::make_jwt("RS256", rsa_key().private_pem, claims()), kNow)));
  const auto es = fx::make_jwt("ES256", ec_key().private_pem, claims());
  EXPECT_TRUE(Refused(verifier.verify(es, kNow), TokenError::unsupported_algorithm, es));
}

TEST(JwtAccept, IdentityCarriesSubExpAndTopics) {
  const auto verifier = make_verifier(secret_keys());
  const auto r = verifier.verify(
      hs256(R"({"sub":"user_42.eu:x@example.com","exp":1700009999,"topics":["post:*","user:alice","news/eu"]})"), kNow);
  ASSERT_TRUE(Accepted(r, "user_42.eu:x@example.com"));
  EXPECT_EQ(r.identity->expires_at, 1700009999);
  EXPECT_FALSE(r.identity->topics.empty());
  EXPECT_TRUE(r.identity->topics.allows("post:1"));
  EXPECT_TRUE(r.identity->topics.allows("post:"));
  EXPECT_TRUE(r.identity->topics.allows("user:alice"));
  EXPECT_TRUE(r.identity->topics.allows("news/eu"));
  EXPECT_FALSE(r.identity->topics.allows("user:bob"));
  EXPECT_FALSE(r.identity->topics.allows("user:alice2"));
  EXPECT_FALSE(r.identity->topics.allows("news/eu/x"));
  EXPECT_FALSE(r.identity->topics.allows("pos"));
}

TEST(JwtAccept, EmptyTopicsArrayAndWildcard) {
  const auto verifier = make_verifier(secret_keys());
  const auto none = verifier.verify(hs256(claims("alice", kExp, R"("topics":[])")), kNow);
  ASSERT_TRUE(Accepted(none));
  EXPECT_TRUE(none.identity->topics.empty());
  EXPECT_FALSE(none.identity->topics.allows("post:1"));
  const auto all = verifier.verify(hs256(claims("alice", kExp, R"("topics":["*"])")), kNow);
  ASSERT_TRUE(Accepted(all));
  EXPECT_TRUE(all.identity->topics.allows("anything/at:all"));
}

TEST(JwtAccept, TypVariantsAndExtraHeaderMembers) {
  const auto verifier = make_verifier(secret_keys());
  for (const std::string& header :
       Strings{R"({"alg":"HS256"})", R"({"alg":"HS256","typ":"JWT"})", R"({"alg":"HS256","typ":"jwt"})",
               R"({"alg":"HS256","typ":"at+jwt"})", R"({"typ":"JWT","x5t":"abc","alg":"HS256"})"}) {
    EXPECT_TRUE(Accepted(verifier.verify(fx::sign_jwt(header, claims(), "HS256", kSecret), kNow))) << header;
  }
}

TEST(JwtAccept, UnknownClaimsAreIgnored) {
  const auto verifier = make_verifier(secret_keys());
  EXPECT_TRUE(Accepted(verifier.verify(
      hs256(claims("alice", kExp, R"("jti":"x","scope":"a b","nested":{"k":[1,2,{"z":null}]},"iss":"anyone")")),
      kNow)));
}

TEST(JwtAccept, OverloadWithoutNowUsesTheSystemClock) {
  const auto verifier = make_verifier(secret_keys());
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims("alice", now + 600)))));
  const auto old = hs256(claims("alice", now - 600));
  EXPECT_TRUE(Refused(verifier.verify(old), TokenError::expired, old));
}

// ---------------------------------------------------------------- time claims

TEST(JwtTime, ExpiryBoundaryWithDefaultLeeway) {
  const auto verifier = make_verifier(secret_keys());  // leeway 30 s
  const auto token = hs256(claims("alice", kNow));
  EXPECT_TRUE(Accepted(verifier.verify(token, kNow - 1000)));
  EXPECT_TRUE(Accepted(verifier.verify(token, kNow)));
  EXPECT_TRUE(Accepted(verifier.verify(token, kNow + 29)));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow + 30), TokenError::expired, token));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow + 31), TokenError::expired, token));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow + 1'000'000), TokenError::expired, token));
}

TEST(JwtTime, ExpiryBoundaryWithoutLeeway) {
  const auto verifier = make_verifier(secret_keys(), leeway_policy(0));
  const auto token = hs256(claims("alice", kNow));
  EXPECT_TRUE(Accepted(verifier.verify(token, kNow - 1)));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::expired, token));  // RFC 7519: now must be < exp
}

TEST(JwtTime, ExpiryBoundaryWithLongLeeway) {
  const auto verifier = make_verifier(secret_keys(), leeway_policy(300));
  const auto token = hs256(claims("alice", kNow));
  EXPECT_TRUE(Accepted(verifier.verify(token, kNow + 299)));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow + 300), TokenError::expired, token));
}

TEST(JwtTime, NotBeforeHonoursLeeway) {
  const auto token = hs256(claims("alice", kExp, "\"nbf\":" + std::to_string(kNow + 30)));
  const auto verifier = make_verifier(secret_keys());  // leeway 30 s
  EXPECT_TRUE(Accepted(verifier.verify(token, kNow)));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow - 1), TokenError::not_yet_valid, token));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow - 1000), TokenError::not_yet_valid, token));

  const auto strict = make_verifier(secret_keys(), leeway_policy(0));
  EXPECT_TRUE(Accepted(strict.verify(token, kNow + 30)));  // nbf == now is valid
  EXPECT_TRUE(Refused(strict.verify(token, kNow + 29), TokenError::not_yet_valid, token));
  const auto past = hs256(claims("alice", kExp, "\"nbf\":" + std::to_string(kNow - 100)));
  EXPECT_TRUE(Accepted(strict.verify(past, kNow)));
}

TEST(JwtTime, IssuedAtHonoursLeeway) {
  const auto token = hs256(claims("alice", kExp, "\"iat\":" + std::to_string(kNow + 30)));
  const auto verifier = make_verifier(secret_keys());
  EXPECT_TRUE(Accepted(verifier.verify(token, kNow)));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow - 1), TokenError::issued_in_future, token));

  const auto strict = make_verifier(secret_keys(), leeway_policy(0));
  EXPECT_TRUE(Accepted(strict.verify(token, kNow + 30)));
  EXPECT_TRUE(Refused(strict.verify(token, kNow + 29), TokenError::issued_in_future, token));
  const auto past = hs256(claims("alice", kExp, "\"iat\":" + std::to_string(kNow - 100)));
  EXPECT_TRUE(Accepted(strict.verify(past, kNow)));
}

TEST(JwtTime, ExpiryIsCheckedBeforeNotBefore) {
  const auto verifier = make_verifier(secret_keys(), leeway_policy(0));
  const auto token = hs256(claims("alice", kNow - 10, "\"nbf\":" + std::to_string(kNow + 10)));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::expired, token));
}

TEST(JwtTime, MissingExpiry) {
  const auto verifier = make_verifier(secret_keys());
  for (const std::string& payload : Strings{R"({"sub":"alice"})", R"({"sub":"alice","nbf":1,"iat":1})"}) {
    const auto token = hs256(payload);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::missing_expiry, token)) << payload;
  }
}

TEST(JwtTime, NonNumericTimeClaimsAreInvalid) {
  const auto verifier = make_verifier(secret_keys());
  for (const std::string& payload :
       Strings{R"({"sub":"alice","exp":"1700003600"})", R"({"sub":"alice","exp":true})",
               R"({"sub":"alice","exp":null})", R"({"sub":"alice","exp":[1700003600]})",
               R"({"sub":"alice","exp":1700003600,"nbf":"0"})", R"({"sub":"alice","exp":1700003600,"iat":{}})"}) {
    const auto token = hs256(payload);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::invalid_claims, token)) << payload;
  }
}

TEST(JwtTime, FractionalExpiry) {
  const auto verifier = make_verifier(secret_keys(), leeway_policy(0));
  const auto token = hs256(R"({"sub":"alice","exp":1700003600.75})");
  const auto r = verifier.verify(token, kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity->expires_at, 1700003600);  // truncated toward zero
  EXPECT_TRUE(Refused(verifier.verify(token, 1700003600), TokenError::expired, token));
  const auto past = hs256(R"({"sub":"alice","exp":1600000000.5})");
  EXPECT_TRUE(Refused(verifier.verify(past, kNow), TokenError::expired, past));
  const auto exponent = hs256(R"({"sub":"alice","exp":1.7000036E9})");
  const auto e = verifier.verify(exponent, kNow);
  ASSERT_TRUE(Accepted(e));
  EXPECT_EQ(e.identity->expires_at, 1700003600);
}

TEST(JwtTime, HugeAndNegativeNumbersAreClampedNotUndefined) {
  const auto verifier = make_verifier(secret_keys());
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  // Far-future expiry: accepted, clamped to the largest representable time.
  for (const std::string& exp :
       Strings{"1e300", "18446744073709551615", "9223372036854775807", "1e19", "123456789012345678901234567890"}) {
    const auto r = verifier.verify(hs256(R"({"sub":"alice","exp":)" + exp + "}"), kNow);
    ASSERT_TRUE(Accepted(r)) << exp;
    EXPECT_GT(r.identity->expires_at, kNow + 100LL * 366 * 24 * 3600) << exp;
    EXPECT_LE(r.identity->expires_at, kMax) << exp;
  }
  // Far-past expiry: expired (no wrap-around into the future).
  for (const std::string& exp :
       Strings{"-1e300", "-9223372036854775808", "-1", "0", "-123456789012345678901234567890"}) {
    const auto token = hs256(R"({"sub":"alice","exp":)" + exp + "}");
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::expired, token)) << exp;
  }
  // Far-future nbf / iat: not valid yet.
  const auto nbf = hs256(claims("alice", kExp, R"("nbf":1e300)"));
  EXPECT_TRUE(Refused(verifier.verify(nbf, kNow), TokenError::not_yet_valid, nbf));
  const auto iat = hs256(claims("alice", kExp, R"("iat":18446744073709551615)"));
  EXPECT_TRUE(Refused(verifier.verify(iat, kNow), TokenError::issued_in_future, iat));
  // Far-past nbf / iat: fine.
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims("alice", kExp, R"("nbf":-1e300,"iat":-1e300)")), kNow)));
}

// ---------------------------------------------------------------- audience, issuer, subject, topics

TEST(JwtClaims, AudienceAsStringOrArray) {
  JwtPolicy policy;
  policy.audience = "notify";
  const auto verifier = make_verifier(secret_keys(), policy);
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims("alice", kExp, R"("aud":"notify")")), kNow)));
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims("alice", kExp, R"("aud":["other","notify"])")), kNow)));
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims("alice", kExp, R"("aud":[1,null,"notify"])")), kNow)));
}

TEST(JwtClaims, WrongOrMissingAudience) {
  JwtPolicy policy;
  policy.audience = "notify";
  const auto verifier = make_verifier(secret_keys(), policy);
  for (const std::string& aud : Strings{R"("aud":"other")", R"("aud":"Notify")", R"("aud":"notify ")", R"("aud":"")",
                                        R"("aud":["other","admin"])", R"("aud":[])", R"("aud":[["notify"]])",
                                        R"("aud":{"notify":true})", R"("aud":null)", R"("aud":1)", R"("x":1)"}) {
    const auto token = hs256(claims("alice", kExp, aud));
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::wrong_audience, token)) << aud;
  }
}

TEST(JwtClaims, AudienceIgnoredWhenNotRequired) {
  const auto verifier = make_verifier(secret_keys());
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims("alice", kExp, R"("aud":"whatever")")), kNow)));
}

TEST(JwtClaims, Issuer) {
  JwtPolicy policy;
  policy.issuer = "https://issuer.example";
  const auto verifier = make_verifier(secret_keys(), policy);
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims("alice", kExp, R"("iss":"https://issuer.example")")), kNow)));
  for (const std::string& iss : Strings{R"("iss":"https://evil.example")", R"("iss":"https://issuer.example/")",
                                        R"("iss":["https://issuer.example"])", R"("iss":null)", R"("x":1)"}) {
    const auto token = hs256(claims("alice", kExp, iss));
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::wrong_issuer, token)) << iss;
  }
}

TEST(JwtClaims, IssuerAndAudienceTogether) {
  JwtPolicy policy;
  policy.issuer = "iss-a";
  policy.audience = "aud-a";
  const auto verifier = make_verifier(secret_keys(), policy);
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims("alice", kExp, R"("iss":"iss-a","aud":"aud-a")")), kNow)));
  const auto bad_aud = hs256(claims("alice", kExp, R"("iss":"iss-a","aud":"aud-b")"));
  EXPECT_TRUE(Refused(verifier.verify(bad_aud, kNow), TokenError::wrong_audience, bad_aud));
  const auto bad_iss = hs256(claims("alice", kExp, R"("iss":"iss-b","aud":"aud-a")"));
  EXPECT_TRUE(Refused(verifier.verify(bad_iss, kNow), TokenError::wrong_issuer, bad_iss));
}

TEST(JwtClaims, InvalidOrMissingSubject) {
  const auto verifier = make_verifier(secret_keys());
  const std::string e = ",\"exp\":" + std::to_string(kExp) + "}";
  for (const std::string& payload :
       Strings{"{\"x\":1" + e, "{\"sub\":42" + e, "{\"sub\":null" + e, "{\"sub\":\"\"" + e, "{\"sub\":\"a b\"" + e,
               "{\"sub\":\"a/b\"" + e, "{\"sub\":[\"alice\"]" + e, "{\"sub\":\"" + std::string(129, 'a') + "\"" + e,
               "{\"sub\":\"al\\u0000ice\"" + e, "{\"sub\":\"\\u00e9\"" + e}) {
    const auto token = hs256(payload);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::invalid_subject, token)) << payload;
  }
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims(std::string(128, 'a'))), kNow), std::string(128, 'a')));
}

TEST(JwtClaims, TopicsMustBeAnArrayOfValidPatterns) {
  const auto verifier = make_verifier(secret_keys());
  for (const std::string& topics :
       Strings{R"("topics":"post:*")", R"("topics":{"post:*":true})", R"("topics":42)", R"("topics":null)",
               R"("topics":[42])", R"("topics":["post:1",null])", R"("topics":[""])", R"("topics":["bad topic"])",
               R"("topics":["a*b"])", R"("topics":["**"])", R"("topics":["post:**"])", R"("topics":["*post"])",
               R"("topics":[["post:1"]])"}) {
    const auto token = hs256(claims("alice", kExp, topics));
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::invalid_claims, token)) << topics;
  }
}

// ---------------------------------------------------------------- signatures

TEST(JwtSignature, TamperedPayloadIsRefused) {
  const auto verifier = make_verifier(secret_keys());
  const auto rs_verifier = make_verifier(pem_keys(rsa_key()));
  const auto es_verifier = make_verifier(pem_keys(ec_key()));
  const std::string forged_payload = fx::base64url(claims("admin"));
  for (const auto& [v, token] : {std::pair{&verifier, hs256(claims())},
                                 std::pair{&rs_verifier, fx::make_jwt("RS256", rsa_key().private_pem, claims())},
                                 std::pair{&es_verifier, fx::make_jwt("ES256", ec_key().private_pem, claims())}}) {
    auto parts = split(token);
    parts[1] = forged_payload;
    const auto forged = join(parts);
    EXPECT_TRUE(Refused(v->verify(forged, kNow), TokenError::bad_signature, forged));
  }
}

TEST(JwtSignature, TamperedHeaderIsRefused) {
  const auto verifier = make_verifier(secret_keys());
  auto parts = split(hs256(claims()));
  parts[0] = fx::base64url(R"({"alg":"HS256","typ":"JWT","x":1})");
  const auto forged = join(parts);
  EXPECT_TRUE(Refused(verifier.verify(forged, kNow), TokenError::bad_signature, forged));
}

TEST(JwtSignature, TamperedSignatureIsRefused) {
  const auto verifier = make_verifier(secret_keys());
  const auto rs_verifier = make_verifier(pem_keys(rsa_key()));
  const auto es_verifier = make_verifier(pem_keys(ec_key()));
  for (const auto& [v, token] : {std::pair{&verifier, hs256(claims())},
                                 std::pair{&rs_verifier, fx::make_jwt("RS256", rsa_key().private_pem, claims())},
                                 std::pair{&es_verifier, fx::make_jwt("ES256", ec_key().private_pem, claims())}}) {
    ASSERT_TRUE(Accepted(v->verify(token, kNow)));
    auto parts = split(token);
    parts[2] = flip_first(parts[2]);
    const auto forged = join(parts);
    EXPECT_TRUE(Refused(v->verify(forged, kNow), TokenError::bad_signature, forged));
    parts[2] = "";
    const auto unsigned_token = join(parts);
    EXPECT_TRUE(Refused(v->verify(unsigned_token, kNow), TokenError::bad_signature, unsigned_token));
    parts[2] = fx::base64url(fx::base64url_decode(split(token)[2]).substr(3));
    const auto truncated = join(parts);
    EXPECT_TRUE(Refused(v->verify(truncated, kNow), TokenError::bad_signature, truncated));
  }
}

TEST(JwtSignature, SignatureFromAnotherKeyIsRefused) {
  const auto hs = hs256(claims(), kOtherSecret);
  EXPECT_TRUE(Refused(make_verifier(secret_keys()).verify(hs, kNow), TokenError::bad_signature, hs));
  const auto rs = fx::make_jwt("RS256", rsa_other_key().private_pem, claims());
  EXPECT_TRUE(Refused(make_verifier(pem_keys(rsa_key())).verify(rs, kNow), TokenError::bad_signature, rs));
  const auto es = fx::make_jwt("ES256", ec_other_key().private_pem, claims());
  EXPECT_TRUE(Refused(make_verifier(pem_keys(ec_key())).verify(es, kNow), TokenError::bad_signature, es));
}

TEST(JwtSignature, SignatureIsCheckedBeforeClaims) {
  // An expired, subject-less token signed with the wrong key reports the
  // signature, not the claims (claims from a forger are meaningless).
  const auto verifier = make_verifier(secret_keys());
  const auto token = hs256(R"({"exp":1,"topics":7})", kOtherSecret);
  EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::bad_signature, token));
}

TEST(JwtSignature, Es256SignatureOfWrongLength) {
  const auto verifier = make_verifier(pem_keys(ec_key()));
  const auto token = fx::make_jwt("ES256", ec_key().private_pem, claims());
  auto parts = split(token);
  const std::string raw = fx::base64url_decode(parts[2]);
  ASSERT_EQ(raw.size(), 64u);
  for (const std::string& sig : Strings{raw.substr(0, 63), raw + std::string(1, '\0'), std::string(1, '\0') + raw,
                                        raw.substr(0, 32), raw + raw}) {
    parts[2] = fx::base64url(sig);
    const auto forged = join(parts);
    EXPECT_TRUE(Refused(verifier.verify(forged, kNow), TokenError::bad_signature, forged)) << sig.size();
  }
}

TEST(JwtSignature, Es256DerEncodedSignatureIsRefused) {
  const auto verifier = make_verifier(pem_keys(ec_key()));
  const auto token = fx::make_jwt("ES256", ec_key().private_pem, claims());
  auto parts = split(token);
  const std::string der = jose_to_der(fx::base64url_decode(parts[2]));
  ASSERT_NE(der.size(), 64u);
  parts[2] = fx::base64url(der);
  const auto forged = join(parts);
  EXPECT_TRUE(Refused(verifier.verify(forged, kNow), TokenError::bad_signature, forged));
}

TEST(JwtSignature, Es256DegenerateSignatures) {
  const auto verifier = make_verifier(pem_keys(ec_key()));
  auto parts = split(fx::make_jwt("ES256", ec_key().private_pem, claims()));
  for (const std::string& sig :
       Strings{std::string(64, '\0'), std::string(64, '\xff'), std::string(32, '\0') + "x" + std::string(31, '\x01')}) {
    parts[2] = fx::base64url(sig);
    const auto forged = join(parts);
    EXPECT_TRUE(Refused(verifier.verify(forged, kNow), TokenError::bad_signature, forged));
  }
}

TEST(JwtSignature, Rs256SignatureOfWrongLength) {
  const auto verifier = make_verifier(pem_keys(rsa_key()));
  auto parts = split(fx::make_jwt("RS256", rsa_key().private_pem, claims()));
  const std::string raw = fx::base64url_decode(parts[2]);
  ASSERT_EQ(raw.size(), 256u);
  for (const std::string& sig : Strings{raw.substr(1), std::string(1, '\0') + raw, std::string(256, '\0')}) {
    parts[2] = fx::base64url(sig);
    const auto forged = join(parts);
    EXPECT_TRUE(Refused(verifier.verify(forged, kNow), TokenError::bad_signature, forged));
  }
}

// ---------------------------------------------------------------- algorithms

TEST(JwtAlgorithm, NoneIsRefused) {
  const auto verifier = make_verifier(secret_keys());
  const std::string header = R"({"alg":"none","typ":"JWT"})";
  const auto empty_sig = fx::sign_jwt(header, claims(), "none", "");
  ASSERT_EQ(empty_sig.back(), '.');
  EXPECT_TRUE(Refused(verifier.verify(empty_sig, kNow), TokenError::unsupported_algorithm, empty_sig));
  // "none" with a (valid HMAC) signature attached.
  auto parts = split(empty_sig);
  parts[2] = split(hs256(claims()))[2];
  const auto with_sig = join(parts);
  EXPECT_TRUE(Refused(verifier.verify(with_sig, kNow), TokenError::unsupported_algorithm, with_sig));
  // Without the signature part at all: not even a JWS.
  const auto two_parts = empty_sig.substr(0, empty_sig.size() - 1);
  EXPECT_TRUE(Refused(verifier.verify(two_parts, kNow), TokenError::malformed, two_parts));
}

TEST(JwtAlgorithm, OtherAlgorithmsAreRefused) {
  KeySources sources;
  sources.secret = kSecret;
  sources.public_key_file = fx::write_temp_file("algs.pem", ec_key().public_pem);
  const auto verifier = make_verifier(KeySet::load(sources));
  for (const std::string& alg : Strings{"None", "NONE", "nOnE", "HS512", "HS384", "hs256", "PS256", "RS384", "RS512",
                                        "ES384", "ES512", "EdDSA", "ES256K", "", "HS256 ", " HS256", "HS256\\u0000"}) {
    const auto token = fx::sign_jwt(R"({"alg":")" + alg + R"(","typ":"JWT"})", claims(), "HS256", kSecret);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::unsupported_algorithm, token)) << alg;
  }
}

TEST(JwtAlgorithm, MissingOrNonStringAlgIsMalformed) {
  const auto verifier = make_verifier(secret_keys());
  for (const std::string& header : Strings{R"({"typ":"JWT"})", R"({})", R"({"alg":256})", R"({"alg":null})",
                                           R"({"alg":["HS256"]})", R"({"alg":{"name":"HS256"}})"}) {
    const auto token = fx::sign_jwt(header, claims(), "HS256", kSecret);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::malformed, token)) << header;
  }
}

TEST(JwtAlgorithm, LongAlgorithmNameIsNotEchoed) {
  const auto verifier = make_verifier(secret_keys());
  const std::string alg(300, 'Z');
  const auto token = fx::sign_jwt(R"({"alg":")" + alg + R"("})", claims(), "HS256", kSecret);
  const auto r = verifier.verify(token, kNow);
  EXPECT_TRUE(Refused(r, TokenError::unsupported_algorithm, token));
  EXPECT_EQ(r.detail.find(alg.substr(0, 20)), std::string::npos) << r.detail;
}

TEST(JwtAlgorithm, RsaPublicKeyAsHmacSecretIsRefused) {
  // The classic RS/HS confusion: HS256 signed with the RSA public key's PEM
  // text as the secret, against a key set that only holds that public key.
  const auto token = hs256(claims("mallory"), rsa_key().public_pem);
  EXPECT_TRUE(
      Refused(make_verifier(pem_keys(rsa_key())).verify(token, kNow), TokenError::unsupported_algorithm, token));
  // The same with the public key in a JWKS, the header naming its kid.
  const auto jwks = jwks_keys({fx::jwk_for(rsa_key(), "r1")});
  const auto with_kid = fx::make_jwt("HS256", rsa_key().public_pem, claims("mallory"), "r1");
  EXPECT_TRUE(Refused(make_verifier(jwks).verify(with_kid, kNow), TokenError::unsupported_algorithm, with_kid));
  // And when an unrelated HS256 secret is configured too: the HMAC simply fails.
  KeySources sources;
  sources.secret = kSecret;
  sources.public_key_file = fx::write_temp_file("confusion.pem", rsa_key().public_pem);
  EXPECT_TRUE(Refused(make_verifier(KeySet::load(sources)).verify(token, kNow), TokenError::bad_signature, token));
}

TEST(JwtAlgorithm, EcPublicKeyAsHmacSecretIsRefused) {
  const auto token = hs256(claims("mallory"), ec_key().public_pem);
  EXPECT_TRUE(Refused(make_verifier(pem_keys(ec_key())).verify(token, kNow), TokenError::unsupported_algorithm, token));
}

TEST(JwtAlgorithm, NoKeyOfTheTokensType) {
  const auto es = fx::make_jwt("ES256", ec_key().private_pem, claims());
  EXPECT_TRUE(Refused(make_verifier(pem_keys(rsa_key())).verify(es, kNow), TokenError::unsupported_algorithm, es));
  const auto rs = fx::make_jwt("RS256", rsa_key().private_pem, claims());
  EXPECT_TRUE(Refused(make_verifier(pem_keys(ec_key())).verify(rs, kNow), TokenError::unsupported_algorithm, rs));
  EXPECT_TRUE(Refused(make_verifier(secret_keys()).verify(rs, kNow), TokenError::unsupported_algorithm, rs));
  const auto hs = hs256(claims());
  EXPECT_TRUE(Refused(make_verifier(pem_keys(rsa_key())).verify(hs, kNow), TokenError::unsupported_algorithm, hs));
}

TEST(JwtAlgorithm, EmptyKeySetRefusesEverything) {
  const auto verifier = make_verifier(KeySet::load(KeySources{}));
  const auto hs = hs256(claims());
  EXPECT_TRUE(Refused(verifier.verify(hs, kNow), TokenError::unsupported_algorithm, hs));
}

// ---------------------------------------------------------------- kid and JWKS

class JwtJwks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    keys_ = new std::shared_ptr<const KeySet>(
        jwks_keys({fx::jwk_for(rsa_key(), "r1"), fx::jwk_for(ec_key(), "e1"), fx::jwk_for(ec_other_key(), "e2")}));
  }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }
  static std::shared_ptr<const KeySet>* keys_;
};
std::shared_ptr<const KeySet>* JwtJwks::keys_ = nullptr;

TEST_F(JwtJwks, SelectsTheKeyByKid) {
  const auto verifier = make_verifier(*keys_);
  EXPECT_TRUE(Accepted(verifier.verify(fx::make_jwt("RS256", rsa_key().private_pem, claims(), "r1"), kNow)));
  EXPECT_TRUE(Accepted(verifier.verify(fx::make_jwt("ES256", ec_key().private_pem, claims(), "e1"), kNow)));
  EXPECT_TRUE(Accepted(verifier.verify(fx::make_jwt("ES256", ec_other_key().private_pem, claims(), "e2"), kNow)));
}

TEST_F(JwtJwks, KidNamingAnotherKeyOfTheSameTypeFailsTheSignature) {
  const auto verifier = make_verifier(*keys_);
  const auto token = fx::make_jwt("ES256", ec_other_key().private_pem, claims(), "e1");
  EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::bad_signature, token));
  const auto swapped = fx::make_jwt("ES256", ec_key().private_pem, claims(), "e2");
  EXPECT_TRUE(Refused(verifier.verify(swapped, kNow), TokenError::bad_signature, swapped));
}

TEST_F(JwtJwks, UnknownKid) {
  const auto verifier = make_verifier(*keys_);
  for (const std::string& kid : Strings{"r3", "R1", "r1 ", "e", std::string(500, 'k')}) {
    const auto token = fx::make_jwt("RS256", rsa_key().private_pem, claims(), kid);
    const auto r = verifier.verify(token, kNow);
    EXPECT_TRUE(Refused(r, TokenError::unknown_key, token)) << kid;
    EXPECT_LT(r.detail.size(), 200u);  // a hostile kid is not echoed in full
  }
}

TEST_F(JwtJwks, UnknownKidDetailIsValidUtf8) {
  // BUG: jwt_verifier.cpp:169 quotes the first 64 bytes of the kid; cutting a
  // multi-byte character in two leaves invalid UTF-8 in the detail, which goes
  // into the 401 body ("charset=utf-8") and, on a token refresh, into a
  // WebSocket text frame (clients must fail the connection on invalid UTF-8).
  const auto verifier = make_verifier(*keys_);
  const std::string kid = std::string(63, 'k') + "\u00e9\u00e9";  // "é" is 2 bytes in UTF-8
  const auto token =
      fx::sign_jwt(R"({"alg":"RS256","kid":")" + kid + R"("})", claims(), "RS256", rsa_key().private_pem);
  const auto r = verifier.verify(token, kNow);
  ASSERT_TRUE(Refused(r, TokenError::unknown_key, token));
  EXPECT_TRUE(rules::valid_utf8(r.detail)) << r.detail;
}

TEST_F(JwtJwks, KidNamingAKeyOfTheOtherAlgorithmIsRefused) {
  const auto verifier = make_verifier(*keys_);
  const auto es_as_rsa = fx::make_jwt("ES256", ec_key().private_pem, claims(), "r1");
  EXPECT_TRUE(Refused(verifier.verify(es_as_rsa, kNow), TokenError::unsupported_algorithm, es_as_rsa));
  const auto rs_as_ec = fx::make_jwt("RS256", rsa_key().private_pem, claims(), "e1");
  EXPECT_TRUE(Refused(verifier.verify(rs_as_ec, kNow), TokenError::unsupported_algorithm, rs_as_ec));
  const auto hs_as_ec = fx::make_jwt("HS256", ec_key().public_pem, claims(), "e1");
  EXPECT_TRUE(Refused(verifier.verify(hs_as_ec, kNow), TokenError::unsupported_algorithm, hs_as_ec));
}

TEST_F(JwtJwks, TokenWithoutKidFindsNoJwksKey) {
  // JWKS keys are only selected by kid; a kid-less token has no key to check against.
  const auto verifier = make_verifier(*keys_);
  const auto token = fx::make_jwt("RS256", rsa_key().private_pem, claims());
  EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::unsupported_algorithm, token));
}

TEST_F(JwtJwks, NonStringKidIsMalformed) {
  const auto verifier = make_verifier(*keys_);
  for (const std::string& kid : Strings{"1", "null", R"(["r1"])", R"({"id":"r1"})"}) {
    const auto token = fx::sign_jwt(R"({"alg":"RS256","kid":)" + kid + "}", claims(), "RS256", rsa_key().private_pem);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::malformed, token)) << kid;
  }
}

TEST(JwtKid, SecretBesideJwks) {
  const auto keys = jwks_keys({fx::jwk_for(ec_key(), "e1")}, kSecret);
  const auto verifier = make_verifier(keys);
  EXPECT_TRUE(Accepted(verifier.verify(hs256(claims()), kNow)));  // no kid: the secret
  EXPECT_TRUE(Accepted(verifier.verify(fx::make_jwt("ES256", ec_key().private_pem, claims(), "e1"), kNow)));
  const auto unknown = fx::make_jwt("HS256", kSecret, claims(), "nope");
  EXPECT_TRUE(Refused(verifier.verify(unknown, kNow), TokenError::unknown_key, unknown));
  // A kid naming the EC key does not fall back to the HS256 secret.
  const auto hs_as_ec = fx::make_jwt("HS256", kSecret, claims(), "e1");
  EXPECT_TRUE(Refused(verifier.verify(hs_as_ec, kNow), TokenError::unsupported_algorithm, hs_as_ec));
}

TEST(JwtKid, KidIsIgnoredWithoutJwks) {
  // Without a JWKS there is nothing to look a kid up in: the kid-less keys are used.
  const auto verifier = make_verifier(pem_keys(ec_key()));
  EXPECT_TRUE(Accepted(verifier.verify(fx::make_jwt("ES256", ec_key().private_pem, claims(), "any"), kNow)));
  const auto other = fx::make_jwt("ES256", ec_other_key().private_pem, claims(), "any");
  EXPECT_TRUE(Refused(verifier.verify(other, kNow), TokenError::bad_signature, other));
}

// ---------------------------------------------------------------- malformed tokens

TEST(JwtMalformed, EmptyTokenIsMissing) {
  const auto verifier = make_verifier(secret_keys());
  const auto r = verifier.verify("", kNow);
  EXPECT_FALSE(r.identity);
  EXPECT_EQ(r.error, TokenError::missing);
}

TEST(JwtMalformed, WrongNumberOfParts) {
  const auto verifier = make_verifier(secret_keys());
  const auto token = hs256(claims());
  const auto parts = split(token);
  for (const std::string& bad :
       Strings{parts[0], parts[0] + "." + parts[1], token + ".", token + "." + parts[2], "." + token, token + "..",
               std::string(".."), std::string("..."), std::string("a.b"), parts[0] + ".." + parts[2]}) {
    EXPECT_TRUE(Refused(verifier.verify(bad, kNow), TokenError::malformed, bad)) << bad;
  }
}

TEST(JwtMalformed, NotBase64Url) {
  const auto verifier = make_verifier(secret_keys());
  const auto token = hs256(claims());
  const auto parts = split(token);
  const std::string std_b64_header = "eyJhbGciOiJIUzI1NiJ9+";  // '+' is standard base64, not base64url
  for (const std::string& bad :
       Strings{std_b64_header + "." + parts[1] + "." + parts[2], parts[0] + "=." + parts[1] + "." + parts[2],
               parts[0] + "." + parts[1] + "==." + parts[2], parts[0] + "." + parts[1] + "." + parts[2] + "=",
               parts[0] + "." + parts[1] + "." + parts[2].substr(0, 10) + "/" + parts[2].substr(11),
               parts[0] + " ." + parts[1] + "." + parts[2], parts[0] + "." + parts[1] + "\n." + parts[2],
               parts[0] + "." + parts[1] + "." + parts[2] + "AA"}) {  // 4n+1 chars
    EXPECT_TRUE(Refused(verifier.verify(bad, kNow), TokenError::malformed, bad)) << bad;
  }
}

TEST(JwtMalformed, HeaderOrPayloadNotAJsonObject) {
  const auto verifier = make_verifier(secret_keys());
  const std::string good_header = R"({"alg":"HS256","typ":"JWT"})";
  for (const auto& [header, payload] :
       std::initializer_list<std::pair<std::string, std::string>>{{"not json", claims()},
                                                                  {R"(["alg","HS256"])", claims()},
                                                                  {R"("HS256")", claims()},
                                                                  {"", claims()},
                                                                  {R"({"alg":"HS256")", claims()},
                                                                  {R"({"alg":"HS256"} trailing)", claims()},
                                                                  {good_header, "not json"},
                                                                  {good_header, R"(["alice"])"},
                                                                  {good_header, "null"},
                                                                  {good_header, "1700003600"},
                                                                  {good_header, ""}}) {
    const auto token = fx::sign_jwt(header, payload, "HS256", kSecret);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::malformed, token)) << header << " / " << payload;
  }
}

TEST(JwtMalformed, DeeplyNestedJsonIsRefusedNotFatal) {
  const auto verifier = make_verifier(secret_keys());
  const std::string deep = std::string(2000, '[') + std::string(2000, ']');
  const auto token = hs256(claims("alice", kExp, "\"x\":" + deep));
  EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::malformed, token));
}

TEST(JwtMalformed, OversizedToken) {
  const auto verifier = make_verifier(secret_keys());
  const auto big = hs256(claims("alice", kExp, "\"pad\":\"" + std::string(13 * 1024, 'x') + "\""));
  ASSERT_GT(big.size(), 17u * 1024);
  EXPECT_TRUE(Refused(verifier.verify(big, kNow), TokenError::malformed, big));
  const std::string garbage(17 * 1024, 'A');
  EXPECT_TRUE(Refused(verifier.verify(garbage, kNow), TokenError::malformed, garbage));
}

TEST(JwtMalformed, SizeLimitIsSixteenKiB) {
  const auto verifier = make_verifier(secret_keys());
  bool saw_limit = false, saw_over = false;
  for (std::size_t pad = 11'000; !(saw_limit && saw_over); ++pad) {
    const auto token = hs256(claims("alice", kExp, "\"pad\":\"" + std::string(pad, 'x') + "\""));
    if (token.size() > 16 * 1024 + 4) break;
    if (token.size() == 16 * 1024) {
      saw_limit = true;
      EXPECT_TRUE(Accepted(verifier.verify(token, kNow)));
    } else if (token.size() == 16 * 1024 + 1) {
      saw_over = true;
      EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::malformed, token));
    }
  }
  EXPECT_TRUE(saw_limit || saw_over);
}

TEST(JwtMalformed, CritHeaderIsRefused) {
  const auto verifier = make_verifier(secret_keys());
  for (const std::string& header : Strings{R"({"alg":"HS256","typ":"JWT","crit":["exp"],"exp":1})",
                                           R"({"alg":"HS256","crit":[]})", R"({"alg":"HS256","crit":null})"}) {
    const auto token = fx::sign_jwt(header, claims(), "HS256", kSecret);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::malformed, token)) << header;
  }
}

TEST(JwtMalformed, TypOtherThanJwtIsRefused) {
  const auto verifier = make_verifier(secret_keys());
  for (const std::string& typ : Strings{R"("JOSE+JSON")", R"("JOSE")", R"("JWE")", R"("")", R"(1)", R"(null)"}) {
    const auto token = fx::sign_jwt(R"({"alg":"HS256","typ":)" + typ + "}", claims(), "HS256", kSecret);
    EXPECT_TRUE(Refused(verifier.verify(token, kNow), TokenError::malformed, token)) << typ;
  }
}

// ---------------------------------------------------------------- key rotation

TEST(JwtKeys, SetKeysSwapsTheKeySet) {
  auto verifier = make_verifier(secret_keys());
  const auto old_token = hs256(claims());
  const auto new_token = hs256(claims("bob"), kOtherSecret);
  ASSERT_TRUE(Accepted(verifier.verify(old_token, kNow)));
  ASSERT_TRUE(Refused(verifier.verify(new_token, kNow), TokenError::bad_signature, new_token));

  const auto next = secret_keys(kOtherSecret);
  verifier.set_keys(next);
  EXPECT_EQ(verifier.keys(), next);
  EXPECT_TRUE(Refused(verifier.verify(old_token, kNow), TokenError::bad_signature, old_token));
  EXPECT_TRUE(Accepted(verifier.verify(new_token, kNow), "bob"));

  // Rotating to another key type entirely.
  verifier.set_keys(pem_keys(ec_key()));
  EXPECT_TRUE(Refused(verifier.verify(new_token, kNow), TokenError::unsupported_algorithm, new_token));
  EXPECT_TRUE(Accepted(verifier.verify(fx::make_jwt("ES256", ec_key().private_pem, claims()), kNow)));
}

TEST(JwtKeys, PolicyIsExposed) {
  JwtPolicy policy;
  policy.audience = "a";
  policy.issuer = "i";
  policy.leeway = std::chrono::seconds(7);
  const auto verifier = make_verifier(secret_keys(), policy);
  EXPECT_EQ(verifier.policy().audience, "a");
  EXPECT_EQ(verifier.policy().issuer, "i");
  EXPECT_EQ(verifier.policy().leeway.count(), 7);
}

}  // namespace
}  // namespace notify::auth
