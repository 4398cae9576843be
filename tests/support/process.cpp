#include "tests/support/process.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace notify::testing {

std::vector<std::string> GatewayProcess::default_args() {
  return {"--bind",         "127.0.0.1", "--ws-port",    "0",    "--grpc-port",   "0",
          "--metrics-port", "0",         "--log-format", "json", "--insecure-dev"};
}

GatewayProcess::GatewayProcess(std::vector<std::string> args) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<std::string> argv_storage = {NOTIFY_GATEWAY_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, NOTIFY_GATEWAY_BINARY, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    throw std::runtime_error(std::string("cannot start ") + NOTIFY_GATEWAY_BINARY);
  }
  out_fd_ = pipe_fds[0];
  reader_ = std::thread([this] { pump(); });
}

GatewayProcess::~GatewayProcess() {
  if (!wait_exit(std::chrono::milliseconds(0))) {
    kill(pid_, SIGKILL);
    wait_exit(std::chrono::milliseconds(5000));
  }
  if (reader_.joinable()) reader_.join();
  if (out_fd_ >= 0) close(out_fd_);
}

void GatewayProcess::pump() {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(out_fd_, buf, sizeof buf);
    std::lock_guard lock(mu_);
    if (n <= 0) {
      eof_ = true;
      cv_.notify_all();
      return;
    }
    output_.append(buf, static_cast<std::size_t>(n));
    cv_.notify_all();
  }
}

bool GatewayProcess::wait_listening(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::size_t scanned = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::size_t eol;
    while ((eol = output_.find('\n', scanned)) != std::string::npos) {
      const std::string line = output_.substr(scanned, eol - scanned);
      scanned = eol + 1;
      boost::system::error_code ec;
      auto value = boost::json::parse(line, ec);
      if (ec || !value.is_object()) continue;
      const auto& obj = value.as_object();
      if (obj.contains("msg") && obj.at("msg") == "listening") {
        ws_port_ = static_cast<std::uint16_t>(obj.at("ws_port").to_number<int>());
        grpc_port_ = static_cast<std::uint16_t>(obj.at("grpc_port").to_number<int>());
        metrics_port_ = static_cast<std::uint16_t>(obj.at("metrics_port").to_number<int>());
        return true;
      }
    }
    if (eof_) return false;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return false;
  }
}

void GatewayProcess::signal(int signal_number) { kill(pid_, signal_number); }

std::optional<int> GatewayProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string GatewayProcess::output() {
  std::lock_guard lock(mu_);
  return output_;
}

}  // namespace notify::testing
