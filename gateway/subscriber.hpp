#pragma once
// What the hub delivers to: a WebSocket session in production, a recorder in
// unit tests. Called only on the event loop that owns the subscriber.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/frame.hpp"

namespace notify::gateway {

// The steady clock in milliseconds, the clock idle_check() is given.
inline std::int64_t steady_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class Subscriber {
 public:
  virtual ~Subscriber() = default;

  virtual std::string_view user_id() const = 0;

  // Queues a shared frame. Returns false if the connection no longer takes
  // frames (closing, or just closed by its overflow policy). Must not change
  // the shard's indexes synchronously: the shard may be iterating them.
  virtual bool deliver(const FramePtr& frame) = 0;

  // Starts a graceful close: frames already queued are written first, then
  // the close frame. Returns false if the connection was already closing.
  // Same rule: no synchronous index changes.
  virtual bool close(std::uint16_t code, std::string reason) = 0;

  // The deadline registered with Shard::track_expiry passed. The shard has
  // already forgotten the registration.
  virtual void expire() {}

  // The shard's idle sweep (Shard::enable_idle_sweep), with the steady
  // clock in milliseconds: a connection that keeps its own timers ignores
  // it. May leave the shard's indexes: the sweep iterates a copy.
  virtual void idle_check(std::int64_t /*now_ms*/) {}

  // Fan-out hints, non-virtual and cheap: the shard calls them a few
  // recipients ahead so that what deliver() touches (this object, and the
  // socket behind it) is in cache by then.
  void prefetch_state() const {
    const char* p = reinterpret_cast<const char*>(this);
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
    __builtin_prefetch(p + 128);
  }
  void prefetch_socket() const {
    if (prefetch_target_ != nullptr) __builtin_prefetch(prefetch_target_);
  }

 protected:
  // What deliver() reads besides this object (a socket), if anything.
  const void* prefetch_target_ = nullptr;
};

}  // namespace notify::gateway
