#include "auth/client_address.hpp"

#include <stdexcept>

namespace notify::auth {
namespace asio = boost::asio;

namespace {

asio::ip::address_v6 as_v6(const asio::ip::address& a) {
  return a.is_v6() ? a.to_v6() : asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4());
}

bool in_network(const asio::ip::address_v6& a, const asio::ip::address_v6& base, unsigned prefix) {
  const auto x = a.to_bytes();
  const auto y = base.to_bytes();
  for (unsigned bit = 0; bit < prefix; bit += 8) {
    const unsigned take = std::min(8u, prefix - bit);
    const auto mask = static_cast<unsigned char>(0xff << (8 - take));
    if ((x[bit / 8] & mask) != (y[bit / 8] & mask)) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

asio::ip::address normalize(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

TrustedProxies TrustedProxies::parse(std::string_view list) {
  TrustedProxies out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    const auto slash = item.find('/');
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(std::string(item.substr(0, slash)), ec);
    unsigned prefix = address.is_v4() ? 32 : 128;
    if (!ec && slash != std::string_view::npos) {
      const std::string bits(item.substr(slash + 1));
      if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(bits) > prefix) {
        ec = asio::error::invalid_argument;
      } else {
        prefix = static_cast<unsigned>(std::stoul(bits));
      }
    }
    if (ec) throw std::runtime_error("--trusted-proxies: malformed entry \"" + std::string(item) + "\"");
    out.networks_.push_back({as_v6(address), address.is_v4() ? prefix + 96 : prefix});
  }
  return out;
}

bool TrustedProxies::contains(const asio::ip::address& address) const {
  const auto a = as_v6(normalize(address));
  for (const auto& n : networks_) {
    if (in_network(a, n.base, n.prefix)) return true;
  }
  return false;
}

asio::ip::address TrustedProxies::client_address(const asio::ip::address& peer,
                                                 const std::vector<std::string_view>& forwarded_for) const {
  asio::ip::address client = normalize(peer);
  if (!contains(client)) return client;
  // Walk the hops right to left: each trusted hop vouches for the one before it.
  std::vector<std::string_view> hops;
  for (std::string_view header : forwarded_for) {
    while (!header.empty()) {
      const auto comma = header.find(',');
      hops.push_back(trim(header.substr(0, comma)));
      header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    }
  }
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    boost::system::error_code ec;
    const auto hop = asio::ip::make_address(std::string(*it), ec);
    if (ec) break;
    client = normalize(hop);
    if (!contains(client)) break;
  }
  return client;
}

}  // namespace notify::auth
