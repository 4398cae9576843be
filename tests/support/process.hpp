#pragma once
// Runs the real notify-gateway binary as a child process for tests that need
// a whole process: signals, exit codes, command-line errors.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace notify::testing {

class GatewayProcess {
 public:
  // Starts the binary with `args`; stderr and stdout are captured.
  explicit GatewayProcess(std::vector<std::string> args);
  ~GatewayProcess();  // SIGKILLs the child if it is still running

  // Waits for the JSON "listening" line (needs --log-format json) and reads the ports from it.
  bool wait_listening(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  std::uint16_t ws_port() const { return ws_port_; }
  std::uint16_t grpc_port() const { return grpc_port_; }
  std::uint16_t metrics_port() const { return metrics_port_; }

  void signal(int signal_number);
  // The exit status (or 128+signal), or nullopt if still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  std::string output();  // everything captured so far

  // Standard arguments for a child on free loopback ports with JSON logs.
  static std::vector<std::string> default_args();

 private:
  void pump();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool eof_ = false;
  std::optional<int> exit_status_;
  std::uint16_t ws_port_ = 0;
  std::uint16_t grpc_port_ = 0;
  std::uint16_t metrics_port_ = 0;
};

}  // namespace notify::testing
