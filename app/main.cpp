// notify-gateway: parses the configuration, starts the application, reloads
// credentials on SIGHUP and runs the graceful shutdown on SIGTERM/SIGINT.
#include <pthread.h>
#include <signal.h>

#include <absl/synchronization/mutex.h>

#include <cstdio>

#include "app/application.hpp"
#include "common/log.hpp"

int main(int argc, char** argv) {
  using namespace notify;
  auto parsed = app::parse_config(argc, argv);
  if (!parsed.config) {
    std::fputs(parsed.output.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  log::configure(parsed.config->log_format, parsed.config->log_level);
  // Debian's Abseil is built with mutex deadlock detection on: every lock
  // gRPC takes then updates a global lock-order graph (measured: ~3 % of the
  // process's CPU at 5,000 Notify/s). It is a debugging aid; production
  // code does without it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the signals before any thread starts, so every thread
  // inherits the mask and only sigwait() below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  app::Application application(std::move(*parsed.config));
  try {
    application.start();
  } catch (const std::exception& e) {
    log::error("cannot start", {{"error", e.what()}});
    return 1;
  }
  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    log::info("signal received", {{"signal", "SIGHUP"}});
    application.reload_credentials();
  }
  log::info("signal received", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});
  application.shutdown();
  return 0;
}
