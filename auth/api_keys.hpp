#pragma once
// Bearer API keys for the admin API, from --admin-api-keys-file: one key a
// line, optionally followed by the scopes it may use; several keys at once
// so they can be rotated. Only SHA-256 digests of the keys are kept.
// Immutable once loaded; a reload swaps in a new set. Thread-safe to share.
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace notify::auth {

// What a key may call; a line without scopes grants all of them.
enum class Scope : unsigned { notify = 1, broadcast = 2, disconnect = 4, presence = 8, stream = 16 };
inline constexpr unsigned kAllScopes = 31;
std::optional<Scope> parse_scope(std::string_view name);
std::string_view to_string(Scope scope);

class ApiKeys {
 public:
  enum class Check { ok, unknown, forbidden };

  // File format: "<key> [scope,scope,...]", '#' at the start of a line or
  // after white space starts a comment, blank lines
  // are skipped; keys are at least 16 characters of printable ASCII without
  // spaces. Throws std::runtime_error naming the file and line.
  static std::shared_ptr<const ApiKeys> load(const std::string& path);
  static std::shared_ptr<const ApiKeys> parse(std::string_view text, const std::string& origin);

  Check check(std::string_view key, Scope needed) const;
  std::size_t size() const { return keys_.size(); }

 private:
  struct DigestHash {
    std::size_t operator()(const std::string& d) const noexcept { return std::hash<std::string>{}(d); }
  };
  std::unordered_map<std::string, unsigned, DigestHash> keys_;  // SHA-256 digest -> scope bits
};

}  // namespace notify::auth
