#pragma once
// Publishes at the load generator's command: through notify-gateway's gRPC
// admin API (Broadcast, Notify, NotifyStream) or, for peers, HTTP POST /broadcast and
// /notify?user=a,b on keep-alive, pipelined connections.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/histogram.hpp"

namespace bench {

struct PublishWindow {
  std::uint64_t sent = 0;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  std::map<std::string, std::uint64_t> error_kinds;  // "gRPC 14: ..." / "HTTP 500" -> count
  Histogram round_trip_us;                           // request written -> answer read
};

class Publisher {
 public:
  virtual ~Publisher() = default;
  // Both block while the in-flight cap is reached.
  virtual void broadcast(const std::string& payload) = 0;
  virtual void notify(const std::vector<const std::string*>& users, const std::string& payload) = 0;
  // Waits until every request has its answer (or `timeout` passes).
  virtual void wait_idle(std::chrono::milliseconds timeout) = 0;
  // Counters since the previous harvest; resets them.
  virtual PublishWindow harvest() = 0;
};

// `target`: host:port of the gRPC admin API. `api_key`: sent as Bearer if set.
// `connections` HTTP/2 connections, used in turn. With `notify_stream`,
// notify() sends over one NotifyStream call per connection instead of a
// Notify call per request (broadcast() stays unary).
std::unique_ptr<Publisher> make_grpc_publisher(const std::string& target, const std::string& api_key, int connections,
                                               int max_in_flight, bool notify_stream);
// `host`, `port`: the peer's HTTP publisher. `connections` keep-alive sockets.
std::unique_ptr<Publisher> make_http_publisher(const std::string& host, std::uint16_t port, int connections,
                                               int max_in_flight);

}  // namespace bench
