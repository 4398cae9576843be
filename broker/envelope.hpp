#pragma once
// What replicas send each other through Redis channels: a small JSON object
// whose "data" member carries the notification's JSON as a string, exactly
// as the backend wrote it. Everything decoded is checked like any input (a
// replica can't trust what another wrote, or what someone PUBLISHed by hand):
// a malformed envelope is refused with the reason, never delivered.
// Pure functions; thread-safe.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/broker.hpp"
#include "gateway/protocol.hpp"
#include "gateway/upstream.hpp"

namespace notify::broker {

struct Envelope {
  enum class Kind { publication, disconnect, client_message, probe, report, unread };
  // unread: a user's inbox count changed (written by the Lua scripts).
  struct Unread {
    std::uint64_t count = 0;
    std::string except_connection;  // empty: every connection of the user
  };
  Kind kind = Kind::publication;
  std::string node;                  // the sending replica's id
  Publication publication;           // publication
  std::string reason;                // disconnect: the close reason
  gateway::UpstreamMessage message;  // client_message
  gateway::DeliveryReport report;    // report
  Unread unread;                     // unread
  std::uint64_t probe = 0;           // probe: its sequence number
  // publication: its place in history, added by the publish script ("st",
  // "ep", "o"); offset 0 when history is off. Never encoded here.
  gateway::protocol::Position position;
};

std::string encode(const Envelope& envelope);

// The envelope, or nullopt with `why` set. `max_data_bytes` bounds the
// carried JSON (the receiving replica's own payload limit).
std::optional<Envelope> decode(std::string_view text, std::size_t max_data_bytes, std::string& why);

}  // namespace notify::broker
