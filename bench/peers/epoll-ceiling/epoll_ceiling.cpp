// epoll-ceiling: the benchmark's performance ceiling. A minimal,
// single-threaded epoll server speaking the bench contract (see
// bench/peers/README.md) and nothing more: no auth, no JSON parsing, no
// metrics, no timeouts, no threads.
//
//   GET  /ws?user=<id>           RFC 6455 upgrade; the socket then receives
//                                every publish addressed to it as one text
//                                frame whose payload is the published body
//   POST /broadcast              body -> every WebSocket
//   POST /notify?user=a[,b,...]  body -> every socket of each listed user
//                                (each user at most once)
//
// A publish frames the body once (header + payload in one buffer) and hands
// that buffer to each target with one send(); whatever the kernel does not
// take goes to that socket's pending buffer, flushed on EPOLLOUT.
// Connections hold no buffers while idle: reads land in one shared scratch
// array and only an incomplete request or frame is kept per connection.
//
// Usage: epoll-ceiling <port>   (binds 127.0.0.1, or $BIND_ADDRESS)
// Build: the CMake target `epoll-ceiling`, or by hand:
//   g++ -O2 -std=c++20 epoll_ceiling.cpp -lcrypto -o epoll-ceiling

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

constexpr int kBacklog = 4096;
constexpr size_t kMaxHead = 16 * 1024;            // request line + headers
constexpr size_t kMaxBody = 16 * 1024 * 1024;     // publish body
constexpr size_t kMaxPending = 64 * 1024 * 1024;  // unsent bytes per socket
constexpr size_t kMaxUserLen = 64;

struct Conn;
using UserEntry = std::pair<const std::string, std::vector<Conn*>>;

struct Conn {
  int fd = -1;
  bool websocket = false;      // upgraded
  bool want_out = false;       // EPOLLOUT registered
  bool close_after = false;    // close once `out` is flushed
  bool dead = false;           // closed; freed at the end of the event batch
  bool doomed = false;         // failed during a publish; closed right after it
  bool continue_sent = false;  // "100 Continue" sent for the current request
  uint32_t all_idx = 0;        // position in g_all (websockets only)
  uint32_t user_idx = 0;       // position in user_entry->second
  UserEntry* user_entry = nullptr;
  uint64_t skip = 0;  // client data-frame payload bytes still to discard
  size_t out_off = 0;
  std::string in;   // incomplete request/frame only, else empty
  std::string out;  // unsent bytes only, else empty
};

int g_epoll = -1;
int g_listen = -1;
int g_spare_fd = -1;       // released to accept-and-drop when out of descriptors
std::vector<Conn*> g_all;  // every open WebSocket, for /broadcast
std::unordered_map<std::string, std::vector<Conn*>> g_users;
std::vector<std::unique_ptr<Conn>> g_graveyard;  // freed after each batch
std::vector<Conn*> g_doomed;                     // closed after each publish
std::string g_frame;                             // the publish being sent
char g_scratch[64 * 1024];

// ---------------------------------------------------------------- helpers

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool valid_user(std::string_view u) {
  if (u.empty() || u.size() > kMaxUserLen) return false;
  for (char ch : u) {
    bool ok =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

// Value of `user=` in a query string, %-decoded (ids themselves need no
// decoding, but a client may encode the commas of a list as %2C).
bool query_user(std::string_view query, std::string& out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (param.substr(0, 5) != "user=") continue;
    std::string_view v = param.substr(5);
    out.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '%') {
        if (i + 2 >= v.size()) return false;
        unsigned val = 0;
        auto [p, ec] = std::from_chars(v.data() + i + 1, v.data() + i + 3, val, 16);
        if (ec != std::errc{} || p != v.data() + i + 3) return false;
        out.push_back(static_cast<char>(val));
        i += 2;
      } else {
        out.push_back(v[i]);
      }
    }
    return true;
  }
  return false;
}

std::string websocket_accept(std::string_view key) {
  static constexpr char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string src;
  src.reserve(key.size() + sizeof kGuid);
  src.append(key).append(kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(src.data()), src.size(), digest);
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= sizeof digest; i += 3) {
    uint32_t v = (uint32_t{digest[i]} << 16) | (uint32_t{digest[i + 1]} << 8) | digest[i + 2];
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  // 20 bytes: two left over -> three characters and one '='
  uint32_t v = (uint32_t{digest[i]} << 16) | (uint32_t{digest[i + 1]} << 8);
  out += kB64[(v >> 18) & 63];
  out += kB64[(v >> 12) & 63];
  out += kB64[(v >> 6) & 63];
  out += '=';
  return out;
}

// Server frames are unmasked: FIN + opcode, then the 7/16/64-bit length.
void frame_header(std::string& buf, uint8_t opcode, uint64_t len) {
  buf.push_back(static_cast<char>(0x80 | opcode));
  if (len < 126) {
    buf.push_back(static_cast<char>(len));
  } else if (len <= 0xFFFF) {
    buf.push_back(static_cast<char>(126));
    buf.push_back(static_cast<char>(len >> 8));
    buf.push_back(static_cast<char>(len & 0xFF));
  } else {
    buf.push_back(static_cast<char>(127));
    for (int s = 56; s >= 0; s -= 8) buf.push_back(static_cast<char>((len >> s) & 0xFF));
  }
}

// ---------------------------------------------------------- connections

void set_want_out(Conn* c, bool on) {
  if (c->want_out == on) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.ptr = c;
  epoll_ctl(g_epoll, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = on;
}

void release(std::string& s) { std::string().swap(s); }

void unregister_websocket(Conn* c) {
  if (!c->websocket) return;
  c->websocket = false;
  Conn* last = g_all.back();
  g_all[c->all_idx] = last;
  last->all_idx = c->all_idx;
  g_all.pop_back();
  if (UserEntry* e = c->user_entry) {
    auto& list = e->second;
    Conn* ulast = list.back();
    list[c->user_idx] = ulast;
    ulast->user_idx = c->user_idx;
    list.pop_back();
    if (list.empty()) g_users.erase(g_users.find(e->first));
    c->user_entry = nullptr;
  }
}

void close_conn(Conn* c) {
  if (c->dead) return;
  unregister_websocket(c);
  epoll_ctl(g_epoll, EPOLL_CTL_DEL, c->fd, nullptr);
  close(c->fd);
  c->dead = true;
  g_graveyard.emplace_back(c);  // events later in this batch may still point at it
}

// Marks a socket that failed while a publish walks the socket lists; it is
// closed when the walk is over so the lists don't change under it.
void doom(Conn* c) {
  if (c->doomed) return;
  c->doomed = true;
  g_doomed.push_back(c);
}

void close_doomed() {
  for (Conn* c : g_doomed) close_conn(c);
  g_doomed.clear();
}

// Sends what is pending; returns false if the connection was closed.
bool flush(Conn* c) {
  while (c->out_off < c->out.size()) {
    ssize_t n = send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // Drop what was sent when it is most of the buffer, so a reader that
        // keeps up only partly doesn't make the buffer grow without end.
        if (c->out_off >= 64 * 1024 && c->out_off * 2 >= c->out.size()) {
          c->out.erase(0, c->out_off);
          c->out_off = 0;
        }
        set_want_out(c, true);
        return true;
      }
      close_conn(c);
      return false;
    }
    c->out_off += static_cast<size_t>(n);
  }
  release(c->out);
  c->out_off = 0;
  set_want_out(c, false);
  if (c->close_after) {
    close_conn(c);
    return false;
  }
  return true;
}

// Hands bytes to a socket, behind anything already pending for it.
// Returns false if the socket is gone or going.
bool deliver(Conn* c, const char* p, size_t n) {
  if (c->dead || c->doomed || c->close_after) return false;
  if (!c->out.empty()) {
    if (c->out.size() - c->out_off + n > kMaxPending) {
      doom(c);  // a reader this slow is dropped rather than buffered forever
      return false;
    }
    c->out.append(p, n);
    return true;
  }
  ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w == static_cast<ssize_t>(n)) return true;
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      doom(c);
      return false;
    }
    w = 0;
  }
  c->out.assign(p + w, n - static_cast<size_t>(w));
  c->out_off = 0;
  set_want_out(c, true);
  return true;
}

// ---------------------------------------------------------------- HTTP

void respond(Conn* c, std::string_view status, std::string_view body, bool close = false) {
  char len[24];
  auto r = std::to_chars(len, len + sizeof len, body.size());
  c->out.append("HTTP/1.1 ").append(status).append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  c->out.append(len, r.ptr);
  if (close) c->out.append("\r\nConnection: close");
  c->out.append("\r\n\r\n").append(body);
  if (close) c->close_after = true;
}

size_t publish(std::string_view users_param, bool broadcast, std::string_view body) {
  g_frame.clear();
  frame_header(g_frame, 0x1, body.size());
  g_frame.append(body);
  size_t sent = 0;
  if (broadcast) {
    for (Conn* t : g_all) sent += deliver(t, g_frame.data(), g_frame.size());
  } else {
    std::vector<std::string_view> names;
    while (true) {
      size_t comma = users_param.find(',');
      names.push_back(users_param.substr(0, comma));
      if (comma == std::string_view::npos) break;
      users_param.remove_prefix(comma + 1);
    }
    if (names.size() > 1) {
      std::sort(names.begin(), names.end());
      names.erase(std::unique(names.begin(), names.end()), names.end());
    }
    std::string key;
    for (std::string_view name : names) {
      key.assign(name);
      auto it = g_users.find(key);
      if (it == g_users.end()) continue;
      for (Conn* t : it->second) sent += deliver(t, g_frame.data(), g_frame.size());
    }
  }
  if (g_frame.capacity() > 1024 * 1024) release(g_frame);
  return sent;
}

size_t process_ws(Conn* c, const char* data, size_t len);

struct Request {
  std::string_view method, path, query;
  size_t content_length = 0;
  bool keep_alive = true;
  bool upgrade_websocket = false;
  bool expect_continue = false;
  std::string_view ws_key;
};

// Parses the head [data, data+head_len). Returns false if malformed.
bool parse_head(std::string_view head, Request& r, bool& too_large) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  r.method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version.substr(0, 5) != "HTTP/") return false;
  if (version == "HTTP/1.0") r.keep_alive = false;
  size_t q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  bool has_upgrade = false;
  head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec == std::errc::result_out_of_range || (ec == std::errc{} && n > kMaxBody)) {
        too_large = true;
        return false;
      }
      if (ec != std::errc{} || p != value.data() + value.size()) return false;
      r.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      return false;  // chunked uploads are not part of the contract
    } else if (iequals(name, "connection")) {
      if (icontains(value, "close")) r.keep_alive = false;
      if (icontains(value, "keep-alive")) r.keep_alive = true;
    } else if (iequals(name, "upgrade")) {
      has_upgrade = iequals(value, "websocket");
    } else if (iequals(name, "sec-websocket-key")) {
      r.ws_key = value;
    } else if (iequals(name, "expect")) {
      r.expect_continue = iequals(value, "100-continue");
    }
  }
  r.upgrade_websocket = has_upgrade && !r.ws_key.empty();
  return true;
}

// Handles one complete request. Returns false if the connection must stop
// reading (closing, or now a WebSocket).
bool handle_request(Conn* c, const Request& r, std::string_view body) {
  if (r.path == "/ws") {
    std::string user;
    if (r.method != "GET" || !r.upgrade_websocket) {
      respond(c, "426 Upgrade Required", "websocket upgrade required\n", true);
      return false;
    }
    if (!query_user(r.query, user) || !valid_user(user)) {
      respond(c, "400 Bad Request", "bad user\n", true);
      return false;
    }
    c->out.append(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ");
    c->out.append(websocket_accept(r.ws_key)).append("\r\n\r\n");
    c->websocket = true;
    c->all_idx = static_cast<uint32_t>(g_all.size());
    g_all.push_back(c);
    auto [it, inserted] = g_users.try_emplace(std::move(user));
    c->user_entry = &*it;
    c->user_idx = static_cast<uint32_t>(it->second.size());
    it->second.push_back(c);
    return false;
  }
  bool is_broadcast = r.path == "/broadcast";
  bool is_notify = r.path == "/notify";
  if (!is_broadcast && !is_notify) {
    respond(c, "404 Not Found", "not found\n", !r.keep_alive);
    return r.keep_alive;
  }
  if (r.method != "POST") {
    respond(c, "405 Method Not Allowed", "POST only\n", !r.keep_alive);
    return r.keep_alive;
  }
  std::string users;
  if (is_notify) {
    bool ok = query_user(r.query, users);
    std::string_view rest = users;
    while (ok) {
      size_t comma = rest.find(',');
      ok = valid_user(rest.substr(0, comma));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (!ok) {
      respond(c, "400 Bad Request", "bad user\n", !r.keep_alive);
      return r.keep_alive;
    }
  }
  size_t sent = publish(users, is_broadcast, body);
  close_doomed();
  char msg[40] = "sent ";
  auto res = std::to_chars(msg + 5, msg + sizeof msg - 1, sent);
  *res.ptr++ = '\n';
  respond(c, "200 OK", std::string_view(msg, static_cast<size_t>(res.ptr - msg)), !r.keep_alive);
  return r.keep_alive;
}

// Consumes complete (pipelined) requests; returns the bytes consumed.
size_t process_http(Conn* c, const char* data, size_t len) {
  size_t off = 0;
  while (off < len) {
    std::string_view rest(data + off, len - off);
    size_t end = rest.substr(0, kMaxHead + 4).find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (rest.size() >= kMaxHead) {
        respond(c, "431 Request Header Fields Too Large", "head too large\n", true);
        return len;
      }
      break;
    }
    size_t head_len = end + 4;
    Request r;
    bool too_large = false;
    if (!parse_head(rest.substr(0, end + 2), r, too_large)) {
      if (too_large)
        respond(c, "413 Content Too Large", "body too large\n", true);
      else
        respond(c, "400 Bad Request", "bad request\n", true);
      return len;
    }
    if (rest.size() - head_len < r.content_length) {
      if (r.expect_continue && !c->continue_sent) {
        c->out.append("HTTP/1.1 100 Continue\r\n\r\n");
        c->continue_sent = true;
      }
      break;
    }
    c->continue_sent = false;
    bool go_on = handle_request(c, r, rest.substr(head_len, r.content_length));
    off += head_len + r.content_length;
    if (c->websocket) return off + process_ws(c, data + off, len - off);
    if (!go_on || c->close_after) return len;
  }
  return off;
}

// ----------------------------------------------------- WebSocket frames

// Consumes client frames: ping -> pong, close -> close (then the socket is
// closed), everything else discarded without being buffered. Returns the
// bytes consumed; an incomplete frame header or control frame stays unread.
size_t process_ws(Conn* c, const char* data, size_t len) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  size_t off = 0;
  while (off < len) {
    if (c->close_after) return len;
    if (c->skip) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(c->skip, len - off));
      c->skip -= k;
      off += k;
      continue;
    }
    size_t avail = len - off;
    if (avail < 2) break;
    uint8_t opcode = p[off] & 0x0F;
    bool masked = p[off + 1] & 0x80;
    uint64_t plen = p[off + 1] & 0x7F;
    size_t hlen = 2;
    if (plen == 126) {
      if (avail < 4) break;
      plen = (uint64_t{p[off + 2]} << 8) | p[off + 3];
      hlen = 4;
    } else if (plen == 127) {
      if (avail < 10) break;
      plen = 0;
      for (int i = 0; i < 8; ++i) plen = (plen << 8) | p[off + 2 + i];
      hlen = 10;
    }
    const unsigned char* mask = nullptr;
    if (masked) {
      if (avail < hlen + 4) break;
      mask = p + off + hlen;
      hlen += 4;
    }
    if (opcode < 0x8) {  // continuation/text/binary: ignored, streamed away
      off += hlen;
      c->skip = plen;
      continue;
    }
    if (plen > 125) {  // control frames are at most 125 bytes (RFC 6455 5.5)
      std::string reply;
      frame_header(reply, 0x8, 2);
      reply.push_back(static_cast<char>(1002 >> 8));
      reply.push_back(static_cast<char>(1002 & 0xFF));
      deliver(c, reply.data(), reply.size());
      unregister_websocket(c);
      c->close_after = true;
      return len;
    }
    if (avail < hlen + plen) break;
    unsigned char payload[125];
    for (size_t i = 0; i < plen; ++i)
      payload[i] = static_cast<unsigned char>(p[off + hlen + i] ^ (mask ? mask[i & 3] : 0));
    off += hlen + plen;
    if (opcode == 0x9) {  // ping -> pong with the same payload
      std::string reply;
      frame_header(reply, 0xA, plen);
      reply.append(reinterpret_cast<const char*>(payload), plen);
      deliver(c, reply.data(), reply.size());
    } else if (opcode == 0x8) {  // close -> echo the status code, then close
      std::string reply;
      frame_header(reply, 0x8, plen >= 2 ? 2 : 0);
      if (plen >= 2) reply.append(reinterpret_cast<const char*>(payload), 2);
      deliver(c, reply.data(), reply.size());
      unregister_websocket(c);  // nothing more is sent after a close frame
      c->close_after = true;
      return len;
    }
    // pong and reserved control opcodes: ignored
  }
  return off;
}

// ------------------------------------------------------------ event loop

void on_readable(Conn* c) {
  ssize_t n = recv(c->fd, g_scratch, sizeof g_scratch, 0);
  if (n == 0) {
    close_conn(c);
    return;
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) close_conn(c);
    return;
  }
  if (c->close_after) return;  // draining; input no longer matters
  const char* data = g_scratch;
  size_t len = static_cast<size_t>(n);
  bool buffered = !c->in.empty();
  if (buffered) {
    c->in.append(g_scratch, len);
    data = c->in.data();
    len = c->in.size();
  }
  size_t used = c->websocket ? process_ws(c, data, len) : process_http(c, data, len);
  if (c->dead) return;
  if (buffered) {
    if (used >= len)
      release(c->in);
    else
      c->in.erase(0, used);
  } else if (used < len) {
    c->in.assign(data + used, len - used);
  }
  if (c->close_after) release(c->in);
  if (!c->out.empty() && !c->want_out)
    flush(c);
  else if (c->close_after && c->out.empty())
    close_conn(c);
}

void accept_all() {
  while (true) {
    int fd = accept4(g_listen, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && g_spare_fd >= 0) {
        // Out of descriptors: take the connection off the queue and drop
        // it, so level-triggered epoll does not spin on the listener.
        close(g_spare_fd);
        int drop = accept(g_listen, nullptr, nullptr);
        if (drop >= 0) close(drop);
        g_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        std::fprintf(stderr, "epoll-ceiling: out of file descriptors, dropped a connection\n");
        continue;
      }
      return;  // EAGAIN, or a transient error
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new Conn;
    c->fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close(fd);
      delete c;
    }
  }
}

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  if (argc != 2 || std::from_chars(argv[1], argv[1] + std::strlen(argv[1]), port).ec != std::errc{} || port <= 0 ||
      port > 65535) {
    std::fprintf(stderr, "usage: %s <port>\n", argv[0]);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  const char* bind_addr = std::getenv("BIND_ADDRESS");
  if (!bind_addr || !*bind_addr) bind_addr = "127.0.0.1";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1) {
    std::fprintf(stderr, "epoll-ceiling: bad BIND_ADDRESS %s\n", bind_addr);
    return 2;
  }
  g_listen = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (g_listen < 0) die("socket");
  int one = 1;
  setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(g_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("bind");
  if (listen(g_listen, kBacklog) < 0) die("listen");
  g_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  if (g_epoll < 0) die("epoll_create1");
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;  // the listener
  if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, g_listen, &lev) < 0) die("epoll_ctl");

  std::printf("epoll-ceiling listening on %s:%d\n", bind_addr, port);
  std::fflush(stdout);

  constexpr int kEvents = 1024;
  static epoll_event events[kEvents];
  while (true) {
    int n = epoll_wait(g_epoll, events, kEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (!c) {
        accept_all();
        continue;
      }
      if (c->dead) continue;
      uint32_t ev = events[i].events;
      if (ev & EPOLLOUT) {
        if (!flush(c)) continue;
      }
      if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      close_doomed();  // e.g. a pong that could not be sent
    }
    g_graveyard.clear();
  }
}
