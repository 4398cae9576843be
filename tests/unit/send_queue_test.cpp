#include "gateway/send_queue.hpp"

#include <gtest/gtest.h>

namespace notify::gateway {
namespace {

FramePtr frame(std::size_t bytes, char fill = 'x') { return make_control_frame(std::string(bytes, fill)); }

TEST(SendQueue, QueuesWithinLimits) {
  QueueLimits limits{4, 100, OverflowPolicy::close};
  SendQueue q(limits);
  EXPECT_TRUE(q.push(frame(10)).accepted);
  EXPECT_TRUE(q.push(frame(20)).accepted);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.bytes(), 30u);
}

TEST(SendQueue, ClosePolicyRefusesOverMessageLimit) {
  QueueLimits limits{2, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push(frame(1));
  q.push(frame(1));
  const auto r = q.push(frame(1));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(q.size(), 2u);
}

TEST(SendQueue, ClosePolicyRefusesOverByteLimit) {
  QueueLimits limits{100, 50, OverflowPolicy::close};
  SendQueue q(limits);
  EXPECT_TRUE(q.push(frame(30)).accepted);
  EXPECT_TRUE(q.push(frame(20)).accepted);  // exactly at the limit
  EXPECT_FALSE(q.push(frame(1)).accepted);
  EXPECT_EQ(q.bytes(), 50u);
}

TEST(SendQueue, DropOldestMakesRoomAndKeepsNewest) {
  QueueLimits limits{3, 1000, OverflowPolicy::drop_oldest};
  SendQueue q(limits);
  q.push(frame(1, 'a'));
  q.push(frame(1, 'b'));
  q.push(frame(1, 'c'));
  const auto r = q.push(frame(1, 'd'));
  EXPECT_TRUE(r.accepted);
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.begin_write()->payload, "b");
}

TEST(SendQueue, DropOldestNeverDropsTheFrameInFlight) {
  QueueLimits limits{100, 10, OverflowPolicy::drop_oldest};
  SendQueue q(limits);
  q.push(frame(4, 'a'));
  q.push(frame(4, 'b'));
  EXPECT_EQ(q.begin_write()->payload, "aaaa");  // 'a' is on the wire now
  const auto r = q.push(frame(5, 'c'));         // needs 'b' gone, not 'a'
  EXPECT_TRUE(r.accepted);
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ(r.dropped_bytes, 4u);
  EXPECT_EQ(q.bytes(), 9u);
  EXPECT_EQ(q.end_write()->payload, "aaaa");
  EXPECT_EQ(q.begin_write()->payload, "ccccc");
}

TEST(SendQueue, DropOldestDropsSeveralBehindTheFrameInFlight) {
  QueueLimits limits{100, 12, OverflowPolicy::drop_oldest};
  SendQueue q(limits);
  q.push(frame(4, 'a'));
  q.push(frame(4, 'b'));
  q.push(frame(4, 'c'));
  q.begin_write();
  const auto r = q.push(frame(8, 'd'));  // needs 8 free: 'b' and 'c' go
  EXPECT_TRUE(r.accepted);
  EXPECT_EQ(r.dropped, 2u);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.bytes(), 12u);
  EXPECT_EQ(q.end_write()->payload, "aaaa");
  EXPECT_EQ(q.begin_write()->payload, "dddddddd");
  EXPECT_EQ(q.end_write()->payload, "dddddddd");
  EXPECT_TRUE(q.empty());
}

TEST(SendQueue, DropOldestRefusesFrameLargerThanBudget) {
  QueueLimits limits{100, 10, OverflowPolicy::drop_oldest};
  SendQueue q(limits);
  q.push(frame(5));
  const auto r = q.push(frame(11));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.dropped, 0u);  // nothing sacrificed for a frame that can never fit
  EXPECT_EQ(q.bytes(), 5u);
}

TEST(SendQueue, WriteCycleReleasesBytesAndStorage) {
  QueueLimits limits{10, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  for (int i = 0; i < 5; ++i) q.push(frame(10));
  while (!q.empty()) {
    q.begin_write();
    EXPECT_TRUE(q.in_flight());
    q.end_write();
  }
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(q.size(), 0u);
}

TEST(SendQueue, ClearWaitingKeepsInFlight) {
  QueueLimits limits{10, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push(frame(3, 'a'));
  q.push(frame(5, 'b'));
  q.push(frame(7, 'c'));
  q.begin_write();
  EXPECT_EQ(q.clear_waiting(), 12u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.bytes(), 3u);
  EXPECT_EQ(q.end_write()->payload, "aaa");
  EXPECT_TRUE(q.empty());
}

TEST(SendQueue, LongRunStaysBounded) {
  QueueLimits limits{8, 1 << 20, OverflowPolicy::drop_oldest};
  SendQueue q(limits);
  std::size_t dropped = 0;
  for (int i = 0; i < 10000; ++i) {
    dropped += q.push(frame(16)).dropped;
    if (i % 3 == 0 && !q.in_flight() && !q.empty()) q.begin_write();
    if (i % 3 == 1 && q.in_flight()) q.end_write();
    ASSERT_LE(q.size(), 8u);
    ASSERT_LE(q.bytes(), 8u * 16);
  }
  EXPECT_GT(dropped, 0u);
}

TEST(SendQueue, PolicyNames) {
  OverflowPolicy p;
  EXPECT_TRUE(parse_overflow_policy("drop-oldest", p));
  EXPECT_EQ(p, OverflowPolicy::drop_oldest);
  EXPECT_TRUE(parse_overflow_policy("close", p));
  EXPECT_EQ(p, OverflowPolicy::close);
  EXPECT_FALSE(parse_overflow_policy("drop", p));
  EXPECT_EQ(to_string(OverflowPolicy::drop_oldest), "drop-oldest");
}

}  // namespace
}  // namespace notify::gateway
