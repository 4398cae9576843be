#pragma once
// Child processes for tests that need a whole process: the real
// notify-gateway binary (signals, exit codes, command-line errors), and
// command-line programs such as notifyctl run the way a shell runs them.
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

// A program run with its own stdin, stdout and stderr pipes. Its
// environment is the test's without any NOTIFY_* variable, plus `env`
// ("NAME=value" entries), so a variable set around the test run can't change
// what the program does.
class ChildProcess {
 public:
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::vector<std::string>& env = {});
  ~ChildProcess();  // SIGKILLs the child if it is still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void write_stdin(const std::string& text);  // blocks until written
  void close_stdin();
  void signal(int signal_number);
  // The exit status (or 128+signal), or nullopt if still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // Waits until stdout holds `count` lines; false on timeout or end of output.
  bool wait_lines(std::size_t count, std::chrono::milliseconds timeout);
  // Waits until the child's stdout and stderr are closed (it exited).
  bool wait_output_end(std::chrono::milliseconds timeout);
  std::string out();  // stdout so far
  std::string err();  // stderr so far

 private:
  struct Pipe {
    int fd = -1;
    std::string text;
    bool eof = false;
    std::thread reader;
  };
  void pump(Pipe& pipe);

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  Pipe out_, err_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<int> exit_status_;
};

struct CommandResult {
  int exit_code = -1;  // -1: killed after the timeout
  std::string out, err;
};
// Runs `binary` with `args` to its end, `input` on its stdin.
CommandResult run_command(const std::string& binary, const std::vector<std::string>& args,
                          const std::string& input = {}, const std::vector<std::string>& env = {},
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

}  // namespace notify::testing
