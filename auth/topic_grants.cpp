#include "auth/topic_grants.hpp"

#include <algorithm>

#include "common/validation.hpp"

namespace notify::auth {

bool TopicGrants::add(std::string_view pattern) {
  if (pattern == "*") {
    prefixes_.emplace_back();
    return true;
  }
  if (pattern.ends_with('*')) {
    const std::string_view prefix = pattern.substr(0, pattern.size() - 1);
    if (!rules::valid_topic(prefix)) return false;
    prefixes_.emplace_back(prefix);
    return true;
  }
  if (!rules::valid_topic(pattern)) return false;
  exact_.emplace_back(pattern);
  return true;
}

bool TopicGrants::allows(std::string_view topic) const {
  if (std::find(exact_.begin(), exact_.end(), topic) != exact_.end()) return true;
  return std::any_of(prefixes_.begin(), prefixes_.end(), [&](const std::string& p) { return topic.starts_with(p); });
}

bool TopicGrants::parse_list(std::string_view list, TopicGrants& out, std::string& bad) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    if (!out.add(item)) {
      bad = std::string(item);
      return false;
    }
  }
  return true;
}

}  // namespace notify::auth
