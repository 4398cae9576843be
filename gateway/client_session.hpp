#pragma once
// What every client connection does once upgraded, whatever carries its
// frames: the client protocol (subscribe, ping, refresh, upstream
// messages), its limits, the send queue and its overflow policy, the
// connection's place in its shard's indexes, token expiry and the graceful
// close. The WebSocket transport is a subclass: PlainWebSocketSession (ws://,
// the gateway's own framing) or TlsWebSocketSession (wss://, Beast's).
// Lives on its shard's event loop; every member function runs there.
#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/connection_limiter.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/protocol.hpp"
#include "gateway/send_queue.hpp"
#include "gateway/shard.hpp"
#include "gateway/subscriber.hpp"
#include "gateway/upgrade_policy.hpp"

namespace notify::gateway {

class ClientSession : public Subscriber {
 public:
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  std::string_view user_id() const override { return user_id_; }
  bool deliver(const FramePtr& frame) override {
    if (!frame->except_connection.empty() && frame->except_connection == connection_id_) return false;
    // An inbox count before the welcome: the push after it says the count.
    if (frame->unread_count && !inbox_started_) return false;
    if (frame->offset != 0) return deliver_positioned(frame);
    // Pushed from the inbox already (a frame with an offset can't be
    // dropped without a gap; the client drops that duplicate by its id).
    if (!frame->inbox_id.empty() && inbox_seen(frame->inbox_id)) return false;
    return enqueue(frame);
  }
  bool close(std::uint16_t code, std::string reason) override;
  void expire() override;

 protected:
  enum class State : std::uint8_t { handshaking, open, closing, closed };

  // A graceful close in progress (allocated only then).
  struct Closing {
    std::uint16_t code = 0;
    std::string reason;  // at most 123 bytes, cut on a UTF-8 boundary
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  ClientSession(Shard& shard, GatewayContext& context, UpgradeDecision&& decision, ConnectionLimiter::Slot slot);
  ~ClientSession() override;

  // --- what the transport provides
  // Writes `frame` now if it can without queueing (true), else false.
  virtual bool write_now(const FramePtr& frame) = 0;
  // False once frames can no longer reach the wire (the socket failed).
  virtual bool writable() const = 0;
  // A frame was queued: make sure it gets written.
  virtual void schedule_write() = 0;
  // The queue is empty and state_ is closing: send the close frame.
  virtual void send_close_frame() = 0;
  // The close timed out: drop the connection.
  virtual void abort_connection() = 0;
  virtual std::shared_ptr<ClientSession> keep_alive() = 0;

  // --- what the transport calls
  // The handshake completed: joins the shard and sends the welcome (then
  // closes with 1001 if the server is shutting down). With `welcome_out`,
  // the welcome's payload is stored there for the transport to send, and the
  // transport calls close_if_draining() once it has; it stays empty when the
  // welcome must wait for history (Redis), which then sends it as a reply.
  void opened(std::string* welcome_out = nullptr);
  void close_if_draining();
  // A complete message from the client.
  void on_client_message(bool text, std::string_view payload);
  // The client sent its close frame: it takes nothing more.
  void on_client_close() { leave_shard(); }
  // The queue drained (the transport wrote everything).
  void on_queue_empty() {
    if (state_ == State::closing && !close_sent_) send_close_frame();
  }
  // The connection takes nothing more (the client closed, or the read side
  // ended): leaves the indexes, frees what waits in the queue.
  void leave_shard();
  // Bounds the rest of the connection's life by --close-timeout (once).
  void arm_close_timer();
  void cancel_close_timer();
  bool enqueue(const FramePtr& frame);
  // History: a frame with a place in a stream passes the stream's floor,
  // or waits while a resume is announced.
  bool deliver_positioned(const FramePtr& frame);
  const std::string& connection_id() const { return connection_id_; }

  // What a delivery touches comes first.
  State state_ = State::handshaking;
  bool close_sent_ = false;
  bool registered_ = false;
  SendQueue queue_;
  LoopMetrics& metrics_;
  Shard& shard_;
  GatewayContext& ctx_;
  std::unique_ptr<Closing> closing_;

 private:
  void handle_text(std::string_view text);
  void handle_message(protocol::Request& request);
  void handle_subscribe(protocol::Request& request);
  void handle_refresh(protocol::Request& request);
  void handle_resume(protocol::Request& request);
  void handle_ack(protocol::Request& request);
  void handle_inbox(protocol::Request& request);
  void handle_mark_read(protocol::Request& request);
  // Once the welcome (and a resume, if announced) is out: push what waited
  // in the inbox, then the unread count. Once per connection.
  void schedule_inbox();
  void push_inbox(std::vector<InboxEntry> entries, std::uint64_t unread);
  bool inbox_seen(const std::string& id) const {
    return std::find(inbox_ids_.begin(), inbox_ids_.end(), id) != inbox_ids_.end();
  }
  void remember_inbox_id(const std::string& id);
  // Acks owed for the notifications held back (about to be discarded).
  void owe_held_acks();
  // require_ack: the connection now owes an ack for `frame` (queued or sent).
  void track_ack(const Frame& frame);
  struct PendingAck {
    std::string id;
    std::int64_t published_ms;
    std::int64_t deadline_ms;
  };
  void report(const PendingAck& pending, DeliveryReport::Outcome outcome, std::int64_t now_ms);
  // Reports every pending ack whose deadline passed; re-arms for the next.
  void expire_acks();
  void arm_ack_timer();
  // Ends the hold: what was held goes out, past the floors.
  void release_held();
  protocol::Position* floor_of(std::string_view stream);
  bool has_history() const { return ctx_.history != nullptr && !history_off_; }
  void send_welcome(std::string* welcome_out);
  // History is being read for this connection: live frames are held and
  // client messages wait (deferred_) until end_wait().
  void begin_wait();
  void end_wait();
  // Runs `f` on the loop if the session is still open: at once when `self`
  // is null (a synchronous backend answered inside the call), else posted.
  template <class F>
  void in_loop(std::shared_ptr<ClientSession> self, F&& f);
  bool may_subscribe(std::string_view topic) const;
  bool take_rate_token();
  void track_expiry();
  void reply(std::string payload);
  void reject(const protocol::Error& error);

  std::string user_id_;
  std::string connection_id_;
  std::vector<std::string> topics_;
  std::int64_t expires_at_;  // the token's exp, unix seconds; 0 = never
  bool all_topics_;          // development identity
  auth::TopicGrants granted_topics_;
  ConnectionLimiter::Slot slot_;
  std::optional<Shard::ExpiryHandle> expiry_;
  double rate_tokens_;  // token bucket for client frames
  std::chrono::steady_clock::time_point rate_refilled_;
  std::size_t invalid_messages_ = 0;

  // History on: per stream followed (the user's own, "all", each topic), the
  // last offset this connection was sent, or the head when it started to
  // follow; frames at or below it are not sent again.
  std::vector<protocol::Position> floors_;
  // Live notifications wait in held_ (bounded like the send queue) while
  // history is read for the connection, and while an announced resume has
  // not come yet.
  static constexpr std::size_t kMaxDeferred = 16;
  bool holding_ = false;
  bool waiting_ = false;
  bool awaiting_resume_ = false;  // ?resume=1, and no message yet
  bool resumed_ = false;
  bool history_off_ = false;  // history could not be reached when the connection opened
  std::vector<std::string> deferred_;
  std::vector<FramePtr> held_;
  std::size_t held_bytes_ = 0;

  // require_ack: what this connection was sent and has not acknowledged, in
  // the order sent (at most kMaxPendingAcks: beyond, the oldest is reported
  // timed out at once). One timer, armed for the earliest deadline.
  static constexpr std::size_t kMaxPendingAcks = 1024;
  std::vector<PendingAck> pending_acks_;
  std::unique_ptr<boost::asio::steady_timer> ack_timer_;
  std::int64_t ack_timer_at_ = 0;  // the deadline it is armed for; 0: not armed

  // The inbox: whether its push started; the ids of the last persisted
  // notifications this connection was sent (a ring of kInboxIdsKept).
  static constexpr std::size_t kInboxIdsKept = 64;
  bool inbox_started_ = false;
  bool welcomed_ = false;
  std::vector<std::string> inbox_ids_;
  std::size_t inbox_ids_next_ = 0;
};

}  // namespace notify::gateway
