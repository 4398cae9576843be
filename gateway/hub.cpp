#include "gateway/hub.hpp"

#include <atomic>
#include <boost/asio/post.hpp>
#include <memory>

#include "common/ids.hpp"
#include "common/log.hpp"

namespace notify::gateway {
namespace {

struct CountGather {
  CountGather(std::size_t tasks, Hub::CountCallback cb) : pending(tasks), done(std::move(cb)) {}
  std::atomic<std::size_t> pending;
  std::atomic<std::uint64_t> total{0};
  Hub::CountCallback done;

  void add(std::size_t n) {
    total.fetch_add(n, std::memory_order_relaxed);
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1 && done) {
      done(static_cast<std::uint32_t>(total.load(std::memory_order_relaxed)));
    }
  }
};

}  // namespace

Hub::Hub(std::vector<Shard*> shards) : shards_(std::move(shards)) {
  if (shards_.size() > UserDirectory::kMaxLoops) return;  // Notify goes to every loop
  directory_ = std::make_shared<UserDirectory>();
  for (Shard* shard : shards_) shard->attach_directory(directory_);
}

void Hub::for_each_shard(std::function<std::size_t(Shard&)> work, CountCallback done, std::uint64_t mask) {
  // Loops past UserDirectory::kMaxLoops have no bit in a mask: always included.
  const auto selected = [mask](std::size_t i) { return i >= UserDirectory::kMaxLoops || (mask >> i & 1) != 0; };
  std::size_t targets = 0;
  for (std::size_t i = 0; i < shards_.size(); ++i) targets += selected(i);
  if (targets == 0) {
    if (done) done(0);
    return;
  }
  auto gather = std::make_shared<CountGather>(targets, std::move(done));
  auto shared_work = std::make_shared<std::function<std::size_t(Shard&)>>(std::move(work));
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    if (!selected(i)) continue;
    Shard* shard = shards_[i];
    shard->enqueue([shard, gather, shared_work] {
      std::size_t n = 0;
      try {
        n = (*shared_work)(*shard);
      } catch (const std::exception& e) {
        // Still answer: a caller waiting on every shard must not hang.
        log::error("shard task failed", {{"loop", shard->index()}, {"error", e.what()}});
      }
      gather->add(n);
    });
  }
}

void Hub::notify(std::vector<std::string> user_ids, const FrameMaker& make, CountCallback done,
                 std::vector<std::string>* offline) {
  if (history_ == nullptr) {
    notify_shared(std::move(user_ids), make(nullptr), std::move(done), offline);
    return;
  }
  // One frame per user, each appended to the user's stream and handed to
  // the loops that hold the user under that stream's lock (see
  // History::append): the loops get each stream's frames in offset order.
  // Users nobody holds get their history entry all the same: they may be
  // reconnecting.
  auto gather = std::make_shared<CountGather>(1, std::move(done));  // 1: until every user is handed on
  const std::int64_t now = unix_millis();
  for (const std::string& user : user_ids) {
    const std::string stream = user_stream(user);
    history_->append(
        stream, now,
        [&](std::uint64_t offset, std::string_view epoch) {
          const protocol::Position position{stream, std::string(epoch), offset};
          return make(&position);
        },
        [&](const FramePtr& frame) {
          const std::uint64_t loops = directory_ ? directory_->loops_of(user) : ~0ull;
          if (directory_ && loops == 0 && offline != nullptr) offline->push_back(user);
          for (std::size_t i = 0; i < shards_.size(); ++i) {
            if (i < UserDirectory::kMaxLoops && (loops >> i & 1) == 0) continue;
            Shard* shard = shards_[i];
            gather->pending.fetch_add(1, std::memory_order_relaxed);
            shard->enqueue([shard, gather, frame, user] {
              std::size_t n = 0;
              try {
                n = shard->deliver_to_users(std::span<const std::string>(&user, 1), frame);
              } catch (const std::exception& e) {
                log::error("shard task failed", {{"loop", shard->index()}, {"error", e.what()}});
              }
              gather->add(n);
            });
          }
        });
  }
  gather->add(0);
}

void Hub::notify_shared(std::vector<std::string> user_ids, FramePtr frame, CountCallback done,
                        std::vector<std::string>* offline) {
  auto users = std::make_shared<const std::vector<std::string>>(std::move(user_ids));
  std::uint64_t mask = ~0ull;
  if (directory_) {
    // One lookup per user, telling who is offline on the way.
    mask = 0;
    for (const auto& user : *users) {
      const std::uint64_t loops = directory_->loops_of(user);
      if (loops == 0 && offline != nullptr) offline->push_back(user);
      mask |= loops;
    }
  }
  for_each_shard([users, frame](Shard& s) { return s.deliver_to_users(*users, frame); }, std::move(done), mask);
}

void Hub::broadcast(std::string topic, const FrameMaker& make, CountCallback done) {
  auto shared_topic = std::make_shared<const std::string>(std::move(topic));
  auto hand_on = [&](const FramePtr& frame) {
    for_each_shard(
        [shared_topic, frame](Shard& s) {
          return shared_topic->empty() ? s.deliver_to_all(frame) : s.deliver_to_topic(*shared_topic, frame);
        },
        std::move(done));
  };
  if (history_ == nullptr) {
    hand_on(make(nullptr));
    return;
  }
  // Handed to the loops under the stream's lock, like notify().
  const std::string stream = topic_stream(*shared_topic);
  history_->append(
      stream, unix_millis(),
      [&](std::uint64_t offset, std::string_view epoch) {
        const protocol::Position position{stream, std::string(epoch), offset};
        return make(&position);
      },
      hand_on);
}

void Hub::disconnect(std::vector<std::string> user_ids, std::uint16_t code, std::string reason, CountCallback done) {
  auto users = std::make_shared<const std::vector<std::string>>(std::move(user_ids));
  auto shared_reason = std::make_shared<const std::string>(std::move(reason));
  for_each_shard([users, code, shared_reason](Shard& s) { return s.close_users(*users, code, *shared_reason); },
                 std::move(done));
}

void Hub::close_all(std::uint16_t code, std::string reason, CountCallback done) {
  auto shared_reason = std::make_shared<const std::string>(std::move(reason));
  for_each_shard([code, shared_reason](Shard& s) { return s.close_all(code, *shared_reason); }, std::move(done));
}

void Hub::presence(std::vector<std::string> user_ids, PresenceCallback done) {
  struct Gather {
    std::vector<std::string> users;
    std::vector<std::atomic<std::uint32_t>> counts;  // every shard adds its share
    std::atomic<std::size_t> pending;
    PresenceCallback done;
  };
  auto g = std::make_shared<Gather>();
  g->users = std::move(user_ids);
  g->counts = std::vector<std::atomic<std::uint32_t>>(g->users.size());
  g->pending = shards_.size();
  g->done = std::move(done);
  for (Shard* shard : shards_) {
    shard->enqueue([shard, g] {
      try {
        shard->count_users(g->users, g->counts);
      } catch (const std::exception& e) {
        log::error("shard task failed", {{"loop", shard->index()}, {"error", e.what()}});
      }
      if (g->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      std::vector<std::uint32_t> counts(g->counts.size());
      for (std::size_t u = 0; u < counts.size(); ++u) counts[u] = g->counts[u].load(std::memory_order_relaxed);
      g->done(std::move(counts));
    });
  }
}

}  // namespace notify::gateway
