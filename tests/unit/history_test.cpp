// The per-stream history a reconnecting client will resume from: offsets,
// epochs, bounds, and the order guarantee of append().
#include "gateway/history.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace notify::gateway {
namespace {

using namespace std::chrono_literals;

FramePtr frame_for(std::uint64_t offset, std::string_view epoch) {
  return std::make_shared<const Frame>(Frame::Kind::notification, std::to_string(offset) + "@" + std::string(epoch));
}

struct Fixture {
  explicit Fixture(HistoryLimits limits = {}) : history(limits, "e1") {}

  std::uint64_t append(std::string_view stream, std::int64_t now_ms = 1'000) {
    std::uint64_t got = 0;
    history.append(
        stream, now_ms,
        [&](std::uint64_t offset, std::string_view epoch) {
          got = offset;
          return frame_for(offset, epoch);
        },
        [](const FramePtr&) {});
    return got;
  }

  // The offsets read after `offset`, and the outcome.
  std::pair<History::Resume, std::vector<std::uint64_t>> after(std::string_view stream, std::string_view epoch,
                                                               std::uint64_t offset, std::int64_t now_ms = 1'000) {
    std::vector<History::Entry> out;
    std::uint64_t head = 0;
    std::string current;
    const auto r = history.read_after(stream, epoch, offset, now_ms, out, head, current);
    std::vector<std::uint64_t> offsets;
    for (const auto& e : out) offsets.push_back(e.offset);
    return {r, offsets};
  }

  std::string epoch_of(std::string_view stream) {
    std::vector<History::Entry> out;
    std::uint64_t head = 0;
    std::string current;
    history.read_after(stream, "", 0, 1'000, out, head, current);
    return current;
  }

  History history;
};

TEST(History, OffsetsAreConsecutivePerStreamAndEpochsDiffer) {
  Fixture f;
  EXPECT_EQ(f.append("u:alice"), 1u);
  EXPECT_EQ(f.append("u:alice"), 2u);
  EXPECT_EQ(f.append("t:news"), 1u);
  EXPECT_EQ(f.append("u:alice"), 3u);
  EXPECT_FALSE(f.epoch_of("u:alice").empty());
  EXPECT_NE(f.epoch_of("u:alice"), f.epoch_of("t:news"));
}

TEST(History, AClientGetsWhatItMissedInOrderAndNothingWhenCurrent) {
  Fixture f;
  for (int i = 0; i < 5; ++i) f.append("u:alice");
  const std::string epoch = f.epoch_of("u:alice");
  EXPECT_EQ(f.after("u:alice", epoch, 2), (std::pair{History::Resume::ok, std::vector<std::uint64_t>{3, 4, 5}}));
  EXPECT_EQ(f.after("u:alice", epoch, 5), (std::pair{History::Resume::ok, std::vector<std::uint64_t>{}}));
  EXPECT_EQ(f.after("u:alice", epoch, 0).second, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  // A client without a position on a stream that has no history is current.
  EXPECT_EQ(f.after("u:nobody", "", 0).first, History::Resume::ok);
}

TEST(History, WhatIsNoLongerKeptIsRefusedWholeNeverInPart) {
  Fixture f(HistoryLimits{.max_entries = 3, .ttl = 60s});
  for (int i = 0; i < 6; ++i) f.append("u:alice");  // keeps 4, 5, 6
  const std::string epoch = f.epoch_of("u:alice");
  EXPECT_EQ(f.after("u:alice", epoch, 3).second, (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(f.after("u:alice", epoch, 2), (std::pair{History::Resume::too_old, std::vector<std::uint64_t>{}}));
  EXPECT_EQ(f.after("u:alice", epoch, 7).first, History::Resume::ahead);
  EXPECT_EQ(f.after("u:alice", "e1-999", 5).first, History::Resume::epoch_changed);
}

TEST(History, EntriesExpireWithTheTtl) {
  Fixture f(HistoryLimits{.max_entries = 100, .ttl = 10s});
  f.append("u:alice", 1'000);
  f.append("u:alice", 5'000);
  f.append("u:alice", 9'000);
  const std::string epoch = f.epoch_of("u:alice");
  EXPECT_EQ(f.after("u:alice", epoch, 0, 12'000).first, History::Resume::too_old);  // 1 is gone
  EXPECT_EQ(f.after("u:alice", epoch, 1, 12'000).second, (std::vector<std::uint64_t>{2, 3}));
  // Everything expired: a client at the head is still current.
  EXPECT_EQ(f.after("u:alice", epoch, 3, 60'000), (std::pair{History::Resume::ok, std::vector<std::uint64_t>{}}));
  EXPECT_EQ(f.after("u:alice", epoch, 2, 60'000).first, History::Resume::too_old);
}

TEST(History, AForgottenStreamStartsANewEpochAtOffsetOne) {
  Fixture f(HistoryLimits{.max_entries = 100, .ttl = 10s});
  f.append("u:alice", 1'000);
  f.append("u:alice", 2'000);
  const std::string old_epoch = f.epoch_of("u:alice");
  EXPECT_EQ(f.history.prune(5'000), 0u);
  EXPECT_EQ(f.history.prune(20'000), 1u);
  EXPECT_EQ(f.history.stream_count(), 0u);
  EXPECT_EQ(f.after("u:alice", old_epoch, 2, 20'000).first, History::Resume::epoch_changed);
  EXPECT_EQ(f.append("u:alice", 21'000), 1u);
  EXPECT_NE(f.epoch_of("u:alice"), old_epoch);
  EXPECT_EQ(f.after("u:alice", old_epoch, 2, 21'000).first, History::Resume::epoch_changed);
}

// then() runs under the stream's lock: whatever it hands on leaves in offset
// order, however many threads append at once.
TEST(History, ThenSeesOffsetsInOrderAcrossThreads) {
  Fixture f(HistoryLimits{.max_entries = 100'000, .ttl = 60s});
  std::vector<std::uint64_t> handed_on;  // written only under the stream's lock
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2'000; ++i) {
        f.history.append(
            "t:hot", 1'000, [](std::uint64_t offset, std::string_view epoch) { return frame_for(offset, epoch); },
            [&](const FramePtr& frame) { handed_on.push_back(std::stoull(std::string(frame->payload))); });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(handed_on.size(), 8'000u);
  for (std::size_t i = 0; i < handed_on.size(); ++i) ASSERT_EQ(handed_on[i], i + 1);
}

TEST(History, ACollapseKeyKeepsOnlyTheLatestAndIsNoLoss) {
  Fixture f;
  auto keyed = [&](std::string scope) {
    std::uint64_t got = 0;
    f.history.append(
        "user:alice", 1'000,
        [&](std::uint64_t offset, std::string_view) {
          got = offset;
          return std::make_shared<const Frame>(std::to_string(offset), std::move(scope));
        },
        [](const FramePtr&) {});
    return got;
  };
  keyed("u\nviews");       // 1
  f.append("user:alice");  // 2
  keyed("u\nviews");       // 3: replaces 1
  keyed("u\nlikes");       // 4
  keyed("u\nviews");       // 5: replaces 3
  const std::string epoch = f.epoch_of("user:alice");
  // A client at 0 missed 1 and 3, but only as older values of 5: not lost.
  EXPECT_EQ(f.after("user:alice", epoch, 0), (std::pair{History::Resume::ok, std::vector<std::uint64_t>{2, 4, 5}}));
  EXPECT_EQ(f.after("user:alice", epoch, 2).second, (std::vector<std::uint64_t>{4, 5}));
}

TEST(History, APositionFixesTheEpochBeforeTheFirstNotification) {
  Fixture f;
  const auto [epoch, head] = f.history.position("user:alice", 1'000);
  EXPECT_EQ(head, 0u);
  EXPECT_FALSE(epoch.empty());
  f.append("user:alice");
  EXPECT_EQ(f.after("user:alice", epoch, 0), (std::pair{History::Resume::ok, std::vector<std::uint64_t>{1}}));
  EXPECT_EQ(f.history.position("user:alice", 1'000), (std::pair{epoch, std::uint64_t{1}}));
}

}  // namespace
}  // namespace notify::gateway
