// The real binary as a process: command line, start-up failures, signals.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <sstream>

#include "tests/support/crypto_fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::testing {
namespace {

TEST(Process, HelpExitsZero) {
  GatewayProcess p({"--help"});
  EXPECT_EQ(p.wait_exit(std::chrono::seconds(5)), 0);
  EXPECT_NE(p.output().find("--ws-port"), std::string::npos);
}

TEST(Process, BadFlagsFailAtStartWithAMessage) {
  GatewayProcess p({"--ws-port", "not-a-port"});
  EXPECT_EQ(p.wait_exit(std::chrono::seconds(5)), 2);
  EXPECT_NE(p.output().find("--ws-port"), std::string::npos) << p.output();
}

TEST(Process, BadEnvironmentFailsAtStartWithAMessage) {
  setenv("NOTIFY_SLOW_CONSUMER_POLICY", "sometimes", 1);
  GatewayProcess p({});
  unsetenv("NOTIFY_SLOW_CONSUMER_POLICY");
  EXPECT_EQ(p.wait_exit(std::chrono::seconds(5)), 2);
  EXPECT_NE(p.output().find("slow-consumer-policy"), std::string::npos) << p.output();
}

TEST(Process, AdminTlsKeyOfAnotherCertificateFailsWithWhatIsWrong) {
  const auto& pki = test_pki();
  const std::string cert = write_temp_file("admin.crt", pki.server_cert_pem);
  auto args = GatewayProcess::default_args();
  args.insert(args.end(),
              {"--admin-tls-cert", cert, "--admin-tls-key", write_temp_file("rogue.key", pki.rogue_key_pem)});
  GatewayProcess mismatched(args);
  EXPECT_EQ(mismatched.wait_exit(std::chrono::seconds(10)), 1);
  EXPECT_NE(mismatched.output().find("is not the key of the certificate in --admin-tls-cert"), std::string::npos)
      << mismatched.output();

  args.back() = write_temp_file("not-a-key.pem", pki.server_cert_pem);  // a certificate where the key belongs
  GatewayProcess no_key(args);
  EXPECT_EQ(no_key.wait_exit(std::chrono::seconds(10)), 1);
  EXPECT_NE(no_key.output().find("no unencrypted PEM private key"), std::string::npos) << no_key.output();
}

TEST(Process, PortInUseFailsWithTheAddress) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor taken(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = std::to_string(taken.local_endpoint().port());
  auto args = GatewayProcess::default_args();
  args[3] = port;  // --ws-port
  GatewayProcess p(args);
  EXPECT_EQ(p.wait_exit(std::chrono::seconds(10)), 1);
  EXPECT_NE(p.output().find("cannot listen on 127.0.0.1:" + port), std::string::npos) << p.output();
}

TEST(Process, GrpcPortInUseFailsInsteadOfSharingIt) {
  GatewayProcess first(GatewayProcess::default_args());
  ASSERT_TRUE(first.wait_listening()) << first.output();
  auto args = GatewayProcess::default_args();
  args[5] = std::to_string(first.grpc_port());  // --grpc-port
  GatewayProcess second(args);
  EXPECT_EQ(second.wait_exit(std::chrono::seconds(10)), 1);
  EXPECT_NE(second.output().find("for gRPC"), std::string::npos) << second.output();
}

void expect_graceful_exit_on(int signal_number) {
  GatewayProcess p(GatewayProcess::default_args());
  ASSERT_TRUE(p.wait_listening()) << p.output();
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(WsClient::connect(p.ws_port(), "/ws?user=u" + std::to_string(i)));
    ASSERT_TRUE(clients.back()->next_of_type("welcome"));
  }
  p.signal(signal_number);
  for (auto& c : clients) {
    auto closed = c->wait_closed();
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1001);
    EXPECT_EQ(closed->reason, "server shutting down");
  }
  EXPECT_EQ(p.wait_exit(std::chrono::seconds(5)), 0) << p.output();
  const std::string out = p.output();
  EXPECT_NE(out.find("\"msg\":\"shutting down\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"drained\":true"), std::string::npos) << out;
  // Production log format: every line is one JSON object.
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(line, ec);
    EXPECT_FALSE(ec) << line;
    EXPECT_TRUE(v.is_object()) << line;
  }
}

TEST(Process, SigtermClosesClientsWith1001AndExitsZero) { expect_graceful_exit_on(SIGTERM); }

TEST(Process, SigintDoesTheSame) { expect_graceful_exit_on(SIGINT); }

TEST(Process, ShutdownIsBoundedEvenWithAStuckClient) {
  auto args = GatewayProcess::default_args();
  args.insert(args.end(), {"--close-timeout", "1", "--shutdown-timeout", "3"});
  GatewayProcess p(args);
  ASSERT_TRUE(p.wait_listening()) << p.output();
  WsOptions options;
  options.start_reading = false;  // never answers the close handshake
  auto stuck = WsClient::connect(p.ws_port(), "/ws?user=stuck", options);
  const auto start = std::chrono::steady_clock::now();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait_exit(std::chrono::seconds(8)), 0) << p.output();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace notify::testing
