#pragma once
// A StreamClientMessages consumer for tests, reading on its own thread.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "notify/v1/notification_service.grpc.pb.h"
#include "tests/support/test_server.hpp"

namespace notify::testing {

// A StreamClientMessages call read on its own thread.
class Consumer {
 public:
  // With `read` false nothing is read until the stream ends: a stalled consumer.
  explicit Consumer(TestServer& server, bool read = true) : Consumer(server.stub(), read) {}
  explicit Consumer(std::unique_ptr<v1::NotificationService::Stub> stub, bool read = true) : stub_(std::move(stub)) {
    reader_ = stub_->StreamClientMessages(&context_, v1::StreamClientMessagesRequest{});
    // Wait for the server's headers: then the stream is registered.
    reader_->WaitForInitialMetadata();
    if (!read) return;
    thread_ = std::thread([this] {
      v1::ClientMessage message;
      while (reader_->Read(&message)) {
        std::lock_guard lock(mu_);
        messages_.push_back(message);
        cv_.notify_all();
      }
      status_ = reader_->Finish();
      std::lock_guard lock(mu_);
      done_ = true;
      cv_.notify_all();
    });
  }
  ~Consumer() {
    context_.TryCancel();
    if (thread_.joinable()) {
      thread_.join();
    } else {
      reader_->Finish();
    }
  }

  std::optional<v1::ClientMessage> next(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
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

 private:
  std::unique_ptr<v1::NotificationService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::ClientMessage>> reader_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::ClientMessage> messages_;
  std::size_t taken_ = 0;
  bool done_ = false;
  grpc::Status status_;
};

}  // namespace notify::testing
