#pragma once
// Structured log lines on stderr, as text for people or JSON for collectors.
// Thread-safe: a line is formatted off-lock and written with one write(2).
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace notify::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
enum class Format { text, json };

// Parses "debug", "info", "warn", "error" / "text", "json"; false if unknown.
bool parse_level(std::string_view text, Level& out);
bool parse_format(std::string_view text, Format& out);

void configure(Format format, Level min_level);
bool enabled(Level level);

// A key and its value; numbers and booleans stay unquoted in JSON output.
class Field {
 public:
  Field(std::string_view key, std::string_view value);
  Field(std::string_view key, const std::string& value);
  Field(std::string_view key, const char* value);
  Field(std::string_view key, bool value);
  template <typename Int>
  requires std::is_integral_v<Int> Field(std::string_view key, Int value)
      : key_(key), owned_(std::to_string(value)), owns_(true), quoted_(false) {}
  Field(std::string_view key, double value);

  std::string_view key() const { return key_; }
  std::string_view value() const { return owns_ ? std::string_view(owned_) : view_; }
  bool quoted() const { return quoted_; }

 private:
  // Text is referred to, not copied: a Field lives only for the log call,
  // and most calls (debug lines while debug is off) are never written.
  std::string_view key_;
  std::string_view view_;
  std::string owned_;  // numbers, formatted
  bool owns_ = false;
  bool quoted_;
};

using Fields = std::initializer_list<Field>;

void write(Level level, std::string_view message, Fields fields = {});
inline void debug(std::string_view m, Fields f = {}) {
  if (enabled(Level::debug)) write(Level::debug, m, f);
}
inline void info(std::string_view m, Fields f = {}) { write(Level::info, m, f); }
inline void warn(std::string_view m, Fields f = {}) { write(Level::warn, m, f); }
inline void error(std::string_view m, Fields f = {}) { write(Level::error, m, f); }

// Formats one line without writing it (exposed for tests).
std::string format_line(Format format, Level level, std::string_view message, Fields fields);

}  // namespace notify::log
