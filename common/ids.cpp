#include "ids.hpp"

#include <array>
#include <chrono>
#include <random>

namespace notify {
namespace {

std::mt19937_64& generator() {
  thread_local std::mt19937_64 gen = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  return gen;
}

void append_hex(std::string& out, std::uint64_t value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out.push_back(kHex[(value >> shift) & 0xf]);
}

}  // namespace

std::int64_t unix_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_uuid_v7() {
  const auto ms = static_cast<std::uint64_t>(unix_millis()) & 0xffffffffffffULL;
  const std::uint64_t r1 = generator()();
  const std::uint64_t r2 = generator()();
  const std::uint64_t rand_a = r1 & 0xfff;                                   // 12 bits
  const std::uint64_t rand_b = (r2 & 0x3fffffffffffffffULL) | (1ULL << 63);  // variant 10
  std::string out;
  out.reserve(36);
  append_hex(out, ms >> 16, 8);
  out.push_back('-');
  append_hex(out, ms & 0xffff, 4);
  out.push_back('-');
  append_hex(out, 0x7000 | rand_a, 4);
  out.push_back('-');
  append_hex(out, rand_b >> 48, 4);
  out.push_back('-');
  append_hex(out, rand_b & 0xffffffffffffULL, 12);
  return out;
}

std::string new_connection_id() {
  std::string out;
  out.reserve(16);
  append_hex(out, generator()(), 16);
  return out;
}

}  // namespace notify
