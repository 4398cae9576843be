#pragma once
// The write side of a plain-TCP (ws://) session: hands the frames' prebuilt
// wire bytes (Frame::wire) straight to the socket instead of one Beast
// async_write per frame.
//
// Fast path: with nothing queued and the wire free, try_send() does one
// non-blocking send() and, if the socket takes the whole frame, that is all:
// no asynchronous operation, no handler, no allocation. Otherwise the frame
// (and the offset reached, if the socket took part of it) waits in the
// session's bounded SendQueue, the writer waits for the socket to become
// writable (async_wait, no buffers held), and then writes as many queued
// frames as fit with one sendmsg() of up to kMaxIov iovecs.
//
// Beast still writes control frames on the same socket (pongs, close frames,
// idle pings). The two writers meet at frame boundaries through the
// WireGate held here and kept up to date by DrainingStream, which sees every
// byte Beast writes: the writer starts a frame only when Beast is idle and
// at a message boundary (!beast_holds), and Beast's writes wait while the
// writer has a frame partly on the wire (raw_partial). After Beast begins a
// close frame the writer starts no new frame.
//
// Not thread-safe: everything runs on the session's event loop.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/loop_metrics.hpp"
#include "gateway/draining_stream.hpp"
#include "gateway/fanout_clock.hpp"
#include "gateway/frame.hpp"
#include "gateway/send_queue.hpp"

namespace notify::gateway {

class FrameWriter final : public DrainingStream::RawWriter {
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
  FrameWriter(DrainingStream& stream, SendQueue& queue, LoopMetrics& metrics, Owner& owner,
              FanoutClock* clock = nullptr)
      : queue_(queue), metrics_(metrics), clock_(clock), stream_(stream), owner_(owner) {}
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

  // Call once the WebSocket handshake has completed.
  void start() {
    socket_ = &stream_.next_layer().socket();
    stream_.attach(gate_, *this);
    blocked_ &= ~kNotStarted;
  }

  // Sends `frame` at once if nothing is queued and the wire is free. True if
  // the socket took all of it, or part of it and the rest is now queued (at
  // the front, in flight). False if the caller must queue it: the socket is
  // full, frames are waiting, Beast holds the wire, or !accepting().
  bool try_send(const FramePtr& frame) {
    if (blocked_ != 0 || gate_.beast_holds || !queue_.empty()) return false;
    return send_now(frame);
  }

  // A frame was pushed onto the queue: make sure it will be written.
  void schedule() {
    if (blocked_ == 0 && !gate_.beast_holds) flush();
  }

  // False once the socket failed or Beast began the close frame: frames
  // queued now would never be written.
  bool accepting() const { return (blocked_ & kFailed) == 0 && !gate_.beast.close_started(); }
  // The socket object, read by every write (for the fan-out's prefetch).
  const void* socket_object() const { return socket_; }
  // Whether Beast waits for the partly written frame to end.
  bool beast_waiting() const { return gate_.beast_waiting > 0; }

  void on_wire_free() override { flush(); }

 private:
  // Reasons the fast path is closed (bits of blocked_).
  static constexpr std::uint8_t kNotStarted = 1;
  static constexpr std::uint8_t kWaiting = 2;  // a writability wait is pending
  static constexpr std::uint8_t kFailed = 4;   // the socket failed; nothing more is written

  bool send_now(const FramePtr& frame);
  void flush();
  void wait_writable();
  void fail();
  void count_written(const Frame& frame, std::chrono::steady_clock::time_point& now);

  // What a delivery touches comes first.
  boost::asio::ip::tcp::socket* socket_ = nullptr;  // its descriptor is read at each write, never cached
  SendQueue& queue_;
  LoopMetrics& metrics_;
  FanoutClock* clock_;
  std::uint8_t blocked_ = kNotStarted;
  WireGate gate_;  // gate_.beast_holds first
  DrainingStream& stream_;
  Owner& owner_;
};

}  // namespace notify::gateway
