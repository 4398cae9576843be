// BOOST_ASSERT is an oracle in the fuzz build (BOOST_ENABLE_ASSERT_HANDLER is
// defined for every target): a failed assertion aborts, so libFuzzer reports
// it, except for one assertion of Boost 1.81's own that is wrong.
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// Beast 1.81 basic_parser::parse_chunk_header asserts n >= 5 when it is
// called again for a final chunk whose size line was already consumed, but
// "0\r\n" followed by a lone "\r" legitimately leaves fewer bytes, and the
// code after the assertion answers need_more as it should. Fixed upstream
// (boostorg/beast pull request 2861, Boost 1.86); release builds, where
// BOOST_ASSERT is off, never stopped there.
bool known_wrong(const char* expr, const char* function) {
  return std::strcmp(expr, "n >= 5") == 0 && std::strstr(function, "parse_chunk_header") != nullptr;
}

}  // namespace

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (known_wrong(expr, function)) return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed.\n", file, line, function, expr);
  std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
  if (known_wrong(expr, function)) return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed: %s\n", file, line, function, expr, msg);
  std::abort();
}

}  // namespace boost
