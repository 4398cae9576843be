#pragma once
// One NotifyStream call: a bidirectional stream whose every NotifyRequest is
// checked and delivered like a Notify call, and answered with a NotifyResult
// batched into the next NotifyStreamResponse.
//
// Flow control: the stream issues its next read only while fewer than
// kWindow requests lack a written result and, unless none of its own is
// being delivered, the service's shared in-flight count is below
// --max-inflight-requests. Otherwise it waits ("parked") and the first
// result or finished write that frees room starts the read. HTTP/2 flow
// control then holds the sender back; nothing is refused.
//
// Threads: reactions run on gRPC threads, results arrive on event loop
// threads (or inline when no user is connected). All state is under mu_;
// gRPC operations are started after releasing it, which is why the state
// machine counts reads being started (a Finish must not overtake one).
#include <grpcpp/grpcpp.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include "broker/broker.hpp"
#include "notify/v1/notification_service.grpc.pb.h"

namespace notify::services {

class NotificationService;

class NotifyStreamCall final : public grpc::ServerBidiReactor<v1::NotifyRequest, v1::NotifyStreamResponse>,
                               public std::enable_shared_from_this<NotifyStreamCall> {
 public:
  // Requests read whose results are not written yet, per stream.
  static constexpr std::size_t kWindow = 1024;
  // A result waits at most this long for others to share its write, unless
  // kFlushBatch are ready or a write just finished: at low rates one write
  // (and one completion on a gRPC thread) per result would cost more than
  // the delivery itself.
  static constexpr std::chrono::milliseconds kFlushDelay{1};
  static constexpr std::size_t kFlushBatch = 64;

  // Authenticates the call (scope notify) and opens a stream that starts
  // reading, or one that ends at once with the refusal. Owned by itself
  // until OnDone.
  static NotifyStreamCall* start(NotificationService& service, grpc::CallbackServerContext* context);

  // `timers`: an event loop's context, for the flush timer.
  NotifyStreamCall(NotificationService& service, grpc::CallbackServerContext* context, boost::asio::io_context& timers)
      : service_(service), context_(context), flush_timer_(timers) {}

  // The gateway is shutting down: read nothing more, answer what was read,
  // then end with UNAVAILABLE.
  void shut_down();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  enum class Reader { reading, busy, parked, done };

  // What to do once mu_ is released, in this order.
  struct Actions {
    bool write = false;           // StartWrite(&out_)
    bool schedule_flush = false;  // a write in kFlushDelay
    bool read = false;            // StartRead(&request_), then settle again
    bool finish = false;          // Finish(status): nothing touches the call after it
    grpc::Status status;
  };

  // The request in request_ (the reader is busy): deliver it or record its
  // error, unless the caller's API key was revoked meanwhile: then the
  // stream ends with the refusal and the request is not handled.
  void handle();
  // Reads nothing more; once the rest is answered the call ends with `status`.
  void end_locked(grpc::Status status);
  // After handle(): read the next request, wait for room, or stop.
  void next_read();
  void complete(std::uint64_t sequence, const std::string& id, const broker::Outcome& outcome);
  void add_result_locked(v1::NotifyResult&& result);
  // Room for one more request.
  bool admissible_locked() const;
  // Starts the read a parked stream waits for, if there is room now.
  void resume_locked(Actions& a);
  // Once writes failed, results are dropped instead of waiting.
  void drop_results_locked();
  // Starts a write if results wait and none is in flight; finishes when
  // nothing is left to do.
  void settle_locked(Actions& a);
  void act(Actions a);

  NotificationService& service_;
  grpc::CallbackServerContext* context_;    // valid until OnDone
  std::shared_ptr<NotifyStreamCall> self_;  // released in OnDone
  std::uint64_t auth_generation_ = 0;       // of the API keys last checked; reader only

  v1::NotifyRequest request_;  // touched only by the reader
  std::uint64_t next_sequence_ = 0;

  std::mutex mu_;
  Reader reader_ = Reader::reading;
  int starting_reads_ = 0;                                        // StartRead calls not returned yet
  std::size_t unwritten_ = 0;                                     // requests read whose result isn't written
  std::size_t delivering_ = 0;                                    // requests the broker hasn't answered
  google::protobuf::RepeatedPtrField<v1::NotifyResult> results_;  // waiting for a write
  v1::NotifyStreamResponse out_;                                  // the write in flight
  bool writing_ = false;
  bool flush_scheduled_ = false;           // flush_timer_ is waiting
  bool flush_due_ = false;                 // the next settle writes whatever waits
  boost::asio::steady_timer flush_timer_;  // armed only by whoever set flush_scheduled_
  bool write_failed_ = false;              // cancelled or broken: results are dropped
  bool ending_ = false;                    // shutdown or revoked key: read nothing more
  grpc::Status end_status_;
  bool finished_ = false;
};

}  // namespace notify::services
