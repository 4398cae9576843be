// Hub routing over real event loops, with recording subscribers standing in
// for WebSocket sessions (the Subscriber interface is the seam).
#include "gateway/hub.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "broker/local_broker.hpp"
#include "common/ids.hpp"
#include "common/metrics.hpp"
#include "gateway/event_loops.hpp"
#include "gateway/inbox.hpp"

namespace notify::gateway {
namespace {

class Recorder : public Subscriber {
 public:
  explicit Recorder(std::string user, bool accepting = true) : user_(std::move(user)), accepting_(accepting) {}
  std::string_view user_id() const override { return user_; }
  bool deliver(const FramePtr& frame) override {
    if (!accepting_) return false;
    frames.push_back(frame);
    return true;
  }
  bool close(std::uint16_t code, std::string reason) override {
    if (close_code != 0) return false;
    close_code = code;
    close_reason = std::move(reason);
    return true;
  }

  std::vector<FramePtr> frames;
  std::uint16_t close_code = 0;
  std::string close_reason;

 private:
  std::string user_;
  bool accepting_;
};

class HubTest : public ::testing::Test {
 protected:
  HubTest() : metrics_(2), loops_(2) {
    std::vector<Shard*> ptrs;
    for (std::size_t i = 0; i < 2; ++i) {
      shards_.push_back(std::make_unique<Shard>(i, loops_.context(i), metrics_.loop(i)));
      ptrs.push_back(shards_.back().get());
    }
    hub_ = std::make_unique<Hub>(ptrs);
    loops_.start();
  }
  ~HubTest() override {
    // Subscribers must leave the shards on their own loops before they die.
    for (std::size_t i = 0; i < 2; ++i) {
      on_loop(i, [&, i] {
        for (auto& r : recorders_[i]) shards_[i]->remove(r.get(), topics_[r.get()]);
      });
    }
    loops_.stop();
  }

  // Runs `fn` on loop i and waits for it.
  void on_loop(std::size_t i, std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(loops_.context(i), [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  Recorder* add(std::size_t loop, const std::string& user, bool accepting = true) {
    auto r = std::make_unique<Recorder>(user, accepting);
    Recorder* raw = r.get();
    on_loop(loop, [&] { shards_[loop]->add(raw); });
    recorders_[loop].push_back(std::move(r));
    return raw;
  }

  void subscribe(std::size_t loop, Recorder* r, const std::string& topic) {
    on_loop(loop, [&] { shards_[loop]->subscribe(r, topic); });
    topics_[r].push_back(topic);
  }

  std::uint32_t notify(std::vector<std::string> users, const FramePtr& frame) {
    std::promise<std::uint32_t> result;
    hub_->notify(std::move(users), frame, [&](std::uint32_t n) { result.set_value(n); });
    return result.get_future().get();
  }

  std::uint32_t broadcast(std::string topic, const FramePtr& frame) {
    std::promise<std::uint32_t> result;
    hub_->broadcast(std::move(topic), frame, [&](std::uint32_t n) { result.set_value(n); });
    return result.get_future().get();
  }

  // Reads a recorder's state on its own loop.
  std::size_t frames_of(std::size_t loop, Recorder* r) {
    std::size_t n = 0;
    on_loop(loop, [&] { n = r->frames.size(); });
    return n;
  }

  Metrics metrics_;
  EventLoops loops_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<Hub> hub_;
  std::vector<std::unique_ptr<Recorder>> recorders_[2];
  std::map<Recorder*, std::vector<std::string>> topics_;
};

FramePtr notification(const std::string& body) {
  return std::make_shared<const Frame>(Frame::Kind::notification, body);
}

TEST_F(HubTest, NotifyReachesEveryConnectionOfTheUserOnEveryLoopAndNobodyElse) {
  Recorder* alice0 = add(0, "alice");
  Recorder* alice1 = add(1, "alice");
  Recorder* alice1b = add(1, "alice");
  Recorder* bob0 = add(0, "bob");
  const auto frame = notification("n1");
  EXPECT_EQ(notify({"alice"}, frame), 3u);
  EXPECT_EQ(frames_of(0, alice0), 1u);
  EXPECT_EQ(frames_of(1, alice1), 1u);
  EXPECT_EQ(frames_of(1, alice1b), 1u);
  EXPECT_EQ(frames_of(0, bob0), 0u);
}

TEST_F(HubTest, EveryRecipientSharesTheSameEncodedFrame) {
  Recorder* a = add(0, "alice");
  Recorder* b = add(1, "bob");
  const auto frame = notification("shared");
  EXPECT_EQ(notify({"alice", "bob"}, frame), 2u);
  on_loop(0, [&] { EXPECT_EQ(a->frames.at(0).get(), frame.get()); });
  on_loop(1, [&] { EXPECT_EQ(b->frames.at(0).get(), frame.get()); });
}

TEST_F(HubTest, NotifyForUnknownUsersDeliversNothing) {
  add(0, "alice");
  EXPECT_EQ(notify({"carol", "dave"}, notification("x")), 0u);
}

TEST_F(HubTest, NotifyWakesOnlyTheLoopsHoldingTheUser) {
  Recorder* alice = add(1, "alice");
  // Loop 0 is busy: a Notify that needed it would not complete.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  boost::asio::post(loops_.context(0), [released] { released.wait(); });
  std::promise<std::uint32_t> result;
  auto count = result.get_future();
  hub_->notify({"alice"}, notification("n"), [&](std::uint32_t n) { result.set_value(n); });
  const bool completed = count.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  release.set_value();
  ASSERT_TRUE(completed) << "the Notify waited for a loop that holds no connection of the user";
  EXPECT_EQ(count.get(), 1u);
  EXPECT_EQ(frames_of(1, alice), 1u);
}

TEST_F(HubTest, NotifyToOfflineUsersCompletesAtOnceOnTheCallingThread) {
  Recorder* alice = add(0, "alice");
  on_loop(0, [&] { shards_[0]->remove(alice, {}); });
  std::thread::id ran_on;
  std::uint32_t delivered = 99;
  hub_->notify({"alice", "nobody"}, notification("n"), [&](std::uint32_t n) {
    ran_on = std::this_thread::get_id();
    delivered = n;
  });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(delivered, 0u);
}

TEST_F(HubTest, NotifyTellsWhoIsOfflineInTheOrderAsked) {
  add(0, "alice");
  add(1, "bob");
  ASSERT_TRUE(hub_->tracks_users());
  std::vector<std::string> offline;
  std::promise<std::uint32_t> result;
  hub_->notify(
      {"carol", "bob", "dave", "alice"}, notification("n"), [&](std::uint32_t n) { result.set_value(n); }, &offline);
  EXPECT_EQ(result.get_future().get(), 2u);
  EXPECT_EQ(offline, (std::vector<std::string>{"carol", "dave"}));
}

// Past UserDirectory::kMaxLoops the hub keeps no directory: the local broker
// asks every loop for presence first, and still reports who is offline.
TEST(LocalBrokerManyLoops, OfflineUsersAreFoundWithoutAUserDirectory) {
  constexpr std::size_t kLoops = UserDirectory::kMaxLoops + 1;
  Metrics metrics(kLoops);
  EventLoops loops(kLoops);
  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<Shard*> ptrs;
  for (std::size_t i = 0; i < kLoops; ++i) {
    shards.push_back(std::make_unique<Shard>(i, loops.context(i), metrics.loop(i)));
    ptrs.push_back(shards.back().get());
  }
  Hub hub(ptrs);
  loops.start();
  ASSERT_FALSE(hub.tracks_users());
  Recorder alice("alice");
  const auto on_last_loop = [&](std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(loops.context(kLoops - 1), [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  };
  on_last_loop([&] { shards.back()->add(&alice); });
  broker::LocalBroker broker(hub, nullptr);
  std::promise<broker::Outcome> result;
  broker.notify(
      {"ghost", "alice", "nobody"},
      broker::Publication{.id = "n-1", .event = "like", .topic = {}, .data_json = {}, .ts_ms = 1, .collapse_key = {}},
      [&](broker::Outcome o) { result.set_value(std::move(o)); });
  const broker::Outcome outcome = result.get_future().get();
  EXPECT_TRUE(outcome.ok());
  EXPECT_EQ(outcome.count, 1u);
  EXPECT_EQ(outcome.offline, (std::vector<std::string>{"ghost", "nobody"}));
  on_last_loop([&] {
    EXPECT_EQ(alice.frames.size(), 1u);
    shards.back()->remove(&alice, {});
  });
  loops.stop();
}

TEST_F(HubTest, AUserStaysRoutedToALoopUntilItsLastConnectionThereLeaves) {
  Recorder* first = add(0, "alice");
  Recorder* second = add(0, "alice");
  Recorder* other = add(1, "alice");
  on_loop(0, [&] { shards_[0]->remove(first, {}); });
  EXPECT_EQ(notify({"alice"}, notification("a")), 2u);  // second and other
  on_loop(1, [&] { shards_[1]->remove(other, {}); });
  EXPECT_EQ(notify({"alice"}, notification("b")), 1u);
  EXPECT_EQ(frames_of(0, second), 2u);
  on_loop(0, [&] { shards_[0]->remove(second, {}); });
  EXPECT_EQ(notify({"alice"}, notification("c")), 0u);
}

TEST_F(HubTest, ConnectionsThatRefuseAreNotCounted) {
  add(0, "alice");
  add(1, "alice", /*accepting=*/false);
  EXPECT_EQ(notify({"alice"}, notification("x")), 1u);
}

TEST_F(HubTest, BroadcastToTopicReachesOnlySubscribers) {
  Recorder* a = add(0, "alice");
  Recorder* b = add(1, "bob");
  Recorder* c = add(1, "carol");
  subscribe(0, a, "post:1");
  subscribe(1, b, "post:1");
  subscribe(1, c, "post:2");
  EXPECT_EQ(broadcast("post:1", notification("t")), 2u);
  EXPECT_EQ(frames_of(0, a), 1u);
  EXPECT_EQ(frames_of(1, b), 1u);
  EXPECT_EQ(frames_of(1, c), 0u);
  EXPECT_EQ(broadcast("post:3", notification("t")), 0u);
}

TEST_F(HubTest, BroadcastWithoutTopicReachesEveryone) {
  add(0, "alice");
  add(1, "bob");
  add(1, "carol");
  EXPECT_EQ(broadcast("", notification("all")), 3u);
}

TEST_F(HubTest, RemovedConnectionsLeaveEveryIndex) {
  Recorder* a = add(0, "alice");
  subscribe(0, a, "t");
  on_loop(0, [&] {
    shards_[0]->remove(a, topics_[a]);
    EXPECT_EQ(shards_[0]->topic_count(), 0u);
    EXPECT_EQ(shards_[0]->user_count(), 0u);
    EXPECT_EQ(shards_[0]->connection_count(), 0u);
  });
  topics_[a].clear();
  recorders_[0].clear();
  EXPECT_EQ(notify({"alice"}, notification("x")), 0u);
  EXPECT_EQ(broadcast("t", notification("x")), 0u);
  EXPECT_EQ(broadcast("", notification("x")), 0u);
}

TEST_F(HubTest, DisconnectClosesOnlyThoseUsersWithCodeAndReason) {
  Recorder* a0 = add(0, "alice");
  Recorder* a1 = add(1, "alice");
  Recorder* b = add(1, "bob");
  std::promise<std::uint32_t> closed;
  hub_->disconnect({"alice"}, 4000, "bye", [&](std::uint32_t n) { closed.set_value(n); });
  EXPECT_EQ(closed.get_future().get(), 2u);
  on_loop(0, [&] { EXPECT_EQ(a0->close_code, 4000); });
  on_loop(1, [&] {
    EXPECT_EQ(a1->close_code, 4000);
    EXPECT_EQ(a1->close_reason, "bye");
    EXPECT_EQ(b->close_code, 0);
  });
}

TEST_F(HubTest, PresenceSumsConnectionsAcrossLoops) {
  add(0, "alice");
  add(1, "alice");
  add(1, "bob");
  std::promise<std::vector<std::uint32_t>> counts;
  hub_->presence({"alice", "bob", "carol"}, [&](std::vector<std::uint32_t> c) { counts.set_value(std::move(c)); });
  EXPECT_EQ(counts.get_future().get(), (std::vector<std::uint32_t>{2, 1, 0}));
}

TEST_F(HubTest, CloseAllReachesEveryConnection) {
  Recorder* a = add(0, "alice");
  Recorder* b = add(1, "bob");
  std::promise<std::uint32_t> closed;
  hub_->close_all(1001, "shutdown", [&](std::uint32_t n) { closed.set_value(n); });
  EXPECT_EQ(closed.get_future().get(), 2u);
  on_loop(0, [&] { EXPECT_EQ(a->close_code, 1001); });
  on_loop(1, [&] { EXPECT_EQ(b->close_code, 1001); });
}

TEST(SubscriberSet, SwapRemoveKeepsPositionsConsistent) {
  std::vector<std::unique_ptr<Recorder>> rs;
  for (int i = 0; i < 50; ++i) rs.push_back(std::make_unique<Recorder>("u" + std::to_string(i)));
  SubscriberSet set;
  for (auto& r : rs) EXPECT_TRUE(set.insert(r.get()));
  EXPECT_FALSE(set.insert(rs[0].get()));
  for (int i = 0; i < 50; i += 2) EXPECT_TRUE(set.erase(rs[static_cast<std::size_t>(i)].get()));
  EXPECT_FALSE(set.erase(rs[0].get()));
  EXPECT_EQ(set.size(), 25u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(set.contains(rs[static_cast<std::size_t>(i)].get()), i % 2 == 1);
  for (int i = 1; i < 50; i += 2) EXPECT_TRUE(set.erase(rs[static_cast<std::size_t>(i)].get()));
  EXPECT_TRUE(set.empty());
}

TEST(ShardInbox, TasksRunInTheOrderTheyWereEnqueuedFromAnyThread) {
  // Asio alone lets a post from the loop's own thread be overtaken by one
  // from elsewhere; the inbox must not.
  Metrics metrics(1);
  EventLoops loops(1);
  Shard shard(0, loops.context(0), metrics.loop(0));
  loops.start();
  std::vector<int> order;  // loop thread only
  std::promise<void> done;
  constexpr int kEach = 2000;
  std::atomic<int> next{0};
  auto enqueue_next = [&] {
    const int n = next.fetch_add(1);
    shard.enqueue([&order, n] { order.push_back(n); });
  };
  std::mutex mu;  // makes "enqueued before" well defined across the two threads
  boost::asio::post(loops.context(0), [&] {
    for (int i = 0; i < kEach; ++i) {
      std::lock_guard lock(mu);
      enqueue_next();
    }
  });
  for (int i = 0; i < kEach; ++i) {
    std::lock_guard lock(mu);
    enqueue_next();
  }
  // Runs after everything above was enqueued, so it comes last.
  while (next.load() < 2 * kEach) std::this_thread::yield();
  shard.enqueue([&] { done.set_value(); });
  done.get_future().wait();
  loops.stop();
  ASSERT_EQ(order.size(), static_cast<std::size_t>(2 * kEach));
  for (int i = 0; i < 2 * kEach; ++i) ASSERT_EQ(order[i], i);
}

TEST_F(HubTest, WithHistoryEachUserGetsAFrameNumberedInTheirOwnStream) {
  History history({}, "node");
  hub_->attach_history(&history);
  Recorder* alice = add(0, "alice");
  Recorder* bob = add(1, "bob");
  std::promise<std::uint32_t> result;
  hub_->notify(
      {"alice", "bob", "carol"},
      [](const protocol::Position* p) {
        auto f = std::make_shared<Frame>(Frame::Kind::notification, p->stream + "#" + std::to_string(p->offset));
        f->stream = p->stream;
        f->offset = p->offset;
        return FramePtr(f);
      },
      [&](std::uint32_t n) { result.set_value(n); });
  EXPECT_EQ(result.get_future().get(), 2u);
  on_loop(0, [&] {
    ASSERT_EQ(alice->frames.size(), 1u);
    EXPECT_EQ(alice->frames[0]->payload, "user:alice#1");
  });
  on_loop(1, [&] {
    ASSERT_EQ(bob->frames.size(), 1u);
    EXPECT_EQ(bob->frames[0]->payload, "user:bob#1");
  });
  // Carol is offline, but her notification is kept for when she resumes.
  EXPECT_EQ(history.position("user:carol", unix_millis()).second, 1u);
  hub_->attach_history(nullptr);
}

}  // namespace
}  // namespace notify::gateway

namespace notify::gateway {
namespace {

// The in-process inbox on its own (no connection holds the users, so the
// counts it pushes reach nobody).
class InboxTest : public HubTest {
 protected:
  InboxEntry entry(const std::string& id, std::int64_t ts, std::int64_t expires = 1LL << 60) {
    return {.id = id, .ts_ms = ts, .expires_ms = expires, .payload = R"({"type":"notification","id":")" + id + "\"}"};
  }
  std::vector<std::string> take(const std::string& user, std::uint64_t* unread = nullptr) {
    std::vector<std::string> ids;
    inbox_.take_pending(user, [&](std::string error, std::vector<InboxEntry> entries, std::uint64_t n, bool) {
      EXPECT_EQ(error, "");
      for (auto& e : entries) ids.push_back(e.id);
      if (unread) *unread = n;
    });
    return ids;
  }
  Inbox inbox_{*hub_, 3};
};

TEST_F(InboxTest, PendingEntriesAreTakenOnceOldestFirstUnlessGivenBack) {
  inbox_.add({"alice"}, entry("b", 20));
  inbox_.add({"alice"}, entry("a", 10));  // published earlier, arrived later
  inbox_.add({"alice", "bob"}, entry("c", 30));
  inbox_.settle({"alice", "bob"}, {"alice"}, "c");  // bob got c live
  std::uint64_t unread = 0;
  EXPECT_EQ(take("alice", &unread), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(unread, 3u);
  EXPECT_EQ(take("alice"), std::vector<std::string>{}) << "taken once";
  EXPECT_EQ(take("bob", &unread), std::vector<std::string>{}) << "bob was online";
  EXPECT_EQ(unread, 1u);
  inbox_.restore_pending("alice", {"b", "gone"});
  EXPECT_EQ(take("alice"), std::vector<std::string>{"b"});
}

TEST_F(InboxTest, TheOldestLeaveBeyondTheSizeAndExpiredOnesLeave) {
  for (int i = 1; i <= 5; ++i) inbox_.add({"alice"}, entry("n" + std::to_string(i), i));
  inbox_.add({"alice"}, entry("short", 6, 1000));
  EXPECT_EQ(inbox_.prune(999), 3u);
  EXPECT_EQ(inbox_.prune(1000), 2u) << "'short' expired at 1000";
  std::vector<std::string> listed;
  std::string error;
  inbox_.list("alice", "", 50, [&](std::string e, std::vector<InboxEntry> entries, std::uint64_t, bool) {
    error = std::move(e);
    for (auto& x : entries) listed.push_back(x.id);
  });
  EXPECT_EQ(error, "");
  EXPECT_EQ(listed, (std::vector<std::string>{"n5", "n4"})) << "n1..n3 left for the size, short expired";
  inbox_.list("alice", "n1", 50, [&](std::string e, std::vector<InboxEntry>, std::uint64_t, bool) { error = e; });
  EXPECT_EQ(error, kInboxNotFound);
}

}  // namespace
}  // namespace notify::gateway
