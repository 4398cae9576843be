#pragma once
// A server-streaming RPC whose every open stream receives every message
// published on the bus: StreamClientMessages (what clients send upstream)
// and StreamDeliveryReports (acknowledgements of require_ack notifications).
// A stream that lags more than its buffer (messages or bytes) loses its
// oldest messages (counted). The number of streams is bounded too.
//
// Item is what is published; Wire what one write carries: the item itself
// (StreamClientMessages), or a batch of every item waiting, up to
// kMaxBatch (StreamDeliveryReports), for which an overload
// append_to_batch(Wire&, Item&&) must be found by argument-dependent lookup.
// Thread-safe: publish() runs on event loops (or the Redis broker's thread),
// the rest on gRPC threads.
#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "common/metrics.hpp"
#include "services/settings.hpp"

namespace notify::services {

template <class Item, class Wire>
class StreamBus;

// The most items one batched write carries.
inline constexpr std::size_t kMaxBatch = 1024;

// One call of the RPC. Owned by shared_ptr: gRPC's reference is dropped in
// OnDone, the bus's snapshot references keep it alive while a publish runs.
template <class Item, class Wire = Item>
class BusStream : public grpc::ServerWriteReactor<Wire>, public std::enable_shared_from_this<BusStream<Item, Wire>> {
 public:
  // Joins the bus, or ends at once if the bus refuses it.
  static BusStream* start(StreamBus<Item, Wire>& bus) {
    auto stream = std::make_shared<BusStream>(bus);
    stream->self_ = stream;
    grpc::Status status = bus.attach(stream);
    if (!status.ok()) {
      stream->finish(std::move(status));
    } else {
      // Headers go out at once so a consumer knows it is subscribed.
      stream->StartSendInitialMetadata();
    }
    return stream.get();
  }
  // A stream that ends at once with `status`, never joining the bus.
  static BusStream* refused(StreamBus<Item, Wire>& bus, grpc::Status status) {
    auto stream = std::make_shared<BusStream>(bus);
    stream->self_ = stream;
    stream->finish(std::move(status));
    return stream.get();
  }

  explicit BusStream(StreamBus<Item, Wire>& bus) : bus_(bus) {}

  // Queues an item; false once the stream is finishing.
  bool push(const Item& item) {
    {
      std::lock_guard lock(mu_);
      if (finishing_) return false;
      const std::size_t bytes = item.ByteSizeLong();
      if (writing_) {
        const ServiceSettings& s = bus_.settings();
        while (!pending_.empty() &&
               (pending_.size() >= bus_.max_items() || pending_bytes_ + bytes > s.client_stream_buffer_bytes)) {
          pending_bytes_ -= pending_.front().ByteSizeLong();
          pending_.pop_front();
          bus_.counters().dropped->Increment();
        }
        pending_.push_back(item);
        pending_bytes_ += bytes;
        return true;
      }
      writing_ = true;
      pending_.push_back(item);
      pending_bytes_ += bytes;
      fill_locked();
    }
    // Outside the lock: gRPC may run reactions inline.
    this->StartWrite(&current_);
    return true;
  }

  // Ends the stream after the write in flight, if any; with `flush`, after
  // every queued message too. No message is taken after this call.
  void finish(grpc::Status status, bool flush = false) {
    {
      std::lock_guard lock(mu_);
      if (finishing_) return;
      finishing_ = true;
      if (!flush) {
        pending_.clear();
        pending_bytes_ = 0;
      }
      finish_status_ = std::move(status);
      if (writing_) {
        finish_deferred_ = true;
        return;
      }
    }
    this->Finish(finish_status_);
  }

  void OnWriteDone(bool ok) override {
    bool write_next = false;
    bool finish_now = false;
    {
      std::lock_guard lock(mu_);
      if (!ok && !finishing_) {
        // The consumer went away mid-write. The RPC must still be finished
        // exactly once, and OnCancel's finish() will find it already finishing.
        finishing_ = true;
        finish_deferred_ = true;
        finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
      }
      // Finishing with a flush still writes what was already acknowledged.
      if (ok && !pending_.empty()) {
        fill_locked();
        write_next = true;
      } else {
        pending_.clear();
        pending_bytes_ = 0;
        writing_ = false;
        finish_now = finish_deferred_;
        finish_deferred_ = false;
      }
    }
    if (write_next) {
      this->StartWrite(&current_);
    } else if (finish_now) {
      this->Finish(finish_status_);
    }
  }

  void OnCancel() override { finish({grpc::StatusCode::CANCELLED, "cancelled by the client"}); }

  void OnDone() override {
    bus_.detach(this);
    self_.reset();  // may destroy this
  }

 private:
  // Under mu_, pending_ not empty: moves what the next write carries into current_.
  void fill_locked() {
    if constexpr (std::is_same_v<Item, Wire>) {
      pending_bytes_ -= pending_.front().ByteSizeLong();
      current_ = std::move(pending_.front());
      pending_.pop_front();
    } else {
      current_.Clear();
      for (std::size_t n = 0; n < kMaxBatch && !pending_.empty(); ++n) {
        pending_bytes_ -= pending_.front().ByteSizeLong();
        append_to_batch(current_, std::move(pending_.front()));
        pending_.pop_front();
      }
    }
  }

  StreamBus<Item, Wire>& bus_;
  std::shared_ptr<BusStream> self_;  // gRPC's reference, until OnDone

  std::mutex mu_;
  std::deque<Item> pending_;
  std::size_t pending_bytes_ = 0;
  Wire current_;  // what is being written; touched only by the writer
  bool writing_ = false;
  bool finishing_ = false;
  bool finish_deferred_ = false;
  grpc::Status finish_status_;
};

template <class Item, class Wire = Item>
class StreamBus {
 public:
  using Stream = BusStream<Item, Wire>;

  // `rpc` names the RPC in refusals. A stream's lag buffer holds at most
  // settings.client_stream_buffer_bytes, and `max_items` items.
  StreamBus(Metrics& metrics, const Metrics::StreamBusCounters& counters, const ServiceSettings& settings,
            std::string rpc, std::size_t max_items)
      : metrics_(metrics), counters_(counters), settings_(settings), rpc_(std::move(rpc)), max_items_(max_items) {}

  // Hands the item to every open stream; returns how many took it.
  std::size_t publish(const Item& message) {
    std::vector<std::shared_ptr<Stream>> snapshot;
    {
      std::lock_guard lock(mu_);
      if (streams_.empty()) return 0;
      snapshot = streams_;
    }
    std::size_t taken = 0;
    for (const auto& stream : snapshot) {
      if (stream->push(message)) {
        ++taken;
        counters_.forwarded->Increment();
      }
    }
    return taken;
  }

  // OK, or the status to end the stream with: UNAVAILABLE when shutting
  // down, RESOURCE_EXHAUSTED at --max-client-streams.
  grpc::Status attach(std::shared_ptr<Stream> stream) {
    std::lock_guard lock(mu_);
    if (closed_) return {grpc::StatusCode::UNAVAILABLE, "server shutting down"};
    if (streams_.size() >= settings_.max_client_streams) {
      metrics_.limit_hit(Limit::client_streams);
      return {grpc::StatusCode::RESOURCE_EXHAUSTED,
              "at most " + std::to_string(settings_.max_client_streams) + " " + rpc_ + " streams may be open"};
    }
    streams_.push_back(std::move(stream));
    counters_.consumers->Increment();
    if (consumer_observer_) consumer_observer_(+1);
    return grpc::Status::OK;
  }
  void detach(Stream* stream) {
    std::lock_guard lock(mu_);
    const auto it = std::find_if(streams_.begin(), streams_.end(), [&](const auto& s) { return s.get() == stream; });
    if (it == streams_.end()) return;
    streams_.erase(it);
    counters_.consumers->Decrement();
    if (consumer_observer_) consumer_observer_(-1);
  }
  // Finishes every stream with OK once its queued messages are written, and
  // refuses new streams.
  void close_all() {
    std::vector<std::shared_ptr<Stream>> snapshot;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      snapshot = streams_;
    }
    // What was handed to the streams is written out first.
    for (const auto& s : snapshot) s->finish(grpc::Status::OK, /*flush=*/true);
  }
  std::size_t stream_count() {
    std::lock_guard lock(mu_);
    return streams_.size();
  }
  // Before any stream: told (under the bus's lock, so it must not block) of
  // every stream that attaches (+1) or detaches (-1); the Redis broker
  // subscribes to the other replicas' messages while the bus has any.
  void set_consumer_observer(std::function<void(int)> observer) { consumer_observer_ = std::move(observer); }

  const ServiceSettings& settings() const { return settings_; }
  std::size_t max_items() const { return max_items_; }
  const Metrics::StreamBusCounters& counters() const { return counters_; }

 private:
  Metrics& metrics_;
  const Metrics::StreamBusCounters& counters_;
  const ServiceSettings& settings_;
  const std::string rpc_;
  const std::size_t max_items_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Stream>> streams_;
  bool closed_ = false;
  std::function<void(int)> consumer_observer_;
};

}  // namespace notify::services
