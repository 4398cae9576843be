#pragma once
// The thread-safe front of the shards: services call it from gRPC threads,
// it posts one task per shard (never one per recipient) and reports the
// combined result once every shard has answered. Callbacks run on the event
// loop of the last shard to finish (or at once on the calling thread when no
// shard has anything to do) and must not block.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gateway/frame.hpp"
#include "gateway/history.hpp"
#include "gateway/protocol.hpp"
#include "gateway/shard.hpp"

namespace notify::gateway {

class Hub {
 public:
  using CountCallback = std::function<void(std::uint32_t)>;
  using PresenceCallback = std::function<void(std::vector<std::uint32_t>)>;
  // Builds a notification's frame; `position` is its place in history, or
  // null when the hub keeps none. Called under the stream's lock: encode,
  // nothing more.
  using FrameMaker = std::function<FramePtr(const protocol::Position* position)>;

  // The streams of history (docs/protocol.md#history-and-resume).
  static std::string user_stream(std::string_view user) { return "user:" + std::string(user); }
  static std::string topic_stream(std::string_view topic) {
    return topic.empty() ? std::string("all") : "topic:" + std::string(topic);
  }

  explicit Hub(std::vector<Shard*> shards);

  std::size_t shard_count() const { return shards_.size(); }
  Shard& shard(std::size_t i) { return *shards_[i]; }
  // An event loop for a timer that belongs to no connection (a NotifyStream's
  // flush), handed out in turn so they spread over the loops.
  boost::asio::io_context& next_context() {
    return shards_[next_context_.fetch_add(1, std::memory_order_relaxed) % shards_.size()]->context();
  }

  // Keeps every notification in `history` from now on (call before the
  // loops run; null: none). The frames then carry their position.
  void attach_history(History* history) { history_ = history; }
  History* history() const { return history_; }

  // To every connection of the users (ids must be unique). Only the loops
  // that hold one of them get the task; if none does, `done(0)` runs at once
  // on the calling thread. With `offline` (and tracks_users()), the users
  // with no connection on any loop are appended to it, in their order,
  // before any loop runs the task, so `done` may read it. With history, each
  // user gets a frame of their own (offsets are per stream); without, one
  // frame is shared.
  void notify(std::vector<std::string> user_ids, const FrameMaker& make, CountCallback done,
              std::vector<std::string>* offline = nullptr);
  void notify(std::vector<std::string> user_ids, FramePtr frame, CountCallback done,
              std::vector<std::string>* offline = nullptr) {
    notify(
        std::move(user_ids), [&frame](const protocol::Position*) { return frame; }, std::move(done), offline);
  }
  // A frame that is no notification (kept in no history) to every
  // connection of the users, in order after what was handed to them before.
  void send_to_users(std::vector<std::string> user_ids, FramePtr frame) {
    notify_shared(std::move(user_ids), std::move(frame), nullptr, nullptr);
  }
  // To every subscriber of `topic`, or every connection when it is empty.
  void broadcast(std::string topic, const FrameMaker& make, CountCallback done);
  void broadcast(std::string topic, FramePtr frame, CountCallback done) {
    broadcast(
        std::move(topic), [&frame](const protocol::Position*) { return frame; }, std::move(done));
  }
  void disconnect(std::vector<std::string> user_ids, std::uint16_t code, std::string reason, CountCallback done);
  // counts[i] = live connections of user_ids[i].
  void presence(std::vector<std::string> user_ids, PresenceCallback done);
  // Whether notify() can tell who is offline: the hub keeps a user directory
  // (at most UserDirectory::kMaxLoops loops).
  bool tracks_users() const { return directory_ != nullptr; }
  void close_all(std::uint16_t code, std::string reason, CountCallback done);

 private:
  // Runs `work` on every shard whose bit is set in `mask` (all by default)
  // and passes the sum of the results to `done`.
  void for_each_shard(std::function<std::size_t(Shard&)> work, CountCallback done, std::uint64_t mask = ~0ull);

  void notify_shared(std::vector<std::string> user_ids, FramePtr frame, CountCallback done,
                     std::vector<std::string>* offline);

  std::vector<Shard*> shards_;
  std::atomic<std::size_t> next_context_{0};
  std::shared_ptr<UserDirectory> directory_;  // null with more than UserDirectory::kMaxLoops shards
  History* history_ = nullptr;
};

}  // namespace notify::gateway
