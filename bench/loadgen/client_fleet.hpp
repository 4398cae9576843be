#pragma once
// N WebSocket client connections on a few epoll threads. Each connection is
// user (index % users); it answers pings and reads every frame, taking the
// publish timestamp ("bts") and sequence number ("bseq") from the payload.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/loadgen/histogram.hpp"

namespace bench {

// One WebSocket endpoint: ws://host:port/path?query.
struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string path = "/ws";  // "?user=<id>" (and `query`) appended
  std::string query;         // extra query parameters, e.g. "token=..."
};

struct FleetOptions {
  // Connection i goes to endpoints[i % size] (several replicas of a server).
  std::vector<Endpoint> endpoints{Endpoint{}};
  std::string user_prefix = "u";  // user ids are <prefix><n>
  int connections = 1000;
  int users = 0;               // 0: one user per connection
  double ramp_per_second = 0;  // 0: open them all at once
  int max_pending = 0;         // connects + handshakes in flight per thread, 0 = no cap
  int source_addresses = 16;   // 127.0.0.1 .. 127.0.0.<n>
  int threads = 2;
  int topics = 0;  // >0: each connection subscribes to topic t<index % topics> once open
};

// Counters of one measurement window (see ClientFleet::harvest).
struct FleetWindow {
  std::uint64_t frames = 0;       // every frame received
  std::uint64_t data_frames = 0;  // frames carrying "bseq"
  std::uint64_t duplicates = 0;   // a sequence number seen again on a connection
  std::uint64_t reordered = 0;    // older than the newest seen on that connection
  std::uint64_t bytes = 0;        // payload bytes of data frames
  std::int64_t last_data_us = 0;  // when the last data frame arrived
  Histogram latency_us;           // receive time - "bts"

  // Adds another window's counters to this one.
  void merge(const FleetWindow& other) {
    frames += other.frames;
    data_frames += other.data_frames;
    duplicates += other.duplicates;
    reordered += other.reordered;
    bytes += other.bytes;
    last_data_us = std::max(last_data_us, other.last_data_us);
    latency_us.merge(other.latency_us);
  }
};

struct FleetStatus {
  int started = 0;  // connects issued
  int open = 0;     // handshake completed and not closed
  int failed = 0;   // connect or handshake failed
  int closed = 0;   // closed after opening (by the server or an error)
  std::int64_t first_connect_us = 0;
  std::int64_t last_open_us = 0;        // when the latest handshake completed
  std::map<std::string, int> failures;  // reason ("HTTP 503", "connect: ...") -> count
  std::map<int, int> close_codes;       // WebSocket close code from the server -> count
  Histogram handshake_us;               // connect start -> 101 received
};

class ClientFleet {
 public:
  explicit ClientFleet(FleetOptions options);
  ~ClientFleet();
  ClientFleet(const ClientFleet&) = delete;
  ClientFleet& operator=(const ClientFleet&) = delete;

  void start();  // threads begin connecting at the configured ramp
  void stop();   // closes every socket, joins the threads

  FleetStatus status();
  // Counters since the previous harvest; resets them.
  FleetWindow harvest();

  // Open connections belonging to `user`.
  int open_connections_of(int user) const;
  int open_connections() const { return open_.load(std::memory_order_relaxed); }
  int users() const { return users_; }
  const std::string& user_id(int user) const { return user_ids_[static_cast<std::size_t>(user)]; }

  struct Worker;

 private:
  FleetOptions options_;
  int users_;
  std::vector<std::string> user_ids_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> conn_open_;  // by connection index
  std::atomic<int> open_{0};
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::int64_t start_us_ = 0;
};

}  // namespace bench
