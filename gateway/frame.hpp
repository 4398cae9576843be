#pragma once
// A server->client text frame, encoded once and shared read-only by every
// session it is queued on: fan-out never copies a payload per recipient.
#include <chrono>
#include <memory>
#include <string>

namespace notify::gateway {

struct Frame {
  enum class Kind { notification, control };

  Frame(Kind k, std::string p) : kind(k), payload(std::move(p)), created(std::chrono::steady_clock::now()) {}

  Kind kind;
  std::string payload;
  std::chrono::steady_clock::time_point created;  // for the delivery latency histogram
};

using FramePtr = std::shared_ptr<const Frame>;

inline FramePtr make_control_frame(std::string payload) {
  return std::make_shared<const Frame>(Frame::Kind::control, std::move(payload));
}

}  // namespace notify::gateway
