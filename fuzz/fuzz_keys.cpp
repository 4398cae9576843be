#include "fuzz_keys.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "fuzz_keys.inc"

namespace fuzzkeys {
namespace {

// KeySet::load reads files, as the gateway does; write the constants to a
// private temporary directory once, load, and remove them.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/notify-fuzz-keys-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    for (const auto& f : files_) std::remove(f.c_str());
    ::rmdir(path_.c_str());
  }
  std::string write(const char* name, std::string_view text) {
    std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << text;
    files_.push_back(file);
    return file;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

std::shared_ptr<const notify::auth::KeySet> load(bool jwks) {
  TempDir dir;
  notify::auth::KeySources sources;
  sources.secret_file = dir.write("secret", std::string(kHsSecret) + "\n");
  sources.public_key_file = dir.write("key.pem", jwks ? kRsaPublicPem : kEcPublicPem);
  if (jwks) sources.jwks_file = dir.write("jwks.json", kJwks);
  try {
    return notify::auth::KeySet::load(sources);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_keys: cannot load the fixed keys: %s\n", e.what());
    std::abort();
  }
}

}  // namespace

const notify::auth::JwtVerifier& verifier_with_jwks() {
  static const notify::auth::JwtVerifier verifier(
      notify::auth::JwtPolicy{"notify", "https://auth.example.com", std::chrono::seconds(30)}, load(true));
  return verifier;
}

const notify::auth::JwtVerifier& verifier_without_jwks() {
  static const notify::auth::JwtVerifier verifier(notify::auth::JwtPolicy{"", "", std::chrono::seconds(5)},
                                                  load(false));
  return verifier;
}

}  // namespace fuzzkeys
