#pragma once
// Which browser origins may open a WebSocket (--allowed-origins). Browsers
// always send Origin on a WebSocket upgrade; other clients usually don't,
// and a request without Origin is not a cross-site browser request, so it
// passes. Immutable; thread-safe.
#include <string>
#include <string_view>
#include <vector>

namespace notify::auth {

class OriginPolicy {
 public:
  // Comma-separated entries:
  //   https://app.example.com   exact scheme, host and port (default port if none)
  //   https://*.example.com     any subdomain (not example.com itself), that scheme
  //   app.example.com           that host with any scheme and port
  //   *.example.com             any subdomain with any scheme and port
  //   *                         every origin
  // Empty: only the gateway's own host (Origin host:port equal to Host).
  // Throws std::runtime_error naming a malformed entry.
  static OriginPolicy parse(std::string_view list);

  // `origin`: the Origin header (empty if absent); `host`: the Host header.
  bool allows(std::string_view origin, std::string_view host) const;
  bool same_host_only() const { return entries_.empty() && !any_; }

 private:
  struct Entry {
    std::string scheme;  // empty: any
    std::string host;    // lower case; for wildcards the suffix including the leading '.'
    std::string port;    // empty: the scheme's default (or any when scheme is empty)
    bool wildcard = false;
  };
  std::vector<Entry> entries_;
  bool any_ = false;
};

}  // namespace notify::auth
