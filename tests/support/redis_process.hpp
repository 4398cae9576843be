#pragma once
// A real redis-server (or redis-sentinel) for the broker's tests: started on
// a free loopback port with nothing persisted, stopped by PID.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace notify::testing {

// A loopback port nobody listens on at the time of the call.
std::uint16_t free_port();

class RedisProcess {
 public:
  // `extra` are redis-server arguments (e.g. {"--requirepass", "pw"}).
  explicit RedisProcess(std::vector<std::string> extra = {});
  ~RedisProcess();

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // SIGKILL (no goodbye to clients, as a crash), and start again on the same port.
  void kill();
  void restart();
  bool running() const { return process_ != nullptr; }
  // SIGSTOP / SIGCONT: a server that keeps its connections but answers
  // nothing, as behind a network partition.
  void freeze();
  void thaw();

  // Runs one command over a fresh connection; the reply as text (arrays
  // joined with '\n'), or "ERR:..." on failure.
  std::string command(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const;

 private:
  void start();

  std::vector<std::string> extra_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace notify::testing

namespace notify::testing {

// A redis-sentinel monitoring `master_port` as "mymaster" (quorum 1, the
// master declared down after `down_after`), on a free port, with its config
// in a private temporary folder.
class SentinelProcess {
 public:
  SentinelProcess(std::uint16_t master_port, std::chrono::milliseconds down_after);
  ~SentinelProcess();
  std::uint16_t port() const { return port_; }
  std::string command(const std::vector<std::string>& args) const;

 private:
  std::string dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace notify::testing
