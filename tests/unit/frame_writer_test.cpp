// The raw frame writer on a real loopback socket, read by a Beast client on
// the same io_context. Small socket buffers make frames partial; the client
// (Beast, strict about framing) fails on any byte out of place, so each test
// shows that frames reach the wire whole and in order.
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
    // Beast answers the handshake; then the writer takes the bare socket.
    auto server = std::make_unique<websocket::stream<tcp::socket>>(std::move(server_socket));
    client_ = std::make_unique<websocket::stream<tcp::socket>>(std::move(client_socket));
    client_->read_message_max(0);
    bool accepted = false;
    bool handshaken = false;
    server->async_accept([&](beast::error_code ec) {
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
    server_ = std::move(server->next_layer());
    writer_.emplace(server_, queue_, *metrics_, owner_);
  }

  void TearDown() override {
    // Pending operations hold references into the fixture: end them first.
    beast::error_code ignored;
    server_.close(ignored);
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
  tcp::socket server_{ioc_};
  std::unique_ptr<websocket::stream<tcp::socket>> client_;
  QueueLimits limits_{100000, 256 << 20, OverflowPolicy::close};
  SendQueue queue_{limits_};
  std::unique_ptr<LoopMetrics> metrics_ = std::make_unique<LoopMetrics>();
  TestOwner owner_;
  std::optional<FrameWriter> writer_;
  beast::flat_buffer client_buffer_;
  std::vector<std::string> messages_;
  struct Ping {
    std::string data;
    std::size_t after_messages;
  };
  std::vector<Ping> pings_, pongs_;
  std::optional<beast::error_code> client_error_;
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

TEST_F(FrameWriterTest, ProtocolFramesKeepTheirPlaceAndAreNotCountedAsDeliveries) {
  std::vector<std::string> sent;
  fill_socket(sent);
  send(make_protocol_frame(opcode::ping, "keep-alive"));
  sent.push_back(payload(sent.size()));
  send(make_control_frame(sent.back()));
  start_client_reading();
  ASSERT_TRUE(run_until([&] { return messages_.size() == sent.size(); }));
  EXPECT_EQ(messages_, sent);
  ASSERT_EQ(pings_.size(), 1u);
  EXPECT_EQ(pings_[0].data, "keep-alive");
  EXPECT_EQ(pings_[0].after_messages, sent.size() - 1);  // between the frames it was queued between
  EXPECT_EQ(metrics_->frames_delivered.value(), sent.size());
  EXPECT_EQ(metrics_->bytes_sent.value(), [&] {
    std::size_t total = 0;
    for (const auto& m : sent) total += m.size();
    return total;
  }());
}

TEST_F(FrameWriterTest, CloseFrameAfterPartialFramesEndsTheClientCleanly) {
  std::vector<std::string> sent;
  fill_socket(sent);
  send(make_protocol_frame(opcode::close, std::string("\x03\xe8", 2) + "bye"));
  start_client_reading();
  ASSERT_TRUE(run_until([&] { return messages_.size() == sent.size(); }));
  ASSERT_TRUE(run_until([&] { return queue_.empty(); }));
  ioc_.restart();
  ioc_.run_for(50ms);  // the client answers the close and waits for the end of the stream
  server_.shutdown(asio::socket_base::shutdown_send);  // a close would reset: the client's close frame is unread
  ASSERT_TRUE(run_until([&] { return client_error_.has_value(); }));
  EXPECT_EQ(*client_error_, websocket::error::closed) << client_error_->message();
  EXPECT_EQ(messages_, sent);
  EXPECT_EQ(client_->reason().code, 1000);
  EXPECT_EQ(std::string(client_->reason().reason.data(), client_->reason().reason.size()), "bye");
}

TEST_F(FrameWriterTest, ClosedSocketFailsTheWriterAndReleasesTheQueue) {
  std::vector<std::string> sent;
  fill_socket(sent);
  for (int i = 0; i < 5; ++i) {
    sent.push_back(payload(sent.size()));
    send(make_control_frame(sent.back()));
  }
  server_.close();  // close timeout, idle timeout, teardown
  ASSERT_TRUE(run_until([&] { return !writer_->accepting(); }));
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(metrics_->queued_bytes.value(), 0);
  EXPECT_FALSE(writer_->try_send(make_control_frame("x")));
}

}  // namespace
}  // namespace notify::gateway
