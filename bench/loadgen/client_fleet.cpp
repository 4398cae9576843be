#include "bench/loadgen/client_fleet.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <string_view>

#include "bench/loadgen/proc_stats.hpp"

namespace bench {

namespace {

constexpr std::size_t kReadBuffer = 256 * 1024;
constexpr std::string_view kSeqMarker = "\"bseq\":";
constexpr std::string_view kTsMarker = "\"bts\":";

// The number right after `marker` in `text`, or -1.
std::int64_t number_after(std::string_view text, std::string_view marker) {
  const auto at = text.find(marker);
  if (at == std::string_view::npos) return -1;
  std::int64_t value = -1;
  const char* first = text.data() + at + marker.size();
  const auto [ptr, ec] = std::from_chars(first, text.data() + text.size(), value);
  return ec == std::errc() ? value : -1;
}

enum class State : std::uint8_t { idle, connecting, handshaking, open, done };

struct Conn {
  int fd = -1;
  int index = 0;  // fleet-wide connection index
  State state = State::idle;
  bool watching_out = false;
  std::int64_t started_us = 0;
  std::int64_t last_seq = -1;
  std::uint64_t seen = 0;  // bit d: sequence number last_seq - d arrived
  std::string in;          // bytes of an incomplete response or frame
  std::string out;         // bytes the socket would not take yet
};

}  // namespace

struct ClientFleet::Worker {
  ClientFleet& fleet;
  int id;
  int epfd = -1;
  std::vector<Conn> conns;
  std::size_t next_to_open = 0;
  int pending = 0;  // connecting or handshaking
  std::unique_ptr<char[]> buf{new char[kReadBuffer]};

  std::mutex mu;  // guards everything below
  FleetWindow window;
  FleetStatus status;

  Worker(ClientFleet& f, int worker_id) : fleet(f), id(worker_id) {}

  void run() {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    std::vector<epoll_event> events(1024);
    while (!fleet.stopping_.load(std::memory_order_relaxed)) {
      open_due();
      const int timeout = next_to_open < conns.size() ? 1 : 50;
      const int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), timeout);
      if (n <= 0) continue;
      std::lock_guard lock(mu);
      const std::int64_t now = now_us();
      for (int i = 0; i < n; ++i) on_event(conns[events[i].data.u32], events[i].events, now);
    }
    for (auto& c : conns) {
      if (c.fd >= 0) ::close(c.fd);
      c.fd = -1;
    }
    ::close(epfd);
  }

  void open_due() {
    if (next_to_open >= conns.size()) return;
    const auto& o = fleet.options_;
    std::size_t due = conns.size();
    if (o.ramp_per_second > 0) {
      const double elapsed = static_cast<double>(now_us() - fleet.start_us_) / 1e6;
      const double per_worker = o.ramp_per_second / static_cast<double>(o.threads);
      due = std::min(conns.size(), static_cast<std::size_t>(elapsed * per_worker) + 1);
    }
    std::lock_guard lock(mu);
    while (next_to_open < due && (o.max_pending <= 0 || pending < o.max_pending)) {
      open(conns[next_to_open]);
      ++next_to_open;
    }
  }

  void fail(Conn& c, const std::string& reason) {
    if (c.state == State::open) {
      ++status.closed;
      fleet.conn_open_[static_cast<std::size_t>(c.index)].store(0, std::memory_order_relaxed);
      fleet.open_.fetch_sub(1, std::memory_order_relaxed);
    } else if (c.state != State::done) {
      ++status.failed;
      ++status.failures[reason];
      --pending;
    }
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    c.state = State::done;
    std::string().swap(c.in);
    std::string().swap(c.out);
  }

  const Endpoint& endpoint_of(const Conn& c) const {
    const auto& e = fleet.options_.endpoints;
    return e[static_cast<std::size_t>(c.index) % e.size()];
  }

  void open(Conn& c) {
    const auto& o = fleet.options_;
    const Endpoint& to = endpoint_of(c);
    c.started_us = now_us();
    if (status.first_connect_us == 0) status.first_connect_us = c.started_us;
    ++status.started;
    ++pending;
    c.state = State::connecting;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return fail(c, std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl(0x7f000001u + static_cast<std::uint32_t>(c.index % std::max(1, o.source_addresses)));
    if (::bind(c.fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) {
      return fail(c, std::string("bind: ") + std::strerror(errno));
    }
    sockaddr_in dest{};
    dest.sin_family = AF_INET;
    dest.sin_port = htons(to.port);
    inet_pton(AF_INET, to.host.c_str(), &dest.sin_addr);
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&dest), sizeof dest) != 0 && errno != EINPROGRESS) {
      return fail(c, std::string("connect: ") + std::strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = static_cast<std::uint32_t>(&c - conns.data());
    c.watching_out = true;
    epoll_ctl(epfd, EPOLL_CTL_ADD, c.fd, &ev);
  }

  void watch_out(Conn& c, bool on) {
    if (c.watching_out == on) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u32 = static_cast<std::uint32_t>(&c - conns.data());
    epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
    c.watching_out = on;
  }

  void send(Conn& c, std::string_view bytes) {
    if (c.out.empty()) {
      const ssize_t n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n == static_cast<ssize_t>(bytes.size())) return;
      if (n < 0 && errno != EAGAIN) return fail(c, std::string("write: ") + std::strerror(errno));
      bytes.remove_prefix(n > 0 ? static_cast<std::size_t>(n) : 0);
    }
    c.out.append(bytes);
    watch_out(c, true);
  }

  void flush(Conn& c) {
    while (!c.out.empty()) {
      const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) return;
        return fail(c, std::string("write: ") + std::strerror(errno));
      }
      c.out.erase(0, static_cast<std::size_t>(n));
    }
    std::string().swap(c.out);
    watch_out(c, false);
  }

  // A masked client frame (RFC 6455 5.3); control frames only, so short.
  void send_frame(Conn& c, std::uint8_t opcode, std::string_view payload) {
    static constexpr unsigned char kMask[4] = {0x37, 0xfa, 0x21, 0x3d};
    std::string frame;
    frame.push_back(static_cast<char>(0x80 | opcode));
    frame.push_back(static_cast<char>(0x80 | std::min<std::size_t>(payload.size(), 125)));
    frame.append(reinterpret_cast<const char*>(kMask), 4);
    for (std::size_t i = 0; i < payload.size() && i < 125; ++i) {
      frame.push_back(static_cast<char>(payload[i] ^ static_cast<char>(kMask[i % 4])));
    }
    send(c, frame);
  }

  void send_handshake(Conn& c) {
    const Endpoint& to = endpoint_of(c);
    const int user = c.index % fleet.users_;
    std::string req = "GET " + to.path + "?user=" + fleet.user_ids_[static_cast<std::size_t>(user)];
    if (!to.query.empty()) req += "&" + to.query;
    req += " HTTP/1.1\r\nHost: " + to.host + ":" + std::to_string(to.port) +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    send(c, req);
  }

  void on_event(Conn& c, std::uint32_t events, std::int64_t now) {
    if (c.fd < 0) return;
    if (c.state == State::connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return fail(c, std::string("connect: ") + std::strerror(err));
      if (!(events & (EPOLLOUT | EPOLLIN))) return fail(c, "connect: hang-up");
      c.state = State::handshaking;
      watch_out(c, false);
      send_handshake(c);
      if (c.fd < 0) return;
    }
    if ((events & EPOLLOUT) && !c.out.empty()) {
      flush(c);
      if (c.fd < 0) return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_ready(c, now);
  }

  void read_ready(Conn& c, std::int64_t now) {
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf.get(), kReadBuffer, 0);
      if (n == 0) return fail(c, "closed before the upgrade");
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return fail(c, std::string("read: ") + std::strerror(errno));
      }
      if (c.in.empty() && c.state == State::open) {
        const std::size_t used = consume(c, buf.get(), static_cast<std::size_t>(n), now);
        if (c.fd < 0) return;
        c.in.assign(buf.get() + used, static_cast<std::size_t>(n) - used);
      } else {
        c.in.append(buf.get(), static_cast<std::size_t>(n));
        if (c.state == State::handshaking && !finish_handshake(c, now)) return;
        const std::size_t used = consume(c, c.in.data(), c.in.size(), now);
        if (c.fd < 0) return;
        c.in.erase(0, used);
      }
      if (c.in.empty()) std::string().swap(c.in);
      if (static_cast<std::size_t>(n) < kReadBuffer) return;  // drained; no EAGAIN round trip
    }
  }

  // Parses the 101 response once complete; false while it is not (or on failure).
  bool finish_handshake(Conn& c, std::int64_t now) {
    const auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > 16384) fail(c, "oversized handshake response");
      return false;
    }
    if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) {
      fail(c, "HTTP " + c.in.substr(9, 3));
      return false;
    }
    c.in.erase(0, end + 4);
    c.state = State::open;
    --pending;
    status.handshake_us.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - c.started_us)));
    status.last_open_us = std::max(status.last_open_us, now);
    fleet.conn_open_[static_cast<std::size_t>(c.index)].store(1, std::memory_order_relaxed);
    fleet.open_.fetch_add(1, std::memory_order_relaxed);
    if (const int topics = fleet.options_.topics; topics > 0) {
      send_frame(c, 0x1, R"({"type":"subscribe","topic":"t)" + std::to_string(c.index % topics) + R"("})");
    }
    return true;
  }

  // Handles the complete frames at the start of `data`; returns the bytes used.
  std::size_t consume(Conn& c, const char* data, std::size_t len, std::int64_t now) {
    std::size_t pos = 0;
    while (len - pos >= 2) {
      const auto b0 = static_cast<unsigned char>(data[pos]);
      const auto b1 = static_cast<unsigned char>(data[pos + 1]);
      std::size_t header = 2;
      std::uint64_t size = b1 & 0x7f;
      if (size == 126) {
        if (len - pos < 4) break;
        size = (static_cast<std::uint64_t>(static_cast<unsigned char>(data[pos + 2])) << 8) |
               static_cast<unsigned char>(data[pos + 3]);
        header = 4;
      } else if (size == 127) {
        if (len - pos < 10) break;
        size = 0;
        for (int i = 0; i < 8; ++i)
          size = (size << 8) | static_cast<unsigned char>(data[pos + 2 + static_cast<std::size_t>(i)]);
        header = 10;
      }
      if (b1 & 0x80) header += 4;  // servers don't mask; skip the key if one does
      if (len - pos < header + size) break;
      on_frame(c, b0 & 0x0f, std::string_view(data + pos + header, size), now);
      if (c.fd < 0) return len;
      pos += header + size;
    }
    return pos;
  }

  void on_frame(Conn& c, int opcode, std::string_view payload, std::int64_t now) {
    switch (opcode) {
      case 0x0:
      case 0x1:
      case 0x2: {
        ++window.frames;
        const std::int64_t seq = number_after(payload, kSeqMarker);
        if (seq < 0) return;
        ++window.data_frames;
        window.bytes += payload.size();
        window.last_data_us = now;
        const std::int64_t sent = number_after(payload, kTsMarker);
        if (sent >= 0) window.latency_us.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - sent)));
        track_sequence(c, seq);
        return;
      }
      case 0x8: {
        int code = 1005;
        if (payload.size() >= 2) {
          code = (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
        }
        ++status.close_codes[code];
        send_frame(c, 0x8, payload.substr(0, std::min<std::size_t>(payload.size(), 2)));
        return fail(c, "closed by the server");
      }
      case 0x9:
        return send_frame(c, 0xA, payload);
      default:
        return;
    }
  }

  void track_sequence(Conn& c, std::int64_t seq) {
    if (seq > c.last_seq) {
      const std::int64_t shift = seq - c.last_seq;
      c.seen = shift >= 64 ? 0 : c.seen << shift;
      c.seen |= 1;
      c.last_seq = seq;
      return;
    }
    const std::int64_t age = c.last_seq - seq;
    if (age < 64 && (c.seen & (1ull << age))) {
      ++window.duplicates;
      return;
    }
    if (age < 64) c.seen |= 1ull << age;
    ++window.reordered;
  }
};

ClientFleet::ClientFleet(FleetOptions options) : options_(std::move(options)) {
  options_.threads = std::max(1, options_.threads);
  users_ = options_.users > 0 ? std::min(options_.users, options_.connections) : options_.connections;
  users_ = std::max(1, users_);
  user_ids_.reserve(static_cast<std::size_t>(users_));
  for (int u = 0; u < users_; ++u) user_ids_.push_back(options_.user_prefix + std::to_string(u));
  conn_open_.reset(new std::atomic<std::uint8_t>[static_cast<std::size_t>(options_.connections)]);
  for (int i = 0; i < options_.connections; ++i) conn_open_[static_cast<std::size_t>(i)].store(0);
  for (int t = 0; t < options_.threads; ++t) {
    auto worker = std::make_unique<Worker>(*this, t);
    for (int i = t; i < options_.connections; i += options_.threads) {
      Conn c;
      c.index = i;
      worker->conns.push_back(std::move(c));
    }
    workers_.push_back(std::move(worker));
  }
}

ClientFleet::~ClientFleet() { stop(); }

void ClientFleet::start() {
  start_us_ = now_us();
  for (auto& w : workers_) threads_.emplace_back([worker = w.get()] { worker->run(); });
}

void ClientFleet::stop() {
  stopping_.store(true);
  for (auto& t : threads_) t.join();
  threads_.clear();
}

FleetStatus ClientFleet::status() {
  FleetStatus total;
  for (auto& w : workers_) {
    std::lock_guard lock(w->mu);
    const auto& s = w->status;
    total.started += s.started;
    total.failed += s.failed;
    total.closed += s.closed;
    if (s.first_connect_us && (!total.first_connect_us || s.first_connect_us < total.first_connect_us)) {
      total.first_connect_us = s.first_connect_us;
    }
    total.last_open_us = std::max(total.last_open_us, s.last_open_us);
    for (const auto& [k, v] : s.failures) total.failures[k] += v;
    for (const auto& [k, v] : s.close_codes) total.close_codes[k] += v;
    total.handshake_us.merge(s.handshake_us);
  }
  total.open = open_connections();
  return total;
}

FleetWindow ClientFleet::harvest() {
  FleetWindow total;
  for (auto& w : workers_) {
    std::lock_guard lock(w->mu);
    total.merge(w->window);
    w->window = FleetWindow{};
  }
  return total;
}

int ClientFleet::open_connections_of(int user) const {
  int n = 0;
  for (int i = user; i < options_.connections; i += users_) {
    n += conn_open_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
  }
  return n;
}

}  // namespace bench
