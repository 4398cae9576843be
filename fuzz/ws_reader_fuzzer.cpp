// libFuzzer target: the server's WebSocket frame reader (gateway/ws_reader.cpp).
//
// Byte 0 picks the message size limit and how the rest is cut into reads;
// the rest is what a client sends after the upgrade. The same bytes go
// through three readers: in one piece, in pieces of 1-16 bytes, and byte by
// byte. Besides crashes and sanitizer reports, these invariants are checked:
//   - all three see the same messages, pings and close frame, in the same
//     order, and fail (or not) with the same close code: how TCP splits the
//     stream changes nothing;
//   - a message is at most the limit, a text message valid UTF-8, a ping at
//     most 125 bytes; nothing comes after a close frame or a failure;
//   - a failure's close code is 1002, 1007 or 1009; a reported close code is
//     one a peer may send, or 1005;
//   - the reader never holds more than the limit plus a control frame, and
//     nothing once it failed or closed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/validation.hpp"
#include "fuzz_check.hpp"
#include "gateway/ws_reader.hpp"

namespace {

using notify::gateway::WsReader;

struct Recorder final : WsReader::Sink {
  explicit Recorder(std::size_t limit) : limit_(limit) {}

  void on_message(bool text, std::string_view payload) override {
    FUZZ_CHECK(!ended);
    FUZZ_CHECK(payload.size() <= limit_);
    if (text) FUZZ_CHECK(notify::rules::valid_utf8(payload));
    events.push_back((text ? "T" : "B") + std::string(payload));
  }
  void on_ping(std::string_view payload) override {
    FUZZ_CHECK(!ended);
    FUZZ_CHECK(payload.size() <= 125);
    events.push_back("P" + std::string(payload));
  }
  void on_close(std::uint16_t code, std::string_view reason) override {
    FUZZ_CHECK(!ended);
    FUZZ_CHECK(code == WsReader::kNoStatus || WsReader::valid_close_code(code));
    FUZZ_CHECK(reason.size() <= 123);
    ended = true;
    events.push_back("C" + std::to_string(code) + ":" + std::string(reason));
  }

  std::vector<std::string> events;
  bool ended = false;

 private:
  std::size_t limit_;
};

struct Outcome {
  std::vector<std::string> events;
  bool failed;
  std::uint16_t code;
};

Outcome run(std::string bytes, std::size_t limit, std::size_t chunk) {
  WsReader reader(limit);
  Recorder sink(limit);
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    const std::size_t n = std::min(chunk, bytes.size() - at);
    const bool ok = reader.feed(bytes.data() + at, n, sink);
    FUZZ_CHECK(ok == !reader.failed());
    if (reader.failed()) {
      const auto code = reader.failure().code;
      FUZZ_CHECK(code == 1002 || code == 1007 || code == 1009);
      sink.ended = true;
    }
    FUZZ_CHECK(reader.buffered() <= limit + 125);
    if (reader.failed() || reader.closed()) FUZZ_CHECK(reader.buffered() == 0);
  }
  return {sink.events, reader.failed(), reader.failed() ? reader.failure().code : std::uint16_t{0}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t limit = 16 + (data[0] & 0x0f) * 300;  // 16 .. 4,516 bytes
  const std::size_t chunk = 1 + (data[0] >> 4);           // 1 .. 16
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const Outcome whole = run(bytes, limit, bytes.empty() ? 1 : bytes.size());
  const Outcome pieces = run(bytes, limit, chunk);
  const Outcome single = run(bytes, limit, 1);
  FUZZ_CHECK(whole.events == pieces.events && whole.events == single.events);
  FUZZ_CHECK(whole.failed == pieces.failed && whole.failed == single.failed);
  FUZZ_CHECK(whole.code == pieces.code && whole.code == single.code);
  return 0;
}
