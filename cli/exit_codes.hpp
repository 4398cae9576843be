#pragma once
// notifyctl's exit codes (docs/notifyctl.md#exit-codes). A failed call exits
// with 64 + its gRPC status code, as grpcurl does, so scripts can tell
// UNAVAILABLE (78: try again, maybe elsewhere) from INVALID_ARGUMENT (67: fix
// the request) or UNAUTHENTICATED (80: fix the key).
#include <grpcpp/support/status.h>

#include <stdexcept>
#include <string>

namespace notify::cli {

inline constexpr int kExitOk = 0;
// The call worked but the answer is "no": health not SERVING, or a stream in
// which at least one request failed (its result line says why).
inline constexpr int kExitNegative = 1;
// Refused before any call: a bad flag or argument, a file that can't be read.
inline constexpr int kExitUsage = 2;
inline constexpr int kExitStatusBase = 64;

inline int exit_code_for(grpc::StatusCode code) {
  return code == grpc::StatusCode::OK ? kExitOk : kExitStatusBase + static_cast<int>(code);
}

// Bad input found before any call; main() prints it and exits kExitUsage.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace notify::cli
