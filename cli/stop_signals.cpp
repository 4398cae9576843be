#include "cli/stop_signals.hpp"

#include <signal.h>

namespace notify::cli {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

void block_stop_signals() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalWatcher::SignalWatcher(std::function<void(int, int)> on_signal)
    : thread_([this, on_signal = std::move(on_signal)] {
        const sigset_t set = stop_signals();
        const timespec poll{0, 100'000'000};  // how soon the destructor is noticed
        int count = 0;
        while (!done_.load()) {
          const int signal = sigtimedwait(&set, nullptr, &poll);
          if (signal <= 0) continue;
          int none = 0;
          first_.compare_exchange_strong(none, signal);
          on_signal(signal, ++count);
        }
      }) {}

SignalWatcher::~SignalWatcher() {
  done_ = true;
  thread_.join();
}

}  // namespace notify::cli
