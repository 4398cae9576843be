#include "services/request_validation.hpp"

#include <unordered_set>

#include "common/ids.hpp"
#include "common/validation.hpp"
#include "gateway/protocol.hpp"

namespace notify::services {
namespace {

grpc::Status invalid(std::string message) { return {grpc::StatusCode::INVALID_ARGUMENT, std::move(message)}; }

}  // namespace

grpc::Status validate_notification(const v1::Notification& n, bool present, const ServiceSettings& settings,
                                   ValidNotification& out) {
  if (!present) return invalid("notification is required");
  if (!rules::valid_event(n.event())) {
    return invalid("notification.event must be 1 to 64 characters from [A-Za-z0-9_.:-]");
  }
  if (n.data_json().size() > settings.max_payload_bytes) {
    return invalid("notification.data_json is " + std::to_string(n.data_json().size()) + " bytes; the limit is " +
                   std::to_string(settings.max_payload_bytes));
  }
  if (!n.data_json().empty()) {
    if (auto problem = gateway::protocol::check_json(n.data_json())) {
      return invalid("notification.data_json is not valid JSON: " + *problem);
    }
  }
  if (!n.id().empty() && !rules::valid_notification_id(n.id())) {
    return invalid("notification.id must be empty or 1 to 128 characters from [A-Za-z0-9_.:-]");
  }
  if (!n.collapse_key().empty() && !rules::valid_notification_id(n.collapse_key())) {
    return invalid("notification.collapse_key must be empty or 1 to 128 characters from [A-Za-z0-9_.:-]");
  }
  if (!n.require_ack() && n.ack_timeout_ms() != 0) {
    return invalid("notification.ack_timeout_ms is set but notification.require_ack is not");
  }
  if (n.ack_timeout_ms() > kMaxAckTimeoutMs) {
    return invalid("notification.ack_timeout_ms is " + std::to_string(n.ack_timeout_ms()) + "; the limit is " +
                   std::to_string(kMaxAckTimeoutMs));
  }
  if (n.persist() && !settings.inbox) {
    return invalid("notification.persist needs the inbox, which this gateway runs without (--inbox-size 0)");
  }
  if (!n.persist() && n.persist_ttl_seconds() != 0) {
    return invalid("notification.persist_ttl_seconds is set but notification.persist is not");
  }
  if (n.persist_ttl_seconds() > kMaxInboxTtlS) {
    return invalid("notification.persist_ttl_seconds is " + std::to_string(n.persist_ttl_seconds()) +
                   "; the limit is " + std::to_string(kMaxInboxTtlS));
  }
  out.persist_ttl_s = !n.persist() ? 0 : n.persist_ttl_seconds() != 0 ? n.persist_ttl_seconds() : settings.inbox_ttl_s;
  out.ack_timeout_ms = !n.require_ack() ? 0 : n.ack_timeout_ms() != 0 ? n.ack_timeout_ms() : settings.ack_timeout_ms;
  out.id = n.id().empty() ? new_uuid_v7() : n.id();
  out.event = n.event();
  out.data_json = n.data_json();
  out.collapse_key = n.collapse_key();
  return grpc::Status::OK;
}

grpc::Status validate_user_ids(const google::protobuf::RepeatedPtrField<std::string>& ids,
                               const ServiceSettings& settings, std::vector<std::string>& out) {
  if (ids.empty()) return invalid("user_ids must name at least one user");
  if (static_cast<std::size_t>(ids.size()) > settings.max_ids_per_request) {
    return invalid("user_ids has " + std::to_string(ids.size()) + " entries; the limit is " +
                   std::to_string(settings.max_ids_per_request));
  }
  std::unordered_set<std::string_view> seen;
  out.clear();
  out.reserve(static_cast<std::size_t>(ids.size()));
  for (int i = 0; i < ids.size(); ++i) {
    const std::string& id = ids.Get(i);
    if (!rules::valid_user_id(id)) {
      return invalid("user_ids[" + std::to_string(i) + "] must be 1 to 128 characters from [A-Za-z0-9_.:@-]");
    }
    if (seen.insert(id).second) out.push_back(id);
  }
  return grpc::Status::OK;
}

grpc::Status validate_broadcast_topic(const std::string& topic) {
  if (!topic.empty() && !rules::valid_topic(topic)) {
    return invalid("topic must be empty (everyone) or 1 to 128 characters from [A-Za-z0-9_.:@/-]");
  }
  return grpc::Status::OK;
}

grpc::Status validate_close_reason(const std::string& reason) {
  if (reason.size() > rules::kMaxCloseReasonBytes) {
    return invalid("reason is " + std::to_string(reason.size()) + " bytes; a close reason holds at most 123");
  }
  if (!rules::valid_utf8(reason)) return invalid("reason must be valid UTF-8");
  return grpc::Status::OK;
}

grpc::Status validate_broadcast_notification(const ValidNotification& n) {
  if (n.ack_timeout_ms != 0) {
    return invalid("notification.require_ack is for Notify and NotifyStream only: acks are per user connection");
  }
  if (n.persist_ttl_s != 0) {
    return invalid("notification.persist is for Notify and NotifyStream only: the inbox is per user");
  }
  return grpc::Status::OK;
}

}  // namespace notify::services
