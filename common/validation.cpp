#include "validation.hpp"

namespace notify::rules {
namespace {

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool matches(std::string_view text, std::size_t max_length, std::string_view extra) {
  if (text.empty() || text.size() > max_length) return false;
  for (char c : text) {
    if (!alnum(c) && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

bool valid_user_id(std::string_view id) { return matches(id, kMaxUserIdLength, "_.:@-"); }
bool valid_topic(std::string_view topic) { return matches(topic, kMaxTopicLength, "_.:@/-"); }
bool valid_event(std::string_view event) { return matches(event, kMaxEventLength, "_.:-"); }
bool valid_notification_id(std::string_view id) { return matches(id, kMaxNotificationIdLength, "_.:-"); }

bool valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    char32_t cp;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    static constexpr char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += extra + 1;
  }
  return true;
}

}  // namespace notify::rules
