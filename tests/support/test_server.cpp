#include "tests/support/test_server.hpp"

#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/ws_client.hpp"

namespace notify::testing {

TestServer::TestServer(std::vector<std::string> extra_flags) {
  std::vector<std::string> args = {
      "notify-gateway", "--bind", "127.0.0.1", "--ws-port", "0",           "--grpc-port", "0",
      "--metrics-port", "0",      "--threads", "2",         "--log-level", "error"};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  auto parsed = app::parse_config(static_cast<int>(argv.size()), argv.data());
  if (!parsed.config) throw std::runtime_error("test flags rejected: " + parsed.output);
  log::configure(parsed.config->log_format, parsed.config->log_level);
  app_ = std::make_unique<app::Application>(std::move(*parsed.config));
  app_->start();
}

TestServer::~TestServer() { app_->shutdown(); }

std::shared_ptr<grpc::Channel> TestServer::channel() const {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port()), grpc::InsecureChannelCredentials());
}

std::unique_ptr<v1::NotificationService::Stub> TestServer::stub() const {
  return v1::NotificationService::NewStub(channel());
}

std::string TestServer::scrape() const { return http_request(metrics_port(), "GET", "/metrics").body; }

double TestServer::metric(const std::string& sample) const { return sample_value(scrape(), sample); }

double sample_value(const std::string& exposition, const std::string& sample) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 && line[sample.size()] == ' ') {
      return std::stod(line.substr(sample.size() + 1));
    }
  }
  return -1;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void set_deadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

}  // namespace notify::testing
