#pragma once
// The server side of RFC 6455 reading: turns the bytes a client sends into
// messages and control frames, whatever way TCP splits them.
//
// Built for connections that are idle nearly all the time: the reader holds
// no buffer between messages. The caller reads into a buffer it shares with
// every connection of its loop and feeds it here; a frame that arrives whole
// in one read is handed on in place (unmasked where it lies), and only a
// message split across reads or fragments is gathered in memory owned by the
// connection, released once the message is complete.
//
// Enforced: client frames are masked; no reserved bits (no extension is ever
// negotiated); known opcodes only; control frames final and at most 125
// bytes; continuation frames only inside a fragmented message and no new
// message inside one; messages at most `max_message_bytes` (1009); text
// messages and close reasons valid UTF-8 (1007); close codes a peer may send.
// The first violation stops the reader; failure() says which close code and
// reason to answer with.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace notify::gateway {

class WsReader {
 public:
  class Sink {
   public:
    // A complete data message, unmasked (text: valid UTF-8). The bytes are
    // valid only during the call.
    virtual void on_message(bool text, std::string_view payload) = 0;
    virtual void on_ping(std::string_view payload) = 0;
    // The peer's close frame; `code` is 1005 when the frame carried none.
    // The reader takes nothing after it.
    virtual void on_close(std::uint16_t code, std::string_view reason) = 0;

   protected:
    ~Sink() = default;
  };

  struct Failure {
    std::uint16_t code = 0;  // the close code to answer with: 1002, 1007 or 1009
    const char* reason = "";
  };

  static constexpr std::uint16_t kNoStatus = 1005;

  explicit WsReader(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

  // Consumes `size` bytes at `data`, unmasking them in place, and calls
  // `sink` for each complete message and control frame. Returns false once
  // the stream is invalid (see failure()); bytes after a close frame or a
  // failure are ignored.
  bool feed(char* data, std::size_t size, Sink& sink);

  bool failed() const { return state_ == State::failed; }
  bool closed() const { return state_ == State::closed; }
  const Failure& failure() const { return failure_; }
  // Bytes held for a message or frame not yet complete.
  std::size_t buffered() const { return message_.size() + control_.size(); }

  // Whether a peer may send this close code (RFC 6455 7.4, and the IANA
  // registry's 1012-1014; 3000-4999 are for applications).
  static bool valid_close_code(std::uint16_t code);

 private:
  enum class State : std::uint8_t { header, payload, failed, closed };

  bool fail(std::uint16_t code, const char* reason);
  bool parse_header();
  bool finish_frame(std::string_view payload, Sink& sink);

  std::size_t max_message_;
  std::uint64_t remaining_ = 0;   // payload bytes of the current frame still to come
  std::uint64_t frame_size_ = 0;  // payload bytes of the current frame
  std::string message_;           // a message split across reads or fragments
  std::string control_;           // a control frame split across reads
  Failure failure_;
  unsigned char header_[14] = {};
  unsigned char mask_[4] = {};
  std::uint8_t header_size_ = 0;     // bytes of header_ filled
  std::uint8_t mask_offset_ = 0;     // position in the mask of the next payload byte
  std::uint8_t opcode_ = 0;          // of the current frame
  std::uint8_t message_opcode_ = 0;  // text/binary while a fragmented message is open, else 0
  bool fin_ = false;
  State state_ = State::header;
};

}  // namespace notify::gateway
