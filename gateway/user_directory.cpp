#include "gateway/user_directory.hpp"

#include <cassert>

namespace notify::gateway {

void UserDirectory::join(std::string_view user, std::size_t loop) {
  assert(loop < kMaxLoops);
  Stripe& s = stripe(user);
  std::lock_guard lock(s.mu);
  auto it = s.loops.find(user);
  if (it == s.loops.end()) it = s.loops.emplace(std::string(user), 0).first;
  it->second |= std::uint64_t{1} << loop;
}

void UserDirectory::leave(std::string_view user, std::size_t loop) {
  assert(loop < kMaxLoops);
  Stripe& s = stripe(user);
  std::lock_guard lock(s.mu);
  const auto it = s.loops.find(user);
  if (it == s.loops.end()) return;
  it->second &= ~(std::uint64_t{1} << loop);
  if (it->second == 0) s.loops.erase(it);
}

std::uint64_t UserDirectory::loops_of(std::string_view user) const {
  const Stripe& s = stripe(user);
  std::lock_guard lock(s.mu);
  const auto it = s.loops.find(user);
  return it == s.loops.end() ? 0 : it->second;
}

std::size_t UserDirectory::user_count() const {
  std::size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard lock(s.mu);
    n += s.loops.size();
  }
  return n;
}

}  // namespace notify::gateway
