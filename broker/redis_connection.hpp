#pragma once
// One connection to one Redis server through hiredis' asynchronous API,
// driven by an Asio io_context (the Redis broker's own thread; never an event
// loop). hiredis 0.14 has no timeouts: the connection bounds the connect and
// its owner checks overdue replies (overdue()), so a Redis that stops
// answering is noticed and the connection dropped instead of waiting forever.
//
// Not thread-safe: every method, and every callback, runs on the io_context's
// thread.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/redis_url.hpp"

struct redisAsyncContext;
struct redisReply;

namespace notify::broker {

class RedisConnection {
 public:
  // nullptr: the connection was lost before the reply came.
  using Reply = std::function<void(const redisReply*)>;
  struct Handlers {
    std::function<void()> ready;  // connected, authenticated, database selected
    // Down: a failed attempt or a lost connection. Called once per connect().
    std::function<void(const std::string& why)> lost;
    // Pub/sub traffic: a message, or "subscribe"/"unsubscribe" confirmations
    // (payload empty).
    std::function<void(std::string_view kind, std::string_view channel, std::string_view payload)> pubsub;
  };

  RedisConnection(boost::asio::io_context& io, std::string name, Handlers handlers);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // What the connection expects at the other end: any data node; a master
  // (one whose ROLE is not master is refused: the master a Sentinel named
  // may have been demoted since); or a Sentinel (no TIME there).
  enum class Peer { data, master, sentinel };
  // Starts an attempt; ends in ready() or lost(). Only while idle().
  void connect(const RedisAddress& address, const std::string& password, int db, std::chrono::milliseconds timeout,
               Peer peer = Peer::data);
  bool idle() const { return state_ == State::idle; }
  // Redis' clock minus this host's (unix ms), measured during the handshake.
  std::int64_t clock_offset_ms() const { return clock_offset_ms_; }
  bool ready() const { return state_ == State::ready; }
  const std::string& name() const { return name_; }

  // Sends a command; false (and `reply` dropped) unless ready.
  bool command(const std::vector<std::string>& args, Reply reply);
  // SUBSCRIBE or UNSUBSCRIBE (`verb`) with channels; confirmations and
  // messages arrive through Handlers::pubsub. False unless ready.
  bool pubsub(std::string_view verb, const std::vector<std::string>& channels);

  // When the oldest command still waiting for its reply was sent.
  std::optional<std::chrono::steady_clock::time_point> oldest_unanswered() const;
  // True when a command has waited longer than `timeout` for its reply.
  bool overdue(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout) const;
  // Drops the connection: pending replies get nullptr, then lost(why).
  void close(const std::string& why);

 private:
  enum class State { idle, connecting, handshaking, ready };
  struct Watch;

  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_pubsub(redisAsyncContext* ac, void* reply, void* privdata);

  // Connects hiredis to a numeric address.
  void open(const std::string& ip, std::uint16_t port);
  // Sends without the ready check (the handshake).
  bool send(const std::vector<std::string>& args, Reply reply);
  void handshake();
  void down(const std::string& why);

  boost::asio::io_context& io_;
  std::string name_;
  Handlers handlers_;
  State state_ = State::idle;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<Watch> watch_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::ip::tcp::resolver resolver_;
  bool resolving_ = false;
  // Which of a host name's addresses the next connect tries: each attempt
  // takes the next one, so an address that refuses (say ::1 while Redis
  // listens on 127.0.0.1 only) costs one retry, not every one.
  std::size_t address_turn_ = 0;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);  // expires with this object
  std::string password_;
  int db_ = 0;
  Peer peer_ = Peer::data;
  std::string closing_reason_;
  std::int64_t clock_offset_ms_ = 0;
  std::deque<std::chrono::steady_clock::time_point> sent_;  // send times of unanswered commands
};

// Helpers for reading replies.
bool reply_is_error(const redisReply* r);
std::string reply_text(const redisReply* r);  // a string/status/error reply's text, else a description

}  // namespace notify::broker
