#pragma once
// What notifyctl prints: responses as one line of proto3 JSON on stdout
// (the mapping grpcurl uses: lowerCamelCase names, 64-bit integers as
// strings, enums by name, fields at their default value included), and
// failures on stderr as "notifyctl <command>: <STATUS_NAME>: <message>".
#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

namespace notify::cli {

std::string to_json(const google::protobuf::Message& message);

// "OK", "INVALID_ARGUMENT", ... ; "CODE_<n>" for a number gRPC doesn't define.
std::string status_name(int code);

// Prints `status` on stderr for `command` and returns the exit code for it.
int report_failure(std::string_view command, const grpc::Status& status);

// Prints the response, or the failure; returns the exit code.
int report(std::string_view command, const grpc::Status& status, const google::protobuf::Message& response);

}  // namespace notify::cli
