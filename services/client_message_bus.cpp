#include "services/client_message_bus.hpp"

#include <algorithm>

namespace notify::services {

ClientMessageStream* ClientMessageStream::start(ClientMessageBus& bus, Metrics& metrics,
                                                const ServiceSettings& settings) {
  auto stream = std::make_shared<ClientMessageStream>(bus, metrics, settings);
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

ClientMessageStream* ClientMessageStream::refused(ClientMessageBus& bus, Metrics& metrics,
                                                  const ServiceSettings& settings, grpc::Status status) {
  auto stream = std::make_shared<ClientMessageStream>(bus, metrics, settings);
  stream->self_ = stream;
  stream->finish(std::move(status));
  return stream.get();
}

ClientMessageStream::ClientMessageStream(ClientMessageBus& bus, Metrics& metrics, const ServiceSettings& settings)
    : bus_(bus), metrics_(metrics), settings_(settings) {}

bool ClientMessageStream::push(const v1::ClientMessage& message) {
  {
    std::lock_guard lock(mu_);
    if (finishing_) return false;
    if (writing_) {
      const std::size_t bytes = message.ByteSizeLong();
      while (!pending_.empty() && (pending_.size() >= settings_.client_stream_buffer ||
                                   pending_bytes_ + bytes > settings_.client_stream_buffer_bytes)) {
        pending_bytes_ -= pending_.front().ByteSizeLong();
        pending_.pop_front();
        metrics_.client_message_stream_dropped();
      }
      pending_.push_back(message);
      pending_bytes_ += bytes;
      return true;
    }
    writing_ = true;
    current_ = message;
  }
  // Outside the lock: gRPC may run reactions inline.
  StartWrite(&current_);
  return true;
}

void ClientMessageStream::OnWriteDone(bool ok) {
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
      current_ = std::move(pending_.front());
      pending_.pop_front();
      pending_bytes_ -= current_.ByteSizeLong();
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
    StartWrite(&current_);
  } else if (finish_now) {
    Finish(finish_status_);
  }
}

void ClientMessageStream::finish(grpc::Status status, bool flush) {
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
  Finish(finish_status_);
}

void ClientMessageStream::OnCancel() { finish({grpc::StatusCode::CANCELLED, "cancelled by the client"}); }

void ClientMessageStream::OnDone() {
  bus_.detach(this);
  self_.reset();  // may destroy this
}

std::size_t ClientMessageBus::publish(const gateway::UpstreamMessage& message) {
  std::vector<std::shared_ptr<ClientMessageStream>> snapshot;
  {
    std::lock_guard lock(mu_);
    if (streams_.empty()) return 0;
    snapshot = streams_;
  }
  v1::ClientMessage proto;
  proto.set_id(message.id);
  proto.set_user_id(message.user_id);
  proto.set_connection_id(message.connection_id);
  proto.set_data_json(message.data_json);
  proto.set_ts(message.ts_ms);
  proto.set_client_message_id(message.client_message_id);
  std::size_t taken = 0;
  for (const auto& stream : snapshot) {
    if (stream->push(proto)) {
      ++taken;
      metrics_.client_message_forwarded();
    }
  }
  return taken;
}

grpc::Status ClientMessageBus::attach(std::shared_ptr<ClientMessageStream> stream) {
  std::lock_guard lock(mu_);
  if (closed_) return {grpc::StatusCode::UNAVAILABLE, "server shutting down"};
  if (streams_.size() >= settings_.max_client_streams) {
    metrics_.limit_hit(Limit::client_streams);
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "at most " + std::to_string(settings_.max_client_streams) + " StreamClientMessages streams may be open"};
  }
  streams_.push_back(std::move(stream));
  metrics_.client_stream_consumers(1);
  if (consumer_observer_) consumer_observer_(+1);
  return grpc::Status::OK;
}

void ClientMessageBus::detach(ClientMessageStream* stream) {
  std::lock_guard lock(mu_);
  const auto it = std::find_if(streams_.begin(), streams_.end(), [&](const auto& s) { return s.get() == stream; });
  if (it == streams_.end()) return;
  streams_.erase(it);
  metrics_.client_stream_consumers(-1);
  if (consumer_observer_) consumer_observer_(-1);
}

void ClientMessageBus::close_all() {
  std::vector<std::shared_ptr<ClientMessageStream>> snapshot;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    snapshot = streams_;
  }
  // Clients were told these messages were delivered: write them out first.
  for (const auto& s : snapshot) s->finish(grpc::Status::OK, /*flush=*/true);
}

std::size_t ClientMessageBus::stream_count() {
  std::lock_guard lock(mu_);
  return streams_.size();
}

}  // namespace notify::services
