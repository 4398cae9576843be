#include "gateway/connection_limiter.hpp"

#include <functional>
#include <string_view>

namespace notify::gateway {

ConnectionLimiter::Slot& ConnectionLimiter::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    address_ = other.address_;
    other.owner_ = nullptr;
  }
  return *this;
}

void ConnectionLimiter::Slot::release() {
  if (owner_ != nullptr) owner_->release(address_);
  owner_ = nullptr;
}

std::size_t ConnectionLimiter::AddressHash::operator()(const boost::asio::ip::address& a) const noexcept {
  if (a.is_v4()) return std::hash<unsigned>{}(a.to_v4().to_uint());
  const auto bytes = a.to_v6().to_bytes();
  return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

ConnectionLimiter::Slot ConnectionLimiter::acquire(const boost::asio::ip::address& address, Refusal& refusal) {
  std::lock_guard lock(mu_);
  if (max_total_ != 0 && total_ >= max_total_) {
    refusal = Refusal::total;
    return {};
  }
  std::size_t& mine = per_address_[address];
  if (max_per_address_ != 0 && mine >= max_per_address_) {
    refusal = Refusal::per_address;
    return {};
  }
  ++mine;
  ++total_;
  refusal = Refusal::none;
  return Slot(this, address);
}

void ConnectionLimiter::release(const boost::asio::ip::address& address) {
  std::lock_guard lock(mu_);
  --total_;
  const auto it = per_address_.find(address);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

std::size_t ConnectionLimiter::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

std::size_t ConnectionLimiter::from(const boost::asio::ip::address& address) const {
  std::lock_guard lock(mu_);
  const auto it = per_address_.find(address);
  return it == per_address_.end() ? 0 : it->second;
}

}  // namespace notify::gateway
