#pragma once
// Which Redis shard owns a channel: Jump consistent hash (Lamping & Veach,
// 2014) over FNV-1a 64. Going from n to n+1 shards moves only 1/(n+1) of the
// channels, and every replica computes the same answer with no coordination
// (the scheme Centrifugo uses for its Redis shards).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace notify::broker {

constexpr std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

constexpr std::size_t jump_hash(std::uint64_t key, std::size_t buckets) {
  std::int64_t b = -1;
  std::int64_t j = 0;
  while (j < static_cast<std::int64_t>(buckets)) {
    b = j;
    key = key * 2862933555777941757ull + 1;
    j = static_cast<std::int64_t>(static_cast<double>(b + 1) *
                                  (static_cast<double>(1ll << 31) / static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<std::size_t>(b < 0 ? 0 : b);
}

inline std::size_t shard_of(std::string_view channel, std::size_t shards) {
  return shards <= 1 ? 0 : jump_hash(fnv1a64(channel), shards);
}

}  // namespace notify::broker
