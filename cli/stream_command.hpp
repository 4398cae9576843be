#pragma once
// `notifyctl stream`: NotifyRequests read as JSON lines, sent over one
// NotifyStream call, one result line per request, printed in input order
// (docs/notifyctl.md#stream).
#include <string>
#include <string_view>
#include <variant>

#include "cli/connection.hpp"
#include "notify/v1/notification_service.pb.h"

namespace notify::cli {

// One input line: a NotifyRequest in proto3 JSON ({"user_ids":[…],
// "notification":{"event":…,"data_json":…,"id":…}}, field names as in the
// .proto or in lowerCamelCase). Returns the request, or why the line is not one.
std::variant<v1::NotifyRequest, std::string> parse_stream_line(std::string_view line);

// Sends every non-blank line of `path` ("-" for standard input) whose
// request is at most `max_request_bytes`; stops at a stop signal
// (block_stop_signals() first). Throws UsageError when the file can't be opened.
int stream(const Connection& connection, const std::string& path, std::size_t max_request_bytes);

}  // namespace notify::cli
