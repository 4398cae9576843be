# Every dependency comes from Debian 12 packages (scripts/install-deps.sh).

# Boost 1.81 (Beast, Asio, JSON, URL). Debian keeps its CMake config under a
# versioned directory; the default 1.74 has no Boost.JSON.
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS json url
             PATHS /usr/lib/x86_64-linux-gnu/cmake)

find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED COMPONENTS core)

# gRPC 1.51 ships no CMake config in Debian: use pkg-config.
find_package(PkgConfig REQUIRED)
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
pkg_check_modules(PROTOBUF REQUIRED IMPORTED_TARGET protobuf)
find_library(GRPCPP_REFLECTION_LIB grpc++_reflection REQUIRED)
# Abseil (gRPC's own dependency): main() turns off its mutex deadlock detection.
pkg_check_modules(ABSL_SYNCHRONIZATION REQUIRED IMPORTED_TARGET absl_synchronization)
find_program(PROTOC protoc REQUIRED)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

# hiredis 0.14 (libhiredis-dev): the Redis broker; no CMake config either.
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

# CLI11 is header-only (libcli11-dev).
find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
