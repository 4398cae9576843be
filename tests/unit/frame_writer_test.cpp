// The raw frame writer next to Beast on a real loopback socket: a Beast
// server stream over DrainingStream and a Beast client reading it, on one
// io_context. Small socket buffers make frames partial; the client (Beast,
// strict about framing) fails on any byte out of place, so each test shows
// that raw frames and Beast's own frames never interleave mid-frame.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/frame_writer.hpp"

namespace notify::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

struct TestOwner final : FrameWriter::Owner {
  virtual ~TestOwner() = default;
  std::shared_ptr<void> writer_keep_alive() override { return keep; }
  void on_writer_idle() override { ++idle; }
  std::shared_ptr<int> keep = std::make_shared<int>(0);
  int idle = 0;
};

// Payloads of every length form, each one recognisable.
std::string payload(std::size_t i) {
  static constexpr std::size_t kSizes[] = {10, 300, 70000, 125, 126, 65535, 65536, 2000};
  std::string p = "#" + std::to_string(i) + ":";
  p.resize(kSizes[i % std::size(kSizes)], static_cast<char>('a' + i % 26));
  return p;
}

class FrameWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
    tcp::socket client_socket(ioc_);
    client_socket.open(tcp::v4());
    client_socket.set_option(asio::socket_base::receive_buffer_size(4096));
    client_socket.connect(acceptor.local_endpoint());
    tcp::socket server_socket = acceptor.accept();
    server_socket.set_option(asio::socket_base::send_buffer_size(4096));
    server_ = std::make_unique<websocket::stream<DrainingStream>>(beast::tcp_stream(std::move(server_socket)));
    client_ = std::make_unique<websocket::stream<tcp::socket>>(std::move(client_socket));
    server_->auto_fragment(false);
    client_->read_message_max(0);
    bool accepted = false;
    bool handshaken = false;
    server_->async_accept([&](beast::error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      accepted = true;
    });
    client_->async_handshake("127.0.0.1", "/", [&](beast::error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      handshaken = true;
    });
    ASSERT_TRUE(run_until([&] { return accepted && handshaken; }));
    client_->control_callback([this](websocket::frame_type kind, beast::string_view data) {
      if (kind == websocket::frame_type::ping) pings_.push_back({std::string(data), messages_.size()});
      if (kind == websocket::frame_type::pong) pongs_.push_back({std::string(data), messages_.size()});
    });
    writer_.emplace(server_->next_layer(), queue_, *metrics_, owner_);
    writer_->start();
  }

  void TearDown() override {
    // Pending operations hold references into the fixture: end them first.
    beast::error_code ignored;
    beast::get_lowest_layer(*server_).socket().close(ignored);
    client_->next_layer().close(ignored);
    ioc_.restart();
    ioc_.poll();
  }

  bool run_until(const std::function<bool()>& done, std::chrono::seconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      ioc_.restart();
      ioc_.run_for(2ms);
    }
    return true;
  }

  // What the session does with a frame.
  void send(const FramePtr& frame) {
    if (writer_->try_send(frame)) return;
    ASSERT_TRUE(writer_->accepting());
    ASSERT_TRUE(queue_.push(frame).accepted);
    metrics_->queued_bytes.add(static_cast<std::int64_t>(frame->payload.size()));
    writer_->schedule();
  }

  // The client reads messages until it fails (the close ends it).
  void start_client_reading() {
    client_->async_read(client_buffer_, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        client_error_ = ec;
        return;
      }
      messages_.push_back(beast::buffers_to_string(client_buffer_.cdata()));
      client_buffer_.consume(client_buffer_.size());
      start_client_reading();
    });
  }

  // The server reads too: it sees the client's pongs and close reply.
  void start_server_reading() {
    server_->async_read(server_buffer_, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        server_error_ = ec;
        return;
      }
      server_buffer_.consume(server_buffer_.size());
      start_server_reading();
    });
  }

  // Sends frames until the socket is full and one is partly written.
  std::size_t fill_socket(std::vector<std::string>& sent) {
    while (!queue_.in_flight() && sent.size() < 1000) {
      sent.push_back(payload(sent.size()));
      send(make_control_frame(sent.back()));
    }
    EXPECT_TRUE(queue_.in_flight()) << "no frame was partly written";
    return sent.size();
  }

  asio::io_context ioc_;
  std::unique_ptr<websocket::stream<DrainingStream>> server_;
  std::unique_ptr<websocket::stream<tcp::socket>> client_;
  QueueLimits limits_{100000, 256 << 20, OverflowPolicy::close};
  SendQueue queue_{limits_};
  std::unique_ptr<LoopMetrics> metrics_ = std::make_unique<LoopMetrics>();
  TestOwner owner_;
  std::optional<FrameWriter> writer_;
  beast::flat_buffer client_buffer_, server_buffer_;
  std::vector<std::string> messages_;
  struct Ping {
    std::string data;
    std::size_t after_messages;
  };
  std::vector<Ping> pings_, pongs_;
  std::optional<beast::error_code> client_error_, server_error_;
};

TEST_F(FrameWriterTest, FastPathWritesWithoutQueueing) {
  const auto frame = make_control_frame("hello");
  EXPECT_TRUE(writer_->try_send(frame));
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(metrics_->frames_delivered.value(), 1u);
  EXPECT_EQ(metrics_->bytes_sent.value(), 5u);
  start_client_reading();
  ASSERT_TRUE(run_until([&] { return messages_.size() == 1; }));
  EXPECT_EQ(messages_[0], "hello");
}

TEST_F(FrameWriterTest, PartialFramesAreFinishedInOrderWithGatheredWrites) {
  std::vector<std::string> sent;
  fill_socket(sent);
  for (int i = 0; i < 40; ++i) {  // more behind the partial one
    sent.push_back(payload(sent.size()));
    send(make_control_frame(sent.back()));
  }
  EXPECT_GT(metrics_->queued_bytes.value(), 0);
  start_client_reading();
  ASSERT_TRUE(run_until([&] { return messages_.size() == sent.size(); }));
  EXPECT_EQ(messages_, sent);
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(metrics_->frames_delivered.value(), sent.size());
  EXPECT_EQ(metrics_->queued_bytes.value(), 0);
  EXPECT_GE(owner_.idle, 1);
}

TEST_F(FrameWriterTest, BeastPingWaitsForThePartialFrameThenGoesFirst) {
  std::vector<std::string> sent;
  const std::size_t partial = fill_socket(sent);  // sent[partial - 1] is partly written
  for (int i = 0; i < 10; ++i) {
    sent.push_back(payload(sent.size()));
    send(make_control_frame(sent.back()));
  }
  bool pinged = false;
  server_->async_ping("p1", [&](beast::error_code ec) {
    EXPECT_FALSE(ec) << ec.message();
    pinged = true;
  });
  ioc_.restart();
  ioc_.poll();
  EXPECT_TRUE(writer_->beast_waiting());
  // While Beast waits, a new frame may not start: it queues.
  EXPECT_FALSE(writer_->try_send(make_control_frame("late")));
  start_client_reading();
  start_server_reading();
  ASSERT_TRUE(run_until([&] { return messages_.size() == sent.size() && pinged; }));
  EXPECT_EQ(messages_, sent);
  ASSERT_EQ(pings_.size(), 1u);
  EXPECT_EQ(pings_[0].data, "p1");
  EXPECT_EQ(pings_[0].after_messages, partial);  // right after the partial frame, before the queued ones
}

TEST_F(FrameWriterTest, BeastsPongToAClientPingWaitsForThePartialFrame) {
  std::vector<std::string> sent;
  const std::size_t partial = fill_socket(sent);
  for (int i = 0; i < 10; ++i) {
    sent.push_back(payload(sent.size()));
    send(make_control_frame(sent.back()));
  }
  // The server's read loop answers the ping itself, in the middle of our
  // partly written frame.
  start_server_reading();
  bool pinged = false;
  client_->async_ping("c1", [&](beast::error_code ec) {
    EXPECT_FALSE(ec) << ec.message();
    pinged = true;
  });
  ASSERT_TRUE(run_until([&] { return pinged && writer_->beast_waiting(); }));
  start_client_reading();
  ASSERT_TRUE(run_until([&] { return messages_.size() == sent.size() && !pongs_.empty(); }));
  EXPECT_EQ(messages_, sent);
  ASSERT_EQ(pongs_.size(), 1u);
  EXPECT_EQ(pongs_[0].data, "c1");
  EXPECT_EQ(pongs_[0].after_messages, partial);
}

TEST_F(FrameWriterTest, RawFramesWaitForAFragmentedBeastMessage) {
  // Beast writes a 200 KB message as 4 KB frames, one async_write each:
  // between them Beast is at a frame boundary but inside a message.
  server_->auto_fragment(true);
  server_->write_buffer_bytes(4096);
  server_->text(true);
  const std::string big(200000, 'B');
  bool written = false;
  server_->async_write(asio::buffer(big), [&](beast::error_code ec, std::size_t) {
    EXPECT_FALSE(ec) << ec.message();
    written = true;
  });
  ioc_.restart();
  ioc_.poll();
  std::vector<std::string> sent{big};
  for (int i = 0; i < 20; ++i) {
    sent.push_back(payload(i));
    send(make_control_frame(sent.back()));
  }
  EXPECT_EQ(metrics_->frames_delivered.value(), 0u);  // all wait for Beast's message
  start_client_reading();
  ASSERT_TRUE(run_until([&] { return messages_.size() == sent.size(); }));
  EXPECT_TRUE(written);
  EXPECT_EQ(messages_, sent);
  EXPECT_EQ(metrics_->frames_delivered.value(), 20u);
}

TEST_F(FrameWriterTest, NoFrameStartsAfterBeastsCloseFrame) {
  std::vector<std::string> sent;
  const std::size_t partial = fill_socket(sent);
  for (int i = 0; i < 5; ++i) {
    sent.push_back(payload(sent.size()));
    send(make_control_frame(sent.back()));
  }
  // Beast closes (as it does itself for an oversized client frame): the
  // partial frame is finished, then the close frame; nothing after it.
  bool closed = false;
  server_->async_close(websocket::close_code::going_away, [&](beast::error_code) { closed = true; });
  start_client_reading();
  ASSERT_TRUE(run_until([&] { return client_error_.has_value(); }));
  EXPECT_EQ(*client_error_, websocket::error::closed);
  EXPECT_EQ(client_->reason().code, websocket::close_code::going_away);
  ASSERT_EQ(messages_.size(), partial);
  EXPECT_TRUE(std::equal(messages_.begin(), messages_.end(), sent.begin()));
  EXPECT_FALSE(writer_->accepting());
  EXPECT_FALSE(writer_->try_send(make_control_frame("after close")));
  ASSERT_TRUE(run_until([&] { return closed; }));
}

TEST_F(FrameWriterTest, ClosedSocketFailsTheWriterAndReleasesTheQueue) {
  std::vector<std::string> sent;
  fill_socket(sent);
  for (int i = 0; i < 5; ++i) {
    sent.push_back(payload(sent.size()));
    send(make_control_frame(sent.back()));
  }
  std::optional<beast::error_code> ping_result;
  server_->async_ping("p", [&](beast::error_code ec) { ping_result = ec; });
  ioc_.restart();
  ioc_.poll();
  ASSERT_TRUE(writer_->beast_waiting());
  beast::get_lowest_layer(*server_).close();  // close timeout, teardown, Beast's own timeout
  ASSERT_TRUE(run_until([&] { return ping_result.has_value(); }));
  EXPECT_TRUE(*ping_result);  // the waiting ping went on and saw the closed socket
  EXPECT_FALSE(writer_->accepting());
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(metrics_->queued_bytes.value(), 0);
  EXPECT_FALSE(writer_->try_send(make_control_frame("x")));
}

}  // namespace
}  // namespace notify::gateway
