#include "auth/api_keys.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace notify::auth {
namespace {

constexpr std::size_t kMinKeyLength = 16;

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<Scope> parse_scope(std::string_view name) {
  for (Scope s : {Scope::notify, Scope::broadcast, Scope::disconnect, Scope::presence, Scope::stream}) {
    if (name == to_string(s)) return s;
  }
  return std::nullopt;
}

std::string_view to_string(Scope scope) {
  switch (scope) {
    case Scope::notify:
      return "notify";
    case Scope::broadcast:
      return "broadcast";
    case Scope::disconnect:
      return "disconnect";
    case Scope::presence:
      return "presence";
    case Scope::stream:
      return "stream";
  }
  return "?";
}

std::shared_ptr<const ApiKeys> ApiKeys::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("--admin-api-keys-file " + path + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), "--admin-api-keys-file " + path);
}

std::shared_ptr<const ApiKeys> ApiKeys::parse(std::string_view text, const std::string& origin) {
  auto keys = std::make_shared<ApiKeys>();
  std::size_t line_number = 0;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    ++line_number;
    const std::string where = origin + " line " + std::to_string(line_number);
    // '#' starts a comment at the start of a line or after white space, so
    // keys may contain '#'.
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    line = trim(line);
    if (line.empty()) continue;
    const auto space = line.find_first_of(" \t");
    const std::string_view key = line.substr(0, space);
    const std::string_view scopes = space == std::string_view::npos ? "" : trim(line.substr(space + 1));
    if (key.size() < kMinKeyLength) throw std::runtime_error(where + ": keys need at least 16 characters");
    for (char c : key) {
      if (c < 0x21 || c > 0x7e) throw std::runtime_error(where + ": keys are printable ASCII without spaces");
    }
    unsigned bits = scopes.empty() ? kAllScopes : 0;
    std::string_view rest = scopes;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view name = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      const auto scope = parse_scope(name);
      if (!scope) {
        throw std::runtime_error(where + ": unknown scope \"" + std::string(name) +
                                 "\" (notify, broadcast, disconnect, presence, stream)");
      }
      bits |= static_cast<unsigned>(*scope);
    }
    if (!keys->keys_.emplace(sha256(key), bits).second) throw std::runtime_error(where + ": duplicate key");
  }
  if (keys->keys_.empty()) throw std::runtime_error(origin + ": no keys");
  return keys;
}

ApiKeys::Check ApiKeys::check(std::string_view key, Scope needed) const {
  // Comparing digests: lookup time says nothing about the secret keys.
  const auto it = keys_.find(sha256(key));
  if (it == keys_.end()) return Check::unknown;
  return (it->second & static_cast<unsigned>(needed)) != 0 ? Check::ok : Check::forbidden;
}

}  // namespace notify::auth
