// The encode-once frame: RFC 6455 wire bytes in all three length forms, and
// the tracker that finds frame and message boundaries in Beast's output.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/frame.hpp"
#include "gateway/frame_boundary.hpp"

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
  EXPECT_EQ(encode_text_frame_header(0x0102030405060708ull, h), 10u);
  EXPECT_EQ(Bytes(h, h + 10), (Bytes{0x81, 127, 1, 2, 3, 4, 5, 6, 7, 8}));
}

void feed(FrameBoundary& b, const std::string& bytes) {
  b.advance(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

TEST(FrameBoundary, FollowsFramesFedByteByByte) {
  FrameBoundary b;
  EXPECT_TRUE(b.at_message_boundary());
  for (const std::size_t size : {0u, 5u, 125u, 126u, 65535u, 65536u, 70000u}) {
    const auto f = make_control_frame(std::string(size, 'z'));
    for (std::size_t i = 0; i < f->wire.size(); ++i) {
      feed(b, f->wire.substr(i, 1));
      EXPECT_EQ(b.at_message_boundary(), i + 1 == f->wire.size()) << size << " at byte " << i;
    }
  }
  EXPECT_FALSE(b.close_started());
}

TEST(FrameBoundary, FollowsSeveralFramesInOneWriteAndSplitHeaders) {
  FrameBoundary b;
  const std::string a = make_control_frame(std::string(300, 'a'))->wire;
  const std::string c = make_control_frame(std::string(70000, 'c'))->wire;
  const std::string all = a + c;
  feed(b, all.substr(0, 1));  // half a header
  EXPECT_FALSE(b.at_frame_boundary());
  feed(b, all.substr(1, a.size() + 3));  // the rest of `a` and 3 of c's 10 header bytes
  EXPECT_FALSE(b.at_frame_boundary());
  feed(b, all.substr(a.size() + 4, c.size() - 5));
  EXPECT_FALSE(b.at_frame_boundary());
  feed(b, all.substr(all.size() - 1));
  EXPECT_TRUE(b.at_message_boundary());
}

TEST(FrameBoundary, FragmentedMessageIsOneUnit) {
  FrameBoundary b;
  feed(b, std::string("\x01\x03"
                      "abc",
                      5));  // text, no FIN
  EXPECT_TRUE(b.at_frame_boundary());
  EXPECT_FALSE(b.at_message_boundary());
  feed(b, std::string("\x89\x01p", 3));  // a ping inside the message doesn't end it
  EXPECT_FALSE(b.at_message_boundary());
  feed(b, std::string("\x00\x02"
                      "de",
                      4));  // continuation, no FIN
  EXPECT_FALSE(b.at_message_boundary());
  feed(b, std::string("\x80\x01"
                      "f",
                      3));  // continuation, FIN
  EXPECT_TRUE(b.at_message_boundary());
}

TEST(FrameBoundary, ControlFramesAndClose) {
  FrameBoundary b;
  feed(b, std::string("\x8a\x02hi", 4));  // pong
  EXPECT_TRUE(b.at_message_boundary());
  EXPECT_FALSE(b.close_started());
  feed(b, std::string("\x88", 1));  // close: known from its first byte
  EXPECT_TRUE(b.close_started());
  feed(b, std::string("\x02\x03\xe8", 3));
  EXPECT_TRUE(b.at_message_boundary());
  EXPECT_TRUE(b.close_started());
}

TEST(FrameBoundary, ToleratesMaskedFrames) {
  FrameBoundary b;
  feed(b, std::string("\x81\x82"
                      "abcd"
                      "xy",
                      8));
  EXPECT_TRUE(b.at_message_boundary());
  feed(b, std::string("\x81\x82"
                      "abcd"
                      "x",
                      7));
  EXPECT_FALSE(b.at_message_boundary());
}

}  // namespace
}  // namespace notify::gateway
