// notify-loadgen: opens N WebSocket connections to notify-gateway or a peer,
// publishes at fixed rates, and reports connection, delivery, latency and
// server resource figures as a table and one JSON line. See bench/README.md.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "bench/loadgen/client_fleet.hpp"
#include "bench/loadgen/proc_stats.hpp"
#include "bench/loadgen/publisher.hpp"

namespace bench {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

struct Options {
  std::string label = "notify-gateway";
  std::vector<std::string> urls{"ws://127.0.0.1:8080/ws"};
  FleetOptions fleet;
  std::string mode = "broadcast";  // broadcast | notify | idle | receive
  std::string publish_via = "grpc";
  std::string grpc_target = "127.0.0.1:50051";
  std::string api_key;
  std::string http_target = "127.0.0.1:8081";
  int publish_connections = 4;
  int max_in_flight = 256;
  std::vector<double> rates;
  double step_seconds = 5;
  int batch = 1;
  int payload_bytes = 64;
  bool stop_on_failure = false;
  double always_run_up_to = 0;
  double min_delivered_percent = 99.9;
  double max_p99_ms = 100;
  double hold_seconds = 2;
  int warmup_connections = 100;
  double connect_timeout = 60;
  double drain_seconds = 3;
  std::vector<int> server_pids;  // each with its descendants; figures are their sum
  bool check = false;
  bool quiet = false;
  std::uint64_t seed = 1;
};

struct StepResult {
  double rate = 0;
  double seconds = 0;
  std::uint64_t published = 0;
  std::uint64_t publish_errors = 0;
  std::uint64_t expected = 0;
  std::uint64_t delivered = 0;  // unique data frames
  std::uint64_t duplicates = 0;
  std::uint64_t reordered = 0;
  std::uint64_t lost = 0;
  double deliveries_per_second = 0;
  Histogram latency_us;
  Histogram publish_rtt_us;
  double server_cpu_percent = 0;
  double server_cpu_seconds = 0;
  std::uint64_t server_rss = 0;
  std::map<std::string, std::uint64_t> error_kinds;
  bool passed = false;
  std::string verdict;
};

double ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }

std::string fmt(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string payload_for(std::uint64_t seq, int size) {
  std::string p = "{\"bseq\":" + std::to_string(seq) + ",\"bts\":" + std::to_string(now_us()) + ",\"pad\":\"";
  const std::size_t want = static_cast<std::size_t>(std::max(0, size));
  if (p.size() + 2 < want) p.append(want - p.size() - 2, 'x');
  p += "\"}";
  return p;
}

Endpoint parse_url(const std::string& url) {
  // ws://host:port/path
  const std::string prefix = "ws://";
  if (url.rfind(prefix, 0) != 0) throw CLI::ValidationError("--url", url + ": must start with ws://");
  const auto rest = url.substr(prefix.size());
  const auto slash = rest.find('/');
  const auto authority = rest.substr(0, slash);
  Endpoint e;
  e.path = slash == std::string::npos ? "/" : rest.substr(slash);
  const auto colon = authority.rfind(':');
  if (colon == std::string::npos) throw CLI::ValidationError("--url", url + ": needs a port");
  e.host = authority.substr(0, colon);
  e.port = static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)));
  if (const auto q = e.path.find('?'); q != std::string::npos) {
    e.query = e.path.substr(q + 1);
    e.path.resize(q);
  }
  return e;
}

// The sum over every --server-pid tree (several replicas, plus Redis).
ProcSample sample_servers(const std::vector<int>& pids) {
  ProcSample total;
  for (const int pid : pids) {
    const ProcSample s = sample_process_tree(pid);
    total.cpu_seconds += s.cpu_seconds;
    total.rss_bytes += s.rss_bytes;
    total.processes += s.processes;
  }
  return total;
}

class Run {
 public:
  explicit Run(Options o) : o_(std::move(o)), fleet_(o_.fleet), rng_(o_.seed) {}

  int execute() {
    warm_up();
    baseline_ = sample();
    if (o_.mode != "idle" && o_.mode != "receive") publisher_ = make_publisher();
    ramp();
    if (o_.mode == "receive") receive();
    for (const double rate : o_.rates) {
      steps_.push_back(step(rate));
      if (o_.stop_on_failure && !steps_.back().passed && rate >= o_.always_run_up_to) break;
    }
    final_status_ = fleet_.status();
    fleet_.stop();
    print_table();
    print_json();
    return o_.check && !healthy() ? 1 : 0;
  }

 private:
  std::unique_ptr<Publisher> make_publisher() {
    if (o_.publish_via == "grpc" || o_.publish_via == "grpc-stream") {
      return make_grpc_publisher(o_.grpc_target, o_.api_key, o_.publish_connections, o_.max_in_flight,
                                 o_.publish_via == "grpc-stream");
    }
    const auto colon = o_.http_target.rfind(':');
    return make_http_publisher(o_.http_target.substr(0, colon),
                               static_cast<std::uint16_t>(std::stoi(o_.http_target.substr(colon + 1))),
                               o_.publish_connections, o_.max_in_flight);
  }

  ProcSample sample() const { return sample_servers(o_.server_pids); }

  void progress(const std::string& line) const {
    if (!o_.quiet) std::cerr << "\r" << line << "\033[K" << std::flush;
  }
  void progress_done() const {
    if (!o_.quiet) std::cerr << "\n";
  }

  // Opens and closes a few connections first, so that the code and the
  // per-thread structures the server touches on its first connections are in
  // the baseline rather than counted per connection.
  void warm_up() {
    if (o_.warmup_connections <= 0) return;
    FleetOptions w = o_.fleet;
    w.connections = o_.warmup_connections;
    w.users = 0;
    w.user_prefix = "warmup";
    w.ramp_per_second = 0;
    ClientFleet warm(w);
    warm.start();
    const std::int64_t deadline = now_us() + 5'000'000;
    for (;;) {
      const FleetStatus s = warm.status();
      if (s.open + s.failed >= w.connections || now_us() > deadline) break;
      std::this_thread::sleep_for(20ms);
    }
    warm.stop();
    std::this_thread::sleep_for(500ms);  // the server notices the closes
  }

  void ramp() {
    const std::int64_t start = now_us();
    const ProcSample before = sample();
    fleet_.start();
    const auto deadline = start + static_cast<std::int64_t>(o_.connect_timeout * 1e6);
    FleetStatus s;
    for (;;) {
      std::this_thread::sleep_for(100ms);
      s = fleet_.status();
      const double elapsed = static_cast<double>(now_us() - start) / 1e6;
      progress("[" + o_.label + "] connecting: " + std::to_string(s.open) + "/" + std::to_string(o_.fleet.connections) +
               " open, " + std::to_string(s.failed) + " failed, " + fmt(s.open / std::max(elapsed, 1e-3), 0) +
               " conn/s");
      if (s.open + s.failed + s.closed >= o_.fleet.connections) break;
      if (now_us() > deadline) {
        progress_done();
        std::cerr << "connect timeout: " << s.open << " open after " << o_.connect_timeout << " s\n";
        break;
      }
    }
    progress_done();
    ramp_seconds_ = s.first_connect_us && s.last_open_us > s.first_connect_us
                        ? static_cast<double>(s.last_open_us - s.first_connect_us) / 1e6
                        : 0;
    const ProcSample after_ramp = sample();
    ramp_cpu_seconds_ = after_ramp.cpu_seconds - before.cpu_seconds;
    // Let the server settle (lazy frees, timers) before reading its memory.
    std::this_thread::sleep_for(std::chrono::duration<double>(o_.hold_seconds));
    held_ = sample();
    ramp_status_ = fleet_.status();
    fleet_.harvest();  // frames before the first step (welcome frames) don't count
  }

  std::vector<const std::string*> pick_users(std::uint64_t& expected) {
    std::vector<const std::string*> users;
    std::uniform_int_distribution<int> pick(0, fleet_.users() - 1);
    std::vector<int> chosen;
    const int batch = std::min(o_.batch, fleet_.users());
    while (static_cast<int>(chosen.size()) < batch) {
      const int u = pick(rng_);
      if (std::find(chosen.begin(), chosen.end(), u) != chosen.end()) continue;
      chosen.push_back(u);
      users.push_back(&fleet_.user_id(u));
      expected += static_cast<std::uint64_t>(fleet_.open_connections_of(u));
    }
    return users;
  }

  StepResult step(double rate) {
    StepResult r;
    r.rate = rate;
    fleet_.harvest();
    publisher_->harvest();
    const ProcSample s0 = sample();
    const std::int64_t t0 = now_us();
    const auto duration_us = static_cast<std::int64_t>(o_.step_seconds * 1e6);
    std::uint64_t sent = 0;
    std::int64_t last_progress = t0;
    FleetWindow got;
    auto absorb = [&] { got.merge(fleet_.harvest()); };
    for (;;) {
      const std::int64_t now = now_us();
      const std::int64_t elapsed = now - t0;
      if (elapsed >= duration_us) break;
      const auto due = static_cast<std::uint64_t>(static_cast<double>(elapsed) * rate / 1e6) + 1;
      while (sent < due) {
        const std::string payload = payload_for(next_seq_++, o_.payload_bytes);
        if (o_.mode == "notify") {
          const auto users = pick_users(r.expected);
          publisher_->notify(users, payload);
        } else {
          r.expected += static_cast<std::uint64_t>(fleet_.open_connections());
          publisher_->broadcast(payload);
        }
        ++sent;
      }
      if (now - last_progress > 1'000'000) {
        last_progress = now;
        absorb();
        progress("[" + o_.label + "] " + fmt(rate, 0) + " publishes/s: " + std::to_string(sent) + " sent, " +
                 std::to_string(got.data_frames) + "/" + std::to_string(r.expected) + " delivered, p99 " +
                 fmt(ms(got.latency_us.quantile(0.99))) + " ms");
      }
      const std::int64_t next_due = t0 + static_cast<std::int64_t>(static_cast<double>(sent) * 1e6 / rate);
      const std::int64_t wait = std::min<std::int64_t>(next_due - now_us(), 1000);
      if (wait > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait));
    }
    const std::int64_t publish_end = now_us();
    publisher_->wait_idle(std::chrono::milliseconds(static_cast<int>(o_.drain_seconds * 1000)));
    // Drain: until everything expected arrived or nothing new came for a while.
    std::uint64_t last_count = 0;
    std::int64_t quiet_since = now_us();
    const std::int64_t drain_deadline = now_us() + static_cast<std::int64_t>(o_.drain_seconds * 1e6);
    for (;;) {
      absorb();
      const std::uint64_t unique = got.data_frames - got.duplicates;
      if (unique >= r.expected || now_us() > drain_deadline) break;
      if (got.data_frames != last_count) {
        last_count = got.data_frames;
        quiet_since = now_us();
      } else if (now_us() - quiet_since > 1'000'000) {
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(100ms);  // late duplicates
    absorb();
    progress_done();
    const ProcSample s1 = sample();
    const PublishWindow pub = publisher_->harvest();
    r.seconds = static_cast<double>(publish_end - t0) / 1e6;
    r.published = pub.sent;
    r.publish_errors = pub.errors;
    r.error_kinds = pub.error_kinds;
    r.publish_rtt_us = pub.round_trip_us;
    r.delivered = got.data_frames - got.duplicates;
    r.duplicates = got.duplicates;
    r.reordered = got.reordered;
    r.lost = r.expected > r.delivered ? r.expected - r.delivered : 0;
    const std::int64_t end = std::max(got.last_data_us, publish_end);
    r.deliveries_per_second = static_cast<double>(r.delivered) / (static_cast<double>(end - t0) / 1e6);
    r.latency_us = got.latency_us;
    const double wall = static_cast<double>(now_us() - t0) / 1e6;
    r.server_cpu_seconds = s1.cpu_seconds - s0.cpu_seconds;
    r.server_cpu_percent = 100.0 * r.server_cpu_seconds / wall;
    r.server_rss = s1.rss_bytes;
    const double delivered_pct =
        r.expected ? 100.0 * static_cast<double>(r.delivered) / static_cast<double>(r.expected) : 100;
    const double achieved = static_cast<double>(r.published) / r.seconds;
    std::vector<std::string> why;
    if (delivered_pct < o_.min_delivered_percent) why.push_back("delivered " + fmt(delivered_pct, 2) + " %");
    if (ms(r.latency_us.quantile(0.99)) > o_.max_p99_ms)
      why.push_back("p99 " + fmt(ms(r.latency_us.quantile(0.99))) + " ms");
    if (achieved < 0.95 * rate) why.push_back("published only " + fmt(achieved, 0) + "/s");
    if (r.publish_errors) why.push_back(std::to_string(r.publish_errors) + " publish errors");
    r.passed = why.empty();
    for (const auto& w : why) r.verdict += (r.verdict.empty() ? "" : ", ") + w;
    if (r.passed) r.verdict = "ok";
    return r;
  }

  bool healthy() const {
    if (final_status_.failed || final_status_.closed || final_status_.open < o_.fleet.connections) return false;
    for (const auto& s : steps_) {
      if (s.lost || s.duplicates || s.publish_errors) return false;
    }
    return true;
  }

  double kib_per_connection() const {
    if (o_.server_pids.empty() || ramp_status_.open == 0 || held_.rss_bytes < baseline_.rss_bytes) return 0;
    return static_cast<double>(held_.rss_bytes - baseline_.rss_bytes) / 1024.0 / ramp_status_.open;
  }

  double connect_rate() const { return ramp_seconds_ > 0 ? ramp_status_.open / ramp_seconds_ : 0; }

  // --mode receive: what arrives for --step-seconds without publishing (a
  // server that sends on its own, bench/peers/frame-blaster), and what it
  // costs this process: the load generator's own receive capacity.
  void receive() {
    fleet_.harvest();
    const ProcSample self_before = sample_process_tree(static_cast<int>(::getpid()));
    const std::int64_t start = now_us();
    const std::int64_t end = start + static_cast<std::int64_t>(o_.step_seconds * 1e6);
    std::uint64_t frames = 0;
    while (now_us() < end) {
      std::this_thread::sleep_for(std::min<std::int64_t>(1'000'000, end - now_us()) * 1us);
      const FleetWindow w = fleet_.harvest();
      frames += w.frames;
      received_.merge(w);
      const double elapsed = static_cast<double>(now_us() - start) / 1e6;
      progress("[" + o_.label + "] receiving: " + fmt(static_cast<double>(frames) / elapsed, 0) + " frames/s");
    }
    progress_done();
    receive_seconds_ = static_cast<double>(now_us() - start) / 1e6;
    receive_cpu_seconds_ = sample_process_tree(static_cast<int>(::getpid())).cpu_seconds - self_before.cpu_seconds;
  }

  void print_table() const {
    const auto& s = ramp_status_;
    std::ostringstream out;
    out << "\n== " << o_.label << ": " << o_.fleet.connections << " connections, mode " << o_.mode << " ==\n";
    out << "connections     open " << s.open << ", failed " << s.failed << ", closed later " << final_status_.closed
        << "\n";
    for (const auto& [reason, n] : final_status_.failures) out << "  failure       " << reason << ": " << n << "\n";
    for (const auto& [code, n] : final_status_.close_codes) out << "  close code    " << code << ": " << n << "\n";
    out << "connect         " << fmt(ramp_seconds_, 2) << " s, " << fmt(connect_rate(), 0) << " handshakes/s\n";
    out << "handshake       p50 " << fmt(ms(s.handshake_us.quantile(0.5)), 2) << " ms, p99 "
        << fmt(ms(s.handshake_us.quantile(0.99)), 2) << " ms, max " << fmt(ms(s.handshake_us.max()), 2) << " ms\n";
    if (!o_.server_pids.empty()) {
      std::string pids;
      for (const int pid : o_.server_pids) pids += (pids.empty() ? "" : ",") + std::to_string(pid);
      out << "server          pid " << pids << " (" << held_.processes << " processes), RSS "
          << fmt(static_cast<double>(baseline_.rss_bytes) / 1048576.0) << " -> "
          << fmt(static_cast<double>(held_.rss_bytes) / 1048576.0) << " MiB, " << fmt(kib_per_connection(), 2)
          << " KiB/connection, CPU during connect " << fmt(ramp_cpu_seconds_, 2) << " s\n";
    }
    if (o_.mode == "receive") {
      const double frames = static_cast<double>(received_.frames);
      out << "received        " << received_.frames << " frames in " << fmt(receive_seconds_, 1)
          << " s: " << fmt(frames / std::max(receive_seconds_, 1e-9), 0) << " frames/s, " << received_.duplicates
          << " duplicates, " << received_.reordered << " reordered\n";
      out << "load generator  CPU " << fmt(receive_cpu_seconds_, 2)
          << " s: " << fmt(frames > 0 ? receive_cpu_seconds_ / frames * 1e6 : 0, 3) << " us per frame\n";
    }
    if (!steps_.empty()) {
      out << "\n  rate/s  published  expected   delivered  lost  dup  reord   deliv/s    p50ms   p90ms   p99ms  "
             "p999ms   maxms  cpu%   cpu-s/M  verdict\n";
      for (const auto& r : steps_) {
        char line[512];
        const double per_million = r.delivered ? r.server_cpu_seconds / static_cast<double>(r.delivered) * 1e6 : 0;
        std::snprintf(
            line, sizeof line,
            "%8.0f %10llu %9llu %11llu %5llu %4llu %6llu %9.0f %8.2f %7.2f %7.2f %7.2f %7.2f %5.0f %9.2f  %s\n", r.rate,
            static_cast<unsigned long long>(r.published), static_cast<unsigned long long>(r.expected),
            static_cast<unsigned long long>(r.delivered), static_cast<unsigned long long>(r.lost),
            static_cast<unsigned long long>(r.duplicates), static_cast<unsigned long long>(r.reordered),
            r.deliveries_per_second, ms(r.latency_us.quantile(0.5)), ms(r.latency_us.quantile(0.9)),
            ms(r.latency_us.quantile(0.99)), ms(r.latency_us.quantile(0.999)), ms(r.latency_us.max()),
            r.server_cpu_percent, per_million, r.verdict.c_str());
        out << line;
        for (const auto& [kind, n] : r.error_kinds) out << "           publish error " << kind << ": " << n << "\n";
      }
    }
    std::cout << out.str() << std::flush;
  }

  static json::object latency_json(const Histogram& h) {
    return {{"count", h.count()},          {"p50", ms(h.quantile(0.5))},    {"p90", ms(h.quantile(0.9))},
            {"p99", ms(h.quantile(0.99))}, {"p999", ms(h.quantile(0.999))}, {"max", ms(h.max())}};
  }

  // [[upper bound us, count], ...]: the histogram itself, so that a script
  // can merge the latencies of several load generator processes exactly.
  static json::array buckets_json(const Histogram& h) {
    json::array out;
    h.for_each_bucket([&](std::uint64_t bound, std::uint64_t n) { out.push_back(json::array{bound, n}); });
    return out;
  }

  void print_json() const {
    const auto& s = ramp_status_;
    json::object conn{{"target", o_.fleet.connections},
                      {"open", s.open},
                      {"failed", s.failed},
                      {"closed_later", final_status_.closed},
                      {"connect_seconds", ramp_seconds_},
                      {"handshakes_per_second", connect_rate()},
                      {"handshake_ms", latency_json(s.handshake_us)}};
    json::object failures;
    for (const auto& [reason, n] : final_status_.failures) failures[reason] = n;
    conn["failures"] = failures;
    json::object codes;
    for (const auto& [code, n] : final_status_.close_codes) codes[std::to_string(code)] = n;
    conn["close_codes"] = codes;
    json::array pids(o_.server_pids.begin(), o_.server_pids.end());
    json::object server{{"pid", o_.server_pids.empty() ? 0 : o_.server_pids.front()},
                        {"pids", pids},
                        {"processes", held_.processes},
                        {"rss_baseline_bytes", baseline_.rss_bytes},
                        {"rss_connected_bytes", held_.rss_bytes},
                        {"kib_per_connection", kib_per_connection()},
                        {"connect_cpu_seconds", ramp_cpu_seconds_}};
    json::array steps;
    for (const auto& r : steps_) {
      json::object j{{"rate", r.rate},
                     {"seconds", r.seconds},
                     {"published", r.published},
                     {"publish_errors", r.publish_errors},
                     {"expected", r.expected},
                     {"delivered", r.delivered},
                     {"lost", r.lost},
                     {"duplicates", r.duplicates},
                     {"reordered", r.reordered},
                     {"deliveries_per_second", r.deliveries_per_second},
                     {"latency_ms", latency_json(r.latency_us)},
                     {"latency_buckets_us", buckets_json(r.latency_us)},
                     {"publish_rtt_ms", latency_json(r.publish_rtt_us)},
                     {"server_cpu_percent", r.server_cpu_percent},
                     {"server_cpu_seconds", r.server_cpu_seconds},
                     {"server_cpu_seconds_per_million",
                      r.delivered ? r.server_cpu_seconds / static_cast<double>(r.delivered) * 1e6 : 0.0},
                     {"server_cpu_us_per_publish",
                      r.published ? r.server_cpu_seconds / static_cast<double>(r.published) * 1e6 : 0.0},
                     {"server_rss_bytes", r.server_rss},
                     {"passed", r.passed},
                     {"verdict", r.verdict}};
      steps.push_back(std::move(j));
    }
    json::object top{{"label", o_.label},
                     {"mode", o_.mode},
                     {"connections", conn},
                     {"server", server},
                     {"payload_bytes", o_.payload_bytes},
                     {"batch", o_.batch},
                     {"steps", steps},
                     {"healthy", healthy()}};
    if (o_.mode == "receive") {
      const double frames = static_cast<double>(received_.frames);
      top["receive"] =
          json::object{{"frames", received_.frames},
                       {"data_frames", received_.data_frames},
                       {"latency_ms", latency_json(received_.latency_us)},
                       {"latency_buckets_us", buckets_json(received_.latency_us)},
                       {"seconds", receive_seconds_},
                       {"frames_per_second", frames / std::max(receive_seconds_, 1e-9)},
                       {"duplicates", received_.duplicates},
                       {"reordered", received_.reordered},
                       {"loadgen_cpu_seconds", receive_cpu_seconds_},
                       {"loadgen_cpu_us_per_frame", frames > 0 ? receive_cpu_seconds_ / frames * 1e6 : 0.0}};
    }
    std::cout << json::serialize(top) << std::endl;
  }

  Options o_;
  ClientFleet fleet_;
  std::unique_ptr<Publisher> publisher_;
  FleetWindow received_;  // --mode receive
  double receive_seconds_ = 0;
  double receive_cpu_seconds_ = 0;
  std::mt19937_64 rng_;
  std::uint64_t next_seq_ = 0;
  ProcSample baseline_, held_;
  FleetStatus ramp_status_, final_status_;
  double ramp_seconds_ = 0, ramp_cpu_seconds_ = 0;
  std::vector<StepResult> steps_;
};

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  bench::Options o;
  CLI::App app{
      "notify-loadgen: WebSocket load generator for notify-gateway and its peers.\n"
      "Opens --connections WebSocket connections (user ids u0..u<users-1>) from 127.0.0.1..127.0.0.<sources>,\n"
      "then for each --rates step publishes at that rate for --step-seconds and reports deliveries, losses,\n"
      "duplicates, reordering, end-to-end latency and the server's CPU and memory (--server-pid).\n"
      "Prints a table and, as the last line, one JSON object."};
  app.add_option("--label", o.label, "Name of the system under test, for the report");
  app.add_option("--url", o.urls,
                 "WebSocket endpoint; ?user=<id> is appended (ws://host:port/path[?query]). Several (repeated or "
                 "comma-separated): connection i goes to the (i mod n)-th")
      ->delimiter(',');
  app.add_option("-c,--connections", o.fleet.connections, "WebSocket connections to open")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--users", o.fleet.users, "Distinct user ids (0: one per connection)");
  app.add_option("--user-prefix", o.fleet.user_prefix, "User ids are <prefix><n>");
  app.add_option("--ramp", o.fleet.ramp_per_second, "Connections opened per second (0: all at once)");
  app.add_option("--max-pending", o.fleet.max_pending, "Connects in flight per thread (0: no cap)");
  app.add_option("--sources", o.fleet.source_addresses, "Loopback source addresses 127.0.0.1..127.0.0.N")
      ->check(CLI::Range(1, 254));
  app.add_option("--topics", o.fleet.topics, "Each connection subscribes to topic t<index mod N> once open (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", o.fleet.threads, "Client event-loop threads")->check(CLI::Range(1, 64));
  app.add_option("--mode", o.mode,
                 "What to publish: broadcast (to everyone), notify (random users), idle (nothing), receive "
                 "(nothing; count what the server sends on its own for --step-seconds and this process's CPU)")
      ->check(CLI::IsMember({"broadcast", "notify", "idle", "receive"}));
  app.add_option("--publish-via", o.publish_via,
                 "grpc (notify-gateway's admin API, a call per publish), grpc-stream (notify mode: Notify requests "
                 "over one NotifyStream call per connection), or http (POST, peers)")
      ->check(CLI::IsMember({"grpc", "grpc-stream", "http"}));
  app.add_option("--grpc", o.grpc_target, "gRPC admin API host:port");
  app.add_option("--api-key", o.api_key, "Admin API key (authorization: Bearer)");
  app.add_option("--http", o.http_target, "HTTP publisher host:port (POST /broadcast, /notify?user=a,b)");
  app.add_option("--publish-connections", o.publish_connections,
                 "Publisher connections: HTTP keep-alive sockets, or gRPC HTTP/2 connections");
  app.add_option("--max-in-flight", o.max_in_flight, "Unanswered publish requests at most");
  app.add_option("--rates", o.rates, "Publish rates (per second), one step each")->delimiter(',');
  app.add_option("--step-seconds", o.step_seconds, "Publishing time per step");
  app.add_option("--batch", o.batch, "Users per Notify (notify mode)")->check(CLI::Range(1, 10000));
  app.add_option("--payload-bytes", o.payload_bytes, "Size of each published JSON payload");
  app.add_flag("--stop-on-failure", o.stop_on_failure, "Stop the ladder at the first step that fails");
  app.add_option("--always-run-up-to", o.always_run_up_to,
                 "With --stop-on-failure, steps at or below this rate run even after a failure (reference loads)");
  app.add_option("--min-delivered", o.min_delivered_percent, "A step passes with at least this % delivered");
  app.add_option("--max-p99-ms", o.max_p99_ms, "A step passes with p99 latency at most this");
  app.add_option("--hold-seconds", o.hold_seconds, "Wait after connecting before reading the server's memory");
  app.add_option("--warmup", o.warmup_connections,
                 "Connections opened and closed before the memory baseline is read (0: none)");
  app.add_option("--connect-timeout", o.connect_timeout, "Give up connecting after this many seconds");
  app.add_option("--drain-seconds", o.drain_seconds, "After a step, wait at most this long for late frames");
  app.add_option("--server-pid", o.server_pids,
                 "Server process (with its children) to sample from /proc; several (repeated or comma-separated): "
                 "figures are their sum (replicas plus Redis, say)")
      ->delimiter(',');
  app.add_flag("--check", o.check,
               "Exit 1 unless every connection opened and stayed open and nothing was lost or duplicated");
  app.add_flag("-q,--quiet", o.quiet, "No progress lines on stderr");
  app.add_option("--seed", o.seed, "Random seed for picking Notify users");
  CLI11_PARSE(app, argc, argv);
  try {
    o.fleet.endpoints.clear();
    for (const auto& url : o.urls) o.fleet.endpoints.push_back(bench::parse_url(url));
    if (o.mode == "idle" || o.mode == "receive") o.rates.clear();
    return bench::Run(std::move(o)).execute();
  } catch (const std::exception& e) {
    std::cerr << "notify-loadgen: " << e.what() << "\n";
    return 2;
  }
}
