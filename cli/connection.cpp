#include "cli/connection.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cli/exit_codes.hpp"

namespace notify::cli {
namespace {

std::string read_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(std::string(flag) + " " + path + ": cannot open the file (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string read_pem(const std::string& path, const char* flag) {
  std::string text = read_file(path, flag);
  if (text.find("-----BEGIN ") == std::string::npos)
    throw UsageError(std::string(flag) + " " + path + ": not a PEM file");
  return text;
}

// The key is the first word of the first line that is neither blank nor a
// comment, so a line copied from the gateway's --admin-api-keys-file (key
// followed by its scopes) works as it is.
std::string read_api_key(const std::string& path) {
  std::istringstream lines(read_file(path, "--api-key-file"));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string key;
    if (!(words >> key) || key[0] == '#') continue;
    for (const char c : key) {
      if (c < 0x21 || c > 0x7e) {
        throw UsageError("--api-key-file " + path + ": the key holds a character that is not printable ASCII");
      }
    }
    return key;
  }
  throw UsageError("--api-key-file " + path + ": no key in the file");
}

}  // namespace

Connection Connection::open(const ConnectionOptions& o) {
  if (o.server.empty()) throw UsageError("--server is empty: give HOST:PORT");
  if (o.cert_file.empty() != o.key_file.empty()) throw UsageError("--cert-file and --key-file go together");
  if (!(o.timeout_seconds > 0)) throw UsageError("--timeout must be more than 0 seconds");

  Connection c;
  c.server_ = o.server;
  c.timeout_ = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(o.timeout_seconds * 1000.0)));
  if (!o.api_key_file.empty()) c.authorization_ = "Bearer " + read_api_key(o.api_key_file);

  grpc::ChannelArguments args;
  // Client messages relayed by StreamClientMessages may be larger than gRPC's
  // 4 MiB default (--max-message-bytes goes up to 16 MiB).
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (o.tls || !o.ca_file.empty() || !o.cert_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!o.ca_file.empty()) ssl.pem_root_certs = read_pem(o.ca_file, "--ca-file");
    if (!o.cert_file.empty()) {
      ssl.pem_cert_chain = read_pem(o.cert_file, "--cert-file");
      ssl.pem_private_key = read_pem(o.key_file, "--key-file");
    }
    credentials = grpc::SslCredentials(ssl);
    if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  } else {
    if (!o.tls_server_name.empty()) throw UsageError("--tls-server-name needs --tls");
    credentials = grpc::InsecureChannelCredentials();
  }
  c.channel_ = grpc::CreateCustomChannel(o.server, credentials, args);
  return c;
}

void Connection::prepare(grpc::ClientContext& context, bool deadline) const {
  if (!authorization_.empty()) context.AddMetadata("authorization", authorization_);
  if (deadline) context.set_deadline(std::chrono::system_clock::now() + timeout_);
}

}  // namespace notify::cli
