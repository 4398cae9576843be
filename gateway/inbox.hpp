#pragma once
// The inbox (docs/protocol.md#inbox): notifications sent with `persist`
// stay in their user's inbox until read or expired. One a user did not
// receive live (no connection at the time) is "pending": it is pushed to the
// user's next connection. The unread count is what is in the inbox; every
// change is pushed to the user's connections as {"type":"unread"}.
//
// InboxBackend is what connections ask of it, wherever it lives: in this
// process (Inbox, below, filled by broker::LocalBroker) or in Redis
// (broker::RedisBroker, filled by the publish script itself), so that it is
// the same on every replica. Delivery is at least once: around a connect a
// notification can come both live and from the inbox (clients de-duplicate
// on the id; a connection never gets one id twice from the gateway itself
// unless the two copies are a live frame with a history offset and a push).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace notify::gateway {

class Hub;

struct InboxEntry {
  std::string id;
  std::int64_t ts_ms = 0;       // published (the notification's "ts"): the inbox's order
  std::int64_t expires_ms = 0;  // unix ms; gone after
  std::string payload;          // the notification frame's JSON ("inbox": true, no stream position)
};

// list()'s error when `before` names no entry of the inbox (read, expired).
inline constexpr std::string_view kInboxNotFound = "not_found";

// Limits of one push or one page, so either fits a send queue.
inline constexpr std::size_t kInboxPageItems = 50;
inline constexpr std::size_t kInboxPageBytes = 256 * 1024;

// Thread-safe; callbacks run once, on any thread (sessions post back to
// their loop); `error` set: the inbox can't be reached now.
class InboxBackend {
 public:
  using CountDone = std::function<void(std::string error, std::uint64_t unread)>;
  // Entries newest first for list(), oldest first for take_pending().
  using EntriesDone =
      std::function<void(std::string error, std::vector<InboxEntry> entries, std::uint64_t unread, bool more)>;

  virtual ~InboxBackend() = default;
  virtual bool synchronous() const = 0;
  // A connection opened: the pending entries (at most a page, oldest first),
  // no longer pending, and the unread count.
  virtual void take_pending(std::string user, EntriesDone done) = 0;
  // The connection that took them closed before they could be sent:
  // pending again (those still in the inbox).
  virtual void restore_pending(std::string user, std::vector<std::string> ids) = 0;
  // A page of the inbox, newest first, after (older than) `before` (an id;
  // empty: from the newest; not in the inbox: error kInboxNotFound); `more`:
  // older ones follow.
  virtual void list(std::string user, std::string before, std::size_t limit, EntriesDone done) = 0;
  // Marks `ids` (or everything, with `all`) read: they leave the inbox. The
  // user's connections but `except_connection` get the new count.
  virtual void mark_read(std::string user, std::vector<std::string> ids, bool all, std::string except_connection,
                         CountDone done) = 0;
};

// {"type":"unread","count":N} (with the request's id when it answers one).
std::string encode_unread(std::uint64_t count, std::string_view id_json = {});
// Sends `count` to every connection of `user` but `except_connection`.
void push_unread(Hub& hub, const std::string& user, std::uint64_t count, std::string except_connection = {});

// The inbox of a single process. Bounded per user by `max_entries` (the
// oldest leave first); expired entries leave when the user's inbox is next
// touched, and prune() sweeps the rest.
class Inbox final : public InboxBackend {
 public:
  Inbox(Hub& hub, std::size_t max_entries) : hub_(hub), max_entries_(max_entries) {}

  bool synchronous() const override { return true; }
  // Before the notification is published: keeps it for each user, pending.
  // The same id again replaces the entry.
  void add(const std::vector<std::string>& users, const InboxEntry& entry);
  // After it was published: no longer pending for the users that were
  // online (not in `offline`); each user's connections get the new count.
  void settle(const std::vector<std::string>& users, const std::vector<std::string>& offline, const std::string& id);
  void take_pending(std::string user, EntriesDone done) override;
  void restore_pending(std::string user, std::vector<std::string> ids) override;
  void list(std::string user, std::string before, std::size_t limit, EntriesDone done) override;
  void mark_read(std::string user, std::vector<std::string> ids, bool all, std::string except_connection,
                 CountDone done) override;

  // Drops what expired; forgets empty inboxes. Returns the entries kept.
  std::size_t prune(std::int64_t now_ms);

 private:
  struct Kept {
    InboxEntry entry;
    bool pending = true;
  };
  using UserInbox = std::vector<Kept>;  // oldest first (by ts, then arrival)

  // Under mu_: the user's inbox without its expired entries (null if none).
  UserInbox* live(const std::string& user, std::int64_t now_ms);

  Hub& hub_;
  const std::size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::string, UserInbox> users_;
};

}  // namespace notify::gateway
