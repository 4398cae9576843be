// The server's WebSocket frame reader: messages and control frames however
// TCP splits them, fragmentation, and each protocol violation with the close
// code RFC 6455 calls for. Also the opening handshake helpers.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/ws_handshake.hpp"
#include "gateway/ws_reader.hpp"
#include "tests/support/ws_client.hpp"

namespace notify::gateway {
namespace {

// Client frames as a browser sends them: masked (tests/support/ws_client).
using notify::testing::client_frame;

std::string text(const std::string& p) { return client_frame(0x81, p); }

struct Recorder final : WsReader::Sink {
  struct Message {
    bool text;
    std::string payload;
    bool operator==(const Message&) const = default;
  };
  void on_message(bool is_text, std::string_view payload) override {
    messages.push_back({is_text, std::string(payload)});
  }
  void on_ping(std::string_view payload) override { pings.emplace_back(payload); }
  void on_close(std::uint16_t c, std::string_view r) override {
    ++closes;
    code = c;
    reason = r;
  }
  std::vector<Message> messages;
  std::vector<std::string> pings;
  int closes = 0;
  std::uint16_t code = 0;
  std::string reason;
};

// Feeds `bytes` in pieces of `chunk` bytes (0: all at once).
bool feed(WsReader& reader, Recorder& sink, std::string bytes, std::size_t chunk = 0) {
  if (chunk == 0) chunk = bytes.size();
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    const std::size_t n = std::min(chunk, bytes.size() - at);
    if (!reader.feed(bytes.data() + at, n, sink)) return false;
  }
  return true;
}

TEST(WsReader, MessagesOfEveryLengthFormWhateverTheSplit) {
  const std::vector<std::string> payloads = {"",
                                             "{\"type\":\"ping\"}",
                                             std::string(125, 'a'),
                                             std::string(126, 'b'),
                                             std::string(65535, 'c'),
                                             std::string(70000, 'd')};
  std::string stream;
  for (const auto& p : payloads) stream += text(p);
  for (std::size_t chunk : {0u, 1u, 2u, 3u, 7u, 1000u}) {
    WsReader reader(1 << 20);
    Recorder sink;
    ASSERT_TRUE(feed(reader, sink, stream, chunk)) << "chunk " << chunk;
    ASSERT_EQ(sink.messages.size(), payloads.size()) << "chunk " << chunk;
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      EXPECT_EQ(sink.messages[i], (Recorder::Message{true, payloads[i]})) << "chunk " << chunk << " message " << i;
    }
    EXPECT_EQ(reader.buffered(), 0u) << "nothing is held between messages";
  }
}

TEST(WsReader, FragmentedMessageWithControlFramesInBetween) {
  std::string stream = client_frame(0x01, "Hel") + client_frame(0x89, "are you there") + client_frame(0x00, "lo, ") +
                       client_frame(0x8a, "unsolicited pong") + client_frame(0x00, "") + client_frame(0x80, "world");
  for (std::size_t chunk : {0u, 1u, 5u}) {
    WsReader reader(1 << 20);
    Recorder sink;
    ASSERT_TRUE(feed(reader, sink, stream, chunk));
    ASSERT_EQ(sink.messages.size(), 1u);
    EXPECT_EQ(sink.messages[0], (Recorder::Message{true, "Hello, world"}));
    EXPECT_EQ(sink.pings, std::vector<std::string>{"are you there"});
  }
}

TEST(WsReader, EmptyLastFragmentEndsTheMessage) {
  WsReader reader(1 << 20);
  Recorder sink;
  ASSERT_TRUE(feed(reader, sink, client_frame(0x02, "\x01\x02") + client_frame(0x80, "")));
  ASSERT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(sink.messages[0], (Recorder::Message{false, "\x01\x02"}));
}

TEST(WsReader, UnicodeSplitAcrossFragmentsIsValid) {
  const std::string euro = "\xe2\x82\xac";
  WsReader reader(1 << 20);
  Recorder sink;
  ASSERT_TRUE(feed(reader, sink, client_frame(0x01, euro.substr(0, 1)) + client_frame(0x80, euro.substr(1))));
  ASSERT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(sink.messages[0].payload, euro);
}

TEST(WsReader, CloseFrameWithCodeAndReasonStopsTheReader) {
  WsReader reader(1 << 20);
  Recorder sink;
  ASSERT_TRUE(feed(reader, sink, client_frame(0x88, std::string("\x03\xe8", 2) + "done") + text("after close")));
  EXPECT_EQ(sink.closes, 1);
  EXPECT_EQ(sink.code, 1000);
  EXPECT_EQ(sink.reason, "done");
  EXPECT_TRUE(reader.closed());
  EXPECT_TRUE(sink.messages.empty()) << "nothing is taken after the close frame";
}

TEST(WsReader, CloseFrameWithoutCodeReportsNoStatus) {
  WsReader reader(1 << 20);
  Recorder sink;
  ASSERT_TRUE(feed(reader, sink, client_frame(0x88, "")));
  EXPECT_EQ(sink.code, WsReader::kNoStatus);
}

struct Violation {
  const char* name;
  std::string bytes;
  std::uint16_t code;
};

TEST(WsReader, EachViolationFailsWithItsCloseCode) {
  const std::vector<Violation> cases = {
      {"unmasked", client_frame(0x81, "hi", false), 1002},
      {"reserved bit", client_frame(0xc1, "hi"), 1002},
      {"unknown opcode", client_frame(0x83, "hi"), 1002},
      {"fragmented ping", client_frame(0x09, "hi"), 1002},
      {"long ping", client_frame(0x89, std::string(126, 'p')), 1002},
      {"continuation first", client_frame(0x80, "hi"), 1002},
      {"message inside message", client_frame(0x01, "a") + client_frame(0x81, "b"), 1002},
      {"one-byte close", client_frame(0x88, "x"), 1002},
      {"close code 1005", client_frame(0x88, std::string("\x03\xed", 2)), 1002},
      {"close code 999", client_frame(0x88, std::string("\x03\xe7", 2)), 1002},
      {"close code 5000", client_frame(0x88, std::string("\x13\x88", 2)), 1002},
      {"invalid UTF-8 text", text("\xc3\x28"), 1007},
      {"truncated UTF-8 at the end", client_frame(0x01, "ok") + client_frame(0x80, "\xe2\x82"), 1007},
      {"invalid UTF-8 close reason", client_frame(0x88, std::string("\x03\xe8\xff", 3)), 1007},
      {"too big", text(std::string(101, 'x')), 1009},
      {"too big across fragments", client_frame(0x01, std::string(60, 'x')) + client_frame(0x80, std::string(41, 'x')),
       1009},
  };
  for (const auto& c : cases) {
    for (std::size_t chunk : {0u, 1u}) {
      WsReader reader(100);
      Recorder sink;
      EXPECT_FALSE(feed(reader, sink, c.bytes, chunk)) << c.name;
      EXPECT_TRUE(reader.failed()) << c.name;
      EXPECT_EQ(reader.failure().code, c.code) << c.name << ": " << reader.failure().reason;
      EXPECT_TRUE(sink.messages.empty()) << c.name;
      EXPECT_EQ(reader.buffered(), 0u) << c.name;
    }
  }
}

TEST(WsReader, MessagesBeforeAViolationAreDeliveredAndNothingAfter) {
  WsReader reader(1 << 20);
  Recorder sink;
  EXPECT_FALSE(feed(reader, sink, text("first") + client_frame(0x81, "bad", false) + text("never")));
  ASSERT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(sink.messages[0].payload, "first");
  std::string more = text("still never");
  EXPECT_FALSE(reader.feed(more.data(), more.size(), sink));
  EXPECT_EQ(sink.messages.size(), 1u);
}

TEST(WsReader, LimitIsExactlyMaxMessageBytes) {
  WsReader reader(100);
  Recorder sink;
  EXPECT_TRUE(feed(reader, sink, text(std::string(100, 'x'))));
  EXPECT_TRUE(feed(reader, sink, client_frame(0x01, std::string(50, 'x')) + client_frame(0x80, std::string(50, 'x'))));
  EXPECT_EQ(sink.messages.size(), 2u);
}

TEST(WsHandshake, AcceptKeyIsTheRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const std::string response = websocket_accept_response("dGhlIHNhbXBsZSBub25jZQ==", "notify.v1");
  EXPECT_EQ(response.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
  EXPECT_NE(response.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos);
  EXPECT_NE(response.find("\r\nSec-WebSocket-Protocol: notify.v1\r\n"), std::string::npos);
  EXPECT_EQ(response.substr(response.size() - 4), "\r\n\r\n");
  EXPECT_EQ(websocket_accept_response("dGhlIHNhbXBsZSBub25jZQ==", "").find("Sec-WebSocket-Protocol"),
            std::string::npos);
}

TEST(WsHandshake, RequestChecks) {
  namespace http = boost::beast::http;
  auto request = [] {
    http::request<http::string_body> r{http::verb::get, "/ws", 11};
    r.set(http::field::host, "localhost");
    r.set(http::field::upgrade, "websocket");
    r.set(http::field::connection, "Upgrade");
    r.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    r.set(http::field::sec_websocket_version, "13");
    return r;
  };
  EXPECT_FALSE(check_websocket_request(request()).has_value());
  auto no_key = request();
  no_key.erase(http::field::sec_websocket_key);
  EXPECT_EQ(check_websocket_request(no_key)->status, http::status::bad_request);
  auto bad_key = request();
  bad_key.set(http::field::sec_websocket_key, "not base64!");
  EXPECT_EQ(check_websocket_request(bad_key)->status, http::status::bad_request);
  auto old_version = request();
  old_version.set(http::field::sec_websocket_version, "8");
  EXPECT_EQ(check_websocket_request(old_version)->status, http::status::upgrade_required);
  auto no_host = request();
  no_host.erase(http::field::host);
  EXPECT_EQ(check_websocket_request(no_host)->status, http::status::bad_request);
}

}  // namespace
}  // namespace notify::gateway
