#include "broker/redis_url.hpp"

#include <charconv>
#include <stdexcept>

namespace notify::broker {

namespace {

constexpr std::string_view kPlain = "redis://";
constexpr std::string_view kSentinel = "redis-sentinel://";

// The URL as it may appear in an error: no password.
std::string masked(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  const auto at = url.find('@', scheme_end + 3);
  if (at == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, scheme_end + 3)) + "***" + std::string(url.substr(at));
}

[[noreturn]] void fail(std::string_view url, const std::string& what) {
  throw std::invalid_argument("--redis-url \"" + masked(url) + "\": " + what);
}

RedisAddress parse_address(std::string_view url, std::string_view text) {
  RedisAddress a;
  std::string_view host = text;
  std::string_view port;
  if (text.starts_with('[')) {  // [IPv6]:port
    const auto close = text.find(']');
    if (close == std::string_view::npos) fail(url, "unterminated [ in the host");
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) fail(url, "expected :PORT after ]");
      port = rest.substr(1);
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) fail(url, "empty port");
  }
  if (host.empty()) fail(url, "no host");
  for (char c : host) {
    if (c == '/' || c == '@' || c == ',' || c == ' ') fail(url, "malformed host \"" + std::string(host) + "\"");
  }
  a.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      fail(url, "port \"" + std::string(port) + "\" is not a number from 1 to 65535");
    }
    a.port = static_cast<std::uint16_t>(value);
  }
  return a;
}

RedisShardConfig parse_one(std::string_view url) {
  RedisShardConfig c;
  std::string_view rest;
  const bool sentinel = url.starts_with(kSentinel);
  if (sentinel) {
    rest = url.substr(kSentinel.size());
  } else if (url.starts_with(kPlain)) {
    rest = url.substr(kPlain.size());
  } else {
    fail(url, "expected redis://HOST:PORT[/DB] or redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER");
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view user_info = rest.substr(0, at);
    rest = rest.substr(at + 1);
    // redis://:password@ (the form Redis documents) or redis://user:password@
    // for ACL users is not supported: say so rather than send it as a password.
    const auto colon = user_info.find(':');
    if (colon == std::string_view::npos) fail(url, "expected :PASSWORD@ before the host");
    if (colon != 0) fail(url, "ACL user names are not supported; use :PASSWORD@ (the default user)");
    c.password = std::string(user_info.substr(1));
    if (c.password.empty()) fail(url, "empty password after ':'");
  }
  const auto slash = rest.find('/');
  const std::string_view hosts = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  if (sentinel) {
    if (path.empty()) fail(url, "no master name after the Sentinel addresses (redis-sentinel://HOST:PORT/MASTER)");
    if (path.find('/') != std::string_view::npos) fail(url, "the master name may not contain '/'");
    c.master = std::string(path);
    std::size_t start = 0;
    while (start <= hosts.size()) {
      const auto comma = hosts.find(',', start);
      const std::string_view one = hosts.substr(start, comma == std::string_view::npos ? comma : comma - start);
      RedisAddress a = parse_address(url, one);
      if (one.find(':') == std::string_view::npos || (one.starts_with('[') && one.find("]:") == std::string_view::npos))
        a.port = 26379;
      c.sentinels.push_back(std::move(a));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return c;
  }
  if (hosts.find(',') != std::string_view::npos) fail(url, "several hosts need redis-sentinel://");
  c.address = parse_address(url, hosts);
  if (!path.empty()) {
    int db = 0;
    const auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
    if (ec != std::errc() || end != path.data() + path.size() || db < 0 || db > 15) {
      fail(url, "database \"" + std::string(path) + "\" is not a number from 0 to 15");
    }
    c.db = db;
  }
  return c;
}

std::string host_port(const RedisAddress& a) {
  const bool v6 = a.host.find(':') != std::string::npos;
  return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

}  // namespace

std::string RedisShardConfig::describe() const {
  const std::string auth = password.empty() ? "" : ":***@";
  if (!uses_sentinel()) {
    return "redis://" + auth + host_port(address) + (db != 0 ? "/" + std::to_string(db) : "");
  }
  std::string hosts;
  for (const auto& s : sentinels) hosts += (hosts.empty() ? "" : ",") + host_port(s);
  return "redis-sentinel://" + auth + hosts + "/" + master;
}

std::vector<RedisShardConfig> parse_redis_urls(std::string_view text) {
  std::vector<RedisShardConfig> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t' && text[j] != '\n') ++j;
    if (j > i) out.push_back(parse_one(text.substr(i, j - i)));
    i = j;
  }
  for (std::size_t a = 0; a < out.size(); ++a) {
    for (std::size_t b = a + 1; b < out.size(); ++b) {
      if (out[a].describe() == out[b].describe()) {
        throw std::invalid_argument("--redis-url lists " + out[a].describe() + " twice");
      }
    }
  }
  return out;
}

}  // namespace notify::broker
