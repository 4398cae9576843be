#include "auth/origin_policy.hpp"

#include <algorithm>
#include <stdexcept>

namespace notify::auth {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

struct Parsed {
  std::string scheme, host, port;
};

// "host[:port]" or "[v6]:port" into host and port.
bool split_authority(std::string_view authority, std::string& host, std::string& port) {
  if (authority.empty()) return false;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = lower(authority.substr(0, close + 1));
    authority.remove_prefix(close + 1);
    if (authority.empty()) return true;
    if (authority.front() != ':') return false;
    port = authority.substr(1);
  } else {
    const auto colon = authority.find(':');
    host = lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (port.find(':') != std::string::npos) return false;  // bare IPv6 or a second port: malformed
  }
  if (host.empty()) return false;
  return std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool parse_origin(std::string_view origin, Parsed& out) {
  const auto sep = origin.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  out.scheme = lower(origin.substr(0, sep));
  const std::string_view rest = origin.substr(sep + 3);
  if (rest.find('/') != std::string_view::npos) return false;
  return split_authority(rest, out.host, out.port);
}

std::string default_port(std::string_view scheme) {
  if (scheme == "https" || scheme == "wss") return "443";
  if (scheme == "http" || scheme == "ws") return "80";
  return "";
}

}  // namespace

OriginPolicy OriginPolicy::parse(std::string_view list) {
  OriginPolicy policy;
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    if (item == "*") {
      policy.any_ = true;
      continue;
    }
    Entry e;
    std::string_view authority = item;
    if (const auto sep = item.find("://"); sep != std::string_view::npos) {
      e.scheme = lower(item.substr(0, sep));
      authority = item.substr(sep + 3);
    }
    if (authority.starts_with("*.")) {
      e.wildcard = true;
      authority.remove_prefix(1);  // keep the '.'
    }
    std::string host;
    if (!split_authority(authority, host, e.port) || authority.find('/') != std::string_view::npos ||
        host.find('*') != std::string::npos || (e.wildcard && host.size() < 2)) {
      throw std::runtime_error("--allowed-origins: malformed entry \"" + std::string(item) + "\"");
    }
    e.host = std::move(host);
    policy.entries_.push_back(std::move(e));
  }
  return policy;
}

bool OriginPolicy::allows(std::string_view origin, std::string_view host) const {
  if (origin.empty()) return true;  // not a browser: nothing cross-site to defend against
  if (any_) return true;
  Parsed o;
  if (!parse_origin(origin, o)) return false;  // includes "null" (sandboxed frames, file://)
  const std::string port = o.port.empty() ? default_port(o.scheme) : o.port;
  if (entries_.empty()) {
    std::string h, p;
    if (!split_authority(host, h, p)) return false;
    return h == o.host && (p.empty() ? default_port(o.scheme) : p) == port;
  }
  for (const auto& e : entries_) {
    if (!e.scheme.empty() && e.scheme != o.scheme) continue;
    const bool host_ok = e.wildcard ? (o.host.size() > e.host.size() && o.host.ends_with(e.host)) : o.host == e.host;
    if (!host_ok) continue;
    if (e.scheme.empty() && e.port.empty()) return true;
    const std::string want = e.port.empty() ? default_port(e.scheme) : e.port;
    if (want == port) return true;
  }
  return false;
}

}  // namespace notify::auth
