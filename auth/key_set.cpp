#include "auth/key_set.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "auth/base64url.hpp"

namespace notify::auth {
namespace {

constexpr std::size_t kMinSecretBytes = 32;  // RFC 7518 3.2: a key at least as long as the hash
constexpr int kMinRsaBits = 2048;

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(what) + " " + path + ": cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Classifies a public key: RS256 for RSA of at least 2048 bits, ES256 for P-256.
Alg classify(EVP_PKEY* key, const std::string& origin) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
      throw std::runtime_error(origin + ": RSA keys must have at least 2048 bits");
    }
    return Alg::rs256;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) == 1 &&
        std::string_view(group) == "prime256v1") {
      return Alg::es256;
    }
    throw std::runtime_error(origin + ": EC keys must be on curve P-256 (ES256)");
  }
  throw std::runtime_error(origin + ": unsupported key type (use RSA for RS256 or EC P-256 for ES256)");
}

std::string b64_member(const boost::json::object& jwk, const char* name, const std::string& origin) {
  const auto* v = jwk.if_contains(name);
  if (v == nullptr || !v->is_string()) throw std::runtime_error(origin + ": missing \"" + name + "\"");
  auto bytes = base64url_decode(v->get_string());
  if (!bytes || bytes->empty()) throw std::runtime_error(origin + ": \"" + name + "\" is not base64url");
  return *bytes;
}

std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM_BLD* bld, const std::string& origin) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    throw std::runtime_error(origin + ": invalid key parameters");
  }
  return own(key);
}

std::shared_ptr<EVP_PKEY> rsa_from_jwk(const boost::json::object& jwk, const std::string& origin) {
  const std::string n = b64_member(jwk, "n", origin);
  const std::string e = b64_member(jwk, "e", origin);
  std::unique_ptr<BIGNUM, BnFree> bn_n(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr));
  std::unique_ptr<BIGNUM, BnFree> bn_e(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    throw std::runtime_error(origin + ": invalid RSA key");
  }
  return from_params("RSA", bld.get(), origin);
}

std::shared_ptr<EVP_PKEY> ec_from_jwk(const boost::json::object& jwk, const std::string& origin) {
  const auto* crv = jwk.if_contains("crv");
  if (crv == nullptr || !crv->is_string() || crv->get_string() != "P-256") {
    throw std::runtime_error(origin + ": EC keys must have \"crv\":\"P-256\" (ES256)");
  }
  const std::string x = b64_member(jwk, "x", origin);
  const std::string y = b64_member(jwk, "y", origin);
  if (x.size() != 32 || y.size() != 32) throw std::runtime_error(origin + ": P-256 coordinates must be 32 bytes");
  std::string point = "\x04" + x + y;  // uncompressed SEC1 point
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    throw std::runtime_error(origin + ": invalid EC key");
  }
  return from_params("EC", bld.get(), origin);
}

}  // namespace

std::string_view to_string(Alg alg) {
  switch (alg) {
    case Alg::hs256:
      return "HS256";
    case Alg::rs256:
      return "RS256";
    case Alg::es256:
      return "ES256";
  }
  return "?";
}

std::vector<KeySet::Key> KeySet::parse_jwks(std::string_view text, const std::string& origin) {
  boost::system::error_code ec;
  const auto doc = boost::json::parse(text, ec);
  if (ec) throw std::runtime_error(origin + ": not valid JSON (" + ec.message() + ")");
  const auto* keys = doc.is_object() ? doc.get_object().if_contains("keys") : nullptr;
  if (keys == nullptr || !keys->is_array()) throw std::runtime_error(origin + ": expected {\"keys\":[...]}");
  std::vector<Key> out;
  std::size_t index = 0;
  for (const auto& entry : keys->get_array()) {
    const std::string where = origin + " keys[" + std::to_string(index++) + "]";
    if (!entry.is_object()) throw std::runtime_error(where + ": not an object");
    const auto& jwk = entry.get_object();
    const auto* use = jwk.if_contains("use");
    if (use != nullptr && (!use->is_string() || use->get_string() != "sig")) continue;  // encryption keys: not ours
    const auto* kty = jwk.if_contains("kty");
    const auto* kid = jwk.if_contains("kid");
    if (kty == nullptr || !kty->is_string()) throw std::runtime_error(where + ": missing \"kty\"");
    if (kid == nullptr || !kid->is_string() || kid->get_string().empty()) {
      throw std::runtime_error(where + ": missing \"kid\" (tokens select JWKS keys by kid)");
    }
    Key key;
    key.kid = kid->get_string();
    if (kty->get_string() == "RSA") {
      key.pkey = rsa_from_jwk(jwk, where);
    } else if (kty->get_string() == "EC") {
      key.pkey = ec_from_jwk(jwk, where);
    } else {
      throw std::runtime_error(where + ": unsupported \"kty\" (use RSA or EC public keys)");
    }
    key.alg = classify(key.pkey.get(), where);
    if (const auto* alg = jwk.if_contains("alg");
        alg != nullptr && (!alg->is_string() || alg->get_string() != to_string(key.alg))) {
      throw std::runtime_error(where + ": \"alg\" does not match the key type");
    }
    for (const auto& other : out) {
      if (other.kid == key.kid) throw std::runtime_error(where + ": duplicate kid \"" + key.kid + "\"");
    }
    out.push_back(std::move(key));
  }
  if (out.empty()) throw std::runtime_error(origin + ": no signing keys");
  return out;
}

std::shared_ptr<const KeySet> KeySet::load(const KeySources& sources) {
  auto set = std::make_shared<KeySet>();
  auto add_secret = [&](std::string secret, const std::string& origin) {
    if (secret.size() < kMinSecretBytes) {
      throw std::runtime_error(origin + ": an HS256 secret needs at least 32 bytes");
    }
    set->keys_.push_back(Key{"", Alg::hs256, std::move(secret), nullptr});
  };
  if (!sources.secret_file.empty()) {
    std::string secret = read_file(sources.secret_file, "--jwt-secret-file");
    if (secret.ends_with('\n')) secret.pop_back();
    if (secret.ends_with('\r')) secret.pop_back();
    add_secret(std::move(secret), "--jwt-secret-file " + sources.secret_file);
  }
  if (!sources.secret.empty()) add_secret(sources.secret, "NOTIFY_JWT_SECRET");
  if (!sources.public_key_file.empty()) {
    const std::string origin = "--jwt-public-key-file " + sources.public_key_file;
    const std::string pem = read_file(sources.public_key_file, "--jwt-public-key-file");
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
    if (raw == nullptr) throw std::runtime_error(origin + ": not a PEM public key (\"-----BEGIN PUBLIC KEY-----\")");
    auto pkey = own(raw);
    const Alg alg = classify(pkey.get(), origin);
    set->keys_.push_back(Key{"", alg, "", std::move(pkey)});
  }
  if (!sources.jwks_file.empty()) {
    const std::string origin = "--jwks-file " + sources.jwks_file;
    for (auto& key : parse_jwks(read_file(sources.jwks_file, "--jwks-file"), origin)) {
      set->keys_.push_back(std::move(key));
    }
    set->has_jwks_ = true;
  }
  return set;
}

std::string KeySet::describe() const {
  std::string out;
  std::string kids;
  std::size_t jwks = 0;
  for (const auto& k : keys_) {
    if (!k.kid.empty()) {
      ++jwks;
      kids += (kids.empty() ? "" : ", ") + k.kid;
      continue;
    }
    out += (out.empty() ? "" : ", ") + std::string(to_string(k.alg)) + (k.alg == Alg::hs256 ? " secret" : " key");
  }
  if (jwks > 0) out += (out.empty() ? "" : ", ") + std::to_string(jwks) + " JWKS keys (kid " + kids + ")";
  return out.empty() ? "no keys" : out;
}

}  // namespace notify::auth
