// notifyctl: the command-line client of notify-gateway's admin API
// (docs/notifyctl.md). One subcommand per call of the API; connection flags
// with NOTIFY_* fallbacks; JSON on stdout, errors on stderr, exit codes by
// gRPC status (cli/exit_codes.hpp).
#include <grpc/support/log.h>

#include <CLI/CLI.hpp>
#include <cstdlib>

#include <iostream>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/stop_signals.hpp"
#include "cli/stream_command.hpp"

namespace {

using namespace notify::cli;

constexpr const char* kFooter = R"(Output: each response as one line of JSON (proto3 JSON mapping, as grpcurl prints
it) on stdout; errors on stderr as "notifyctl <command>: <STATUS>: <message>".

Exit codes: 0 success; 1 the call worked but the answer is no (health not SERVING,
a stream request that failed); 2 bad flags or input, refused before any call;
64 + the gRPC status code when the call failed (67 INVALID_ARGUMENT, 68 DEADLINE_EXCEEDED,
71 PERMISSION_DENIED, 72 RESOURCE_EXHAUSTED, 78 UNAVAILABLE, 80 UNAUTHENTICATED);
128 + the signal when a stream is stopped by one (130 for Ctrl-C).

Examples:
  notifyctl notify --user alice --event like --data '{"post":42}'
  notifyctl broadcast --topic post:42 --event comment --data '"hi"'
  notifyctl notify --user alice --event order --require-ack --ack-timeout-ms 10000
  notifyctl reports --count 1
  notifyctl --server gw.internal:50051 --ca-file ca.pem --api-key-file key presence --user alice
More: docs/notifyctl.md)";

struct NotificationFlags {
  NotificationInput input;
  std::string data;
};

void add_notification_flags(CLI::App& sub, NotificationFlags& f) {
  sub.add_option("--event", f.input.event, "Event name, e.g. like (1-64 of [A-Za-z0-9_.:-])")->required();
  sub.add_option("--data", f.data,
                 "Payload: a JSON document (object, array, \"string\", number, true, false, null); "
                 "default null");
  sub.add_option("--id", f.input.id, "Notification id clients can de-duplicate on; default: the gateway makes one");
  sub.add_option("--collapse-key", f.input.collapse_key,
                 "Replaces the older notification with this key still waiting for a slow client (1-128 of "
                 "[A-Za-z0-9_.:-]); default none");
}

NotificationInput notification_input(const CLI::App& sub, NotificationFlags& f) {
  NotificationInput input = f.input;
  if (sub.count("--data") > 0) input.data = f.data;
  return input;
}

}  // namespace

int main(int argc, char** argv) {
  // gRPC logs connection failures itself; the status notifyctl prints says
  // the same. GRPC_VERBOSITY (e.g. debug) turns its log back on.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});

  CLI::App cli{
      "notifyctl: command-line client of notify-gateway's gRPC admin API (notify.v1.NotificationService).\n"
      "Connection flags may come before or after the subcommand; each falls back to the NOTIFY_* variable shown."};
  cli.name("notifyctl");
  cli.set_help_flag("-h,--help", "Print this help (or a subcommand's) and exit");
  cli.require_subcommand(1);
  cli.fallthrough();  // connection flags after the subcommand name reach the main parser
  cli.footer("Connection flags (--server, --api-key-file, --tls, ...), output and exit codes: notifyctl --help");

  ConnectionOptions conn;
  cli.add_option("--server", conn.server, "Gateway admin API address, HOST:PORT")
      ->envname("NOTIFY_SERVER")
      ->capture_default_str();
  cli.add_option("--api-key-file", conn.api_key_file,
                 "File holding the admin API key (its first word), sent as authorization: Bearer <key>")
      ->envname("NOTIFY_API_KEY_FILE");
  cli.add_flag("--tls", conn.tls,
               "Use TLS (implied by --ca-file and --cert-file); without --ca-file the "
               "system's roots verify the server")
      ->envname("NOTIFY_TLS");
  cli.add_option("--ca-file", conn.ca_file, "CA bundle (PEM) the server certificate must chain to")
      ->envname("NOTIFY_CA_FILE");
  cli.add_option("--cert-file", conn.cert_file, "Client certificate (PEM) for mutual TLS, with --key-file")
      ->envname("NOTIFY_CERT_FILE");
  cli.add_option("--key-file", conn.key_file, "Private key (PEM) of --cert-file")->envname("NOTIFY_KEY_FILE");
  cli.add_option("--tls-server-name", conn.tls_server_name,
                 "Name the server certificate must carry, when it is not the host in --server")
      ->envname("NOTIFY_TLS_SERVER_NAME");
  cli.add_option("--timeout", conn.timeout_seconds,
                 "Seconds each call may take (not tail, reports and stream, which run "
                 "until their input or the gateway ends)")
      ->envname("NOTIFY_TIMEOUT")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();

  std::vector<std::string> users;
  const auto add_users = [&users](CLI::App& sub, const char* what) {
    sub.add_option("--user", users, what)->required()->delimiter(',')->type_name("ID");
  };

  NotificationFlags note;
  auto* notify_cmd = cli.add_subcommand("notify", "Notify: send a notification to every connection of the users");
  add_users(*notify_cmd, "Recipient user id; repeat or separate with commas for several");
  add_notification_flags(*notify_cmd, note);
  notify_cmd->add_flag("--require-ack", note.input.require_ack,
                       "Each connection reached must acknowledge it; outcomes arrive on StreamDeliveryReports "
                       "(notifyctl reports)");
  notify_cmd
      ->add_option("--ack-timeout-ms", note.input.ack_timeout_ms,
                   "With --require-ack: milliseconds the connections have to acknowledge (default: the gateway's "
                   "--ack-timeout)")
      ->check(CLI::Range(1u, 600'000u));
  notify_cmd->add_flag("--persist", note.input.persist,
                       "Also keep it in each user's inbox until read or expired; a user with no connection gets it "
                       "when they next connect");
  notify_cmd
      ->add_option("--persist-ttl-seconds", note.input.persist_ttl_seconds,
                   "With --persist: seconds it stays in the inbox (default: the gateway's --inbox-ttl)")
      ->check(CLI::Range(1u, 2'592'000u));

  std::string topic;
  auto* broadcast_cmd =
      cli.add_subcommand("broadcast", "Broadcast: send a notification to a topic's subscribers, or to everyone");
  broadcast_cmd->add_option("--topic", topic, "Topic, e.g. post:42; without it every connection receives it");
  add_notification_flags(*broadcast_cmd, note);

  std::string reason;
  auto* disconnect_cmd =
      cli.add_subcommand("disconnect", "Disconnect: close every connection of the users (close code 4000)");
  add_users(*disconnect_cmd, "User id; repeat or separate with commas for several");
  disconnect_cmd->add_option("--reason", reason, "Close reason the clients see, at most 123 bytes");

  auto* presence_cmd = cli.add_subcommand("presence", "GetPresence: count the open connections of the users");
  add_users(*presence_cmd, "User id; repeat or separate with commas for several");

  std::uint64_t count = 0;
  auto* tail_cmd = cli.add_subcommand(
      "tail", "StreamClientMessages: print what clients send upstream, one JSON line each, until Ctrl-C");
  tail_cmd->add_option("--count", count, "Stop after this many messages (default: no limit)");

  auto* reports_cmd = cli.add_subcommand(
      "reports",
      "StreamDeliveryReports: print the outcome of every require_ack notification on each connection (ACKED, "
      "TIMED_OUT, CONNECTION_CLOSED, REPLACED), one JSON line each, until Ctrl-C");
  reports_cmd->add_option("--count", count, "Stop after this many reports (default: no limit)");

  std::string file;
  auto* stream_cmd = cli.add_subcommand(
      "stream",
      "NotifyStream: send NotifyRequests read as JSON lines over one call; one result line per request, in input "
      "order");
  stream_cmd->add_option("--file", file, "File of JSON lines, or - for standard input")->required();
  std::size_t max_request_bytes = 4 << 20;
  stream_cmd
      ->add_option("--max-request-bytes", max_request_bytes,
                   "Larger requests are refused without sending them (the gateway's --grpc-max-message-bytes: a "
                   "larger one would end the whole stream)")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20))
      ->capture_default_str();

  std::string service;
  auto* health_cmd =
      cli.add_subcommand("health", "grpc.health.v1.Health/Check: print the status; exit 0 only when SERVING");
  health_cmd->add_option("--service", service,
                         "Service to ask about, e.g. notify.v1.NotificationService (default: the server)");

  cli.footer(kFooter);  // set last: the subcommands keep the short footer above

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return cli.exit(e);  // --help
    std::string message = e.what();
    if (cli.get_subcommands().empty() && !cli.remaining().empty()) {
      message = "\"" + cli.remaining().front() + "\" is not a subcommand";
    }
    std::cerr << "notifyctl: " << message << "\nRun 'notifyctl --help' for more information.\n";
    return kExitUsage;
  }

  const CLI::App* command = cli.get_subcommands().front();
  try {
    if (command == notify_cmd) {
      const auto request = build_notify(users, notification_input(*notify_cmd, note));
      return notify::cli::notify(Connection::open(conn), request);
    }
    if (command == broadcast_cmd) {
      const auto request = build_broadcast(topic, notification_input(*broadcast_cmd, note));
      return broadcast(Connection::open(conn), request);
    }
    if (command == disconnect_cmd) return disconnect(Connection::open(conn), build_disconnect(users, reason));
    if (command == presence_cmd) return presence(Connection::open(conn), build_presence(users));
    if (command == health_cmd) return health(Connection::open(conn), service);
    block_stop_signals();  // tail, reports and stream stop cleanly on SIGINT, SIGTERM, SIGHUP
    if (command == stream_cmd) return stream(Connection::open(conn), file, max_request_bytes);
    if (command == reports_cmd) return reports(Connection::open(conn), count);
    return tail(Connection::open(conn), count);
  } catch (const UsageError& e) {
    std::cerr << "notifyctl " << command->get_name() << ": " << e.what() << "\nRun 'notifyctl " << command->get_name()
              << " --help' for more information.\n";
    return kExitUsage;
  }
}
