#include "app/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace notify::app {
namespace {

ConfigResult parse(std::vector<std::string> args) {
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
  for (const char* s :
       {"--ws-port", "NOTIFY_WS_PORT", "--grpc-port", "NOTIFY_GRPC_PORT", "--metrics-port", "NOTIFY_METRICS_PORT",
        "--bind", "--threads", "--log-format", "--slow-consumer-policy", "development-only"}) {
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
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
