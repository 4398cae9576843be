#pragma once
// Which topics a connection may subscribe to: exact names ("post:42") or
// prefix patterns ending in '*' ("post:*"; "*" alone is every topic), from a
// token's "topics" claim or from --public-topics.
#include <string>
#include <string_view>
#include <vector>

namespace notify::auth {

class TopicGrants {
 public:
  TopicGrants() = default;
  // Adds a pattern; false if it is malformed (characters outside the topic
  // alphabet, '*' anywhere but at the end, or empty).
  bool add(std::string_view pattern);
  bool allows(std::string_view topic) const;
  bool empty() const { return exact_.empty() && prefixes_.empty(); }

  // Parses a comma-separated list (spaces allowed); false on the first bad pattern.
  static bool parse_list(std::string_view list, TopicGrants& out, std::string& bad);

 private:
  std::vector<std::string> exact_;
  std::vector<std::string> prefixes_;
};

}  // namespace notify::auth
