#pragma once
// What --redis-url and its companion flags configure (app/config.cpp).
#include <chrono>
#include <cstddef>
#include <vector>

#include "broker/redis_url.hpp"

namespace notify::broker {

struct RedisSettings {
  std::vector<RedisShardConfig> shards;
  std::chrono::milliseconds presence_ttl{30'000};
  std::chrono::milliseconds command_timeout{800};  // a reply later than this drops the connection
  std::chrono::milliseconds probe_interval{2'000};
  std::chrono::milliseconds reconnect_max{2'000};  // backoff cap
  std::size_t max_data_bytes = 64 * 1024;          // largest JSON accepted from another replica
  // History in Redis (--history-size, --history-ttl); size 0: none.
  std::size_t history_size = 0;
  std::chrono::milliseconds history_ttl{300'000};
  // The inbox in Redis (--inbox-size); 0: none.
  std::size_t inbox_size = 0;
};

}  // namespace notify::broker
