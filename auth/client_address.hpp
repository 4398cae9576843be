#pragma once
// The address a connection is counted against (per-IP limits, logs): the TCP
// peer, or, when the peer is a trusted proxy (--trusted-proxies), the
// nearest X-Forwarded-For hop that isn't one. Immutable; thread-safe.
#include <boost/asio/ip/address.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace notify::auth {

class TrustedProxies {
 public:
  // Comma-separated addresses or CIDR blocks ("10.0.0.0/8, ::1"); throws
  // std::runtime_error naming a malformed entry.
  static TrustedProxies parse(std::string_view list);

  bool empty() const { return networks_.empty(); }
  bool contains(const boost::asio::ip::address& address) const;

  // `forwarded_for`: the X-Forwarded-For header values in order (one header
  // may list several hops). Unparseable hops end the walk at the last good one.
  boost::asio::ip::address client_address(const boost::asio::ip::address& peer,
                                          const std::vector<std::string_view>& forwarded_for) const;

 private:
  struct Network {
    boost::asio::ip::address_v6 base;  // IPv4 as v4-mapped
    unsigned prefix;                   // in v6 bits
  };
  std::vector<Network> networks_;
};

// IPv4-mapped IPv6 addresses become plain IPv4, so one client counts once.
boost::asio::ip::address normalize(const boost::asio::ip::address& address);

}  // namespace notify::auth
