#pragma once
// Identifiers: UUIDv7 for notifications and client messages (time-ordered,
// unique across replicas), short random hex for connections.
// Thread-safe: each thread has its own generator.
#include <cstdint>
#include <string>

namespace notify {

// A UUIDv7 (RFC 9562) string, e.g. "01935f4e-8a3b-7c1d-9e2f-0a1b2c3d4e5f".
std::string new_uuid_v7();

// 16 lowercase hex characters from a per-thread random generator.
std::string new_connection_id();

// Milliseconds since the Unix epoch.
std::int64_t unix_millis();

}  // namespace notify
