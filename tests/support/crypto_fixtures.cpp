#include "tests/support/crypto_fixtures.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

namespace notify::testing {
namespace {

// unique_ptr deleters for every OpenSSL object used here.
template <auto Free>
struct OsslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter<EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OsslDeleter<ECDSA_SIG_free>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using X509ExtPtr = std::unique_ptr<X509_EXTENSION, OsslDeleter<X509_EXTENSION_free>>;

// Throws with `what` followed by (and draining) the thread's OpenSSL error queue.
[[noreturn]] void fail(const std::string& what) {
  std::string message = "crypto_fixtures: " + what;
  const char* separator = ": ";
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    message += separator;
    message += buf.data();
    separator = "; ";
  }
  throw std::runtime_error(message);
}

// Never prompts for a passphrase: the fixtures only deal in unencrypted keys.
int no_passphrase(char*, int, int, void*) { return 0; }

BioPtr read_bio(const std::string& data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) fail("BIO_new_mem_buf");
  return bio;
}

BioPtr memory_bio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) fail("BIO_new");
  return bio;
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  if (len < 0 || (len > 0 && data == nullptr)) fail("BIO_get_mem_data");
  return std::string(data, static_cast<std::size_t>(len));
}

PkeyPtr load_private_key(const std::string& pem) {
  auto bio = read_bio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) fail("cannot read private key PEM");
  return key;
}

PkeyPtr load_public_key(const std::string& pem) {
  auto bio = read_bio(pem);
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) fail("cannot read public key PEM");
  return key;
}

std::string private_pem(EVP_PKEY* key) {
  auto bio = memory_bio();
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail("PEM_write_bio_PKCS8PrivateKey");
  }
  return bio_contents(bio.get());
}

std::string public_pem(EVP_PKEY* key) {
  auto bio = memory_bio();
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) fail("PEM_write_bio_PUBKEY");
  return bio_contents(bio.get());
}

std::string cert_pem(X509* cert) {
  auto bio = memory_bio();
  if (PEM_write_bio_X509(bio.get(), cert) != 1) fail("PEM_write_bio_X509");
  return bio_contents(bio.get());
}

KeyPair to_key_pair(EVP_PKEY* key) { return KeyPair{private_pem(key), public_pem(key)}; }

PkeyPtr generate_ec(const char* curve) {
  ERR_clear_error();
  // The curve name is passed as a char* vararg, as EVP_EC_gen does.
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", const_cast<char*>(curve)));
  if (!key) fail(std::string("EC key generation on ") + curve);
  return key;
}

// OpenSSL's name for the key's curve ("prime256v1", "secp384r1"), or "" for non-EC keys.
std::string ec_group_name(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") != 1) return "";
  std::array<char, 80> name{};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name.data(), name.size(), &len) != 1) fail("EVP_PKEY_get_group_name");
  return std::string(name.data(), len);
}

bool is_p256(EVP_PKEY* key) {
  const std::string group = ec_group_name(key);
  return group == "prime256v1" || group == "P-256";
}

// Big-endian bytes of a BIGNUM parameter of `key`, left-padded to `width` bytes when width > 0.
std::string bn_param(EVP_PKEY* key, const char* param, int width = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &raw) != 1) fail(std::string("EVP_PKEY_get_bn_param ") + param);
  BnPtr bn(raw);
  const int size = width > 0 ? width : BN_num_bytes(bn.get());
  std::string out(static_cast<std::size_t>(size), '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  const int written = width > 0 ? BN_bn2binpad(bn.get(), dst, width) : BN_bn2bin(bn.get(), dst);
  if (written != size) fail(std::string("BIGNUM parameter too large: ") + param);
  return out;
}

// A JSON string literal for `text` (kids and algs in tests may be hostile).
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string digest_sign_sha256(EVP_PKEY* key, std::string_view data) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) fail("EVP_MD_CTX_new");
  if (EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) != 1) {
    fail("EVP_DigestSignInit_ex");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) fail("EVP_DigestSign (size)");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, data.size()) != 1) {
    fail("EVP_DigestSign");
  }
  sig.resize(len);
  return sig;
}

std::string hmac_sha256(const std::string& key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  std::size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), mac.size(),
                &len) == nullptr) {
    fail("EVP_Q_mac HMAC-SHA256");
  }
  return std::string(reinterpret_cast<const char*>(mac.data()), len);
}

// DER ECDSA-Sig-Value -> fixed-width JOSE r||s.
std::string der_to_jose(const std::string& der, int width) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) fail("d2i_ECDSA_SIG");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(static_cast<std::size_t>(2 * width), '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, dst, width) != width || BN_bn2binpad(s, dst + width, width) != width) {
    fail("ECDSA signature component too large");
  }
  return out;
}

// --- certificates ---

struct Issued {
  X509Ptr cert;
  PkeyPtr key;
};

void add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                 -1, 0) != 1) {
    fail(std::string("X509_NAME_add_entry_by_txt ") + field);
  }
}

// A fresh EC P-256 key and a v3 certificate for it. With issuer == nullptr the
// certificate is self-signed. Extensions are (NID, openssl.cnf-style value), added
// in order, so subjectKeyIdentifier must precede authorityKeyIdentifier.
Issued issue(const std::string& common_name, const Issued* issuer,
             const std::vector<std::pair<int, std::string>>& extensions) {
  Issued out{X509Ptr(X509_new()), generate_ec("P-256")};
  X509* cert = out.cert.get();
  if (!cert) fail("X509_new");
  if (X509_set_version(cert, X509_VERSION_3) != 1) fail("X509_set_version");

  BnPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr) {
    fail("certificate serial number");
  }

  constexpr long kHour = 60 * 60;
  if (X509_gmtime_adj(X509_getm_notBefore(cert), -kHour) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert), 3653, -kHour, nullptr) == nullptr) {
    fail("certificate validity");
  }

  X509_NAME* subject = X509_get_subject_name(cert);
  add_name_entry(subject, "O", "notify-gateway tests");
  add_name_entry(subject, "CN", common_name);
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : cert;
  EVP_PKEY* issuer_key = issuer != nullptr ? issuer->key.get() : out.key.get();
  if (X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert)) != 1) fail("X509_set_issuer_name");
  if (X509_set_pubkey(cert, out.key.get()) != 1) fail("X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext) fail(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
    if (X509_add_ext(cert, ext.get(), -1) != 1) fail("X509_add_ext");
  }

  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) fail("X509_sign");
  return out;
}

Issued issue_ca(const std::string& common_name) {
  return issue(common_name, nullptr,
               {{NID_basic_constraints, "critical,CA:TRUE"},
                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                {NID_subject_key_identifier, "hash"},
                {NID_authority_key_identifier, "keyid:always"}});
}

Issued issue_leaf(const std::string& common_name, const Issued& ca, const std::string& extended_key_usage,
                  const std::string& subject_alt_name) {
  std::vector<std::pair<int, std::string>> extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                         {NID_key_usage, "critical,digitalSignature"},
                                                         {NID_ext_key_usage, extended_key_usage}};
  if (!subject_alt_name.empty()) extensions.emplace_back(NID_subject_alt_name, subject_alt_name);
  extensions.emplace_back(NID_subject_key_identifier, "hash");
  extensions.emplace_back(NID_authority_key_identifier, "keyid:always");
  return issue(common_name, &ca, extensions);
}

TestPki generate_pki() {
  ERR_clear_error();
  const std::string localhost_sans = "DNS:localhost,IP:127.0.0.1";
  const Issued ca = issue_ca("notify-gateway test CA");
  const Issued server = issue_leaf("localhost", ca, "serverAuth", localhost_sans);
  const Issued client = issue_leaf("backend", ca, "clientAuth", "");
  const Issued rogue_ca = issue_ca("notify-gateway rogue CA");
  const Issued rogue = issue_leaf("rogue", rogue_ca, "clientAuth,serverAuth", localhost_sans);

  TestPki pki;
  pki.ca_cert_pem = cert_pem(ca.cert.get());
  pki.server_cert_pem = cert_pem(server.cert.get());
  pki.server_key_pem = private_pem(server.key.get());
  pki.client_cert_pem = cert_pem(client.cert.get());
  pki.client_key_pem = private_pem(client.key.get());
  pki.rogue_cert_pem = cert_pem(rogue.cert.get());
  pki.rogue_key_pem = private_pem(rogue.key.get());
  return pki;
}

constexpr char kBase64UrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

KeyPair make_rsa_key(int bits) {
  if (bits < 512) throw std::runtime_error("crypto_fixtures: RSA key size too small: " + std::to_string(bits));
  ERR_clear_error();
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(bits)));
  if (!key) fail("RSA key generation");
  return to_key_pair(key.get());
}

KeyPair make_ec_p256_key() { return to_key_pair(generate_ec("P-256").get()); }

KeyPair make_ec_p384_key() { return to_key_pair(generate_ec("P-384").get()); }

KeyPair make_ed25519_key() {
  ERR_clear_error();
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) fail("Ed25519 key generation");
  return to_key_pair(key.get());
}

std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kBase64UrlAlphabet[(v >> 18) & 63];
    out += kBase64UrlAlphabet[(v >> 12) & 63];
    out += kBase64UrlAlphabet[(v >> 6) & 63];
    out += kBase64UrlAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kBase64UrlAlphabet[(v >> 18) & 63];
    out += kBase64UrlAlphabet[(v >> 12) & 63];
    if (rest == 2) out += kBase64UrlAlphabet[(v >> 6) & 63];
  }
  return out;
}

// Strict: only the URL-safe alphabet, no padding, no whitespace, and the unused
// low bits of the last character must be zero (canonical encoding only).
std::string base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1)
    throw std::runtime_error("base64url_decode: impossible length " + std::to_string(text.size()));
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const char* pos = c == '\0' ? nullptr : std::strchr(kBase64UrlAlphabet, c);
    if (pos == nullptr) {
      throw std::runtime_error("base64url_decode: invalid character (code " +
                               std::to_string(static_cast<unsigned char>(c)) + ")");
    }
    buffer = (buffer << 6) | static_cast<unsigned>(pos - kBase64UrlAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
    buffer &= (1u << bits) - 1;
  }
  if (buffer != 0) throw std::runtime_error("base64url_decode: non-zero trailing bits");
  return out;
}

std::string jwk_for(const KeyPair& key, const std::string& kid) {
  ERR_clear_error();
  const PkeyPtr pkey = load_public_key(key.public_pem);
  std::string jwk = "{\"kid\":" + json_string(kid) + ",\"use\":\"sig\",";
  if (EVP_PKEY_is_a(pkey.get(), "RSA") == 1) {
    jwk += "\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"" + base64url(bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N)) +
           "\",\"e\":\"" + base64url(bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_E)) + "\"}";
  } else if (is_p256(pkey.get())) {
    jwk += "\"kty\":\"EC\",\"alg\":\"ES256\",\"crv\":\"P-256\",\"x\":\"" +
           base64url(bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32)) + "\",\"y\":\"" +
           base64url(bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)) + "\"}";
  } else {
    throw std::runtime_error("jwk_for: only RSA and EC P-256 keys are supported, not " +
                             std::string(EVP_PKEY_get0_type_name(pkey.get())) + " " + ec_group_name(pkey.get()));
  }
  return jwk;
}

std::string jwks_json(const std::vector<std::string>& jwks) {
  std::string out = "{\"keys\":[";
  for (std::size_t i = 0; i < jwks.size(); ++i) {
    if (i > 0) out += ',';
    out += jwks[i];
  }
  out += "]}";
  return out;
}

std::string sign_jwt(const std::string& header_json, const std::string& payload_json, const std::string& alg,
                     const std::string& key) {
  ERR_clear_error();
  const std::string signing_input = base64url(header_json) + "." + base64url(payload_json);
  std::string signature;
  if (alg == "none") {
    // empty signature
  } else if (alg == "HS256") {
    signature = hmac_sha256(key, signing_input);
  } else if (alg == "RS256") {
    const PkeyPtr pkey = load_private_key(key);
    if (EVP_PKEY_is_a(pkey.get(), "RSA") != 1) throw std::runtime_error("sign_jwt: RS256 needs an RSA private key");
    signature = digest_sign_sha256(pkey.get(), signing_input);
  } else if (alg == "ES256") {
    const PkeyPtr pkey = load_private_key(key);
    if (!is_p256(pkey.get())) throw std::runtime_error("sign_jwt: ES256 needs an EC P-256 private key");
    signature = der_to_jose(digest_sign_sha256(pkey.get(), signing_input), 32);
  } else {
    throw std::runtime_error("sign_jwt: unsupported alg " + json_string(alg));
  }
  return signing_input + "." + base64url(signature);
}

std::string make_jwt(const std::string& alg, const std::string& key, const std::string& payload_json,
                     const std::string& kid) {
  std::string header = "{\"alg\":" + json_string(alg) + ",\"typ\":\"JWT\"";
  if (!kid.empty()) header += ",\"kid\":" + json_string(kid);
  header += '}';
  return sign_jwt(header, payload_json, alg, key);
}

const TestPki& test_pki() {
  static const TestPki pki = generate_pki();
  return pki;
}

std::string write_temp_file(const std::string& name, const std::string& content) {
  std::string stem;
  for (const char c : name) {
    stem += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ? c : '_';
  }
  stem.erase(0, stem.find_first_not_of('.'));  // no hidden files, no ".."
  if (stem.empty()) stem = "file";
  std::string extension;  // kept last, so that tools that look at it still see it
  if (const auto dot = stem.rfind('.'); dot != std::string::npos && dot > 0) {
    extension = stem.substr(dot);
    stem.resize(dot);
  }
  std::string path = ::testing::TempDir() + stem + "-XXXXXX" + extension;
  const int fd = ::mkstemps(path.data(), static_cast<int>(extension.size()));  // creates it with mode 0600
  if (fd < 0) throw std::runtime_error("write_temp_file: mkstemps " + path + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      throw std::runtime_error("write_temp_file: write " + path + ": " + std::strerror(error));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw std::runtime_error("write_temp_file: close " + path + ": " + std::strerror(errno));
  return path;
}

}  // namespace notify::testing
