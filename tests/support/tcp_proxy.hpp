#pragma once
// A loopback TCP proxy in front of a Redis, for the broker's tests: it passes
// bytes both ways and can make the pub/sub connections that exist at a given
// moment go silent (their subscriptions' messages dropped, the sockets kept
// open), the failure a pub/sub client cannot see by itself.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace notify::testing {

class TcpProxy {
 public:
  explicit TcpProxy(std::uint16_t target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // From now on, drops what Redis sends to every connection that has sent a
  // SUBSCRIBE so far; connections made later pass untouched. Returns how many
  // were muted.
  int mute_pubsub_connections();

 private:
  struct Pair {
    int client = -1;
    int server = -1;
    bool pubsub = false;  // the client sent SUBSCRIBE
    bool muted = false;
  };
  void run();
  void close_pair(Pair& p);

  std::uint16_t target_port_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  int wake_[2] = {-1, -1};
  std::mutex mutex_;
  std::vector<Pair> pairs_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace notify::testing
