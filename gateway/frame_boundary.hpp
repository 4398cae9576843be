#pragma once
// Follows a stream of outgoing WebSocket frames byte by byte and tells where
// it stands: inside a frame header, inside a payload, inside a fragmented
// message (a data frame without FIN was sent, continuations must follow), or
// at a message boundary, where another writer may insert a complete frame.
//
// DrainingStream feeds it the bytes Beast writes (pongs, close frames, idle
// pings): Beast writes a frame through a composed async_write that may take
// several async_write_some calls, and only the headers say where it ends.
#include <array>
#include <cstddef>
#include <cstdint>

namespace notify::gateway {

class FrameBoundary {
 public:
  // `data` went out on the wire, right after the bytes fed before.
  void advance(const unsigned char* data, std::size_t size) {
    while (size > 0) {
      if (payload_left_ > 0) {
        const std::size_t skip = payload_left_ < size ? static_cast<std::size_t>(payload_left_) : size;
        payload_left_ -= skip;
        data += skip;
        size -= skip;
        continue;
      }
      header_[header_have_++] = *data++;
      --size;
      if (header_have_ == 1 && (header_[0] & 0x0f) == kClose) close_started_ = true;
      if (header_have_ < 2 || header_have_ < header_size()) continue;
      finish_header();
    }
  }

  // The next byte starts a frame and no fragmented message is open.
  bool at_message_boundary() const { return header_have_ == 0 && payload_left_ == 0 && !in_message_; }
  // The next byte starts a frame.
  bool at_frame_boundary() const { return header_have_ == 0 && payload_left_ == 0; }
  // A close frame has begun: no data frame may follow it (RFC 6455 5.5.1).
  bool close_started() const { return close_started_; }

 private:
  static constexpr unsigned char kClose = 0x8;

  std::size_t header_size() const {
    const unsigned length7 = header_[1] & 0x7f;
    const std::size_t extended = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
    const std::size_t mask = (header_[1] & 0x80) != 0 ? 4 : 0;  // never set by a server; tolerated
    return 2 + extended + mask;
  }

  void finish_header() {
    const unsigned length7 = header_[1] & 0x7f;
    std::uint64_t length = length7;
    if (length7 == 126) {
      length = (std::uint64_t{header_[2]} << 8) | header_[3];
    } else if (length7 == 127) {
      length = 0;
      for (std::size_t i = 2; i < 10; ++i) length = (length << 8) | header_[i];
    }
    const unsigned opcode = header_[0] & 0x0f;
    const bool fin = (header_[0] & 0x80) != 0;
    if (opcode < kClose) in_message_ = !fin;  // data or continuation frame; control frames don't end messages
    payload_left_ = length;
    header_have_ = 0;
  }

  std::array<unsigned char, 14> header_{};
  std::size_t header_have_ = 0;
  std::uint64_t payload_left_ = 0;
  bool in_message_ = false;
  bool close_started_ = false;
};

}  // namespace notify::gateway
