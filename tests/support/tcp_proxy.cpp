#include "tests/support/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>
#include <string>
#include <string_view>

namespace notify::testing {
namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Writes all of `data`; the sockets are blocking and loopback, so this only
// waits for the peer to read.
bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool mentions_subscribe(std::string_view bytes) {
  std::string upper(bytes);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  return upper.find("SUBSCRIBE") != std::string::npos;
}

}  // namespace

TcpProxy::TcpProxy(std::uint16_t target_port) : target_port_(target_port) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener_, 64) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(wake_, O_CLOEXEC) != 0) {
    throw std::runtime_error("TcpProxy: cannot listen on loopback");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  const char byte = 0;
  (void)!::write(wake_[1], &byte, 1);
  thread_.join();
  for (auto& p : pairs_) close_pair(p);
  ::close(listener_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

int TcpProxy::mute_pubsub_connections() {
  std::lock_guard lock(mutex_);
  int muted = 0;
  for (auto& p : pairs_) {
    if (p.pubsub && p.client >= 0) {
      p.muted = true;
      ++muted;
    }
  }
  return muted;
}

void TcpProxy::close_pair(Pair& p) {
  if (p.client >= 0) ::close(p.client);
  if (p.server >= 0) ::close(p.server);
  p.client = p.server = -1;
}

// One thread, poll() over the listener and both sides of every pair.
void TcpProxy::run() {
  std::array<char, 16384> buffer{};
  while (!stopping_) {
    std::vector<pollfd> fds{{listener_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    {
      std::lock_guard lock(mutex_);
      for (const auto& p : pairs_) {
        if (p.client < 0) continue;
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_in target = loopback(target_port_);
      if (client >= 0 && server >= 0 &&
          ::connect(server, reinterpret_cast<const sockaddr*>(&target), sizeof target) == 0) {
        std::lock_guard lock(mutex_);
        pairs_.push_back(Pair{client, server});
      } else {
        if (client >= 0) ::close(client);
        if (server >= 0) ::close(server);
      }
    }
    std::lock_guard lock(mutex_);
    for (std::size_t i = 2; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      auto pair = std::find_if(pairs_.begin(), pairs_.end(),
                               [&](const Pair& p) { return p.client == fds[i].fd || p.server == fds[i].fd; });
      if (pair == pairs_.end()) continue;
      const bool from_client = pair->client == fds[i].fd;
      const ssize_t n = ::recv(fds[i].fd, buffer.data(), buffer.size(), 0);
      if (n <= 0) {
        close_pair(*pair);
        continue;
      }
      const std::string_view bytes(buffer.data(), static_cast<std::size_t>(n));
      if (from_client && mentions_subscribe(bytes)) pair->pubsub = true;
      if (!from_client && pair->muted) continue;  // the silent subscription
      if (!write_all(from_client ? pair->server : pair->client, bytes.data(), bytes.size())) close_pair(*pair);
    }
    std::erase_if(pairs_, [](const Pair& p) { return p.client < 0; });
  }
}

}  // namespace notify::testing
