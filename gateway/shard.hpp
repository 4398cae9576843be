#pragma once
// The state of one event loop: its connections, indexed by user
// and by topic. Every method must run on the loop's thread, so none of this
// needs a lock. The hub reaches shards only by posting to their loop.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/loop_metrics.hpp"
#include "gateway/channel_observer.hpp"
#include "gateway/fanout_clock.hpp"
#include "gateway/subscriber.hpp"
#include "gateway/user_directory.hpp"

namespace notify::gateway {

// A set with O(1) insert/erase and contiguous iteration for fan-out.
class SubscriberSet {
 public:
  bool insert(Subscriber* s);
  bool erase(Subscriber* s);
  bool contains(Subscriber* s) const { return positions_.contains(s); }
  std::size_t size() const { return members_.size(); }
  bool empty() const { return members_.empty(); }
  const std::vector<Subscriber*>& members() const { return members_; }

 private:
  std::vector<Subscriber*> members_;
  std::unordered_map<Subscriber*, std::size_t> positions_;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class Shard {
 public:
  using ExpiryHandle = std::multimap<std::int64_t, Subscriber*>::iterator;

  Shard(std::size_t index, boost::asio::io_context& context, LoopMetrics& metrics);
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  std::size_t index() const { return index_; }
  boost::asio::io_context& context() { return context_; }
  LoopMetrics& metrics() { return metrics_; }
  // The clock the deliver_* fan-outs share; see FanoutClock.
  FanoutClock& fanout_clock() { return clock_; }

  // Runs `task` on the loop after every task enqueued before it, from any
  // thread. Asio's post alone does not promise that: a post from the loop's
  // own thread waits in a thread-private queue and can be overtaken by one
  // from another thread. Delivery relies on it: frames of a stream reach a
  // connection in the order their offsets were given (gateway/history.hpp).
  void enqueue(std::function<void()> task);

  // From now on the shard tells `directory` which users it holds (call
  // before the loop runs; the hub does).
  void attach_directory(std::shared_ptr<UserDirectory> directory) { directory_ = std::move(directory); }
  // From now on the shard tells `observer` about every connection and topic
  // subscription (call before the loop runs).
  void attach_observer(ChannelObserver* observer) { observer_ = observer; }

  void add(Subscriber* s);
  // Removes the subscriber from every index, its topics included.
  void remove(Subscriber* s, std::span<const std::string> topics);
  void subscribe(Subscriber* s, std::string_view topic);
  void unsubscribe(Subscriber* s, std::string_view topic);

  // Each returns how many connections took the frame.
  std::size_t deliver_to_users(std::span<const std::string> users, const FramePtr& frame);
  std::size_t deliver_to_topic(std::string_view topic, const FramePtr& frame);
  std::size_t deliver_to_all(const FramePtr& frame);

  std::size_t close_users(std::span<const std::string> users, std::uint16_t code, std::string_view reason);
  std::size_t close_all(std::uint16_t code, std::string_view reason);

  // Adds this shard's connection count of users[i] to counts[i].
  void count_users(std::span<const std::string> users, std::span<std::atomic<std::uint32_t>> counts) const;

  // Calls s->expire() once the wall clock reaches `unix_ms`; one timer per
  // shard serves every connection, so idle connections cost no timer each.
  ExpiryHandle track_expiry(Subscriber* s, std::int64_t unix_ms);
  void untrack_expiry(ExpiryHandle handle);
  // Calls idle_check() on every connection each quarter of `idle_timeout`
  // (at least every 50 ms): one timer per shard instead of one per
  // connection. Call before the loop runs.
  void enable_idle_sweep(std::chrono::milliseconds idle_timeout);

  // Drops the shard's timers; call after the loop stopped, before its
  // io_context is destroyed.
  void release_timer() {
    expiry_timer_.reset();
    sweep_timer_.reset();
  }

  std::size_t connection_count() const { return all_.size(); }
  std::size_t topic_count() const { return topics_.size(); }
  std::size_t user_count() const { return users_.size(); }

 private:
  using UserIndex = std::unordered_map<std::string, std::vector<Subscriber*>, StringHash, std::equal_to<>>;
  using TopicIndex = std::unordered_map<std::string, SubscriberSet, StringHash, std::equal_to<>>;

  std::size_t deliver_each(const std::vector<Subscriber*>& list, const FramePtr& frame);

  std::size_t index_;
  boost::asio::io_context& context_;
  LoopMetrics& metrics_;
  FanoutClock clock_;
  SubscriberSet all_;
  UserIndex users_;
  std::shared_ptr<UserDirectory> directory_;  // may be null (tests)
  ChannelObserver* observer_ = nullptr;       // null without a Redis broker
  TopicIndex topics_;

  void drain_inbox();
  std::mutex inbox_mu_;
  std::vector<std::function<void()>> inbox_;    // under inbox_mu_
  bool inbox_scheduled_ = false;                // under inbox_mu_: a drain is posted
  std::vector<std::function<void()>> running_;  // loop thread only

  void arm_expiry_timer();
  void on_expiry_timer();
  std::multimap<std::int64_t, Subscriber*> expiries_;
  std::unique_ptr<boost::asio::steady_timer> expiry_timer_;
  std::int64_t timer_armed_for_ = 0;  // unix ms the timer waits for; 0 = idle

  void arm_sweep_timer();
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_;
  std::chrono::milliseconds sweep_interval_{0};
};

}  // namespace notify::gateway
