#pragma once
// The naming rules shared by the WebSocket protocol and the gRPC API, so a
// user id or topic valid on one side is valid on the other.
#include <cstddef>
#include <string_view>

namespace notify::rules {

inline constexpr std::size_t kMaxUserIdLength = 128;
inline constexpr std::size_t kMaxTopicLength = 128;
inline constexpr std::size_t kMaxEventLength = 64;
inline constexpr std::size_t kMaxNotificationIdLength = 128;
inline constexpr std::size_t kMaxCloseReasonBytes = 123;  // RFC 6455 control frame limit

// 1..128 characters from [A-Za-z0-9_.:@-].
bool valid_user_id(std::string_view id);
// 1..128 characters from [A-Za-z0-9_.:@/-].
bool valid_topic(std::string_view topic);
// 1..64 characters from [A-Za-z0-9_.:-].
bool valid_event(std::string_view event);
// 1..128 characters from [A-Za-z0-9_.:-].
bool valid_notification_id(std::string_view id);
// Well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view text);

}  // namespace notify::rules
