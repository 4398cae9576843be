#pragma once
// A server->client text frame, encoded once and shared read-only by every
// session it is queued on: fan-out never copies a payload per recipient.
//
// The frame also carries its RFC 6455 wire form (header + payload, built once
// here), so plain-TCP sessions hand the same bytes to every socket without
// framing them per session. Server frames are never masked and the gateway
// never negotiates permessage-deflate, so these bytes are exactly what Beast
// would have written for the payload.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace notify::gateway {

inline constexpr std::size_t kMaxFrameHeaderBytes = 10;

// Writes the header of a final, unmasked text frame carrying `payload_bytes`
// (7-, 16- or 64-bit length form) to `out` and returns its size (2, 4 or 10).
inline std::size_t encode_text_frame_header(std::uint64_t payload_bytes, unsigned char* out) {
  out[0] = 0x81;  // FIN + text
  if (payload_bytes < 126) {
    out[1] = static_cast<unsigned char>(payload_bytes);
    return 2;
  }
  if (payload_bytes <= 0xffff) {
    out[1] = 126;
    out[2] = static_cast<unsigned char>(payload_bytes >> 8);
    out[3] = static_cast<unsigned char>(payload_bytes);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<unsigned char>(payload_bytes >> (8 * (7 - i)));
  return 10;
}

struct Frame {
  enum class Kind { notification, control };

  Frame(Kind k, std::string_view p)
      : kind(k),
        wire(encode(p)),
        payload(std::string_view(wire).substr(wire.size() - p.size())),
        created(std::chrono::steady_clock::now()) {}
  // `payload` points into `wire`: a Frame stays where it was built.
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

  Kind kind;
  std::string wire;                               // the whole frame as it goes on the wire
  std::string_view payload;                       // the message, inside `wire`
  std::chrono::steady_clock::time_point created;  // for the delivery latency histogram

 private:
  static std::string encode(std::string_view p) {
    unsigned char header[kMaxFrameHeaderBytes];
    const std::size_t header_bytes = encode_text_frame_header(p.size(), header);
    std::string out;
    out.reserve(header_bytes + p.size());
    out.append(reinterpret_cast<const char*>(header), header_bytes);
    out.append(p);
    return out;
  }
};

using FramePtr = std::shared_ptr<const Frame>;

inline FramePtr make_control_frame(std::string_view payload) {
  return std::make_shared<const Frame>(Frame::Kind::control, payload);
}

}  // namespace notify::gateway
