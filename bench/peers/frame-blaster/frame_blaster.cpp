// frame-blaster: measures the load generator, not a server. Accepts
// WebSocket upgrades, then writes to every connection, as fast as the
// sockets take them, buffers of `frames_per_write` text frames, each
// {"bseq":N,"bts":<monotonic µs>,...} with N counting per connection, so the
// load generator's receive path (--mode receive) is the only thing that
// limits the frame rate. No HTTP beyond the upgrade, no publishing.
//
//   frame-blaster PORT [FRAMES_PER_WRITE=256] [PAYLOAD_BYTES=64]
// PORT 0 picks a free port; the first line on stdout is "listening port=N".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Conn {
  int fd = -1;
  std::uint64_t next_seq = 0;
  std::string out;  // frames not yet taken by the socket
  std::size_t off = 0;
};

std::mutex g_mu;
std::vector<Conn*> g_new;  // accepted and upgraded, not yet blasted
std::atomic<bool> g_stop{false};

// The load generator's clock (CLOCK_MONOTONIC, shared by the machine's processes).
std::int64_t mono_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Reads the upgrade request and answers 101; false if it isn't one.
bool upgrade(int fd) {
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0 || in.size() > 16384) return false;
    in.append(buf, static_cast<std::size_t>(n));
  }
  std::string lower = in;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const auto at = lower.find("\r\nsec-websocket-key:");
  if (at == std::string::npos) return false;
  std::size_t b = at + 20;
  while (b < in.size() && in[b] == ' ') ++b;
  const std::string key = in.substr(b, in.find("\r\n", b) - b);
  const std::string src = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(src.data()), src.size(), digest);
  unsigned char accept[64];
  const int len = EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
  const std::string response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
      std::string(reinterpret_cast<char*>(accept), static_cast<std::size_t>(len)) + "\r\n\r\n";
  return ::send(fd, response.data(), response.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(response.size());
}

void accept_loop(int listener) {
  while (!g_stop) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (!upgrade(fd)) {
      ::close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new Conn;
    c->fd = fd;
    std::lock_guard lock(g_mu);
    g_new.push_back(c);
  }
}

// Appends `count` frames with consecutive sequence numbers to c.out.
void fill(Conn& c, int count, const std::string& pad) {
  c.out.clear();
  c.off = 0;
  const std::int64_t ts = mono_us();
  char payload[256];
  for (int i = 0; i < count; ++i) {
    const int n = std::snprintf(payload, sizeof payload, "{\"bseq\":%llu,\"bts\":%lld,\"pad\":\"%s\"}",
                                static_cast<unsigned long long>(c.next_seq++), static_cast<long long>(ts), pad.c_str());
    c.out.push_back(static_cast<char>(0x81));
    c.out.push_back(static_cast<char>(n));  // payloads stay below 126 bytes
    c.out.append(payload, static_cast<std::size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: frame-blaster PORT [FRAMES_PER_WRITE=256] [PAYLOAD_BYTES=64]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int per_write = argc > 2 ? std::max(1, std::atoi(argv[2])) : 256;
  const int payload_bytes = argc > 3 ? std::atoi(argv[3]) : 64;
  // {"bseq":…,"bts":…,"pad":"…"} of about payload_bytes, below 126.
  const std::string pad(static_cast<std::size_t>(std::clamp(payload_bytes - 48, 0, 60)), 'x');
  std::signal(SIGPIPE, SIG_IGN);

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 4096) != 0) {
    std::fprintf(stderr, "frame-blaster: cannot listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
    return 1;
  }
  socklen_t addr_len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &addr_len);
  std::printf("listening port=%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  std::thread acceptor(accept_loop, listener);
  acceptor.detach();

  // One thread writes to every connection: whatever a socket takes, in turn.
  std::vector<Conn*> conns;
  std::vector<pollfd> fds;
  for (;;) {
    {
      std::lock_guard lock(g_mu);
      for (Conn* c : g_new) conns.push_back(c);
      g_new.clear();
    }
    bool progress = false;
    for (std::size_t i = 0; i < conns.size();) {
      Conn& c = *conns[i];
      if (c.off == c.out.size()) fill(c, per_write, pad);
      const ssize_t n = ::send(c.fd, c.out.data() + c.off, c.out.size() - c.off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.off += static_cast<std::size_t>(n);
        progress = true;
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        ::close(c.fd);  // the client left
        delete conns[i];
        conns[i] = conns.back();
        conns.pop_back();
        continue;
      }
      ++i;
    }
    if (!progress) {
      // Nothing was taken: wait until some socket is writable (or a new one comes).
      fds.resize(conns.size());
      for (std::size_t i = 0; i < conns.size(); ++i) fds[i] = {conns[i]->fd, POLLOUT, 0};
      ::poll(fds.data(), fds.size(), 10);
    }
  }
}
