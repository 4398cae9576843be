// The encode-once frame: RFC 6455 wire bytes in all three length forms and
// for each opcode the server sends.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/frame.hpp"

namespace notify::gateway {
namespace {

std::vector<unsigned char> header_of(const Frame& f) {
  const std::size_t header_bytes = f.wire.size() - f.payload.size();
  return {f.wire.begin(), f.wire.begin() + static_cast<std::ptrdiff_t>(header_bytes)};
}

using Bytes = std::vector<unsigned char>;

TEST(Frame, SevenBitLength) {
  const auto f = make_control_frame("hello");
  EXPECT_EQ(header_of(*f), (Bytes{0x81, 5}));
  EXPECT_EQ(f->payload, "hello");
  EXPECT_EQ(f->wire.size(), 7u);
  EXPECT_EQ(header_of(*make_control_frame("")), (Bytes{0x81, 0}));
  EXPECT_EQ(header_of(*make_control_frame(std::string(125, 'x'))), (Bytes{0x81, 125}));
}

TEST(Frame, SixteenBitLength) {
  EXPECT_EQ(header_of(*make_control_frame(std::string(126, 'x'))), (Bytes{0x81, 126, 0x00, 0x7e}));
  EXPECT_EQ(header_of(*make_control_frame(std::string(300, 'x'))), (Bytes{0x81, 126, 0x01, 0x2c}));
  EXPECT_EQ(header_of(*make_control_frame(std::string(65535, 'x'))), (Bytes{0x81, 126, 0xff, 0xff}));
}

TEST(Frame, SixtyFourBitLength) {
  EXPECT_EQ(header_of(*make_control_frame(std::string(65536, 'x'))),
            (Bytes{0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  const auto f = std::make_shared<const Frame>(Frame::Kind::notification, std::string(70000, 'y'));
  EXPECT_EQ(header_of(*f), (Bytes{0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70}));
  EXPECT_EQ(f->payload, std::string(70000, 'y'));
  EXPECT_EQ(f->kind, Frame::Kind::notification);
}

TEST(Frame, EncodesHeaderForAnyLength) {
  unsigned char h[kMaxFrameHeaderBytes];
  EXPECT_EQ(encode_frame_header(0x0102030405060708ull, h), 10u);
  EXPECT_EQ(Bytes(h, h + 10), (Bytes{0x81, 127, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(Frame, ProtocolFramesCarryTheirOpcodeAndAreNotMessages) {
  const auto close = make_protocol_frame(opcode::close, std::string("\x03\xe9", 2));
  EXPECT_EQ(close->wire, std::string("\x88\x02\x03\xe9", 4));
  EXPECT_EQ(close->kind, Frame::Kind::wire);
  EXPECT_EQ(make_protocol_frame(opcode::pong, "ab")->wire,
            "\x8a\x02"
            "ab");
  EXPECT_EQ(make_protocol_frame(opcode::ping, "")->wire, std::string("\x89\x00", 2));
  const Frame verbatim(Frame::Verbatim{}, "HTTP/1.1 101 Switching Protocols\r\n\r\n");
  EXPECT_EQ(verbatim.wire, "HTTP/1.1 101 Switching Protocols\r\n\r\n");
  EXPECT_EQ(verbatim.payload, verbatim.wire);
}

}  // namespace
}  // namespace notify::gateway
