#pragma once
// Checks admin API requests against the documented rules. Each failure is an
// INVALID_ARGUMENT status whose message names the field and the rule.
#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>
#include <vector>

#include "notify/v1/notification_service.pb.h"
#include "services/settings.hpp"

namespace notify::services {

struct ValidNotification {
  std::string id;  // the request's id, or a fresh UUIDv7
  std::string event;
  std::string data_json;             // validated JSON; empty means null
  std::string collapse_key;          // empty: none
  std::uint32_t ack_timeout_ms = 0;  // require_ack: the timeout (the default filled in); 0: no ack asked
  std::uint32_t persist_ttl_s = 0;   // persist: the time in the inbox (the default filled in); 0: not kept
};

grpc::Status validate_notification(const v1::Notification& n, bool present, const ServiceSettings& settings,
                                   ValidNotification& out);

// Validates and de-duplicates user ids, keeping first-seen order.
grpc::Status validate_user_ids(const google::protobuf::RepeatedPtrField<std::string>& ids,
                               const ServiceSettings& settings, std::vector<std::string>& out);

grpc::Status validate_broadcast_topic(const std::string& topic);

// Broadcast: a notification that asks for acks or the inbox is refused (both are per user).
grpc::Status validate_broadcast_notification(const ValidNotification& n);

// A close reason: empty or at most 123 bytes of UTF-8.
grpc::Status validate_close_reason(const std::string& reason);

}  // namespace notify::services
