#include "bench/loadgen/publisher.hpp"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bench/loadgen/proc_stats.hpp"
#include "notify/v1/notification_service.grpc.pb.h"

namespace bench {

namespace {

// In-flight accounting and counters shared by both publishers.
class Flow {
 public:
  explicit Flow(int max_in_flight) : max_(std::max(1, max_in_flight)) {}

  void begin() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ < max_; });
    ++in_flight_;
    ++window_.sent;
  }

  void end(std::int64_t started_us, const std::string& error) {
    const std::int64_t rtt = now_us() - started_us;
    std::lock_guard lock(mu_);
    --in_flight_;
    window_.round_trip_us.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, rtt)));
    if (error.empty()) {
      ++window_.ok;
    } else {
      ++window_.errors;
      ++window_.error_kinds[error];
    }
    cv_.notify_all();
  }

  bool wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return in_flight_ == 0; });
  }

  PublishWindow harvest() {
    std::lock_guard lock(mu_);
    PublishWindow out = std::move(window_);
    window_ = PublishWindow{};
    return out;
  }

 private:
  const int max_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  PublishWindow window_;
};

// One NotifyStream call: notify() queues requests, one write in flight at a
// time; results come back batched and name their request's sequence.
class NotifyStreamClient final
    : public grpc::ClientBidiReactor<notify::v1::NotifyRequest, notify::v1::NotifyStreamResponse> {
 public:
  // At most `max_in_flight` requests are unanswered (the Flow's cap), so
  // their start times fit a ring indexed by sequence.
  NotifyStreamClient(notify::v1::NotificationService::Stub& stub, const std::string& api_key, Flow& flow,
                     int max_in_flight)
      : flow_(flow), started_(static_cast<std::size_t>(std::max(1, max_in_flight))) {
    if (!api_key.empty()) context_.AddMetadata("authorization", "Bearer " + api_key);
    stub.async()->NotifyStream(&context_, this);
    StartRead(&response_);
    StartCall();
  }

  // Queues one request (the caller has counted it in the flow).
  void send(notify::v1::NotifyRequest request) {
    std::lock_guard lock(mu_);
    started_[sent_++ % started_.size()] = now_us();
    queue_.push_back(std::move(request));
    if (!writing_ && !closing_) write_next_locked();
  }

  // Half-closes once the queue is written, then waits for the status.
  grpc::Status close() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
      if (!writing_ && !done_writing_ && !finished_) {
        done_writing_ = true;
        StartWritesDone();
      }
    }
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return finished_; });
    return status_;
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    queue_.pop_front();
    if (!ok) return;  // the call failed: OnDone reports it
    if (!queue_.empty()) {
      write_next_locked();
    } else if (closing_ && !done_writing_) {
      done_writing_ = true;
      StartWritesDone();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    for (const auto& result : response_.results()) {
      std::int64_t started;
      {
        std::lock_guard lock(mu_);
        started = started_[result.sequence() % started_.size()];
        ++answered_;
      }
      flow_.end(started, result.code() == 0
                             ? ""
                             : "NotifyStream result " + std::to_string(result.code()) + ": " + result.error_message());
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& s) override {
    std::lock_guard lock(mu_);
    // Requests without a result failed with the call.
    for (std::uint64_t i = answered_; i < sent_; ++i) {
      flow_.end(now_us(), "NotifyStream ended: gRPC " + std::to_string(s.error_code()) + ": " + s.error_message());
    }
    status_ = s;
    finished_ = true;
    cv_.notify_all();
  }

 private:
  void write_next_locked() {
    writing_ = true;
    StartWrite(&queue_.front());
  }

  Flow& flow_;
  grpc::ClientContext context_;
  notify::v1::NotifyStreamResponse response_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<notify::v1::NotifyRequest> queue_;  // front: being written
  std::vector<std::int64_t> started_;            // by sequence % size
  std::uint64_t sent_ = 0;
  std::uint64_t answered_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool done_writing_ = false;
  bool finished_ = false;
  grpc::Status status_;
};

class GrpcPublisher final : public Publisher {
 public:
  // `connections` HTTP/2 connections, used in turn: as many as the HTTP
  // publisher's keep-alive sockets, so that neither side of the comparison
  // is held to one connection's serialized processing.
  // With `stream`, Notify requests go over one NotifyStream per connection.
  GrpcPublisher(const std::string& target, std::string api_key, int connections, int max_in_flight, bool stream)
      : flow_(max_in_flight), api_key_(std::move(api_key)) {
    for (int i = 0; i < std::max(1, connections); ++i) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(16 << 20);
      // Channels with equal arguments would share one connection.
      args.SetInt("notify.bench.connection", i);
      auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
      if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
        throw std::runtime_error("cannot reach the gRPC admin API at " + target);
      }
      stubs_.push_back(notify::v1::NotificationService::NewStub(channel));
      channels_.push_back(std::move(channel));
      if (stream)
        streams_.push_back(std::make_unique<NotifyStreamClient>(*stubs_.back(), api_key_, flow_, max_in_flight));
    }
  }

  ~GrpcPublisher() override {
    flow_.wait_idle(std::chrono::seconds(10));
    for (auto& stream : streams_) {
      if (grpc::Status s = stream->close(); !s.ok()) {
        std::fprintf(stderr, "NotifyStream ended with gRPC %d: %s\n", s.error_code(), s.error_message().c_str());
      }
    }
  }

  void broadcast(const std::string& payload) override {
    auto* call = new Call<notify::v1::BroadcastRequest, notify::v1::BroadcastResponse>;
    fill(call->request.mutable_notification(), payload);
    start(call);
    next_stub().async()->Broadcast(&call->context, &call->request, &call->response,
                                   [this, call](grpc::Status s) { finish(call, s); });
  }

  void notify(const std::vector<const std::string*>& users, const std::string& payload) override {
    notify::v1::NotifyRequest request;
    for (const auto* user : users) request.add_user_ids(*user);
    fill(request.mutable_notification(), payload);
    if (!streams_.empty()) {
      flow_.begin();
      streams_[next_.fetch_add(1, std::memory_order_relaxed) % streams_.size()]->send(std::move(request));
      return;
    }
    auto* call = new Call<notify::v1::NotifyRequest, notify::v1::NotifyResponse>;
    call->request = std::move(request);
    start(call);
    next_stub().async()->Notify(&call->context, &call->request, &call->response,
                                [this, call](grpc::Status s) { finish(call, s); });
  }

  void wait_idle(std::chrono::milliseconds timeout) override { flow_.wait_idle(timeout); }
  PublishWindow harvest() override { return flow_.harvest(); }

 private:
  template <class Request, class Response>
  struct Call {
    grpc::ClientContext context;
    Request request;
    Response response;
    std::int64_t started_us = 0;
  };

  static void fill(notify::v1::Notification* n, const std::string& payload) {
    n->set_event("bench");
    n->set_data_json(payload);
  }

  template <class C>
  void start(C* call) {
    flow_.begin();
    if (!api_key_.empty()) call->context.AddMetadata("authorization", "Bearer " + api_key_);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    call->started_us = now_us();
  }

  template <class C>
  void finish(C* call, const grpc::Status& s) {
    const std::string error = s.ok() ? "" : "gRPC " + std::to_string(s.error_code()) + ": " + s.error_message();
    flow_.end(call->started_us, error);
    delete call;
  }

  notify::v1::NotificationService::Stub& next_stub() {
    const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed) % stubs_.size();
    return *stubs_[i];
  }

  Flow flow_;
  std::string api_key_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<notify::v1::NotificationService::Stub>> stubs_;
  std::vector<std::unique_ptr<NotifyStreamClient>> streams_;
  std::atomic<std::size_t> next_{0};
};

// One keep-alive socket: the caller writes requests; a reader thread reads
// the answers in order (HTTP/1.1 pipelining).
class HttpConnection {
 public:
  HttpConnection(const std::string& host, std::uint16_t port, Flow& flow) : flow_(flow) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in dest{};
    dest.sin_family = AF_INET;
    dest.sin_port = htons(port);
    inet_pton(AF_INET, host.c_str(), &dest.sin_addr);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&dest), sizeof dest) != 0) {
      throw std::runtime_error("cannot connect to the HTTP publisher at " + host + ":" + std::to_string(port) + ": " +
                               std::strerror(errno));
    }
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    host_header_ = host + ":" + std::to_string(port);
    reader_ = std::thread([this] { read_loop(); });
  }

  ~HttpConnection() {
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
  }

  void post(const std::string& target, const std::string& body) {
    std::string req = "POST " + target + " HTTP/1.1\r\nHost: " + host_header_ +
                      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
    {
      std::lock_guard lock(mu_);
      started_.push_back(now_us());
    }
    const char* p = req.data();
    std::size_t left = req.size();
    while (left > 0) {
      const ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        throw std::runtime_error(std::string("HTTP publisher write failed: ") + std::strerror(errno));
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

 private:
  void read_loop() {
    std::string in;
    char buf[65536];
    for (;;) {
      // Answers complete in `in`.
      for (;;) {
        const auto head_end = in.find("\r\n\r\n");
        if (head_end == std::string::npos) break;
        const std::string head = in.substr(0, head_end);
        std::size_t body = 0;
        bool chunked = false;
        std::string lower = head;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (const auto cl = lower.find("\r\ncontent-length:"); cl != std::string::npos) {
          body = std::strtoull(lower.c_str() + cl + 17, nullptr, 10);
        } else if (lower.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
          chunked = true;
        }
        std::size_t total = head_end + 4 + body;
        if (chunked) {
          const auto last = in.find("\r\n0\r\n\r\n", head_end + 2);
          if (last == std::string::npos) break;
          total = last + 7;
        }
        if (in.size() < total) break;
        const int status = std::atoi(head.c_str() + 9);
        in.erase(0, total);
        std::int64_t started;
        {
          std::lock_guard lock(mu_);
          started = started_.empty() ? now_us() : started_.front();
          if (!started_.empty()) started_.pop_front();
        }
        flow_.end(started, status >= 200 && status < 300 ? "" : "HTTP " + std::to_string(status));
      }
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        // Whatever is still unanswered fails.
        std::lock_guard lock(mu_);
        while (!started_.empty()) {
          flow_.end(started_.front(), "connection closed");
          started_.pop_front();
        }
        return;
      }
      in.append(buf, static_cast<std::size_t>(n));
    }
  }

  Flow& flow_;
  int fd_ = -1;
  std::string host_header_;
  std::mutex mu_;
  std::deque<std::int64_t> started_;
  std::thread reader_;
};

class HttpPublisher final : public Publisher {
 public:
  HttpPublisher(const std::string& host, std::uint16_t port, int connections, int max_in_flight)
      : flow_(max_in_flight) {
    for (int i = 0; i < std::max(1, connections); ++i) {
      connections_.push_back(std::make_unique<HttpConnection>(host, port, flow_));
    }
  }

  ~HttpPublisher() override {
    flow_.wait_idle(std::chrono::seconds(10));
    connections_.clear();
  }

  void broadcast(const std::string& payload) override { post("/broadcast", payload); }

  void notify(const std::vector<const std::string*>& users, const std::string& payload) override {
    std::string target = "/notify?user=";
    for (std::size_t i = 0; i < users.size(); ++i) target += (i ? "," : "") + *users[i];
    post(target, payload);
  }

  void wait_idle(std::chrono::milliseconds timeout) override { flow_.wait_idle(timeout); }
  PublishWindow harvest() override { return flow_.harvest(); }

 private:
  void post(const std::string& target, const std::string& body) {
    flow_.begin();
    connections_[next_++ % connections_.size()]->post(target, body);
  }

  Flow flow_;
  std::vector<std::unique_ptr<HttpConnection>> connections_;
  std::size_t next_ = 0;
};

}  // namespace

std::unique_ptr<Publisher> make_grpc_publisher(const std::string& target, const std::string& api_key, int connections,
                                               int max_in_flight, bool notify_stream) {
  return std::make_unique<GrpcPublisher>(target, api_key, connections, max_in_flight, notify_stream);
}

std::unique_ptr<Publisher> make_http_publisher(const std::string& host, std::uint16_t port, int connections,
                                               int max_in_flight) {
  return std::make_unique<HttpPublisher>(host, port, connections, max_in_flight);
}

}  // namespace bench
