// Checks the test fixtures themselves: base64url, JWT signing, JWKs and the
// test PKI, verified with OpenSSL calls independent of the ones that made them.
#include "tests/support/crypto_fixtures.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace notify::testing {
namespace {

template <auto Free>
struct OsslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter<EVP_MD_CTX_free>>;
using MacPtr = std::unique_ptr<EVP_MAC, OsslDeleter<EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OsslDeleter<EVP_MAC_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OsslDeleter<ECDSA_SIG_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter<OSSL_PARAM_free>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using StorePtr = std::unique_ptr<X509_STORE, OsslDeleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslDeleter<X509_STORE_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OsslDeleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OsslDeleter<SSL_free>>;

const unsigned char* bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }

BioPtr read_bio(const std::string& data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) throw std::runtime_error("BIO_new_mem_buf");
  return bio;
}

PkeyPtr public_key(const std::string& pem) {
  PkeyPtr key(PEM_read_bio_PUBKEY(read_bio(pem).get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("bad public key PEM");
  return key;
}

PkeyPtr private_key(const std::string& pem) {
  PkeyPtr key(PEM_read_bio_PrivateKey(read_bio(pem).get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("bad private key PEM");
  return key;
}

X509Ptr certificate(const std::string& pem) {
  X509Ptr cert(PEM_read_bio_X509(read_bio(pem).get(), nullptr, nullptr, nullptr));
  if (!cert) throw std::runtime_error("bad certificate PEM");
  return cert;
}

std::string group_name(EVP_PKEY* key) {
  std::array<char, 80> name{};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name.data(), name.size(), &len) != 1) return "";
  return std::string(name.data(), len);
}

std::vector<std::string> split_token(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto dot = token.find('.', start);
    parts.push_back(token.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

std::string signing_input(const std::string& token) { return token.substr(0, token.rfind('.')); }

// SHA-256 signature check with the EVP verification API.
bool verify_sha256(EVP_PKEY* key, const std::string& data, const std::string& signature) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) != 1) {
    throw std::runtime_error("EVP_DigestVerifyInit_ex");
  }
  const int rc = EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(data), data.size());
  ERR_clear_error();
  return rc == 1;
}

// JOSE r||s -> DER ECDSA-Sig-Value.
std::string jose_to_der(const std::string& raw) {
  if (raw.size() != 64) throw std::runtime_error("ES256 signature is not 64 bytes");
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(bytes(raw), 32, nullptr));
  BnPtr s(BN_bin2bn(bytes(raw) + 32, 32, nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) throw std::runtime_error("ECDSA_SIG");
  r.release();  // now owned by sig
  s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &p);
  return der;
}

// HMAC-SHA256 through an EVP_MAC context (the fixture uses the one-shot EVP_Q_mac).
std::string hmac_sha256(const std::string& key, const std::string& data) {
  MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  std::size_t len = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), bytes(key), key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), bytes(data), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1) {
    throw std::runtime_error("HMAC");
  }
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

// Rebuilds a public key from JWK parameters with EVP_PKEY_fromdata.
PkeyPtr key_from_jwk(const boost::json::object& jwk) {
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  BnPtr n, e;
  std::string point;
  const std::string kty(jwk.at("kty").as_string());
  if (kty == "RSA") {
    const std::string n_bytes = base64url_decode(jwk.at("n").as_string());
    const std::string e_bytes = base64url_decode(jwk.at("e").as_string());
    n.reset(BN_bin2bn(bytes(n_bytes), static_cast<int>(n_bytes.size()), nullptr));
    e.reset(BN_bin2bn(bytes(e_bytes), static_cast<int>(e_bytes.size()), nullptr));
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
  } else {
    const std::string x = base64url_decode(jwk.at("x").as_string());
    const std::string y = base64url_decode(jwk.at("y").as_string());
    if (x.size() != 32 || y.size() != 32) throw std::runtime_error("JWK x/y are not 32 bytes");
    point = "\x04" + x + y;
    OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  }
  ParamsPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, kty == "RSA" ? "RSA" : "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    throw std::runtime_error("EVP_PKEY_fromdata");
  }
  return PkeyPtr(raw);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// --- base64url ---

TEST(CryptoFixturesBase64Url, MatchesRfc4648Vectors) {
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foo"), "Zm9v");
  EXPECT_EQ(base64url("foob"), "Zm9vYg");
  EXPECT_EQ(base64url("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url("\xfb\xff\xbf"), "-_-_");  // "+/+/" in standard base64
  EXPECT_EQ(base64url_decode("-_-_"), "\xfb\xff\xbf");
  EXPECT_EQ(base64url_decode("Zm9vYmE"), "fooba");
}

TEST(CryptoFixturesBase64Url, RoundTripsArbitraryBytes) {
  std::mt19937 rng(12345);
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(base64url_decode(base64url(all)), all);
  for (std::size_t len = 0; len < 100; ++len) {
    std::string data(len, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    const std::string encoded = base64url(data);
    EXPECT_EQ(encoded.find_first_of("+/="), std::string::npos) << encoded;
    EXPECT_EQ(encoded.size(), (len * 4 + 2) / 3);
    EXPECT_EQ(base64url_decode(encoded), data) << "length " << len;
  }
}

TEST(CryptoFixturesBase64Url, DecodeRejectsBadInput) {
  const std::vector<std::string> bad_inputs = {
      "Zg==", "Zm8=", "Z", "Zm9vY", "Zm9v!", "+/+/", "Zm 9v", "Zm9v\n", "Zh", "Zm9", std::string("Zm\0v", 4)};
  for (const std::string& bad : bad_inputs) {
    EXPECT_THROW(base64url_decode(bad), std::runtime_error) << bad;
  }
}

// --- keys ---

TEST(CryptoFixturesKeys, GeneratesTheRequestedKeyTypesAsPkcs8AndSpki) {
  const KeyPair rsa = make_rsa_key();
  const KeyPair rsa_small = make_rsa_key(1024);
  const KeyPair p256 = make_ec_p256_key();
  const KeyPair p384 = make_ec_p384_key();
  const KeyPair ed = make_ed25519_key();
  for (const KeyPair* k : {&rsa, &rsa_small, &p256, &p384, &ed}) {
    EXPECT_EQ(k->private_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u) << k->private_pem;
    EXPECT_EQ(k->public_pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u) << k->public_pem;
    // The public half really belongs to the private half.
    EXPECT_EQ(EVP_PKEY_eq(private_key(k->private_pem).get(), public_key(k->public_pem).get()), 1);
  }
  EXPECT_TRUE(EVP_PKEY_is_a(public_key(rsa.public_pem).get(), "RSA"));
  EXPECT_EQ(EVP_PKEY_get_bits(public_key(rsa.public_pem).get()), 2048);
  EXPECT_EQ(EVP_PKEY_get_bits(public_key(rsa_small.public_pem).get()), 1024);
  EXPECT_EQ(group_name(public_key(p256.public_pem).get()), "prime256v1");
  EXPECT_EQ(group_name(public_key(p384.public_pem).get()), "secp384r1");
  EXPECT_TRUE(EVP_PKEY_is_a(public_key(ed.public_pem).get(), "ED25519"));
  EXPECT_NE(make_ec_p256_key().private_pem, p256.private_pem);
}

// --- JWT signing ---

TEST(CryptoFixturesJwt, Hs256MatchesRfc7515AppendixA1) {
  // The RFC's header and payload contain CR LF, which only a verbatim header can reproduce.
  const std::string key =
      base64url_decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  const std::string token =
      sign_jwt("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}",
               "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}", "HS256", key);
  EXPECT_EQ(token,
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
            ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
            ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
}

TEST(CryptoFixturesJwt, Hs256SignatureIsHmacOfTheSigningInput) {
  for (const std::string& secret : {std::string("s3cret"), std::string(), std::string("bin\0ary\xff", 8)}) {
    const std::string token = make_jwt("HS256", secret, R"({"sub":"alice"})");
    const auto parts = split_token(token);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(base64url_decode(parts[2]), hmac_sha256(secret, signing_input(token)));
    EXPECT_NE(base64url_decode(parts[2]), hmac_sha256(secret + "x", signing_input(token)));
  }
}

TEST(CryptoFixturesJwt, Rs256SignatureVerifiesWithThePublicKey) {
  const KeyPair key = make_rsa_key();
  const std::string token = make_jwt("RS256", key.private_pem, R"({"sub":"alice"})", "rsa-1");
  const auto parts = split_token(token);
  ASSERT_EQ(parts.size(), 3u);
  const std::string signature = base64url_decode(parts[2]);
  EXPECT_EQ(signature.size(), 256u);
  const auto pub = public_key(key.public_pem);
  EXPECT_TRUE(verify_sha256(pub.get(), signing_input(token), signature));
  // PKCS#1 v1.5 is deterministic; a different payload or key does not verify.
  EXPECT_EQ(make_jwt("RS256", key.private_pem, R"({"sub":"alice"})", "rsa-1"), token);
  EXPECT_FALSE(verify_sha256(pub.get(), signing_input(token) + "x", signature));
  EXPECT_FALSE(verify_sha256(public_key(make_rsa_key().public_pem).get(), signing_input(token), signature));
}

TEST(CryptoFixturesJwt, Es256SignatureIsRawRAndSAndVerifies) {
  const KeyPair key = make_ec_p256_key();
  const auto pub = public_key(key.public_pem);
  // r (or s) has a leading zero byte about once in 256 signatures: sign until both
  // left-padded cases have been seen, verifying every signature.
  bool short_r = false;
  bool short_s = false;
  int signed_tokens = 0;
  for (; signed_tokens < 10000 && !(short_r && short_s); ++signed_tokens) {
    const std::string token = make_jwt("ES256", key.private_pem, R"({"n":)" + std::to_string(signed_tokens) + "}");
    const auto parts = split_token(token);
    ASSERT_EQ(parts.size(), 3u);
    const std::string raw = base64url_decode(parts[2]);
    ASSERT_EQ(raw.size(), 64u) << token;
    ASSERT_TRUE(verify_sha256(pub.get(), signing_input(token), jose_to_der(raw))) << token;
    ASSERT_FALSE(verify_sha256(pub.get(), signing_input(token), raw)) << "raw r||s must not pass as DER";
    short_r = short_r || raw[0] == '\0';
    short_s = short_s || raw[32] == '\0';
  }
  EXPECT_TRUE(short_r && short_s) << "no signature with a short r and one with a short s in " << signed_tokens
                                  << " tries";
  const std::string token = make_jwt("ES256", key.private_pem, "{}");
  EXPECT_FALSE(verify_sha256(public_key(make_ec_p256_key().public_pem).get(), signing_input(token),
                             jose_to_der(base64url_decode(split_token(token)[2]))));
}

TEST(CryptoFixturesJwt, NoneHasAnEmptySignature) {
  const std::string token = make_jwt("none", "", R"({"sub":"alice"})");
  EXPECT_EQ(token.back(), '.');
  const auto parts = split_token(token);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2], "");
  EXPECT_EQ(base64url_decode(parts[0]), R"({"alg":"none","typ":"JWT"})");
}

TEST(CryptoFixturesJwt, HeaderAndPayloadAreUsedVerbatim) {
  const std::string header = R"({"alg":"none", "alg":"HS256" ,"crit":["x"]})";
  const std::string payload = "not even json \x01";
  const std::string token = sign_jwt(header, payload, "HS256", "k");
  const auto parts = split_token(token);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(base64url_decode(parts[0]), header);
  EXPECT_EQ(base64url_decode(parts[1]), payload);
  EXPECT_EQ(token, base64url(header) + "." + base64url(payload) + "." +
                       base64url(hmac_sha256("k", base64url(header) + "." + base64url(payload))));
}

TEST(CryptoFixturesJwt, MakeJwtBuildsTheHeader) {
  const KeyPair key = make_ec_p256_key();
  auto header = [](const std::string& token) {
    return boost::json::parse(base64url_decode(split_token(token)[0])).as_object();
  };
  const auto plain = header(make_jwt("ES256", key.private_pem, "{}"));
  EXPECT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain.at("alg"), "ES256");
  EXPECT_EQ(plain.at("typ"), "JWT");
  const auto with_kid = header(make_jwt("HS256", "k", "{}", "key \"1\"\\\n"));
  EXPECT_EQ(with_kid.size(), 3u);
  EXPECT_EQ(with_kid.at("alg"), "HS256");
  EXPECT_EQ(with_kid.at("kid"), "key \"1\"\\\n");
  EXPECT_EQ(base64url_decode(split_token(make_jwt("HS256", "k", R"({"a":1})"))[1]), R"({"a":1})");
}

TEST(CryptoFixturesJwt, RefusesMismatchedKeysAndUnknownAlgorithms) {
  const KeyPair rsa = make_rsa_key(1024);
  const KeyPair p256 = make_ec_p256_key();
  EXPECT_THROW(make_jwt("RS256", p256.private_pem, "{}"), std::runtime_error);
  EXPECT_THROW(make_jwt("ES256", rsa.private_pem, "{}"), std::runtime_error);
  EXPECT_THROW(make_jwt("ES256", make_ec_p384_key().private_pem, "{}"), std::runtime_error);
  EXPECT_THROW(make_jwt("ES256", make_ed25519_key().private_pem, "{}"), std::runtime_error);
  EXPECT_THROW(make_jwt("RS256", rsa.public_pem, "{}"), std::runtime_error);
  EXPECT_THROW(make_jwt("HS512", "k", "{}"), std::runtime_error);
  try {
    make_jwt("RS256", "-----BEGIN PRIVATE KEY-----\nZm9v\n-----END PRIVATE KEY-----\n", "{}");
    FAIL() << "garbage PEM accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("private key"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ERR_peek_error(), 0u) << "the OpenSSL error queue is drained into the exception";
}

// --- JWK / JWKS ---

TEST(CryptoFixturesJwk, RsaJwkHasTheRightFieldsAndRebuildsTheKey) {
  const KeyPair key = make_rsa_key();
  const auto jwk = boost::json::parse(jwk_for(key, "rsa-1")).as_object();
  EXPECT_EQ(jwk.size(), 6u);
  EXPECT_EQ(jwk.at("kty"), "RSA");
  EXPECT_EQ(jwk.at("kid"), "rsa-1");
  EXPECT_EQ(jwk.at("use"), "sig");
  EXPECT_EQ(jwk.at("alg"), "RS256");
  EXPECT_EQ(jwk.at("e"), "AQAB");
  EXPECT_EQ(base64url_decode(jwk.at("n").as_string()).size(), 256u);
  EXPECT_EQ(EVP_PKEY_eq(key_from_jwk(jwk).get(), public_key(key.public_pem).get()), 1);
}

void expect_ec_jwk(const KeyPair& key) {
  const auto jwk = boost::json::parse(jwk_for(key, "ec-1")).as_object();
  EXPECT_EQ(jwk.size(), 7u);
  EXPECT_EQ(jwk.at("kty"), "EC");
  EXPECT_EQ(jwk.at("kid"), "ec-1");
  EXPECT_EQ(jwk.at("use"), "sig");
  EXPECT_EQ(jwk.at("alg"), "ES256");
  EXPECT_EQ(jwk.at("crv"), "P-256");
  EXPECT_EQ(base64url_decode(jwk.at("x").as_string()).size(), 32u);
  EXPECT_EQ(base64url_decode(jwk.at("y").as_string()).size(), 32u);
  EXPECT_EQ(EVP_PKEY_eq(key_from_jwk(jwk).get(), public_key(key.public_pem).get()), 1);
}

TEST(CryptoFixturesJwk, EcJwkHasTheRightFieldsAndLeftPadsCoordinates) {
  expect_ec_jwk(make_ec_p256_key());
  // About one key in 256 has an x (or y) shorter than 32 bytes: find both cases.
  bool short_x = false;
  bool short_y = false;
  for (int i = 0; i < 10000 && !(short_x && short_y); ++i) {
    const KeyPair key = make_ec_p256_key();
    const auto pub = public_key(key.public_pem);
    auto is_short = [&](const char* param) {
      BIGNUM* raw = nullptr;
      if (EVP_PKEY_get_bn_param(pub.get(), param, &raw) != 1) throw std::runtime_error("EVP_PKEY_get_bn_param");
      const BnPtr bn(raw);
      return BN_num_bytes(bn.get()) < 32;
    };
    const bool x = is_short(OSSL_PKEY_PARAM_EC_PUB_X);
    const bool y = is_short(OSSL_PKEY_PARAM_EC_PUB_Y);
    if ((x && !short_x) || (y && !short_y)) expect_ec_jwk(key);
    short_x = short_x || x;
    short_y = short_y || y;
  }
  EXPECT_TRUE(short_x && short_y);
}

TEST(CryptoFixturesJwk, EscapesTheKidAndRefusesOtherKeyTypes) {
  const auto jwk = boost::json::parse(jwk_for(make_ec_p256_key(), "a\"b\\c\x01")).as_object();
  EXPECT_EQ(jwk.at("kid"), "a\"b\\c\x01");
  EXPECT_THROW(jwk_for(make_ec_p384_key(), "x"), std::runtime_error);
  EXPECT_THROW(jwk_for(make_ed25519_key(), "x"), std::runtime_error);
}

TEST(CryptoFixturesJwk, JwksWrapsTheKeys) {
  const std::string a = jwk_for(make_rsa_key(1024), "a");
  const std::string b = jwk_for(make_ec_p256_key(), "b");
  const auto jwks = boost::json::parse(jwks_json({a, b})).as_object();
  ASSERT_EQ(jwks.size(), 1u);
  const auto& keys = jwks.at("keys").as_array();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], boost::json::parse(a));
  EXPECT_EQ(keys[1], boost::json::parse(b));
  EXPECT_EQ(jwks_json({}), R"({"keys":[]})");
}

// --- PKI ---

struct Verification {
  int error;  // X509_V_OK on success
  int depth;
};

// X509_verify_cert with strict checks, a purpose and optionally a host name or IP.
Verification verify_chain(const std::string& ca_pem, const std::string& cert_pem, int purpose,
                          const char* host = nullptr, const char* ip = nullptr) {
  StorePtr store(X509_STORE_new());
  const X509Ptr ca = certificate(ca_pem);
  const X509Ptr cert = certificate(cert_pem);
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), purpose) != 1) {
    throw std::runtime_error("X509_STORE setup");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  if (host != nullptr) X509_VERIFY_PARAM_set1_host(param, host, 0);
  if (ip != nullptr) X509_VERIFY_PARAM_set1_ip_asc(param, ip);
  const int ok = X509_verify_cert(ctx.get());
  const Verification result{X509_STORE_CTX_get_error(ctx.get()), X509_STORE_CTX_get_error_depth(ctx.get())};
  ERR_clear_error();
  if ((ok == 1) != (result.error == X509_V_OK)) throw std::runtime_error("inconsistent X509_verify_cert result");
  return result;
}

std::string common_name(X509* cert) {
  std::array<char, 256> cn{};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn.data(), cn.size());
  return cn.data();
}

TEST(CryptoFixturesPki, IsGeneratedOnce) {
  EXPECT_EQ(&test_pki(), &test_pki());
  EXPECT_FALSE(test_pki().ca_cert_pem.empty());
}

TEST(CryptoFixturesPki, ServerAndClientChainsVerifyAgainstTheCa) {
  const TestPki& pki = test_pki();
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.ca_cert_pem, X509_PURPOSE_ANY).error, X509_V_OK);
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.server_cert_pem, X509_PURPOSE_SSL_SERVER, "localhost").error, X509_V_OK);
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.server_cert_pem, X509_PURPOSE_SSL_SERVER, nullptr, "127.0.0.1").error,
            X509_V_OK);
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.client_cert_pem, X509_PURPOSE_SSL_CLIENT).error, X509_V_OK);

  // Wrong names and wrong purposes are refused.
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.server_cert_pem, X509_PURPOSE_SSL_SERVER, "example.com").error,
            X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.server_cert_pem, X509_PURPOSE_SSL_SERVER, nullptr, "127.0.0.2").error,
            X509_V_ERR_IP_ADDRESS_MISMATCH);
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.server_cert_pem, X509_PURPOSE_SSL_CLIENT).error,
            X509_V_ERR_INVALID_PURPOSE);
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.client_cert_pem, X509_PURPOSE_SSL_SERVER).error,
            X509_V_ERR_INVALID_PURPOSE);
}

TEST(CryptoFixturesPki, RogueCertificateIsNotTrusted) {
  const TestPki& pki = test_pki();
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.rogue_cert_pem, X509_PURPOSE_SSL_CLIENT).error,
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(verify_chain(pki.ca_cert_pem, pki.rogue_cert_pem, X509_PURPOSE_SSL_SERVER, "localhost").error,
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST(CryptoFixturesPki, CertificatesHaveTheExpectedContents) {
  const TestPki& pki = test_pki();
  const X509Ptr ca = certificate(pki.ca_cert_pem);
  const X509Ptr server = certificate(pki.server_cert_pem);
  const X509Ptr client = certificate(pki.client_cert_pem);
  const X509Ptr rogue = certificate(pki.rogue_cert_pem);
  EXPECT_EQ(common_name(server.get()), "localhost");
  EXPECT_EQ(common_name(client.get()), "backend");
  EXPECT_EQ(common_name(rogue.get()), "rogue");

  const std::time_t now = std::time(nullptr);
  std::time_t in_nine_years = now + 9L * 366 * 24 * 3600;
  std::time_t half_an_hour_ago = now - 1800;
  for (X509* cert : {ca.get(), server.get(), client.get(), rogue.get()}) {
    SCOPED_TRACE(common_name(cert));
    EXPECT_EQ(X509_get_version(cert), X509_VERSION_3);
    EXPECT_EQ(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    EXPECT_EQ(group_name(X509_get0_pubkey(cert)), "prime256v1");
    EXPECT_LT(X509_cmp_time(X509_get0_notBefore(cert), &half_an_hour_ago), 0);
    EXPECT_GT(X509_cmp_time(X509_get0_notAfter(cert), &in_nine_years), 0);
    EXPECT_NE(X509_get0_subject_key_id(cert), nullptr);
    EXPECT_NE(X509_get0_authority_key_id(cert), nullptr);
    EXPECT_TRUE(X509_get_extension_flags(cert) & EXFLAG_KUSAGE);
  }
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  for (X509* leaf : {server.get(), client.get(), rogue.get()}) {
    EXPECT_EQ(X509_check_ca(leaf), 0);
    EXPECT_EQ(X509_get_key_usage(leaf), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  }
  EXPECT_EQ(X509_get_extended_key_usage(server.get()), static_cast<std::uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_get_extended_key_usage(client.get()), static_cast<std::uint32_t>(XKU_SSL_CLIENT));
  // The server's and client's AKID is the CA's SKID.
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(server.get()), X509_get0_subject_key_id(ca.get())), 0);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(client.get()), X509_get0_subject_key_id(ca.get())), 0);
  // Each key matches its certificate.
  EXPECT_EQ(X509_check_private_key(server.get(), private_key(pki.server_key_pem).get()), 1);
  EXPECT_EQ(X509_check_private_key(client.get(), private_key(pki.client_key_pem).get()), 1);
  EXPECT_EQ(X509_check_private_key(rogue.get(), private_key(pki.rogue_key_pem).get()), 1);
  EXPECT_EQ(pki.server_key_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
}

// An in-memory TLS handshake between two SSL objects over a BIO pair, both
// sides requiring and verifying the peer's certificate against `trusted_ca`.
struct HandshakeResult {
  bool client_done = false;
  bool server_done = false;
  long client_verify = -1;  // what the client thought of the server certificate
  long server_verify = -1;  // what the server thought of the client certificate
  std::string client_cn_seen_by_server;
};

SslCtxPtr tls_context(const SSL_METHOD* method, const std::string& trusted_ca, const std::string& cert_pem,
                      const std::string& key_pem) {
  SslCtxPtr ctx(SSL_CTX_new(method));
  const X509Ptr ca = certificate(trusted_ca);
  const X509Ptr cert = certificate(cert_pem);
  const PkeyPtr key = private_key(key_pem);
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1 ||
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca.get()) != 1 ||
      SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    throw std::runtime_error("SSL_CTX setup");
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

HandshakeResult handshake(const std::string& server_cert, const std::string& server_key, const std::string& client_cert,
                          const std::string& client_key, int max_version) {
  const TestPki& pki = test_pki();
  const SslCtxPtr server_ctx = tls_context(TLS_server_method(), pki.ca_cert_pem, server_cert, server_key);
  const SslCtxPtr client_ctx = tls_context(TLS_client_method(), pki.ca_cert_pem, client_cert, client_key);
  SSL_CTX_set_max_proto_version(server_ctx.get(), max_version);
  SslPtr server(SSL_new(server_ctx.get()));
  SslPtr client(SSL_new(client_ctx.get()));
  BIO* server_bio = nullptr;
  BIO* client_bio = nullptr;
  if (!server || !client || BIO_new_bio_pair(&server_bio, 0, &client_bio, 0) != 1) throw std::runtime_error("SSL");
  SSL_set_bio(server.get(), server_bio, server_bio);  // each SSL now owns its end
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_tlsext_host_name(client.get(), "localhost");
  SSL_set1_host(client.get(), "localhost");
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());

  HandshakeResult result;
  bool client_failed = false;
  bool server_failed = false;
  for (int round = 0; round < 20 && !(result.client_done && result.server_done); ++round) {
    if (!result.client_done && !client_failed) {
      const int rc = SSL_do_handshake(client.get());
      result.client_done = rc == 1;
      const int err = SSL_get_error(client.get(), rc);
      client_failed = rc != 1 && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE;
    }
    if (!result.server_done && !server_failed) {
      const int rc = SSL_do_handshake(server.get());
      result.server_done = rc == 1;
      const int err = SSL_get_error(server.get(), rc);
      server_failed = rc != 1 && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE;
    }
    if (client_failed && server_failed) break;
  }
  ERR_clear_error();
  result.client_verify = SSL_get_verify_result(client.get());
  result.server_verify = SSL_get_verify_result(server.get());
  if (X509* peer = SSL_get0_peer_certificate(server.get())) result.client_cn_seen_by_server = common_name(peer);
  return result;
}

TEST(CryptoFixturesPki, MutualTlsHandshakeSucceedsWithTrustedCertificates) {
  const TestPki& pki = test_pki();
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    const auto r = handshake(pki.server_cert_pem, pki.server_key_pem, pki.client_cert_pem, pki.client_key_pem, version);
    EXPECT_TRUE(r.client_done);
    EXPECT_TRUE(r.server_done);
    EXPECT_EQ(r.client_verify, X509_V_OK);
    EXPECT_EQ(r.server_verify, X509_V_OK);
    EXPECT_EQ(r.client_cn_seen_by_server, "backend");
  }
}

TEST(CryptoFixturesPki, MutualTlsHandshakeRejectsTheRogue) {
  const TestPki& pki = test_pki();
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    const auto rogue_client =
        handshake(pki.server_cert_pem, pki.server_key_pem, pki.rogue_cert_pem, pki.rogue_key_pem, version);
    EXPECT_FALSE(rogue_client.server_done);
    EXPECT_EQ(rogue_client.server_verify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    const auto rogue_server =
        handshake(pki.rogue_cert_pem, pki.rogue_key_pem, pki.client_cert_pem, pki.client_key_pem, version);
    EXPECT_FALSE(rogue_server.client_done);
    EXPECT_EQ(rogue_server.client_verify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  }
}

// --- files ---

TEST(CryptoFixturesFiles, WritesFreshFilesUnderTheTestTempDir) {
  const std::string a = write_temp_file("ca.pem", test_pki().ca_cert_pem);
  const std::string b = write_temp_file("ca.pem", "other");
  const std::string c = write_temp_file("../sub/dir name", std::string("bin\0ary", 7));
  EXPECT_NE(a, b);
  for (const std::string& path : {a, b, c}) {
    EXPECT_EQ(path.rfind(::testing::TempDir(), 0), 0u) << path;
    EXPECT_EQ(path.find('/', ::testing::TempDir().size()), std::string::npos) << path;
  }
  EXPECT_EQ(a.substr(a.size() - 4), ".pem");
  EXPECT_EQ(slurp(a), test_pki().ca_cert_pem);
  EXPECT_EQ(slurp(b), "other");
  EXPECT_EQ(slurp(c), std::string("bin\0ary", 7));
  const std::string empty = write_temp_file("empty", "");
  EXPECT_EQ(slurp(empty), "");
  for (const std::string& path : {a, b, c, empty}) std::remove(path.c_str());
}

}  // namespace
}  // namespace notify::testing
