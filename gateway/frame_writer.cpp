#include "gateway/frame_writer.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace notify::gateway {

namespace {

constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;

bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

}  // namespace

bool FrameWriter::send_now(const FramePtr& frame) {
  const Frame& f = *frame;
  const ssize_t n = ::send(socket_.native_handle(), f.wire.data(), f.wire.size(), kSendFlags);
  if (n == static_cast<ssize_t>(f.wire.size())) {
    std::chrono::steady_clock::time_point now{};
    count_written(f, now);
    return true;
  }
  if (n > 0) {
    // The socket is full: the rest waits, and it must be the next bytes out.
    queue_.push_partial(frame, static_cast<std::size_t>(n));
    metrics_.queued_bytes.add(static_cast<std::int64_t>(f.payload.size()));
    wait_writable();
    return true;
  }
  if (n == 0 || would_block(errno)) {
    wait_writable();  // the caller queues the frame; the wait writes it
  } else if (errno != EINTR) {
    fail();
  }
  return false;
}

void FrameWriter::flush() {
  if (blocked_ != 0) return;
  std::chrono::steady_clock::time_point now{};
  iovec iov[kMaxIov];
  while (!queue_.empty()) {
    std::size_t bytes = 0;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = queue_.gather(iov, kMaxIov, bytes);
    const ssize_t n = ::sendmsg(socket_.native_handle(), &msg, kSendFlags);
    if (n <= 0) {
      if (n == 0 || would_block(errno)) {
        wait_writable();
      } else if (errno == EINTR) {
        continue;
      } else {
        fail();
      }
      return;
    }
    queue_.consume(static_cast<std::size_t>(n), [&](const Frame& f) {
      metrics_.queued_bytes.add(-static_cast<std::int64_t>(f.payload.size()));
      count_written(f, now);
    });
    if (static_cast<std::size_t>(n) < bytes) {
      wait_writable();
      return;
    }
  }
  owner_.on_writer_idle();
}

void FrameWriter::wait_writable() {
  if ((blocked_ & kWaiting) != 0) return;
  blocked_ |= kWaiting;
  socket_.async_wait(boost::asio::socket_base::wait_write,
                     [this, keep = owner_.writer_keep_alive()](boost::system::error_code ec) {
                       blocked_ &= ~kWaiting;
                       if (ec) {
                         fail();  // the socket was closed (teardown, timeout, force close)
                         return;
                       }
                       flush();
                     });
}

void FrameWriter::fail() {
  blocked_ |= kFailed;
  metrics_.queued_bytes.add(-static_cast<std::int64_t>(queue_.clear_all()));
}

void FrameWriter::count_written(const Frame& frame, std::chrono::steady_clock::time_point& now) {
  if (frame.kind == Frame::Kind::wire) return;  // protocol bytes, not a message
  metrics_.frames_delivered.add();
  metrics_.bytes_sent.add(frame.payload.size());
  if (frame.kind == Frame::Kind::notification) {
    if (now == std::chrono::steady_clock::time_point{}) {
      now = clock_ != nullptr ? clock_->now() : std::chrono::steady_clock::now();
    }
    metrics_.delivery_latency.observe(now - frame.created);
  }
}

}  // namespace notify::gateway
