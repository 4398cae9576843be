#pragma once
// notifyctl's subcommands. The build_* functions turn flag values into
// requests and refuse what the gateway would refuse for certain (ids, event
// names, JSON), with a message naming the flag, by throwing UsageError; the
// others make the call, print the result and return the exit code.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/connection.hpp"
#include "notify/v1/notification_service.pb.h"

namespace notify::cli {

struct NotificationInput {
  std::string event;
  std::optional<std::string> data;        // --data, JSON text; absent means null
  std::string id;                         // --id; empty: the gateway generates one
  std::string collapse_key;               // --collapse-key; empty: none
  bool require_ack = false;               // --require-ack (notify only)
  std::uint32_t ack_timeout_ms = 0;       // --ack-timeout-ms; 0: the gateway's --ack-timeout
  bool persist = false;                   // --persist (notify only)
  std::uint32_t persist_ttl_seconds = 0;  // --persist-ttl-seconds; 0: the gateway's --inbox-ttl
};

v1::NotifyRequest build_notify(const std::vector<std::string>& users, const NotificationInput& input);
v1::BroadcastRequest build_broadcast(const std::string& topic, const NotificationInput& input);
v1::DisconnectRequest build_disconnect(const std::vector<std::string>& users, const std::string& reason);
v1::GetPresenceRequest build_presence(const std::vector<std::string>& users);

int notify(const Connection& connection, const v1::NotifyRequest& request);
int broadcast(const Connection& connection, const v1::BroadcastRequest& request);
int disconnect(const Connection& connection, const v1::DisconnectRequest& request);
int presence(const Connection& connection, const v1::GetPresenceRequest& request);

// grpc.health.v1.Health/Check for `service` ("" = the server): prints
// {"status":"..."}; exits kExitOk only for SERVING.
int health(const Connection& connection, const std::string& service);

// StreamClientMessages: one JSON line per message, flushed as it arrives,
// until a stop signal (block_stop_signals() first), `count` messages (0: no
// limit) or the end of the stream.
int tail(const Connection& connection, std::uint64_t count);
// StreamDeliveryReports, the same way: one JSON line per report.
int reports(const Connection& connection, std::uint64_t count);

}  // namespace notify::cli
