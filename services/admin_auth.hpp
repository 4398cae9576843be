#pragma once
// Checks the API key a caller presents in "authorization: Bearer <key>"
// metadata against --admin-api-keys-file and the scope the method needs.
// Without a key file every call passes: the admin API is then protected by
// mutual TLS, or only reachable on loopback (see app/config.cpp).
// Thread-safe; keys are swapped atomically on reload.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>

#include "auth/api_keys.hpp"
#include "common/metrics.hpp"

namespace notify::services {

class AdminAuth {
 public:
  AdminAuth(std::shared_ptr<const auth::ApiKeys> keys, Metrics& metrics) : metrics_(metrics) {
    keys_.store(std::move(keys));
  }

  // OK, UNAUTHENTICATED (no or unknown key) or PERMISSION_DENIED (key
  // without this scope); failures are counted.
  grpc::Status check(const grpc::CallbackServerContext& context, auth::Scope scope) const;

  void set_keys(std::shared_ptr<const auth::ApiKeys> keys) {
    keys_.store(std::move(keys));
    generation_.fetch_add(1, std::memory_order_release);
  }

  // Changes with every set_keys(): long-lived calls check again when it moves.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::shared_ptr<const auth::ApiKeys>> keys_;
  std::atomic<std::uint64_t> generation_{0};
  Metrics& metrics_;
};

}  // namespace notify::services
