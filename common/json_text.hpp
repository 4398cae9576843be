#pragma once
// JSON text without a DOM: appending string literals to a buffer (the hot
// path encodes notification frames this way), and the check every JSON
// document from outside goes through (client frames, Notification.data_json,
// notifyctl's --data), so all of them agree on what is valid.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace notify {

// Deepest nesting of arrays and objects accepted in any JSON document.
inline constexpr std::size_t kMaxJsonDepth = 64;

// Appends `text` as a quoted JSON string with the escapes RFC 8259 requires.
void append_json_string(std::string& out, std::string_view text);

// Checks that `json` is one well-formed JSON value nested at most
// kMaxJsonDepth deep. Returns an explanation on failure.
std::optional<std::string> check_json(std::string_view json);

}  // namespace notify
