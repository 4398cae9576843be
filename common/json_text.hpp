#pragma once
// Appending JSON string literals to a buffer without building a DOM: the hot
// path encodes notification frames this way.
#include <string>
#include <string_view>

namespace notify {

// Appends `text` as a quoted JSON string with the escapes RFC 8259 requires.
void append_json_string(std::string& out, std::string_view text);

}  // namespace notify
