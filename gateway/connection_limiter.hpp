#pragma once
// Counts WebSocket connections in total and per client address, so that
// --max-connections and --max-connections-per-ip can refuse new ones.
// Thread-safe (a mutex taken once per upgrade and once per close, never on
// the delivery path). A Slot releases its count when destroyed.
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <mutex>
#include <unordered_map>

namespace notify::gateway {

class ConnectionLimiter {
 public:
  class Slot {
   public:
    Slot() = default;
    Slot(ConnectionLimiter* owner, boost::asio::ip::address address) : owner_(owner), address_(address) {}
    Slot(Slot&& other) noexcept : owner_(other.owner_), address_(other.address_) { other.owner_ = nullptr; }
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    explicit operator bool() const { return owner_ != nullptr; }

   private:
    void release();
    ConnectionLimiter* owner_ = nullptr;
    boost::asio::ip::address address_;
  };

  enum class Refusal { none, total, per_address };

  // 0 means unlimited.
  ConnectionLimiter(std::size_t max_total, std::size_t max_per_address)
      : max_total_(max_total), max_per_address_(max_per_address) {}

  // A slot for one more connection from `address`, or an empty slot and why not.
  Slot acquire(const boost::asio::ip::address& address, Refusal& refusal);

  std::size_t total() const;
  std::size_t from(const boost::asio::ip::address& address) const;

 private:
  struct AddressHash {
    std::size_t operator()(const boost::asio::ip::address& a) const noexcept;
  };

  void release(const boost::asio::ip::address& address);

  const std::size_t max_total_;
  const std::size_t max_per_address_;
  mutable std::mutex mu_;
  std::size_t total_ = 0;
  std::unordered_map<boost::asio::ip::address, std::size_t, AddressHash> per_address_;
};

}  // namespace notify::gateway
