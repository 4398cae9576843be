#pragma once
// The seam between the admin API and delivery: services publish through a
// Broker and never see how many replicas there are. Two implementations:
// LocalBroker (one process, the in-process hub; the default) and RedisBroker
// (--redis-url: every replica subscribes to the Redis channels its own
// connections need, docs/architecture.md#the-broker).
//
// Guarantees, the same for both unless noted:
// * At most once. A publication reaches each addressed connection once or
//   not at all (a slow consumer's policy may drop it; with Redis, anything in
//   flight while a replica's pub/sub connection is down is lost: Redis
//   pub/sub keeps nothing).
// * Order. Publications to one user (or one topic) that one replica accepts
//   in order are delivered in that order on every replica.
// * Answers. Every call's callback runs exactly once, on a thread of the
//   broker's choosing (an event loop, the broker's thread, or the calling
//   thread), and must not block. With Redis, a call answers `error` within
//   about a second when Redis can't take it: never a hang, and never a
//   partial publish reported as success.
// * Counts. LocalBroker counts the connections that took the frame.
//   RedisBroker counts, at publish time, the connections the presence table
//   lists on the replicas that are alive (docs/api.md says what that misses).
//   Outcome::offline comes from the same source.
//
// Thread-safe: every method may be called from any thread.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace notify::broker {

// What a backend published, before it is encoded for the wire; each replica
// encodes it once for all its recipients.
struct Publication {
  std::string id;
  std::string event;
  std::string topic;      // empty: none (Notify) or everyone (Broadcast)
  std::string data_json;  // valid JSON text; empty means null
  std::int64_t ts_ms = 0;
  std::string collapse_key;  // empty: none; else replaces older waiting frames with the same key and topic
  // require_ack: unix ms by which each connection must acknowledge it; 0: no ack asked.
  std::int64_t ack_deadline_ms = 0;
  // persist: unix ms until which it stays in the users' inboxes; 0: not kept.
  std::int64_t inbox_expires_ms = 0;
};

struct Outcome {
  std::string error;  // empty: success; otherwise why the broker could not take the call (UNAVAILABLE)
  std::uint32_t count = 0;
  // notify() only: the addressed users with no connection anywhere at
  // publish time, in the order they were addressed (LocalBroker: on no event
  // loop; RedisBroker: counted on no live replica by the presence table).
  std::vector<std::string> offline;
  bool ok() const { return error.empty(); }
};

class Broker {
 public:
  using Done = std::function<void(Outcome)>;
  // counts[i]: connections of users[i]; empty when `error` is set.
  using PresenceDone = std::function<void(std::string error, std::vector<std::uint32_t> counts)>;

  virtual ~Broker() = default;

  // To every connection of the users (ids unique, already validated).
  virtual void notify(std::vector<std::string> users, Publication publication, Done done) = 0;
  // To every subscriber of publication.topic, or every connection when empty.
  virtual void broadcast(Publication publication, Done done) = 0;
  // Closes every connection of the users with 4000 and `reason`.
  virtual void disconnect(std::vector<std::string> users, std::string reason, Done done) = 0;
  virtual void presence(std::vector<std::string> users, PresenceDone done) = 0;
};

}  // namespace notify::broker
