#include "cli/commands.hpp"

#include <cstdlib>
#include <iostream>
#include <type_traits>

#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "cli/stop_signals.hpp"
#include "common/json_text.hpp"
#include "common/validation.hpp"
#include "grpc/health/v1/health.grpc.pb.h"
#include "notify/v1/notification_service.grpc.pb.h"

namespace notify::cli {
namespace {

void check_users(const std::vector<std::string>& users) {
  if (users.empty()) throw UsageError("--user is required: name at least one user");
  for (const auto& user : users) {
    if (!rules::valid_user_id(user)) {
      throw UsageError("--user \"" + user + "\" is not a user id (1 to 128 characters from [A-Za-z0-9_.:@-])");
    }
  }
}

v1::Notification build_notification(const NotificationInput& input) {
  if (!rules::valid_event(input.event)) {
    throw UsageError("--event \"" + input.event + "\" is not an event name (1 to 64 characters from [A-Za-z0-9_.:-])");
  }
  if (!input.id.empty() && !rules::valid_notification_id(input.id)) {
    throw UsageError("--id \"" + input.id + "\" is not a notification id (1 to 128 characters from [A-Za-z0-9_.:-])");
  }
  if (!input.collapse_key.empty() && !rules::valid_notification_id(input.collapse_key)) {
    throw UsageError("--collapse-key \"" + input.collapse_key +
                     "\" is not a collapse key (1 to 128 characters from [A-Za-z0-9_.:-])");
  }
  if (input.ack_timeout_ms != 0 && !input.require_ack) {
    throw UsageError("--ack-timeout-ms needs --require-ack");
  }
  if (input.persist_ttl_seconds != 0 && !input.persist) {
    throw UsageError("--persist-ttl-seconds needs --persist");
  }
  v1::Notification n;
  n.set_event(input.event);
  n.set_id(input.id);
  n.set_collapse_key(input.collapse_key);
  n.set_require_ack(input.require_ack);
  n.set_ack_timeout_ms(input.ack_timeout_ms);
  n.set_persist(input.persist);
  n.set_persist_ttl_seconds(input.persist_ttl_seconds);
  if (input.data) {
    const std::string& data = *input.data;
    if (data.empty()) throw UsageError("--data is empty: give a JSON document, e.g. '{\"post\":42}' or null");
    if (auto problem = check_json(data)) {
      std::string message = "--data is not valid JSON: " + *problem;
      // Text that doesn't open an object, array or string was probably meant as one.
      const auto start = data.find_first_not_of(" \t\r\n");
      if (start == std::string::npos || std::string_view("{[\"").find(data[start]) == std::string_view::npos) {
        message += " (a string needs JSON quotes: --data '\"text\"')";
      }
      throw UsageError(message);
    }
    n.set_data_json(data);
  }
  return n;
}

template <typename Request, typename Response>
using UnaryMethod = grpc::Status (v1::NotificationService::Stub::*)(grpc::ClientContext*, const Request&, Response*);

template <typename Request, typename Response>
int call(const Connection& connection, const char* command, UnaryMethod<Request, Response> method,
         const Request& request) {
  auto stub = v1::NotificationService::NewStub(connection.channel());
  grpc::ClientContext context;
  connection.prepare(context);
  Response response;
  const grpc::Status status = ((*stub).*method)(&context, request, &response);
  return report(command, status, response);
}

}  // namespace

v1::NotifyRequest build_notify(const std::vector<std::string>& users, const NotificationInput& input) {
  check_users(users);
  v1::NotifyRequest request;
  for (const auto& user : users) request.add_user_ids(user);
  *request.mutable_notification() = build_notification(input);
  return request;
}

v1::BroadcastRequest build_broadcast(const std::string& topic, const NotificationInput& input) {
  if (!topic.empty() && !rules::valid_topic(topic)) {
    throw UsageError("--topic \"" + topic + "\" is not a topic (1 to 128 characters from [A-Za-z0-9_.:@/-])");
  }
  v1::BroadcastRequest request;
  request.set_topic(topic);
  *request.mutable_notification() = build_notification(input);
  return request;
}

v1::DisconnectRequest build_disconnect(const std::vector<std::string>& users, const std::string& reason) {
  check_users(users);
  if (reason.size() > rules::kMaxCloseReasonBytes) {
    throw UsageError("--reason is " + std::to_string(reason.size()) + " bytes; a close reason holds at most " +
                     std::to_string(rules::kMaxCloseReasonBytes));
  }
  if (!rules::valid_utf8(reason)) throw UsageError("--reason is not valid UTF-8");
  v1::DisconnectRequest request;
  for (const auto& user : users) request.add_user_ids(user);
  request.set_reason(reason);
  return request;
}

v1::GetPresenceRequest build_presence(const std::vector<std::string>& users) {
  check_users(users);
  v1::GetPresenceRequest request;
  for (const auto& user : users) request.add_user_ids(user);
  return request;
}

int notify(const Connection& connection, const v1::NotifyRequest& request) {
  return call(connection, "notify", &v1::NotificationService::Stub::Notify, request);
}

int broadcast(const Connection& connection, const v1::BroadcastRequest& request) {
  return call(connection, "broadcast", &v1::NotificationService::Stub::Broadcast, request);
}

int disconnect(const Connection& connection, const v1::DisconnectRequest& request) {
  return call(connection, "disconnect", &v1::NotificationService::Stub::Disconnect, request);
}

int presence(const Connection& connection, const v1::GetPresenceRequest& request) {
  return call(connection, "presence", &v1::NotificationService::Stub::GetPresence, request);
}

int health(const Connection& connection, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(connection.channel());
  grpc::ClientContext context;
  connection.prepare(context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  const int code = report("health", status, response);
  if (code != kExitOk) return code;
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk : kExitNegative;
}

namespace {

// A server-streaming call printed one JSON line per message (tail), or per
// report of each batch (reports).
template <class Message, class Open>
int print_stream(const Connection& connection, std::uint64_t count, const char* command, Open open) {
  auto stub = v1::NotificationService::NewStub(connection.channel());
  grpc::ClientContext context;
  connection.prepare(context, false);

  // A stop signal cancels the call, which ends the read loop below; a
  // second one ends the process, should the call not end.
  SignalWatcher signals([&](int signal, int nth) {
    if (nth > 1) std::_Exit(128 + signal);
    context.TryCancel();
  });

  auto reader = open(*stub, context);
  Message message;
  std::uint64_t received = 0;
  bool limit_reached = false;
  const auto print = [&](const google::protobuf::Message& m) {
    std::cout << to_json(m) << '\n';
    return count != 0 && ++received == count;
  };
  while (!limit_reached && reader->Read(&message)) {
    if constexpr (std::is_same_v<Message, v1::DeliveryReports>) {
      for (const auto& report : message.reports()) {
        if ((limit_reached = print(report))) break;
      }
    } else {
      limit_reached = print(message);
    }
    std::cout.flush();  // each line as it arrives
    if (limit_reached) context.TryCancel();
  }
  const grpc::Status status = reader->Finish();
  if (signals.first_signal() != 0 || limit_reached) return kExitOk;
  if (status.ok()) {
    std::cerr << "notifyctl " << command << ": the gateway ended the stream (it is shutting down)\n";
    return kExitOk;
  }
  return report_failure(command, status);
}

}  // namespace

int tail(const Connection& connection, std::uint64_t count) {
  return print_stream<v1::ClientMessage>(
      connection, count, "tail", [](v1::NotificationService::Stub& stub, grpc::ClientContext& context) {
        return stub.StreamClientMessages(&context, v1::StreamClientMessagesRequest{});
      });
}

int reports(const Connection& connection, std::uint64_t count) {
  return print_stream<v1::DeliveryReports>(
      connection, count, "reports", [](v1::NotificationService::Stub& stub, grpc::ClientContext& context) {
        return stub.StreamDeliveryReports(&context, v1::StreamDeliveryReportsRequest{});
      });
}

}  // namespace notify::cli
