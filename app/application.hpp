#pragma once
// Wires the components together in the order they depend on each other and
// runs the shutdown sequence (docs/operations.md). One per process in
// production; tests start several in one process on port 0. The components
// stay behind a pointer so that users of this header (main, tests) don't
// compile Beast and gRPC server headers.
#include <cstdint>
#include <memory>

#include "app/config.hpp"
#include "common/metrics.hpp"

namespace notify::app {

class Application {
 public:
  explicit Application(Config config);
  ~Application();
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  // Binds every port and starts serving; throws std::runtime_error with an
  // operator-readable message on failure.
  void start();

  std::uint16_t ws_port() const;
  std::uint16_t grpc_port() const;
  std::uint16_t metrics_port() const;
  Metrics& metrics();
  const Config& config() const;

  // Re-reads the JWT keys and the admin API keys (SIGHUP, or a watched file
  // changed). On any error the current keys stay and the error is logged;
  // returns whether the new keys are in use.
  bool reload_credentials();

  // Readiness false, clients closed with 1001, RPCs refused, then everything
  // stopped within the shutdown timeout. Idempotent and thread-safe; returns
  // true if every connection closed in time.
  bool shutdown();

 private:
  struct Components;
  std::unique_ptr<Components> c_;
};

}  // namespace notify::app
