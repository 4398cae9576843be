#pragma once
// The names of gRPC's status codes (0 OK … 16 UNAUTHENTICATED), as the gRPC
// specification spells them: metric labels and notifyctl's messages use
// the same words. No gRPC dependency, so any component can include it.
#include <array>
#include <string_view>

namespace notify {

inline constexpr std::array<std::string_view, 17> kGrpcCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

}  // namespace notify
