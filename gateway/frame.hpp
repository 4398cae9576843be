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

// RFC 6455 opcodes the server sends.
namespace opcode {
inline constexpr unsigned char text = 0x1;
inline constexpr unsigned char close = 0x8;
inline constexpr unsigned char ping = 0x9;
inline constexpr unsigned char pong = 0xa;
}  // namespace opcode

// Writes the header of a final, unmasked frame (`op`, text by default)
// carrying `payload_bytes` (7-, 16- or 64-bit length form) to `out` and
// returns its size (2, 4 or 10).
inline std::size_t encode_frame_header(std::uint64_t payload_bytes, unsigned char* out,
                                       unsigned char op = opcode::text) {
  out[0] = static_cast<unsigned char>(0x80 | op);  // FIN + opcode
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
  // notification: a published message; control: the gateway's reply to a
  // client (welcome, pong, error...); wire: protocol bytes that are not a
  // message (the upgrade response, ping/pong/close frames), not counted as
  // delivered frames.
  enum class Kind { notification, control, wire };

  Frame(Kind k, std::string_view p, unsigned char op = opcode::text)
      : kind(k),
        wire(encode(p, op)),
        payload(std::string_view(wire).substr(wire.size() - p.size())),
        created(std::chrono::steady_clock::now()) {}
  // A notification with a collapse scope (see `collapse`).
  Frame(std::string_view p, std::string collapse_scope) : Frame(Kind::notification, p) {
    collapse = std::move(collapse_scope);
  }
  // `payload` points into `wire`: a Frame stays where it was built.
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

  Kind kind;
  std::string wire;                               // the whole frame as it goes on the wire
  std::string_view payload;                       // the message, inside `wire`
  std::chrono::steady_clock::time_point created;  // for the delivery latency histogram
  // Empty, or the notification's collapse key with its stream (topic, or the
  // user's own when none): a frame with the same scope pushed later replaces
  // this one while it waits in a send queue.
  std::string collapse;
  // A notification kept in history (gateway/history.hpp) carries its place
  // there: the stream ("user:<id>", "topic:<name>" or "all"), the epoch and
  // the offset (from 1; 0 for a frame outside history).
  std::string stream;
  std::string epoch;
  std::uint64_t offset = 0;
  // A "skipped" marker (SendQueue) stands for offsets skipped_from..offset
  // of `stream`, replaced by newer notifications with their collapse keys.
  std::uint64_t skipped_from = 0;
  // A notification sent with require_ack: its id, when it was published and
  // by when (unix ms) each connection it reaches must acknowledge it; 0: no
  // ack asked.
  std::string ack_id;
  std::int64_t published_ms = 0;
  std::int64_t ack_deadline_ms = 0;
  // A notification sent with `persist` (it is in the user's inbox): its id,
  // so a connection doesn't get it twice (live and from the inbox).
  std::string inbox_id;
  // Not for this connection (the one whose request caused the frame).
  std::string except_connection;
  // An inbox count ({"type":"unread"}) pushed to the user's connections.
  bool unread_count = false;

  // Whether a session must look at the frame before sending it (floors, an
  // ack owed, the inbox's ids, an excluded connection); if not, the
  // fan-out's fast path may write it straight away.
  bool needs_session() const {
    return offset != 0 || ack_deadline_ms != 0 || !inbox_id.empty() || !except_connection.empty() || unread_count;
  }

  // Raw bytes sent as they are (the HTTP upgrade response). With `k` other
  // than wire, the last `message_bytes` of them are a frame's payload,
  // counted as a delivered message when written (the welcome behind the 101).
  struct Verbatim {};
  Frame(Verbatim, std::string bytes, Kind k = Kind::wire, std::size_t message_bytes = 0)
      : kind(k),
        wire(std::move(bytes)),
        payload(k == Kind::wire ? std::string_view(wire) : std::string_view(wire).substr(wire.size() - message_bytes)),
        created(std::chrono::steady_clock::now()) {}

 private:
  static std::string encode(std::string_view p, unsigned char op) {
    unsigned char header[kMaxFrameHeaderBytes];
    const std::size_t header_bytes = encode_frame_header(p.size(), header, op);
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

// A WebSocket ping, pong or close frame (`op`), payload at most 125 bytes.
inline FramePtr make_protocol_frame(unsigned char op, std::string_view payload) {
  return std::make_shared<const Frame>(Frame::Kind::wire, payload, op);
}

}  // namespace notify::gateway
