#pragma once
// How notifyctl reaches a gateway's admin API: the address, TLS or mutual
// TLS, the API key and the deadline, from the connection flags or their
// NOTIFY_* variables. Every file is read and checked when the connection is
// opened, before any call, so a wrong path is a usage error, not a failed RPC.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace notify::cli {

struct ConnectionOptions {
  std::string server = "127.0.0.1:50051";
  std::string api_key_file;  // "<key>" on its first line that isn't blank or a comment
  bool tls = false;          // also implied by any of the three files below
  std::string ca_file;       // roots the server certificate must chain to; default: the system's
  std::string cert_file;     // client certificate (mutual TLS), with key_file
  std::string key_file;
  std::string tls_server_name;  // name the server certificate must carry, if not the host dialed
  double timeout_seconds = 10;  // deadline of each unary call
};

class Connection {
 public:
  // Throws UsageError naming the flag and the file on any problem.
  static Connection open(const ConnectionOptions& options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const std::string& server() const { return server_; }

  // Adds the API key, if any, and with `deadline` the --timeout deadline.
  void prepare(grpc::ClientContext& context, bool deadline = true) const;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string server_;
  std::string authorization_;  // "Bearer <key>", or empty
  std::chrono::milliseconds timeout_{10000};
};

}  // namespace notify::cli
