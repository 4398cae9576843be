#pragma once
// StreamClientMessages and StreamDeliveryReports consumers for tests, each
// reading on its own thread.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "notify/v1/notification_service.grpc.pb.h"
#include "tests/support/test_server.hpp"

namespace notify::testing {

// A StreamClientMessages (Item = Wire = ClientMessage) or
// StreamDeliveryReports (Item = DeliveryReport, Wire = DeliveryReports: each
// batch read is taken apart) call read on its own thread.
template <class Item, class Wire = Item>
class StreamConsumer {
 public:
  // With `read` false nothing is read until the stream ends: a stalled consumer.
  explicit StreamConsumer(TestServer& server, bool read = true) : StreamConsumer(server.stub(), read) {}
  explicit StreamConsumer(std::unique_ptr<v1::NotificationService::Stub> stub, bool read = true)
      : stub_(std::move(stub)) {
    if constexpr (std::is_same_v<Wire, v1::ClientMessage>) {
      reader_ = stub_->StreamClientMessages(&context_, v1::StreamClientMessagesRequest{});
    } else {
      reader_ = stub_->StreamDeliveryReports(&context_, v1::StreamDeliveryReportsRequest{});
    }
    // Wait for the server's headers: then the stream is registered.
    reader_->WaitForInitialMetadata();
    if (!read) return;
    thread_ = std::thread([this] {
      Wire message;
      while (reader_->Read(&message)) {
        std::lock_guard lock(mu_);
        if constexpr (std::is_same_v<Wire, Item>) {
          messages_.push_back(message);
        } else {
          ++batches_;
          for (const auto& item : message.reports()) messages_.push_back(item);
        }
        cv_.notify_all();
      }
      status_ = reader_->Finish();
      std::lock_guard lock(mu_);
      done_ = true;
      cv_.notify_all();
    });
  }
  ~StreamConsumer() {
    context_.TryCancel();
    if (thread_.joinable()) {
      thread_.join();
    } else {
      reader_->Finish();
    }
  }

  std::optional<Item> next(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return messages_.size() > taken_; })) return std::nullopt;
    return messages_[taken_++];
  }
  bool wait_done(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  grpc::Status status() { return status_; }
  void cancel() { context_.TryCancel(); }
  std::size_t batches() {
    std::lock_guard lock(mu_);
    return batches_;
  }

 private:
  std::unique_ptr<v1::NotificationService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<Wire>> reader_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> messages_;
  std::size_t batches_ = 0;  // batched streams: messages read
  std::size_t taken_ = 0;
  bool done_ = false;
  grpc::Status status_;
};

using Consumer = StreamConsumer<v1::ClientMessage>;
using ReportConsumer = StreamConsumer<v1::DeliveryReport, v1::DeliveryReports>;

}  // namespace notify::testing
