#pragma once
// A session's bounded queue of frames waiting for its socket; see docs/architecture.md.
// The front frame may be "in flight" (handed to the socket, not yet written,
// or, on the raw path, partly written); it stays counted until the write
// completes, and neither policy ever discards it. Not thread-safe: owned by
// one session on one event loop.
#include <sys/uio.h>

#include <cassert>
#include <cstddef>
#include <string_view>
#include <vector>

#include "gateway/frame.hpp"

namespace notify::gateway {

enum class OverflowPolicy {
  close,        // close the connection with 4008 and discard its queue (default)
  drop_oldest,  // discard the oldest waiting frames until the new one fits
};

bool parse_overflow_policy(std::string_view text, OverflowPolicy& out);
std::string_view to_string(OverflowPolicy policy);

struct QueueLimits {
  std::size_t max_messages = 1024;
  std::size_t max_bytes = 1 << 20;
  OverflowPolicy policy = OverflowPolicy::close;
};

class SendQueue {
 public:
  struct PushResult {
    bool accepted;        // false: over the limit under the close policy, frame not queued
    std::size_t dropped;  // frames discarded to make room (drop_oldest)
    std::size_t dropped_bytes;
    std::size_t collapsed = 0;  // waiting frames replaced by this one (same collapse scope)
    std::size_t collapsed_bytes = 0;
    std::size_t marker_bytes = 0;  // a "skipped" marker took the place of the replaced frame (it had an offset)
    FramePtr replaced;             // the frame replaced, if any
  };

  explicit SendQueue(const QueueLimits& limits) : limits_(&limits) {}

  // A frame with a collapse scope first removes the waiting frame of the same
  // scope (at most one waits: each push removes the previous), never the one
  // in flight, then queues like any other at the back. A replaced frame with
  // an offset (history) leaves a small "skipped" marker in its place.
  PushResult push(FramePtr frame);

  bool empty() const { return head_ == frames_.size(); }
  std::size_t size() const { return frames_.size() - head_; }
  std::size_t bytes() const { return bytes_; }
  bool in_flight() const { return in_flight_; }

  // Marks the front frame as handed to the socket and returns it.
  const FramePtr& begin_write();
  // The in-flight frame was written (or failed): removes it.
  FramePtr end_write();
  // Discards every message not in flight (protocol frames stay: a close
  // frame already queued must still go out); returns the bytes released.
  std::size_t clear_waiting();
  // Appends a protocol frame (Frame::Kind::wire: a close frame) whatever the
  // limits: it is a few bytes, and the peer must get it.
  void push_protocol(FramePtr frame);

  // The raw path (plain TCP) writes the frames' wire bytes itself, several
  // frames per system call; the front frame may be partly written.
  //
  // Queues a frame of which `written` wire bytes (0 < written < size) are
  // already on the socket, on an empty queue, whatever the limits: those
  // bytes commit the connection to the rest of the frame.
  void push_partial(FramePtr frame, std::size_t written);
  // Points up to `max` iovecs at the unwritten wire bytes of the front
  // frames; returns how many it filled and their total size in `bytes`.
  std::size_t gather(iovec* out, std::size_t max, std::size_t& bytes) const;
  // `written` wire bytes of the gathered frames reached the socket: removes
  // the frames written completely, calling done(const Frame&) for each, and
  // marks a partly written front frame in flight.
  template <class Done>
  void consume(std::size_t written, Done&& done);
  // Wire bytes of the front frame already written (raw path).
  std::size_t front_offset() const { return offset_; }
  // Discards every frame, the one in flight included (the socket is gone);
  // returns the bytes released.
  std::size_t clear_all();

 private:
  void pop_front();
  // Puts a "skipped" marker in place of frames_[i] (whose bytes are already
  // off the count), merged with adjacent markers of its stream (their bytes
  // are added to `released`); returns the marker's bytes.
  std::size_t leave_marker(std::size_t i, std::size_t first_waiting, std::size_t& released);
  // Releases storage when empty, drops the consumed prefix when it dominates.
  void compact();

  const QueueLimits* limits_;
  std::vector<FramePtr> frames_;  // [head_, end) are queued; storage is released when empty
  std::size_t head_ = 0;
  std::size_t bytes_ = 0;
  std::size_t offset_ = 0;  // raw path: wire bytes of the front frame already written
  bool in_flight_ = false;
};

template <class Done>
void SendQueue::consume(std::size_t written, Done&& done) {
  while (written > 0) {
    assert(!empty());
    const Frame& front = *frames_[head_];
    const std::size_t left = front.wire.size() - offset_;
    if (written < left) {
      offset_ += written;
      in_flight_ = true;
      return;
    }
    written -= left;
    offset_ = 0;
    in_flight_ = false;
    bytes_ -= front.payload.size();
    done(front);
    frames_[head_].reset();
    pop_front();
  }
}

}  // namespace notify::gateway
