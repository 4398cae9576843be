#include "gateway/send_queue.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

namespace notify::gateway {
namespace {

FramePtr frame(std::size_t bytes, char fill = 'x') { return make_control_frame(std::string(bytes, fill)); }

FramePtr keyed(std::string payload, std::string scope) {
  return std::make_shared<const Frame>(payload, std::move(scope));
}

std::vector<std::string> waiting(SendQueue& q) {
  std::vector<std::string> out;
  while (!q.empty()) {
    out.emplace_back(q.begin_write()->payload);
    q.end_write();
  }
  return out;
}

// A newer frame with the same collapse scope replaces the waiting one and
// goes to the back; other scopes, unkeyed frames and the frame in flight
// stay.
TEST(SendQueue, ACollapseKeyReplacesTheWaitingFrameOfItsScope) {
  QueueLimits limits{100, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push(keyed("views 1", "t:post\nviews"));
  q.push(frame(3, 'a'));
  q.push(keyed("likes 1", "t:post\nlikes"));
  q.push(keyed("views u", "u\nviews"));  // the user's own stream: another scope
  const auto r = q.push(keyed("views 2", "t:post\nviews"));
  EXPECT_TRUE(r.accepted);
  EXPECT_EQ(r.collapsed, 1u);
  EXPECT_EQ(r.collapsed_bytes, 7u);
  ASSERT_NE(r.replaced, nullptr);
  EXPECT_EQ(r.replaced->payload, "views 1");
  EXPECT_EQ(q.push(keyed("views 3", "t:post\nviews")).collapsed, 1u);
  EXPECT_EQ(q.bytes(), 3u + 7u + 7u + 7u);
  EXPECT_EQ(waiting(q), (std::vector<std::string>{"aaa", "likes 1", "views u", "views 3"}));
}

// A frame of a stream with history.
FramePtr positioned(std::uint64_t offset, std::string scope, std::string stream = "user:alice") {
  auto f = std::make_shared<Frame>("n" + std::to_string(offset), std::move(scope));
  f->stream = std::move(stream);
  f->epoch = "e";
  f->offset = offset;
  return f;
}

// With history, a replaced frame leaves a "skipped" marker for its offset,
// and markers of one stream that meet merge: the client sees every offset,
// and a flood of keyed notifications costs one marker.
TEST(SendQueue, ReplacedFramesWithOffsetsLeaveMergedMarkers) {
  QueueLimits limits{100, 10'000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push(positioned(1, "u\nviews"));
  q.push(positioned(2, "u\nlikes"));
  std::size_t marker_bytes = 0;
  std::size_t released = 0;
  for (std::uint64_t o = 3; o <= 10; ++o) {
    const auto r = q.push(positioned(o, o % 2 ? "u\nviews" : "u\nlikes"));
    EXPECT_EQ(r.collapsed, 1u);
    marker_bytes += r.marker_bytes;
    released += r.collapsed_bytes;
  }
  const std::size_t queued = q.bytes();
  const std::vector<std::string> got = waiting(q);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(boost::json::parse(got[0]),
            boost::json::parse(R"({"type":"skipped","stream":"user:alice","epoch":"e","offset":8,"from":1})"));
  EXPECT_EQ(got[1], "n9");
  EXPECT_EQ(got[2], "n10");
  // The queue's count is what is left, and what the session adds and takes
  // off its gauge (pushed + markers - released) comes to the same.
  EXPECT_EQ(queued, got[0].size() + got[1].size() + got[2].size());
  const std::size_t pushed = 9 * 2 + 3;
  EXPECT_EQ(pushed + marker_bytes - released, queued);
}

TEST(SendQueue, MarkersOfOtherStreamsOrNotAdjacentOffsetsStaySeparate) {
  QueueLimits limits{100, 10'000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push(positioned(1, "u\nviews"));
  q.push(positioned(5, "t:news\nviews", "topic:news"));
  q.push(positioned(2, "u\nviews"));                     // marker 1..1
  q.push(positioned(6, "t:news\nviews", "topic:news"));  // marker 5..5, another stream
  const std::vector<std::string> got = waiting(q);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(boost::json::parse(got[0]).at("offset"), 1);
  EXPECT_EQ(boost::json::parse(got[1]).at("stream"), "topic:news");
  EXPECT_EQ(boost::json::parse(got[1]).at("type"), "skipped");
  EXPECT_EQ(got[2], "n2");
  EXPECT_EQ(got[3], "n6");
}

TEST(SendQueue, TheFrameInFlightIsNeverCollapsed) {
  QueueLimits limits{100, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push(keyed("views 1", "*\nviews"));
  q.begin_write();  // on the socket now
  EXPECT_EQ(q.push(keyed("views 2", "*\nviews")).collapsed, 0u);
  EXPECT_EQ(q.push(keyed("views 3", "*\nviews")).collapsed, 1u);
  EXPECT_EQ(q.size(), 2u);
  q.end_write();
  EXPECT_EQ(waiting(q), std::vector<std::string>{"views 3"});
}

// Collapsing makes room before the limits are judged: a client that keeps
// falling behind on one counter never overflows its queue.
TEST(SendQueue, CollapsingKeepsAFallingBehindClientWithinItsLimits) {
  QueueLimits limits{2, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push(frame(1));
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(q.push(keyed("v" + std::to_string(i), "u\nviews")).accepted);
  EXPECT_EQ(waiting(q), (std::vector<std::string>{"x", "v49"}));
}

// A frame that could never be queued removes nothing for itself: the older
// value of its key stays (drop-oldest keeps the connection, so the client
// still gets that one).
TEST(SendQueue, ARefusedFrameDoesNotTakeTheOlderValueOfItsKeyWithIt) {
  QueueLimits limits{10, 100, OverflowPolicy::drop_oldest};
  SendQueue q(limits);
  q.push(keyed("a", "u\nviews"));
  EXPECT_EQ(q.push(keyed("b", "u\nviews")).collapsed, 1u);
  const auto too_big = q.push(keyed(std::string(200, 'c'), "u\nviews"));
  EXPECT_FALSE(too_big.accepted);
  EXPECT_EQ(too_big.collapsed, 0u);
  EXPECT_EQ(too_big.dropped, 0u);

  // Beside a frame in flight that leaves too little room: refused, nothing
  // removed either.
  q.begin_write();  // "b" on the socket
  q.push(frame(10));
  q.push(keyed("d", "u\nlikes"));
  const auto r = q.push(keyed(std::string(100, 'e'), "u\nlikes"));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.collapsed + r.dropped, 0u);
  q.end_write();
  EXPECT_EQ(waiting(q), (std::vector<std::string>{std::string(10, 'x'), "d"}));
}

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

TEST(SendQueue, ClearingWaitingMessagesKeepsProtocolFramesAndTheFrameInFlight) {
  QueueLimits limits{2, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push(frame(10, 'a'));
  q.begin_write();  // in flight
  q.push(frame(20, 'b'));
  const auto close = make_protocol_frame(opcode::close, std::string("\x03\xe8", 2));
  q.push_protocol(close);  // past the 2-message limit: a close frame is never refused
  const auto pong = make_protocol_frame(opcode::pong, "p");
  q.push_protocol(pong);
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.clear_waiting(), 20u);  // only the message
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q.bytes(), 10u + 2u + 1u);
  EXPECT_EQ(q.end_write()->payload, std::string(10, 'a'));
  EXPECT_EQ(q.begin_write().get(), close.get());  // order kept
  q.end_write();
  EXPECT_EQ(q.begin_write().get(), pong.get());
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

// The raw path (plain TCP): wire bytes gathered from the front, partial writes.

std::string gathered(const iovec* iov, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

TEST(SendQueue, GathersWireBytesFromTheFront) {
  QueueLimits limits{10, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  const auto a = frame(3, 'a');
  const auto b = frame(200, 'b');
  q.push(a);
  q.push(b);
  q.push(frame(1, 'c'));
  iovec iov[8];
  std::size_t bytes = 0;
  EXPECT_EQ(q.gather(iov, 2, bytes), 2u);  // at most `max`
  EXPECT_EQ(gathered(iov, 2), a->wire + b->wire);
  EXPECT_EQ(bytes, a->wire.size() + b->wire.size());
  EXPECT_EQ(q.gather(iov, 8, bytes), 3u);
}

TEST(SendQueue, ConsumeRemovesWrittenFramesAndKeepsTheOffset) {
  QueueLimits limits{10, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  const auto a = frame(3, 'a');  // 5 wire bytes
  const auto b = frame(4, 'b');  // 6 wire bytes
  q.push(a);
  q.push(b);
  std::vector<std::string> done;
  q.consume(7, [&](const Frame& f) { done.emplace_back(f.payload); });  // all of a, 2 bytes of b
  EXPECT_EQ(done, std::vector<std::string>{"aaa"});
  EXPECT_TRUE(q.in_flight());  // b is partly written: no policy may drop it
  EXPECT_EQ(q.front_offset(), 2u);
  EXPECT_EQ(q.bytes(), 4u);
  iovec iov[4];
  std::size_t bytes = 0;
  ASSERT_EQ(q.gather(iov, 4, bytes), 1u);
  EXPECT_EQ(gathered(iov, 1), b->wire.substr(2));
  q.consume(4, [&](const Frame& f) { done.emplace_back(f.payload); });
  EXPECT_EQ(done.back(), "bbbb");
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.in_flight());
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(SendQueue, PartialFrontSurvivesPoliciesAndClearWaiting) {
  QueueLimits limits{100, 10, OverflowPolicy::drop_oldest};
  SendQueue q(limits);
  q.push_partial(frame(4, 'a'), 3);  // 3 of its 6 wire bytes are on the socket
  EXPECT_TRUE(q.in_flight());
  EXPECT_EQ(q.bytes(), 4u);
  q.push(frame(4, 'b'));
  const auto r = q.push(frame(5, 'c'));  // 'b' goes, never 'a'
  EXPECT_TRUE(r.accepted);
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ(q.front_offset(), 3u);
  EXPECT_EQ(q.clear_waiting(), 5u);
  EXPECT_EQ(q.size(), 1u);
  std::vector<std::string> done;
  q.consume(3, [&](const Frame& f) { done.emplace_back(f.payload); });
  EXPECT_EQ(done, std::vector<std::string>{"aaaa"});
  EXPECT_TRUE(q.empty());
}

TEST(SendQueue, ClearAllDropsTheFrameInFlightToo) {
  QueueLimits limits{10, 1000, OverflowPolicy::close};
  SendQueue q(limits);
  q.push_partial(frame(4), 1);
  q.push(frame(6));
  EXPECT_EQ(q.clear_all(), 10u);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.in_flight());
  EXPECT_EQ(q.front_offset(), 0u);
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(SendQueue, OffsetIsNotLostWhenDropOldestCompacts) {
  QueueLimits limits{8, 1 << 20, OverflowPolicy::drop_oldest};
  SendQueue q(limits);
  q.push_partial(frame(100, 'p'), 50);
  for (int i = 0; i < 500; ++i) q.push(frame(1, 'x'));  // drops many behind the partial front
  EXPECT_EQ(q.front_offset(), 50u);
  iovec iov[1];
  std::size_t bytes = 0;
  q.gather(iov, 1, bytes);
  EXPECT_EQ(bytes, 102u - 50u);
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
