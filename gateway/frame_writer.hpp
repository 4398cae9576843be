#pragma once
// The write side of a plain-TCP (ws://) session: hands the frames' prebuilt
// wire bytes (Frame::wire) straight to the socket.
//
// Fast path: with nothing queued, try_send() does one non-blocking send()
// and, if the socket takes the whole frame, that is all: no asynchronous
// operation, no handler, no allocation. Otherwise the frame (and the offset
// reached, if the socket took part of it) waits in the session's bounded
// SendQueue, the writer waits for the socket to become writable (async_wait,
// no buffers held), and then writes as many queued frames as fit with one
// sendmsg() of up to kMaxIov iovecs.
//
// Everything the session sends goes through here (its replies, pongs,
// pings and the close frame too), so frames never interleave.
//
// Not thread-safe: everything runs on the session's event loop.
#include <cstddef>
#include <cstdint>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include "common/loop_metrics.hpp"
#include "gateway/fanout_clock.hpp"
#include "gateway/frame.hpp"
#include "gateway/send_queue.hpp"

namespace notify::gateway {

class FrameWriter final {
 public:
  class Owner {
   public:
    // Held by a pending writability wait, so the socket outlives it.
    virtual std::shared_ptr<void> writer_keep_alive() = 0;
    // The queue is empty after a write (a graceful close may go on).
    virtual void on_writer_idle() = 0;

   protected:
    ~Owner() = default;
  };

  static constexpr std::size_t kMaxIov = 64;

  // `clock` (optional) dates the writes for the latency histogram.
  FrameWriter(boost::asio::ip::tcp::socket& socket, SendQueue& queue, LoopMetrics& metrics, Owner& owner,
              FanoutClock* clock = nullptr)
      : socket_(socket), queue_(queue), metrics_(metrics), clock_(clock), owner_(owner) {}
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

  // Sends `frame` at once if nothing is queued. True if the socket took all
  // of it, or part of it and the rest is now queued (at the front, in
  // flight). False if the caller must queue it: the socket is full, frames
  // are waiting, or !accepting().
  bool try_send(const FramePtr& frame) {
    if (blocked_ != 0 || !queue_.empty()) return false;
    return send_now(frame);
  }

  // A frame was pushed onto the queue: make sure it will be written.
  void schedule() {
    if (blocked_ == 0) flush();
  }

  // False once the socket failed: frames queued now would never be written.
  bool accepting() const { return (blocked_ & kFailed) == 0; }
  // The socket object, read by every write (for the fan-out's prefetch).
  const void* socket_object() const { return &socket_; }

 private:
  // Reasons the fast path is closed (bits of blocked_).
  static constexpr std::uint8_t kWaiting = 2;  // a writability wait is pending
  static constexpr std::uint8_t kFailed = 4;   // the socket failed; nothing more is written

  bool send_now(const FramePtr& frame);
  void flush();
  void wait_writable();
  void fail();
  void count_written(const Frame& frame, std::chrono::steady_clock::time_point& now);

  // What a delivery touches comes first.
  boost::asio::ip::tcp::socket& socket_;  // its descriptor is read at each write, never cached
  SendQueue& queue_;
  LoopMetrics& metrics_;
  FanoutClock* clock_;
  std::uint8_t blocked_ = 0;
  Owner& owner_;
};

}  // namespace notify::gateway
