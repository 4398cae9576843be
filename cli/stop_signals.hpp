#pragma once
// SIGINT, SIGTERM and SIGHUP for the subcommands that run until stopped
// (tail, stream): blocked in every thread, then taken one at a time by a
// watcher thread, so that a signal ends the call cleanly instead of killing
// the process between a request and its result line.
#include <atomic>
#include <functional>
#include <thread>

namespace notify::cli {

// Blocks the stop signals in the calling thread and in every thread it
// starts later; call before the first gRPC call creates threads.
void block_stop_signals();

// Calls on_signal(signal, count) on its own thread for each stop signal that
// arrives (count: 1 for the first), until destroyed.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int signal, int count)> on_signal);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  int first_signal() const { return first_.load(); }  // 0 while none came

 private:
  std::atomic<bool> done_{false};
  std::atomic<int> first_{0};
  std::thread thread_;
};

}  // namespace notify::cli
