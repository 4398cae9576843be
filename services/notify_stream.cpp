#include "services/notify_stream.hpp"

#include "services/notification_service.hpp"

namespace notify::services {

NotifyStreamCall* NotifyStreamCall::start(NotificationService& service, grpc::CallbackServerContext* context) {
  auto call = std::make_shared<NotifyStreamCall>(service, context, service.timer_context());
  call->self_ = call;
  // Authentication first, as for every RPC; the shutdown check is attach_stream's.
  call->auth_generation_ = service.auth_.generation();
  grpc::Status refusal = service.auth_.check(*context, auth::Scope::notify);
  if (refusal.ok()) {
    // Backlogged until this handler returns; the stream becomes visible to
    // shut_down() only once attached, after the read is started.
    call->StartRead(&call->request_);
    if (service.attach_stream(call.get())) return call.get();
    refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down");
  }
  call->finished_ = true;
  call->Finish(std::move(refusal));
  return call.get();
}

bool NotifyStreamCall::admissible_locked() const {
  if (unwritten_ >= kWindow) return false;
  // A stream with nothing of its own being delivered may always go on, so
  // unary calls filling the shared limit can't stall it forever.
  return delivering_ == 0 || !service_.inflight_full();
}

void NotifyStreamCall::resume_locked(Actions& a) {
  if (reader_ != Reader::parked || !admissible_locked()) return;
  reader_ = Reader::reading;
  ++starting_reads_;
  a.read = true;
}

void NotifyStreamCall::drop_results_locked() {
  if (!write_failed_ || results_.empty()) return;
  unwritten_ -= static_cast<std::size_t>(results_.size());
  results_.Clear();
}

void NotifyStreamCall::settle_locked(Actions& a) {
  if (finished_) return;
  drop_results_locked();
  if (!writing_ && !results_.empty()) {
    // Results wait for company (kFlushDelay) unless the call is winding
    // down, enough of them are there, or the reader waits for room.
    const bool now = flush_due_ || ending_ || reader_ == Reader::done || reader_ == Reader::parked ||
                     static_cast<std::size_t>(results_.size()) >= kFlushBatch;
    if (now) {
      out_.mutable_results()->Swap(&results_);
      results_.Clear();
      writing_ = true;
      flush_due_ = false;
      a.write = true;
      return;
    }
    if (!flush_scheduled_) {
      flush_scheduled_ = true;
      a.schedule_flush = true;
    }
    return;
  }
  // With a read outstanding the call may still finish once draining: its
  // OnReadDone then reports ok=false.
  const bool reads_over = reader_ == Reader::done || (ending_ && reader_ == Reader::reading);
  if (reads_over && starting_reads_ == 0 && !writing_ && delivering_ == 0) {
    finished_ = true;
    a.finish = true;
    a.status = ending_ ? end_status_ : grpc::Status::OK;
  }
}

void NotifyStreamCall::act(Actions a) {
  // The call outlives this function even if Finish runs OnDone meanwhile.
  auto keep = shared_from_this();
  if (a.write) StartWrite(&out_);
  if (a.schedule_flush) {
    // The handler holds the call: it can't end before the timer fires.
    flush_timer_.expires_after(kFlushDelay);
    flush_timer_.async_wait([self = shared_from_this()](boost::system::error_code) {
      Actions next;
      {
        std::lock_guard lock(self->mu_);
        self->flush_scheduled_ = false;
        self->flush_due_ = true;
        self->settle_locked(next);
      }
      self->act(std::move(next));
    });
  }
  if (a.read) {
    StartRead(&request_);
    Actions next;
    {
      std::lock_guard lock(mu_);
      --starting_reads_;
      settle_locked(next);
    }
    act(std::move(next));
  }
  if (a.finish) Finish(std::move(a.status));
}

void NotifyStreamCall::add_result_locked(v1::NotifyResult&& result) {
  if (write_failed_) {
    --unwritten_;
    return;
  }
  *results_.Add() = std::move(result);
}

void NotifyStreamCall::OnReadDone(bool ok) {
  Actions a;
  bool got_request = false;
  {
    std::lock_guard lock(mu_);
    if (ok && !finished_) {
      reader_ = Reader::busy;
      got_request = true;
    } else {
      // Half-closed, cancelled, or a read that outlived a shutdown's Finish.
      reader_ = Reader::done;
      settle_locked(a);
    }
  }
  if (!got_request) {
    act(std::move(a));
    return;
  }
  handle();
  next_read();
}

void NotifyStreamCall::handle() {
  bool ending;
  grpc::Status end_status;
  {
    std::lock_guard lock(mu_);
    ending = ending_;
    if (ending) end_status = end_status_;
  }
  // API keys were reloaded since the last check: is the caller's still
  // valid? (A request read while shutting down is answered UNAVAILABLE
  // whatever the key.)
  if (const std::uint64_t generation = service_.auth_.generation(); !ending && generation != auth_generation_) {
    auth_generation_ = generation;
    if (grpc::Status status = service_.auth_.check(*context_, auth::Scope::notify); !status.ok()) {
      std::lock_guard lock(mu_);
      end_locked(std::move(status));
      return;  // not handled, so no result; next_read() stops reading
    }
  }
  const std::uint64_t sequence = next_sequence_++;
  {
    std::lock_guard lock(mu_);
    ++unwritten_;
  }
  std::vector<std::string> users;
  ValidNotification n;
  grpc::Status status = ending ? end_status : service_.check_notify(request_, users, n);
  if (!status.ok()) {
    service_.metrics_.notify_stream_result(static_cast<int>(status.error_code()));
    v1::NotifyResult result;
    result.set_sequence(sequence);
    result.set_code(static_cast<int>(status.error_code()));
    result.set_error_message(status.error_message());
    std::lock_guard lock(mu_);
    add_result_locked(std::move(result));
    return;  // next_read() settles
  }
  {
    std::lock_guard lock(mu_);
    ++delivering_;
  }
  service_.take_inflight();
  std::string id = n.id;
  service_.deliver_notify(std::move(users), n,
                          [self = shared_from_this(), sequence, id = std::move(id)](broker::Outcome outcome) {
                            self->complete(sequence, id, outcome);
                          });
}

void NotifyStreamCall::end_locked(grpc::Status status) {
  if (ending_) return;  // the first reason stands
  ending_ = true;
  end_status_ = std::move(status);
}

void NotifyStreamCall::next_read() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (ending_) {
      reader_ = Reader::done;
    } else {
      reader_ = Reader::parked;
      resume_locked(a);
    }
    settle_locked(a);
  }
  act(std::move(a));
}

void NotifyStreamCall::complete(std::uint64_t sequence, const std::string& id, const broker::Outcome& outcome) {
  service_.release_inflight();
  v1::NotifyResult result;
  result.set_sequence(sequence);
  if (outcome.ok()) {
    service_.metrics_.notify_stream_result(0);
    result.set_id(id);
    result.set_delivered_connections(outcome.count);
    for (const auto& user : outcome.offline) result.add_offline_user_ids(user);
  } else {
    service_.metrics_.notify_stream_result(grpc::StatusCode::UNAVAILABLE);
    result.set_code(grpc::StatusCode::UNAVAILABLE);
    result.set_error_message(outcome.error);
  }
  Actions a;
  {
    std::lock_guard lock(mu_);
    --delivering_;
    add_result_locked(std::move(result));
    resume_locked(a);
    settle_locked(a);
  }
  act(std::move(a));
}

void NotifyStreamCall::OnWriteDone(bool ok) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    writing_ = false;
    unwritten_ -= static_cast<std::size_t>(out_.results_size());
    out_.clear_results();
    // What completed during the write goes out at once: under load the
    // writes batch by themselves.
    flush_due_ = !results_.empty();
    if (!ok) write_failed_ = true;
    drop_results_locked();
    resume_locked(a);
    settle_locked(a);
  }
  act(std::move(a));
}

void NotifyStreamCall::OnCancel() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    write_failed_ = true;
    drop_results_locked();
    resume_locked(a);  // the read then fails and the call can end
    settle_locked(a);
  }
  act(std::move(a));
}

void NotifyStreamCall::shut_down() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    end_locked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
    if (reader_ == Reader::parked) reader_ = Reader::done;
    settle_locked(a);
  }
  act(std::move(a));
}

void NotifyStreamCall::OnDone() {
  service_.detach_stream(this);
  self_.reset();  // may destroy the call
}

}  // namespace notify::services
