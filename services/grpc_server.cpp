#include "services/grpc_server.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "grpc/health/v1/health.pb.h"
#include "services/metrics_interceptor.hpp"

namespace notify::services {

namespace {

constexpr const char* kServiceName = "notify.v1.NotificationService";

std::string read_pem(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(flag) + " " + path + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    throw std::runtime_error(std::string(flag) + " " + path + ": not a PEM file");
  }
  return text.str();
}

// gRPC would only fail to listen, with a message about the address; say
// what is wrong with the files instead.
void check_key_pair(const std::string& key_pem, const std::string& cert_pem, const ServiceSettings& settings) {
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  BIO* cert_bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  std::string problem;
  if (!key) {
    problem = "--admin-tls-key " + settings.tls_key_file + ": no unencrypted PEM private key in the file";
  } else if (!cert) {
    problem = "--admin-tls-cert " + settings.tls_cert_file + ": no PEM certificate in the file";
  } else if (X509_check_private_key(cert, key) != 1) {
    problem = "--admin-tls-key " + settings.tls_key_file + " is not the key of the certificate in --admin-tls-cert " +
              settings.tls_cert_file;
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  if (!problem.empty()) throw std::runtime_error(problem);
}

std::string listen_address(const std::string& host, std::uint16_t port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

GrpcServer::GrpcServer(const ServiceSettings& settings, broker::Broker& broker,
                       NotificationService::TimerContext timers, UpstreamBus& bus, Metrics& metrics,
                       std::shared_ptr<const auth::ApiKeys> api_keys)
    : settings_(settings),
      bus_(bus),
      metrics_(metrics),
      auth_(std::move(api_keys), metrics),
      service_(broker, std::move(timers), bus, metrics, settings, auth_) {}

GrpcServer::~GrpcServer() { stop(std::chrono::milliseconds(0)); }

std::shared_ptr<grpc::ServerCredentials> GrpcServer::credentials() const {
  if (settings_.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options;
  std::string key = read_pem(settings_.tls_key_file, "--admin-tls-key");
  std::string cert = read_pem(settings_.tls_cert_file, "--admin-tls-cert");
  check_key_pair(key, cert, settings_);
  options.pem_key_cert_pairs.push_back({std::move(key), std::move(cert)});
  if (!settings_.client_ca_file.empty()) {
    // Mutual TLS: a client without a certificate from this CA can't connect.
    options.pem_root_certs = read_pem(settings_.client_ca_file, "--admin-client-ca");
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

void GrpcServer::start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // gRPC's health service has no protobuf descriptor of its own; linking the
  // project's (proto/grpc/health/v1) lets reflection describe it, which
  // grpcurl needs before it can call grpc.health.v1.Health/Check.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();

  grpc::ServerBuilder builder;
  const std::string address = listen_address(settings_.bind_address, settings_.port);
  int selected_port = 0;
  builder.AddListeningPort(address, credentials(), &selected_port);
  builder.RegisterService(&service_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(settings_.max_receive_message_bytes));
  // gRPC sets SO_REUSEPORT by default, which would let a second gateway
  // share this port and take half the RPCs; a taken port must fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Find dead StreamClientMessages consumers within a minute.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(metrics_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server_ = builder.BuildAndStart();
  if (!server_ || selected_port == 0) {
    server_.reset();
    throw std::runtime_error("cannot listen on " + address + " for gRPC (address in use or not available)");
  }
  port_ = static_cast<std::uint16_t>(selected_port);
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);
}

void GrpcServer::begin_shutdown() {
  if (!server_) return;
  server_->GetHealthCheckService()->SetServingStatus(false);
  service_.begin_shutdown();
  bus_.messages.close_all();
}

void GrpcServer::stop(std::chrono::milliseconds grace) {
  if (!server_) return;
  // After the drain: the connections that closed meanwhile reported what
  // they still owed (CONNECTION_CLOSED); those reports are written first.
  bus_.reports.close_all();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
}

}  // namespace notify::services
