#include "broker/redis_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <strings.h>

#include <charconv>
#include <iterator>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include "common/ids.hpp"

namespace notify::broker {

// hiredis' event hooks on an Asio descriptor that doesn't own the socket
// (hiredis closes it). Pending waits hold the Watch; once hiredis calls
// cleanup, `ac` is null and no wait touches the context again.
struct RedisConnection::Watch : std::enable_shared_from_this<Watch> {
  Watch(boost::asio::io_context& io, redisAsyncContext* context) : sd(io, context->c.fd), ac(context) {}
  ~Watch() {
    if (sd.is_open()) sd.release();
  }

  // One direction of the socket: whether hiredis wants to hear that it is
  // ready, and whether a wait for that is in flight (at most one is).
  struct Direction {
    boost::asio::posix::stream_descriptor::wait_type wait;
    void (*handle)(redisAsyncContext*);
    bool wanted = false, waiting = false;
  };

  boost::asio::posix::stream_descriptor sd;
  redisAsyncContext* ac;
  Direction read{boost::asio::posix::stream_descriptor::wait_read, redisAsyncHandleRead};
  Direction write{boost::asio::posix::stream_descriptor::wait_write, redisAsyncHandleWrite};

  // `d` is a member of the Watch the wait holds, so it lives as long as the wait.
  void arm(Direction& d) {
    if (d.waiting || ac == nullptr) return;
    d.waiting = true;
    sd.async_wait(d.wait, [self = shared_from_this(), &d](boost::system::error_code ec) {
      d.waiting = false;
      if (ec || self->ac == nullptr || !d.wanted) return;
      d.handle(self->ac);
      if (self->ac != nullptr && d.wanted) self->arm(d);
    });
  }

  static void add_read(void* p) {
    auto* w = static_cast<Watch*>(p);
    w->read.wanted = true;
    w->arm(w->read);
  }
  static void del_read(void* p) { static_cast<Watch*>(p)->read.wanted = false; }
  static void add_write(void* p) {
    auto* w = static_cast<Watch*>(p);
    w->write.wanted = true;
    w->arm(w->write);
  }
  static void del_write(void* p) { static_cast<Watch*>(p)->write.wanted = false; }
  static void cleanup(void* p) {
    auto* w = static_cast<Watch*>(p);
    w->ac = nullptr;
    w->read.wanted = w->write.wanted = false;
    // Now, before hiredis closes the socket: release() cancels the waits and
    // takes the descriptor out of the reactor while the number is still ours.
    if (w->sd.is_open()) w->sd.release();
  }
};

bool reply_is_error(const redisReply* r) { return r == nullptr || r->type == REDIS_REPLY_ERROR; }

std::string reply_text(const redisReply* r) {
  if (r == nullptr) return "connection lost";
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY:
      return "(array of " + std::to_string(r->elements) + ")";
    default:
      return "(unexpected reply)";
  }
}

RedisConnection::RedisConnection(boost::asio::io_context& io, std::string name, Handlers handlers)
    : io_(io), name_(std::move(name)), handlers_(std::move(handlers)), connect_timer_(io), resolver_(io) {}

RedisConnection::~RedisConnection() {
  handlers_ = {};  // the owner is going away: tell it nothing more
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);  // replies still pending get nullptr
  }
}

void RedisConnection::connect(const RedisAddress& address, const std::string& password, int db,
                              std::chrono::milliseconds timeout, Peer peer) {
  if (state_ != State::idle) return;
  peer_ = peer;
  password_ = password;
  db_ = db;
  closing_reason_.clear();
  state_ = State::connecting;
  // One deadline for the whole attempt: name lookup, TCP, handshake.
  connect_timer_.expires_after(timeout);
  connect_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || state_ == State::ready || state_ == State::idle) return;
    close("no answer within the connect timeout");
  });
  boost::system::error_code ec;
  boost::asio::ip::make_address(address.host, ec);
  if (!ec) {
    open(address.host, address.port);
    return;
  }
  // hiredis 0.14 would resolve the name with a blocking getaddrinfo on this
  // thread: a slow DNS would stall every shard. Resolve here, asynchronously.
  resolving_ = true;
  resolver_.async_resolve(address.host, std::to_string(address.port),
                          [this, life = std::weak_ptr<int>(life_), host = address.host](
                              boost::system::error_code error, boost::asio::ip::tcp::resolver::results_type results) {
                            // The lookup may be reported after this connection was
                            // destroyed.
                            if (life.expired()) return;
                            resolving_ = false;
                            if (state_ != State::connecting || ac_ != nullptr) return;  // closed meanwhile
                            if (error || results.empty()) {
                              down("cannot resolve " + host + ": " + (error ? error.message() : "no address"));
                              return;
                            }
                            auto it = results.begin();
                            std::advance(it, static_cast<std::ptrdiff_t>(address_turn_++ % results.size()));
                            const auto endpoint = it->endpoint();
                            open(endpoint.address().to_string(), endpoint.port());
                          });
}

void RedisConnection::open(const std::string& ip, std::uint16_t port) {
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), port);
  if (ac == nullptr) {
    down("out of memory");
    return;
  }
  if (ac->err != 0) {
    const std::string why = ac->errstr;
    redisAsyncFree(ac);
    down(why);
    return;
  }
  ac_ = ac;
  ac->data = this;
  watch_ = std::make_shared<Watch>(io_, ac);
  ac->ev.data = watch_.get();
  ac->ev.addRead = &Watch::add_read;
  ac->ev.delRead = &Watch::del_read;
  ac->ev.addWrite = &Watch::add_write;
  ac->ev.delWrite = &Watch::del_write;
  ac->ev.cleanup = &Watch::cleanup;
  redisAsyncSetDisconnectCallback(ac, &RedisConnection::on_disconnect);
  redisAsyncSetConnectCallback(ac, &RedisConnection::on_connect);  // arms the first write wait
}

void RedisConnection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    self->ac_ = nullptr;  // hiredis frees the context after this callback
    self->down(ac->errstr);
    return;
  }
  self->state_ = State::handshaking;
  self->handshake();
}

void RedisConnection::handshake() {
  const auto check = [this](const redisReply* r) {
    if (reply_is_error(r) && r != nullptr && state_ != State::idle) close("handshake refused: " + reply_text(r));
  };
  if (!password_.empty()) send({"AUTH", password_}, check);
  if (db_ != 0) send({"SELECT", std::to_string(db_)}, check);
  if (peer_ == Peer::master) {
    send({"ROLE"}, [this](const redisReply* r) {
      if (r == nullptr || state_ != State::handshaking) return;
      const bool master = r->type == REDIS_REPLY_ARRAY && r->elements > 0 && reply_text(r->element[0]) == "master";
      if (!master)
        close("not a master (ROLE " +
              (r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? reply_text(r->element[0]) : reply_text(r)) + ")");
    });
  }
  const auto ready = [this] {
    state_ = State::ready;
    connect_timer_.cancel();
    if (handlers_.ready) handlers_.ready();
  };
  if (peer_ == Peer::sentinel) {
    send({"PING"}, [this, ready](const redisReply* r) {
      if (r == nullptr || state_ != State::handshaking) return;
      if (reply_is_error(r)) {
        close("handshake refused: " + reply_text(r));
        return;
      }
      ready();
    });
    return;
  }
  // TIME: the last handshake reply, and the clock Redis' scripts will judge
  // deadlines by.
  const std::int64_t asked = unix_millis();
  send({"TIME"}, [this, asked, ready](const redisReply* r) {
    if (r == nullptr || state_ != State::handshaking) return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      close("handshake refused: " + reply_text(r));
      return;
    }
    const std::int64_t answered = unix_millis();
    std::int64_t seconds = 0, micros = 0;
    const std::string sec_text = reply_text(r->element[0]), usec_text = reply_text(r->element[1]);
    if (std::from_chars(sec_text.data(), sec_text.data() + sec_text.size(), seconds).ec != std::errc() ||
        std::from_chars(usec_text.data(), usec_text.data() + usec_text.size(), micros).ec != std::errc()) {
      close("handshake refused: TIME answered " + sec_text + " " + usec_text);
      return;
    }
    const std::int64_t redis_ms = seconds * 1000 + micros / 1000;
    clock_offset_ms_ = redis_ms - (asked + answered) / 2;
    ready();
  });
}

void RedisConnection::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self == nullptr) return;
  self->ac_ = nullptr;  // hiredis frees the context after this callback
  std::string why = self->closing_reason_;
  if (why.empty()) why = status == REDIS_OK ? "closed" : (ac->errstr[0] != '\0' ? ac->errstr : "connection lost");
  self->down(why);
}

void RedisConnection::down(const std::string& why) {
  if (state_ == State::idle) return;
  state_ = State::idle;
  connect_timer_.cancel();
  sent_.clear();
  watch_.reset();
  if (handlers_.lost) handlers_.lost(why);
}

void RedisConnection::close(const std::string& why) {
  if (state_ == State::idle) return;
  closing_reason_ = why;
  redisAsyncContext* ac = ac_;
  if (ac == nullptr) {  // still resolving the name
    if (resolving_) resolver_.cancel();
    down(why);
    return;
  }
  const bool connected = (ac->c.flags & REDIS_CONNECTED) != 0;
  redisAsyncFree(ac);  // deferred by hiredis when called from one of its callbacks
  // hiredis reports the disconnect only for an established connection.
  if (!connected) {
    ac_ = nullptr;
    down(why);
  }
}

bool RedisConnection::send(const std::vector<std::string>& args, Reply reply) {
  if (ac_ == nullptr) return false;
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* cb = new Reply(std::move(reply));
  if (redisAsyncCommandArgv(ac_, &RedisConnection::on_reply, cb, static_cast<int>(args.size()), argv.data(),
                            lens.data()) != REDIS_OK) {
    delete cb;
    return false;
  }
  sent_.push_back(std::chrono::steady_clock::now());
  return true;
}

bool RedisConnection::command(const std::vector<std::string>& args, Reply reply) {
  return state_ == State::ready && send(args, std::move(reply));
}

void RedisConnection::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  std::unique_ptr<Reply> cb(static_cast<Reply*>(privdata));
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self != nullptr && !self->sent_.empty()) self->sent_.pop_front();
  if (*cb) (*cb)(static_cast<const redisReply*>(reply));
}

bool RedisConnection::pubsub(std::string_view verb, const std::vector<std::string>& channels) {
  if (state_ != State::ready || ac_ == nullptr || channels.empty()) return false;
  std::vector<const char*> argv{verb.data()};
  std::vector<std::size_t> lens{verb.size()};
  for (const auto& c : channels) {
    argv.push_back(c.data());
    lens.push_back(c.size());
  }
  return redisAsyncCommandArgv(ac_, &RedisConnection::on_pubsub, this, static_cast<int>(argv.size()), argv.data(),
                               lens.data()) == REDIS_OK;
}

void RedisConnection::on_pubsub(redisAsyncContext* ac, void* reply, void*) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  const auto* r = static_cast<const redisReply*>(reply);
  if (self == nullptr || r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 2) return;
  const redisReply* kind = r->element[0];
  const redisReply* channel = r->element[1];
  if (kind->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING || !self->handlers_.pubsub) return;
  std::string_view payload;
  if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_STRING) {
    payload = std::string_view(r->element[2]->str, r->element[2]->len);
  }
  self->handlers_.pubsub(std::string_view(kind->str, kind->len), std::string_view(channel->str, channel->len), payload);
}

std::optional<std::chrono::steady_clock::time_point> RedisConnection::oldest_unanswered() const {
  if (sent_.empty()) return std::nullopt;
  return sent_.front();
}

bool RedisConnection::overdue(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout) const {
  return !sent_.empty() && now - sent_.front() > timeout;
}

}  // namespace notify::broker
