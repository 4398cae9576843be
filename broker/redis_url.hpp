#pragma once
// --redis-url: one Redis shard per space-separated URL.
//   redis://[:PASSWORD@]HOST:PORT[/DB]
//   redis-sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER
// (PASSWORD is the data nodes' password; Sentinels are asked without one.)
// Pure functions; thread-safe.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace notify::broker {

struct RedisAddress {
  std::string host;
  std::uint16_t port = 6379;
};

struct RedisShardConfig {
  std::vector<RedisAddress> sentinels;  // empty: a plain Redis at `address`
  RedisAddress address;                 // plain Redis only
  std::string master;                   // Sentinel only: the monitored master's name
  std::string password;
  int db = 0;

  bool uses_sentinel() const { return !sentinels.empty(); }
  // For logs and errors: the URL with the password replaced by "***".
  std::string describe() const;
};

// Parses the whole flag. Throws std::invalid_argument naming the URL (its
// password masked) and what is wrong with it.
std::vector<RedisShardConfig> parse_redis_urls(std::string_view text);

}  // namespace notify::broker
