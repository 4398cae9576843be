#include "gateway/ws_reader.hpp"

#include <algorithm>
#include <cstring>

#include "common/validation.hpp"

namespace notify::gateway {

namespace {

constexpr std::uint8_t kContinuation = 0x0;
constexpr std::uint8_t kText = 0x1;
constexpr std::uint8_t kBinary = 0x2;
constexpr std::uint8_t kClose = 0x8;
constexpr std::uint8_t kPing = 0x9;
constexpr std::uint8_t kPong = 0xa;

constexpr std::uint16_t kProtocolError = 1002;
constexpr std::uint16_t kInvalidPayload = 1007;
constexpr std::uint16_t kTooBig = 1009;

bool is_control(std::uint8_t opcode) { return (opcode & 0x8) != 0; }

// Unmasks `size` bytes in place; `offset` is the mask position of the first.
void unmask(char* data, std::size_t size, const unsigned char (&mask)[4], std::uint8_t offset) {
  std::size_t i = 0;
  // Byte by byte up to a mask boundary, then eight bytes at a time.
  for (; i < size && ((offset + i) & 3) != 0; ++i) data[i] = static_cast<char>(data[i] ^ mask[(offset + i) & 3]);
  std::uint64_t wide;
  unsigned char pattern[8];
  for (int k = 0; k < 8; ++k) pattern[k] = mask[k & 3];
  std::memcpy(&wide, pattern, 8);
  for (; i + 8 <= size; i += 8) {
    std::uint64_t chunk;
    std::memcpy(&chunk, data + i, 8);
    chunk ^= wide;
    std::memcpy(data + i, &chunk, 8);
  }
  for (; i < size; ++i) data[i] = static_cast<char>(data[i] ^ mask[(offset + i) & 3]);
}

}  // namespace

bool WsReader::valid_close_code(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014:
      return true;
    default:
      return false;
  }
}

bool WsReader::fail(std::uint16_t code, const char* reason) {
  state_ = State::failed;
  failure_ = {code, reason};
  std::string().swap(message_);
  std::string().swap(control_);
  return false;
}

bool WsReader::feed(char* data, std::size_t size, Sink& sink) {
  while (size > 0) {
    if (state_ == State::failed) return false;
    if (state_ == State::closed) return true;
    if (state_ == State::header) {
      // Two bytes say how long the header is; then the rest of it.
      std::size_t need = 2;
      if (header_size_ >= 2) {
        const unsigned char length = header_[1] & 0x7f;
        need = 2 + (length == 126 ? 2 : length == 127 ? 8 : 0) + ((header_[1] & 0x80) != 0 ? 4 : 0);
      }
      const std::size_t take = std::min(need - header_size_, size);
      std::memcpy(header_ + header_size_, data, take);
      header_size_ = static_cast<std::uint8_t>(header_size_ + take);
      data += take;
      size -= take;
      if (header_size_ < need) continue;
      if (need == 2 && header_size_ == 2) {
        // Now the length form and the mask bit are known: maybe more to come.
        const unsigned char length = header_[1] & 0x7f;
        if ((header_[1] & 0x80) != 0 || length >= 126) continue;
      }
      if (!parse_header()) return false;
      // An empty frame ends here; an empty last fragment ends the gathered message.
      if (remaining_ == 0 && !finish_frame(is_control(opcode_) ? std::string_view() : message_, sink)) return false;
      continue;
    }
    // Payload bytes of the current frame.
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, size));
    unmask(data, take, mask_, mask_offset_);
    mask_offset_ = static_cast<std::uint8_t>((mask_offset_ + take) & 3);
    const bool whole_here = take == frame_size_;  // the frame's payload arrived in one piece
    remaining_ -= take;
    std::string_view piece(data, take);
    data += take;
    size -= take;
    if (is_control(opcode_)) {
      if (whole_here) {
        if (!finish_frame(piece, sink)) return false;
        continue;
      }
      control_.append(piece);
      if (remaining_ == 0 && !finish_frame(control_, sink)) return false;
      continue;
    }
    if (whole_here && fin_ && message_opcode_ == 0) {
      if (!finish_frame(piece, sink)) return false;  // the common case: no copy
      continue;
    }
    message_.append(piece);
    if (remaining_ == 0 && !finish_frame(message_, sink)) return false;
  }
  return state_ != State::failed;
}

bool WsReader::parse_header() {
  header_size_ = 0;
  const unsigned char b0 = header_[0];
  const unsigned char b1 = header_[1];
  if ((b0 & 0x70) != 0) return fail(kProtocolError, "reserved bits set");
  if ((b1 & 0x80) == 0) return fail(kProtocolError, "client frames must be masked");
  fin_ = (b0 & 0x80) != 0;
  opcode_ = b0 & 0x0f;
  std::uint64_t length = b1 & 0x7f;
  std::size_t at = 2;
  if (length == 126) {
    length = (std::uint64_t{header_[2]} << 8) | header_[3];
    at = 4;
  } else if (length == 127) {
    length = 0;
    for (int i = 0; i < 8; ++i) length = (length << 8) | header_[2 + i];
    at = 10;
    if ((length >> 63) != 0) return fail(kProtocolError, "frame length out of range");
  }
  std::memcpy(mask_, header_ + at, 4);
  mask_offset_ = 0;
  switch (opcode_) {
    case kClose:
    case kPing:
    case kPong:
      if (!fin_) return fail(kProtocolError, "fragmented control frame");
      if (length > 125) return fail(kProtocolError, "control frame longer than 125 bytes");
      break;
    case kContinuation:
      if (message_opcode_ == 0) return fail(kProtocolError, "continuation frame outside a fragmented message");
      break;
    case kText:
    case kBinary:
      if (message_opcode_ != 0) return fail(kProtocolError, "new message inside a fragmented message");
      break;
    default:
      return fail(kProtocolError, "unknown opcode");
  }
  if (!is_control(opcode_)) {
    const std::uint64_t so_far = message_opcode_ != 0 ? message_.size() : 0;
    if (length > max_message_ || so_far + length > max_message_) return fail(kTooBig, "message too big");
    // The first fragment of a message opens it.
    if (opcode_ != kContinuation && !fin_) message_opcode_ = opcode_;
  }
  frame_size_ = length;
  remaining_ = length;
  state_ = State::payload;
  return true;
}

bool WsReader::finish_frame(std::string_view payload, Sink& sink) {
  state_ = State::header;
  switch (opcode_) {
    case kPing:
      sink.on_ping(payload);
      control_.clear();
      return true;
    case kPong:
      control_.clear();
      return true;
    case kClose: {
      std::uint16_t code = kNoStatus;
      std::string_view reason;
      if (payload.size() == 1) return fail(kProtocolError, "close frame with a one-byte payload");
      if (payload.size() >= 2) {
        code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                          static_cast<unsigned char>(payload[1]));
        if (!valid_close_code(code)) return fail(kProtocolError, "invalid close code");
        reason = payload.substr(2);
        if (!rules::valid_utf8(reason)) return fail(kInvalidPayload, "close reason is not valid UTF-8");
      }
      state_ = State::closed;
      sink.on_close(code, reason);
      std::string().swap(control_);
      std::string().swap(message_);
      return true;
    }
    default:
      break;
  }
  if (!fin_) return true;  // more fragments to come
  const bool text = (message_opcode_ != 0 ? message_opcode_ : opcode_) == kText;
  message_opcode_ = 0;
  if (text && !rules::valid_utf8(payload)) return fail(kInvalidPayload, "text message is not valid UTF-8");
  sink.on_message(text, payload);
  // Nothing stays allocated between messages.
  std::string().swap(message_);
  return true;
}

}  // namespace notify::gateway
