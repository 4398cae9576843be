#include "log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "json_text.hpp"

namespace notify::log {
namespace {

std::atomic<Format> g_format{Format::text};
std::atomic<Level> g_level{Level::info};

std::string_view level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "info";
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = ms / 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

Field::Field(std::string_view key, std::string_view value) : key_(key), view_(value), quoted_(true) {}
Field::Field(std::string_view key, const std::string& value) : key_(key), view_(value), quoted_(true) {}
Field::Field(std::string_view key, const char* value) : key_(key), view_(value ? value : ""), quoted_(true) {}
Field::Field(std::string_view key, bool value) : key_(key), view_(value ? "true" : "false"), quoted_(false) {}
Field::Field(std::string_view key, double value) : key_(key), owns_(true), quoted_(false) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  owned_ = buf;
}

bool parse_level(std::string_view text, Level& out) {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error}) {
    if (text == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

bool parse_format(std::string_view text, Format& out) {
  if (text == "text") {
    out = Format::text;
  } else if (text == "json") {
    out = Format::json;
  } else {
    return false;
  }
  return true;
}

void configure(Format format, Level min_level) {
  g_format.store(format);
  g_level.store(min_level);
}

bool enabled(Level level) { return level >= g_level.load(std::memory_order_relaxed); }

std::string format_line(Format format, Level level, std::string_view message, Fields fields) {
  std::string line;
  line.reserve(128);
  if (format == Format::json) {
    line += "{\"ts\":";
    append_json_string(line, timestamp());
    line += ",\"level\":";
    append_json_string(line, level_name(level));
    line += ",\"msg\":";
    append_json_string(line, message);
    for (const Field& f : fields) {
      line.push_back(',');
      append_json_string(line, f.key());
      line.push_back(':');
      if (f.quoted()) {
        append_json_string(line, f.value());
      } else {
        line += f.value();
      }
    }
    line += "}\n";
  } else {
    line += timestamp();
    line.push_back(' ');
    std::string_view name = level_name(level);
    for (char c : name) line.push_back(static_cast<char>(c - 'a' + 'A'));
    line.push_back(' ');
    line += message;
    for (const Field& f : fields) {
      line.push_back(' ');
      line += f.key();
      line.push_back('=');
      if (f.quoted() && needs_quotes(f.value())) {
        append_json_string(line, f.value());
      } else {
        line += f.value();
      }
    }
    line.push_back('\n');
  }
  return line;
}

void write(Level level, std::string_view message, Fields fields) {
  if (!enabled(level)) return;
  const std::string line = format_line(g_format.load(std::memory_order_relaxed), level, message, fields);
  // One write per line keeps lines whole when several threads log at once.
  std::size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace notify::log
