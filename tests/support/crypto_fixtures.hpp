#pragma once
// Key material, signed JWTs, JWKS documents and a throwaway PKI generated at
// test time with OpenSSL 3, for the JWT authentication and TLS/mTLS tests.
// Everything throws std::runtime_error (with the OpenSSL error queue in the
// message) on failure.
#include <string>
#include <string_view>
#include <vector>

namespace notify::testing {

struct KeyPair {
  std::string private_pem;  // PKCS#8 "PRIVATE KEY"
  std::string public_pem;   // SubjectPublicKeyInfo "PUBLIC KEY"
};
KeyPair make_rsa_key(int bits = 2048);
KeyPair make_ec_p256_key();
KeyPair make_ec_p384_key();  // a key type the server must refuse for ES256
KeyPair make_ed25519_key();  // likewise

std::string base64url(std::string_view bytes);        // no padding
std::string base64url_decode(std::string_view text);  // throws on bad input

// Public JWK JSON object for an RSA or EC P-256 key pair, with "kid", "kty",
// "use":"sig", "alg" (RS256 / ES256) and n/e or crv/x/y (base64url, x/y left-padded to 32 bytes).
std::string jwk_for(const KeyPair& key, const std::string& kid);
// {"keys":[...]} from JWK objects.
std::string jwks_json(const std::vector<std::string>& jwks);

// Signs base64url(header_json) + "." + base64url(payload_json) and returns the
// compact JWT. alg: "HS256" (key = the raw secret bytes), "RS256" (key = a
// private PEM), "ES256" (key = a private P-256 PEM; signature is the 64-byte
// raw r||s JOSE form, NOT DER), "none" (empty signature, token ends with ".").
// The header is used exactly as given (tests craft hostile headers).
std::string sign_jwt(const std::string& header_json, const std::string& payload_json, const std::string& alg,
                     const std::string& key);
// Convenience: header {"alg":alg,"typ":"JWT"} plus "kid" when non-empty.
std::string make_jwt(const std::string& alg, const std::string& key, const std::string& payload_json,
                     const std::string& kid = "");

// A throwaway PKI for TLS tests: a CA; a server certificate signed by it for
// CN=localhost with SAN DNS:localhost and IP:127.0.0.1 (serverAuth); a client
// certificate signed by it (CN=backend, clientAuth); and a "rogue" client
// certificate signed by a different, untrusted CA (CN=rogue). EC P-256 keys,
// valid from one hour ago for 10 years, SHA-256 signatures, proper
// basicConstraints / keyUsage / extendedKeyUsage / subjectKeyIdentifier /
// authorityKeyIdentifier extensions so both OpenSSL (server) and gRPC's TLS
// (BoringSSL-like checks) accept the chain.
// The rogue certificate also carries serverAuth and the localhost SANs, so it
// can stand in for an impostor server as well: its only defect is its issuer.
struct TestPki {
  std::string ca_cert_pem;
  std::string server_cert_pem, server_key_pem;
  std::string client_cert_pem, client_key_pem;
  std::string rogue_cert_pem, rogue_key_pem;
};
const TestPki& test_pki();  // generated once per process, cached

// Writes content to a fresh file under ::testing::TempDir() (unique name built from `name`), returns its path.
std::string write_temp_file(const std::string& name, const std::string& content);

}  // namespace notify::testing
