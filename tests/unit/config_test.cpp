#include "app/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace notify::app {
namespace {

// Every case runs in development mode unless it says otherwise: the
// security rules have their own tests.
ConfigResult parse(std::vector<std::string> args, bool insecure_dev = true) {
  if (insecure_dev) args.insert(args.begin(), "--insecure-dev");
  args.insert(args.begin(), "notify-gateway");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_config(static_cast<int>(argv.size()), argv.data());
}

TEST(Config, DefaultsMatchTheDocumentation) {
  const auto r = parse({});
  ASSERT_TRUE(r.config) << r.output;
  const Config& c = *r.config;
  EXPECT_EQ(c.gateway.ws_port, 8080);
  EXPECT_EQ(c.services.port, 50051);
  EXPECT_EQ(c.gateway.metrics_port, 9100);
  EXPECT_EQ(c.gateway.bind_address, "0.0.0.0");
  EXPECT_GE(c.gateway.threads, 1u);
  EXPECT_EQ(c.gateway.queue.policy, gateway::OverflowPolicy::close);
  EXPECT_EQ(c.gateway.idle_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(c.log_format, log::Format::text);
}

TEST(Config, FlagsAreApplied) {
  const auto r = parse({"--ws-port", "1234", "--threads", "3", "--slow-consumer-policy", "drop-oldest",
                        "--idle-timeout", "2.5", "--log-format", "json", "--bind", "127.0.0.1"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->gateway.ws_port, 1234);
  EXPECT_EQ(r.config->gateway.threads, 3u);
  EXPECT_EQ(r.config->gateway.queue.policy, gateway::OverflowPolicy::drop_oldest);
  EXPECT_EQ(r.config->gateway.idle_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(r.config->log_format, log::Format::json);
  EXPECT_EQ(r.config->services.bind_address, "127.0.0.1");
}

TEST(Config, EnvironmentIsTheFallbackAndFlagsWin) {
  setenv("NOTIFY_GRPC_PORT", "6000", 1);
  setenv("NOTIFY_WS_PORT", "7000", 1);
  const auto r = parse({"--ws-port", "7001"});
  unsetenv("NOTIFY_GRPC_PORT");
  unsetenv("NOTIFY_WS_PORT");
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->services.port, 6000);
  EXPECT_EQ(r.config->gateway.ws_port, 7001);
}

TEST(Config, BadValuesFailWithAMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"--ws-port", "70000"}, "--ws-port"},
      {{"--ws-port", "abc"}, "--ws-port"},
      {{"--threads", "1000"}, "--threads"},
      {{"--log-format", "xml"}, "--log-format"},
      {{"--slow-consumer-policy", "ignore"}, "--slow-consumer-policy"},
      {{"--bind", "not-an-ip"}, "--bind"},
      {{"--ws-port", "9000", "--metrics-port", "9000"}, "must differ"},
      {{"--send-queue-max-bytes", "1000"}, "--send-queue-max-bytes"},
      {{"--no-such-flag"}, "no-such-flag"},
  };
  for (const auto& c : cases) {
    const auto r = parse(c.args);
    EXPECT_FALSE(r.config) << c.args.front();
    EXPECT_NE(r.exit_code, 0) << c.args.front();
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args.front() << ": " << r.output;
  }
}

TEST(Config, HelpListsEveryFlagWithItsVariable) {
  const auto r = parse({"--help"});
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"--ws-port",
                        "NOTIFY_WS_PORT",
                        "--grpc-port",
                        "NOTIFY_GRPC_PORT",
                        "--metrics-port",
                        "NOTIFY_METRICS_PORT",
                        "--bind",
                        "--threads",
                        "--log-format",
                        "--slow-consumer-policy",
                        "--insecure-dev",
                        "NOTIFY_INSECURE_DEV",
                        "--jwt-secret-file",
                        "NOTIFY_JWT_SECRET_FILE",
                        "--jwt-public-key-file",
                        "NOTIFY_JWT_PUBLIC_KEY_FILE",
                        "--jwks-file",
                        "NOTIFY_JWKS_FILE",
                        "--jwt-audience",
                        "NOTIFY_JWT_AUDIENCE",
                        "--jwt-issuer",
                        "NOTIFY_JWT_ISSUER",
                        "--jwt-leeway",
                        "NOTIFY_JWT_LEEWAY",
                        "--allowed-origins",
                        "NOTIFY_ALLOWED_ORIGINS",
                        "--admin-api-keys-file",
                        "NOTIFY_ADMIN_API_KEYS_FILE",
                        "--admin-tls-cert",
                        "NOTIFY_ADMIN_TLS_CERT",
                        "--admin-tls-key",
                        "NOTIFY_ADMIN_TLS_KEY",
                        "--admin-client-ca",
                        "NOTIFY_ADMIN_CLIENT_CA"}) {
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
  }
}

std::string temp_file(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << content;
  return path;
}

TEST(Config, TokensAreRequiredUnlessInsecureDev) {
  const auto r = parse({}, /*insecure_dev=*/false);
  ASSERT_FALSE(r.config);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--insecure-dev"), std::string::npos) << r.output;

  const std::string secret = temp_file("secret-ok", std::string(40, 's') + "\n");
  const auto ok = parse({"--jwt-secret-file", secret}, false);
  ASSERT_TRUE(ok.config) << ok.output;
  ASSERT_TRUE(ok.config->keys);
  EXPECT_EQ(ok.config->keys->keys().size(), 1u);
  EXPECT_EQ(ok.config->keys->keys()[0].secret, std::string(40, 's'));  // trailing newline dropped
}

TEST(Config, KeyProblemsNameTheFile) {
  const std::string weak = temp_file("secret-weak", "short");
  auto r = parse({"--jwt-secret-file", weak}, false);
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.output.find(weak), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("32 bytes"), std::string::npos) << r.output;
  r = parse({"--jwks-file", "/no/such/jwks.json"}, false);
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.output.find("/no/such/jwks.json"), std::string::npos) << r.output;
  r = parse({"--jwt-public-key-file", temp_file("not-a-key.pem", "hello")}, false);
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.output.find("PEM"), std::string::npos) << r.output;
}

TEST(Config, AdminApiStaysOnLoopbackWithoutAuthentication) {
  auto r = parse({"--bind", "0.0.0.0"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->services.bind_address, "127.0.0.1");
  EXPECT_EQ(r.config->gateway.bind_address, "0.0.0.0");
  ASSERT_FALSE(r.config->notes.empty());
  EXPECT_NE(r.config->notes[0].find("loopback"), std::string::npos);

  r = parse({"--grpc-bind", "0.0.0.0"});
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.output.find("--insecure-admin"), std::string::npos) << r.output;

  r = parse({"--grpc-bind", "0.0.0.0", "--insecure-admin"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->services.bind_address, "0.0.0.0");

  const std::string keys = temp_file("api-keys", "0123456789abcdef0123\n");
  r = parse({"--bind", "0.0.0.0", "--admin-api-keys-file", keys});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->services.bind_address, "0.0.0.0");
  ASSERT_TRUE(r.config->api_keys);
  EXPECT_EQ(r.config->api_keys->size(), 1u);
}

TEST(Config, SecurityFlagsThatGoTogether) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"--tls-cert", "/x.pem"}, "--tls-key"},
      {{"--admin-tls-key", "/x.pem"}, "--admin-tls-cert"},
      {{"--admin-client-ca", "/ca.pem"}, "--admin-tls-cert"},
      {{"--allowed-origins", "https://a.example.com/path"}, "--allowed-origins"},
      {{"--public-topics", "news, bad topic"}, "--public-topics"},
      {{"--trusted-proxies", "10.0.0.0/33"}, "--trusted-proxies"},
      {{"--admin-api-keys-file", temp_file("short-key", "tooshort\n")}, "16 characters"},
  };
  for (const auto& c : cases) {
    const auto r = parse(c.args);
    EXPECT_FALSE(r.config) << c.args.front();
    EXPECT_EQ(r.exit_code, 2) << c.args.front();
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args.front() << ": " << r.output;
  }
}

TEST(Config, ThreadsDefaultToTheCgroupCpuLimit) {
  const std::string root = ::testing::TempDir() + "cgroup-test";
  std::filesystem::create_directories(root);
  const std::size_t unlimited = usable_cpus(root + "/missing");
  EXPECT_GE(unlimited, 1u);
  std::ofstream(root + "/cpu.max") << "150000 100000\n";  // 1.5 CPUs
  EXPECT_EQ(usable_cpus(root), std::min<std::size_t>(unlimited, 2));
  std::ofstream(root + "/cpu.max") << "50000 100000\n";
  EXPECT_EQ(usable_cpus(root), 1u);
  std::ofstream(root + "/cpu.max") << "max 100000\n";
  EXPECT_EQ(usable_cpus(root), unlimited);
}

}  // namespace
}  // namespace notify::app

namespace notify::app {
namespace {

TEST(ConfigRedis, WithoutRedisUrlTheProcessIsAlone) {
  const auto r = parse({});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_TRUE(r.config->redis.shards.empty());
  EXPECT_EQ(r.config->redis.presence_ttl, std::chrono::milliseconds(30000));
}

TEST(ConfigRedis, ShardsTtlTimeoutAndPasswordFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("notify-redis-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = (dir / "password").string();
  std::ofstream(file) << "from-the-file\n";
  const auto r = parse({"--redis-url", "redis://a:1 redis://b:2/1", "--presence-ttl", "10", "--redis-timeout", "0.5",
                        "--redis-password-file", file});
  ASSERT_TRUE(r.config) << r.output;
  const auto& redis = r.config->redis;
  ASSERT_EQ(redis.shards.size(), 2u);
  EXPECT_EQ(redis.shards[1].db, 1);
  EXPECT_EQ(redis.shards[0].password, "from-the-file");
  EXPECT_EQ(redis.shards[1].password, "from-the-file");
  EXPECT_EQ(redis.presence_ttl, std::chrono::milliseconds(10000));
  EXPECT_EQ(redis.command_timeout, std::chrono::milliseconds(500));

  const auto both = parse({"--redis-url", "redis://:inline@a:1", "--redis-password-file", file});
  EXPECT_FALSE(both.config);
  EXPECT_NE(both.output.find("use one"), std::string::npos) << both.output;
  EXPECT_EQ(both.output.find("inline"), std::string::npos) << "password in: " << both.output;
  std::filesystem::remove_all(dir);
}

TEST(ConfigRedis, BadUrlsFailAtStartWithoutShowingThePassword) {
  for (const std::string url : {"redis://:topsecret@h:0", "http://:topsecret@h:1", "redis://h:1/99"}) {
    const auto r = parse({"--redis-url", url});
    EXPECT_FALSE(r.config) << url;
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("--redis-url"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("topsecret"), std::string::npos) << r.output;
  }
  const auto ttl = parse({"--redis-url", "redis://h:1", "--presence-ttl", "1"});
  EXPECT_FALSE(ttl.config) << "a TTL under 3 s would expire between heartbeats";
  const auto orphan = parse({"--redis-password-file", "/nonexistent"});
  EXPECT_FALSE(orphan.config);
}

TEST(ConfigRedis, HelpNeverShowsAPasswordFromTheEnvironment) {
  ::setenv("NOTIFY_REDIS_URL", "redis://:envsecret@h:1", 1);
  const auto help = parse({"--help"});
  ::unsetenv("NOTIFY_REDIS_URL");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--redis-url"), std::string::npos);
  EXPECT_EQ(help.output.find("envsecret"), std::string::npos) << help.output;
}

}  // namespace
}  // namespace notify::app
