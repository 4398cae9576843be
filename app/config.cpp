#include "app/config.hpp"

#include <sched.h>
#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace notify::app {

std::size_t usable_cpus(const std::string& cgroup_root) {
  std::size_t cpus = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = static_cast<std::size_t>(CPU_COUNT(&set));
  // A CPU limit (Kubernetes resources.limits.cpu) is a CFS quota per period.
  auto cap = [&](double quota, double period) {
    if (quota > 0 && period > 0) cpus = std::min(cpus, static_cast<std::size_t>(std::ceil(quota / period)));
  };
  std::ifstream v2(cgroup_root + "/cpu.max");  // cgroup v2: "<quota|max> <period>"
  std::string quota;
  double period = 0;
  if (v2 >> quota >> period) {
    if (quota != "max") cap(std::stod(quota), period);
  } else {  // cgroup v1
    std::ifstream q(cgroup_root + "/cpu/cpu.cfs_quota_us");
    std::ifstream p(cgroup_root + "/cpu/cpu.cfs_period_us");
    double quota_us = 0;
    if (q >> quota_us && p >> period) cap(quota_us, period);
  }
  return std::max<std::size_t>(1, cpus);
}

namespace {

std::chrono::milliseconds seconds_to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

// Cross-field rules CLI11 can't express; empty when all is well.
std::string check_consistency(const Config& c) {
  const auto& g = c.gateway;
  const auto& s = c.services;
  boost::system::error_code ec;
  boost::asio::ip::make_address(s.bind_address, ec);
  if (ec) return "--bind \"" + s.bind_address + "\" is not an IP address";
  if (g.ws_port != 0 && (g.ws_port == g.metrics_port || g.ws_port == s.port)) {
    return "--ws-port must differ from --metrics-port and --grpc-port";
  }
  if (g.metrics_port != 0 && g.metrics_port == s.port) return "--metrics-port must differ from --grpc-port";
  // The largest notification frame must fit in a send queue, or every
  // recipient of it would be closed as a slow consumer.
  const std::size_t largest_frame = s.max_payload_bytes + 1024;
  if (g.queue.max_bytes < largest_frame) {
    return "--send-queue-max-bytes (" + std::to_string(g.queue.max_bytes) +
           ") must be at least --max-payload-bytes + 1024 (" + std::to_string(largest_frame) + ")";
  }
  if (s.max_receive_message_bytes < s.max_payload_bytes + 64 * 1024) {
    return "--grpc-max-message-bytes must be at least --max-payload-bytes + 65536";
  }
  return {};
}

// Parses --redis-url and its companions; empty when all is well.
std::string apply_redis(Config& c, const std::string& urls, const std::string& password_file, double presence_ttl,
                        double timeout) {
  auto& r = c.redis;
  try {
    r.shards = broker::parse_redis_urls(urls);
  } catch (const std::exception& e) {
    return e.what();
  }
  // With Redis, history lives there (so a client resumes on any replica),
  // not in the process.
  r.history_size = c.gateway.history.max_entries;
  r.history_ttl = c.gateway.history.ttl;
  r.inbox_size = c.gateway.inbox_size;
  r.presence_ttl = seconds_to_ms(presence_ttl);
  r.command_timeout = seconds_to_ms(timeout);
  r.max_data_bytes = std::max(c.services.max_payload_bytes, c.gateway.max_message_bytes);
  if (password_file.empty()) return {};
  if (r.shards.empty()) return "--redis-password-file needs --redis-url";
  std::ifstream in(password_file);
  std::string password;
  if (!in || !std::getline(in, password)) return "--redis-password-file: cannot read " + password_file;
  while (!password.empty() && (password.back() == '\r' || password.back() == ' ')) password.pop_back();
  if (password.empty()) return "--redis-password-file: " + password_file + " is empty";
  for (auto& shard : r.shards) {
    if (!shard.password.empty()) {
      return "--redis-url " + shard.describe() + " has a password and --redis-password-file gives another: use one";
    }
    shard.password = password;
  }
  return {};
}

// Parses and checks the security settings, loads keys; empty when all is well.
std::string apply_security(Config& c, const std::string& origins, const std::string& topics, const std::string& proxies,
                           const std::string& grpc_bind) {
  auto& g = c.gateway;
  auto& s = c.services;
  try {
    g.allowed_origins = auth::OriginPolicy::parse(origins);
    g.trusted_proxies = auth::TrustedProxies::parse(proxies);
  } catch (const std::exception& e) {
    return e.what();
  }
  if (std::string bad; !auth::TopicGrants::parse_list(topics, g.public_topics, bad)) {
    return "--public-topics: malformed pattern \"" + bad + "\"";
  }
  if (g.tls_cert_file.empty() != g.tls_key_file.empty()) return "--tls-cert and --tls-key go together";
  if (s.tls_cert_file.empty() != s.tls_key_file.empty()) return "--admin-tls-cert and --admin-tls-key go together";
  if (!s.client_ca_file.empty() && s.tls_cert_file.empty()) {
    return "--admin-client-ca needs --admin-tls-cert and --admin-tls-key (mutual TLS is TLS)";
  }

  if (!c.jwt_keys.any() && !g.insecure_dev) {
    return "clients can't authenticate: configure --jwt-secret-file (or NOTIFY_JWT_SECRET), "
           "--jwt-public-key-file or --jwks-file, or pass --insecure-dev for development";
  }
  try {
    if (c.jwt_keys.any()) c.keys = auth::KeySet::load(c.jwt_keys);
    if (!s.api_keys_file.empty()) c.api_keys = auth::ApiKeys::load(s.api_keys_file);
  } catch (const std::exception& e) {
    return e.what();
  }

  // The admin API: authenticated, or loopback, or explicitly insecure.
  const bool v6 = s.bind_address.find(':') != std::string::npos;
  if (grpc_bind.empty()) {
    if (!s.authenticated() && !s.insecure_admin) {
      s.bind_address = v6 ? "::1" : "127.0.0.1";
      c.notes.push_back(
          "admin API on loopback only: no API keys or mutual TLS configured "
          "(see --admin-api-keys-file, --admin-client-ca, --insecure-admin)");
    }
  } else {
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(grpc_bind, ec);
    if (ec) return "--grpc-bind \"" + grpc_bind + "\" is not an IP address";
    if (!address.is_loopback() && !s.authenticated() && !s.insecure_admin) {
      return "--grpc-bind " + grpc_bind +
             " exposes the admin API without authentication: configure --admin-api-keys-file or "
             "--admin-client-ca, or pass --insecure-admin";
    }
    s.bind_address = grpc_bind;
  }
  if (s.insecure_admin && !s.authenticated()) {
    c.notes.push_back("INSECURE: the admin API accepts calls from anyone who can reach " + s.bind_address);
  }
  return {};
}

}  // namespace

ConfigResult parse_config(int argc, const char* const* argv) {
  Config c;
  auto& g = c.gateway;
  auto& s = c.services;
  std::string log_format = "text";
  std::string log_level = "info";
  std::string policy = "close";
  double handshake_timeout = 10;
  double idle_timeout = 60;
  double close_timeout = 5;
  double history_ttl = 300;
  double ack_timeout = 30;
  double inbox_ttl = 7 * 86400;
  double shutdown_timeout = 10;
  std::string allowed_origins;
  std::string public_topics;
  std::string trusted_proxies;
  std::string grpc_bind;
  double jwt_leeway = 30;

  CLI::App cli{
      "notify-gateway: real-time notifications for browsers over WebSocket, driven by backends over gRPC.\n"
      "Every flag can also be set with the NOTIFY_* environment variable shown; a flag wins over its variable.\n"
      "Clients authenticate with a JWT (configure --jwt-secret-file, --jwt-public-key-file or --jwks-file);\n"
      "--insecure-dev instead lets them pick a user id with ?user=, for development only. See docs/security.md."};
  cli.name("notify-gateway");
  cli.set_help_flag("-h,--help", "Print this help and exit");

  auto positive = CLI::PositiveNumber;
  cli.add_option("--bind", s.bind_address, "Address the WebSocket, gRPC and metrics ports listen on")
      ->envname("NOTIFY_BIND")
      ->capture_default_str();
  cli.add_option("--ws-port", g.ws_port, "WebSocket + HTTP port: /ws, / (page), /healthz, /readyz (0 = any free port)")
      ->envname("NOTIFY_WS_PORT")
      ->capture_default_str();
  cli.add_option("--grpc-port", s.port, "gRPC admin API port (0 = any free port)")
      ->envname("NOTIFY_GRPC_PORT")
      ->capture_default_str();
  cli.add_option("--metrics-port", g.metrics_port, "Prometheus /metrics port (0 = any free port)")
      ->envname("NOTIFY_METRICS_PORT")
      ->capture_default_str();
  cli.add_option("--threads", g.threads,
                 "Event-loop threads; 0 = one per usable CPU (affinity mask and cgroup CPU limit)")
      ->envname("NOTIFY_THREADS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cli.add_option("--log-format", log_format, "Log line format: text or json")
      ->envname("NOTIFY_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cli.add_option("--log-level", log_level, "Lowest level logged: debug, info, warn or error")
      ->envname("NOTIFY_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();

  cli.add_option("--max-message-bytes", g.max_message_bytes,
                 "Largest frame a client may send; larger closes the connection with 1009")
      ->envname("NOTIFY_MAX_MESSAGE_BYTES")
      ->check(CLI::Range(std::size_t{128}, std::size_t{16} << 20))
      ->capture_default_str();
  cli.add_option("--max-header-bytes", g.max_header_bytes, "Largest HTTP request head; larger is answered 431")
      ->envname("NOTIFY_MAX_HEADER_BYTES")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 20))
      ->capture_default_str();
  cli.add_option("--send-queue-max-messages", g.queue.max_messages,
                 "Frames a connection's send queue holds before the slow-consumer policy applies")
      ->envname("NOTIFY_SEND_QUEUE_MAX_MESSAGES")
      ->check(positive)
      ->capture_default_str();
  cli.add_option("--send-queue-max-bytes", g.queue.max_bytes,
                 "Payload bytes a connection's send queue holds before the slow-consumer policy applies")
      ->envname("NOTIFY_SEND_QUEUE_MAX_BYTES")
      ->check(positive)
      ->capture_default_str();
  cli.add_option("--slow-consumer-policy", policy,
                 "When a send queue is full: close (close the connection with 4008) or drop-oldest "
                 "(discard the oldest queued frames)")
      ->envname("NOTIFY_SLOW_CONSUMER_POLICY")
      ->check(CLI::IsMember({"close", "drop-oldest"}))
      ->capture_default_str();
  cli.add_option("--history-size", g.history.max_entries,
                 "Notifications kept per stream (a user's, a topic's, everyone's) for clients that resume after a "
                 "reconnect; 0 turns history, offsets and resume off")
      ->envname("NOTIFY_HISTORY_SIZE")
      ->check(CLI::Range(std::size_t{0}, std::size_t{100'000}))
      ->capture_default_str();
  cli.add_option("--history-ttl", history_ttl,
                 "Seconds a notification stays in history; a stream idle this long is forgotten (its next "
                 "notification starts a new epoch)")
      ->envname("NOTIFY_HISTORY_TTL")
      ->check(CLI::Range(1.0, 7.0 * 86400))
      ->capture_default_str();
  cli.add_option("--ack-timeout", ack_timeout,
                 "Seconds a connection has to acknowledge a notification sent with require_ack and no ack_timeout_ms "
                 "(reported TIMED_OUT on StreamDeliveryReports after that)")
      ->envname("NOTIFY_ACK_TIMEOUT")
      ->check(CLI::Range(0.001, services::kMaxAckTimeoutMs / 1000.0))
      ->capture_default_str();
  cli.add_option("--inbox-size", g.inbox_size,
                 "Notifications sent with persist kept per user's inbox until read or expired (the oldest leave "
                 "first); 0 turns the inbox off")
      ->envname("NOTIFY_INBOX_SIZE")
      ->check(CLI::Range(std::size_t{0}, std::size_t{10'000}))
      ->capture_default_str();
  cli.add_option("--inbox-ttl", inbox_ttl,
                 "Seconds a notification sent with persist and no persist_ttl_seconds stays in the inbox")
      ->envname("NOTIFY_INBOX_TTL")
      ->check(CLI::Range(1.0, static_cast<double>(services::kMaxInboxTtlS)))
      ->capture_default_str();
  cli.add_option("--max-topics-per-connection", g.max_topics_per_connection, "Topics one connection may subscribe to")
      ->envname("NOTIFY_MAX_TOPICS_PER_CONNECTION")
      ->check(positive)
      ->capture_default_str();
  cli.add_option("--max-invalid-messages", g.max_invalid_messages,
                 "Invalid client frames (bad JSON, unknown type, ...) before the connection is closed with 1008")
      ->envname("NOTIFY_MAX_INVALID_MESSAGES")
      ->check(positive)
      ->capture_default_str();
  cli.add_option("--handshake-timeout", handshake_timeout,
                 "Seconds a client has to send its HTTP request and complete the upgrade")
      ->envname("NOTIFY_HANDSHAKE_TIMEOUT")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  cli.add_option("--idle-timeout", idle_timeout,
                 "Seconds of silence before a connection is closed; a WebSocket ping is sent after half of it")
      ->envname("NOTIFY_IDLE_TIMEOUT")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cli.add_option("--close-timeout", close_timeout,
                 "Seconds a closing connection gets to take its queued frames and the close handshake")
      ->envname("NOTIFY_CLOSE_TIMEOUT")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  cli.add_option("--shutdown-timeout", shutdown_timeout,
                 "Seconds SIGTERM/SIGINT waits for connections to close before exiting anyway")
      ->envname("NOTIFY_SHUTDOWN_TIMEOUT")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();

  cli.add_option("--max-payload-bytes", s.max_payload_bytes, "Largest Notification.data_json accepted over gRPC")
      ->envname("NOTIFY_MAX_PAYLOAD_BYTES")
      ->check(CLI::Range(std::size_t{2}, std::size_t{16} << 20))
      ->capture_default_str();
  cli.add_option("--max-ids-per-request", s.max_ids_per_request,
                 "Most user ids in one Notify, Disconnect or GetPresence request")
      ->envname("NOTIFY_MAX_IDS_PER_REQUEST")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  cli.add_option("--client-stream-buffer", s.client_stream_buffer,
                 "Client messages a StreamClientMessages consumer may lag before it loses the oldest")
      ->envname("NOTIFY_CLIENT_STREAM_BUFFER")
      ->check(positive)
      ->capture_default_str();
  cli.add_option("--client-stream-buffer-bytes", s.client_stream_buffer_bytes,
                 "Bytes of client messages (delivery reports) a StreamClientMessages (StreamDeliveryReports) "
                 "consumer may lag before it loses the oldest")
      ->envname("NOTIFY_CLIENT_STREAM_BUFFER_BYTES")
      ->check(positive)
      ->capture_default_str();
  cli.add_option("--max-client-streams", s.max_client_streams,
                 "Open StreamClientMessages streams, and open StreamDeliveryReports streams; more are refused with "
                 "RESOURCE_EXHAUSTED")
      ->envname("NOTIFY_MAX_CLIENT_STREAMS")
      ->check(positive)
      ->capture_default_str();
  cli.add_option("--max-inflight-requests", s.max_inflight_requests,
                 "Notify/Broadcast/Disconnect/GetPresence/NotifyStream requests being delivered at once; more "
                 "calls are refused with RESOURCE_EXHAUSTED (a NotifyStream stops reading instead)")
      ->envname("NOTIFY_MAX_INFLIGHT_REQUESTS")
      ->check(positive)
      ->capture_default_str();
  cli.add_option("--grpc-max-message-bytes", s.max_receive_message_bytes, "Largest gRPC request accepted")
      ->envname("NOTIFY_GRPC_MAX_MESSAGE_BYTES")
      ->check(CLI::Range(std::size_t{64} << 10, std::size_t{64} << 20))
      ->capture_default_str();

  // --- who may connect (docs/security.md)
  cli.add_flag("--insecure-dev", g.insecure_dev,
               "DEVELOPMENT ONLY: let clients pick their user id with ?user= instead of presenting a token; "
               "anyone can then connect as anyone")
      ->envname("NOTIFY_INSECURE_DEV");
  cli.add_option("--jwt-secret-file", c.jwt_keys.secret_file,
                 "HS256: file holding the shared secret (at least 32 bytes); or set NOTIFY_JWT_SECRET to the "
                 "secret itself")
      ->envname("NOTIFY_JWT_SECRET_FILE");
  cli.add_option("--jwt-public-key-file", c.jwt_keys.public_key_file,
                 "RS256 (RSA >= 2048 bits) or ES256 (EC P-256) public key, PEM")
      ->envname("NOTIFY_JWT_PUBLIC_KEY_FILE");
  cli.add_option("--jwks-file", c.jwt_keys.jwks_file,
                 "JSON Web Key Set of RSA / EC P-256 public keys, selected by the token's kid; reloaded on SIGHUP "
                 "and when the file changes")
      ->envname("NOTIFY_JWKS_FILE");
  cli.add_option("--jwt-audience", c.jwt_policy.audience, "Required \"aud\" value, if set")
      ->envname("NOTIFY_JWT_AUDIENCE");
  cli.add_option("--jwt-issuer", c.jwt_policy.issuer, "Required \"iss\" value, if set")->envname("NOTIFY_JWT_ISSUER");
  cli.add_option("--jwt-leeway", jwt_leeway, "Seconds of clock skew allowed for exp, nbf and iat")
      ->envname("NOTIFY_JWT_LEEWAY")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  cli.add_option("--public-topics", public_topics,
                 "Comma-separated topics anyone may subscribe to: exact names or prefixes ending in * (post:*)")
      ->envname("NOTIFY_PUBLIC_TOPICS");
  cli.add_option("--allowed-origins", allowed_origins,
                 "Comma-separated browser origins allowed to connect: https://app.example.com, "
                 "https://*.example.com, *.example.com or *; empty = the gateway's own host only")
      ->envname("NOTIFY_ALLOWED_ORIGINS");
  cli.add_option("--trusted-proxies", trusted_proxies,
                 "Comma-separated addresses / CIDR blocks whose X-Forwarded-For names the client address")
      ->envname("NOTIFY_TRUSTED_PROXIES");
  cli.add_option("--max-connections", g.max_connections, "WebSocket connections in total (0 = unlimited)")
      ->envname("NOTIFY_MAX_CONNECTIONS")
      ->capture_default_str();
  cli.add_option("--max-connections-per-ip", g.max_connections_per_ip,
                 "WebSocket connections from one client address (0 = unlimited)")
      ->envname("NOTIFY_MAX_CONNECTIONS_PER_IP")
      ->capture_default_str();
  cli.add_option("--client-message-rate", g.client_message_rate, "Frames per second a client may send, sustained")
      ->envname("NOTIFY_CLIENT_MESSAGE_RATE")
      ->check(CLI::Range(0.01, 1e6))
      ->capture_default_str();
  cli.add_option("--client-message-burst", g.client_message_burst, "Frames a client may send in a burst")
      ->envname("NOTIFY_CLIENT_MESSAGE_BURST")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  cli.add_option("--tls-cert", g.tls_cert_file, "Certificate chain (PEM) to serve wss:// and https:// on --ws-port")
      ->envname("NOTIFY_TLS_CERT");
  cli.add_option("--tls-key", g.tls_key_file, "Private key (PEM) for --tls-cert")->envname("NOTIFY_TLS_KEY");

  // --- several replicas as one (docs/configuration.md#replicas-redis)
  std::string redis_urls;
  std::string redis_password_file;
  double presence_ttl = 30;
  double redis_timeout = 0.8;
  cli.add_option("--redis-url", redis_urls,
                 "Redis shards that make several gateways act as one, separated by spaces: "
                 "redis://[:PASSWORD@]HOST:PORT[/DB] or redis-sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER; "
                 "channels are spread over them by a consistent hash. Empty: this process alone, no Redis")
      ->envname("NOTIFY_REDIS_URL");
  cli.add_option("--redis-password-file", redis_password_file,
                 "File holding the Redis password (first line), instead of one in --redis-url")
      ->envname("NOTIFY_REDIS_PASSWORD_FILE");
  cli.add_option("--presence-ttl", presence_ttl,
                 "Seconds after which a replica that stopped without a goodbye (kill -9, node loss) leaves "
                 "presence and delivery counts; it refreshes its entry every third of this")
      ->envname("NOTIFY_PRESENCE_TTL")
      ->check(CLI::Range(3.0, 3600.0))
      ->capture_default_str();
  cli.add_option("--redis-timeout", redis_timeout,
                 "Seconds a Redis reply may take; after that the connection is dropped and rebuilt, and the calls "
                 "waiting on it answer UNAVAILABLE")
      ->envname("NOTIFY_REDIS_TIMEOUT")
      ->check(CLI::Range(0.05, 30.0))
      ->capture_default_str();

  // --- the admin API
  cli.add_option("--grpc-bind", grpc_bind,
                 "Address the gRPC port listens on; default: --bind when the admin API is authenticated "
                 "(API keys or mutual TLS) or --insecure-admin is set, else loopback")
      ->envname("NOTIFY_GRPC_BIND");
  cli.add_option("--admin-api-keys-file", s.api_keys_file,
                 "File of admin API keys, one a line, optionally followed by scopes "
                 "(notify,broadcast,disconnect,presence,stream); callers send authorization: Bearer <key>")
      ->envname("NOTIFY_ADMIN_API_KEYS_FILE");
  cli.add_option("--admin-tls-cert", s.tls_cert_file, "Certificate chain (PEM) for gRPC over TLS")
      ->envname("NOTIFY_ADMIN_TLS_CERT");
  cli.add_option("--admin-tls-key", s.tls_key_file, "Private key (PEM) for --admin-tls-cert")
      ->envname("NOTIFY_ADMIN_TLS_KEY");
  cli.add_option("--admin-client-ca", s.client_ca_file,
                 "CA bundle (PEM): require and verify client certificates (mutual TLS)")
      ->envname("NOTIFY_ADMIN_CLIENT_CA");
  cli.add_flag("--insecure-admin", s.insecure_admin,
               "Allow the admin API on a non-loopback address without API keys or mutual TLS")
      ->envname("NOTIFY_INSECURE_ADMIN");

  std::ostringstream out;
  std::ostringstream err;
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    ConfigResult result;
    // --help exits 0; every configuration error exits 2, whatever CLI11's own code.
    result.exit_code = cli.exit(e, out, err) == 0 ? 0 : 2;
    result.output = out.str() + err.str();
    return result;
  }

  g.bind_address = s.bind_address;
  if (g.threads == 0) g.threads = usable_cpus();
  log::parse_format(log_format, c.log_format);
  log::parse_level(log_level, c.log_level);
  gateway::parse_overflow_policy(policy, g.queue.policy);
  g.handshake_timeout = seconds_to_ms(handshake_timeout);
  g.idle_timeout = seconds_to_ms(idle_timeout);
  g.close_timeout = seconds_to_ms(close_timeout);
  g.history.ttl = seconds_to_ms(history_ttl);
  s.ack_timeout_ms = static_cast<std::uint32_t>(seconds_to_ms(ack_timeout).count());
  s.inbox_ttl_s = static_cast<std::uint32_t>(inbox_ttl);
  s.inbox = g.inbox_size > 0;
  c.shutdown_timeout = seconds_to_ms(shutdown_timeout);
  c.jwt_policy.leeway = std::chrono::seconds(static_cast<std::int64_t>(jwt_leeway));
  if (const char* secret = std::getenv("NOTIFY_JWT_SECRET")) c.jwt_keys.secret = secret;

  std::string problem = check_consistency(c);
  if (problem.empty()) problem = apply_redis(c, redis_urls, redis_password_file, presence_ttl, redis_timeout);
  if (problem.empty()) problem = apply_security(c, allowed_origins, public_topics, trusted_proxies, grpc_bind);
  if (!problem.empty()) {
    ConfigResult result;
    result.exit_code = 2;
    result.output = "configuration error: " + problem + "\nRun with --help for more information.\n";
    return result;
  }
  ConfigResult result;
  result.config = std::move(c);
  return result;
}

}  // namespace notify::app
