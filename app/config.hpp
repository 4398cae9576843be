#pragma once
// Command-line flags, with NOTIFY_* environment variables as fallback, turned
// into the settings of each component. Bad values fail here, at start-up.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/api_keys.hpp"
#include "auth/jwt_verifier.hpp"
#include "auth/key_set.hpp"
#include "broker/redis_settings.hpp"
#include "common/log.hpp"
#include "gateway/settings.hpp"
#include "services/settings.hpp"

namespace notify::app {

struct Config {
  gateway::GatewaySettings gateway;
  services::ServiceSettings services;
  broker::RedisSettings redis;  // no shards: one process, no Redis
  log::Format log_format = log::Format::text;
  log::Level log_level = log::Level::info;
  std::chrono::milliseconds shutdown_timeout{10'000};

  // Client tokens: where the keys come from (reloaded on SIGHUP and on file
  // change), the claims policy, and the keys as loaded at start-up.
  auth::KeySources jwt_keys;
  auth::JwtPolicy jwt_policy;
  std::shared_ptr<const auth::KeySet> keys;       // null: no JWT keys configured
  std::shared_ptr<const auth::ApiKeys> api_keys;  // null: no --admin-api-keys-file

  // Start-up facts worth a log line (e.g. the admin API kept on loopback).
  std::vector<std::string> notes;
};

struct ConfigResult {
  std::optional<Config> config;  // empty: exit with exit_code after printing output
  int exit_code = 0;
  std::string output;  // --help text, or the error message
};

ConfigResult parse_config(int argc, const char* const* argv);

// CPUs this process can use: its affinity mask, capped by a cgroup (v2 or v1)
// CPU quota found under `cgroup_root`, rounded up, at least 1.
std::size_t usable_cpus(const std::string& cgroup_root = "/sys/fs/cgroup");

}  // namespace notify::app
