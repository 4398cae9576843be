#pragma once
// Which event loops hold at least one connection of each user, readable from
// any thread. The hub asks it before a Notify so that the task goes only to
// the loops that can deliver it (none at all for a user who is offline),
// instead of waking every loop for every call. Shards keep it current: a
// user joins a loop with its first connection there and leaves with its
// last.
//
// Striped: a user's entry lives in one of kStripes maps, each under its own
// mutex, so loops registering connections and gRPC threads looking users up
// rarely meet on the same lock.
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace notify::gateway {

class UserDirectory {
 public:
  // Loops are numbered 0..kMaxLoops-1 (one bit each).
  static constexpr std::size_t kMaxLoops = 64;

  void join(std::string_view user, std::size_t loop);
  void leave(std::string_view user, std::size_t loop);

  // Bit i set: loop i holds a connection of `user`; 0: the user is offline.
  std::uint64_t loops_of(std::string_view user) const;
  std::size_t user_count() const;

 private:
  static constexpr std::size_t kStripes = 64;

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct alignas(64) Stripe {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::uint64_t, Hash, std::equal_to<>> loops;
  };

  Stripe& stripe(std::string_view user) { return stripes_[Hash{}(user) % kStripes]; }
  const Stripe& stripe(std::string_view user) const { return stripes_[Hash{}(user) % kStripes]; }

  std::array<Stripe, kStripes> stripes_;
};

}  // namespace notify::gateway
