#pragma once
// What the history and resume tests share: numbered notifications, resume
// requests, and a client that keeps reconnecting and resuming while a
// backend sends (tests/integration/history_test.cpp, redis_history_test.cpp).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "notify/v1/notification_service.grpc.pb.h"

namespace notify::testing {

// Notify to `user` with data {"seq": seq}; a failed call fails the test.
void send_seq(v1::NotificationService::Stub& stub, const std::string& user, int seq,
              const std::string& collapse_key = {});

class TestServer;
class WsClient;

// Connects `user` without reading (a 4 KiB receive buffer) and sends it
// `count` plain notifications of 60 KiB (event "big"): more than its socket
// takes, so later frames wait in its send queue (the server's
// --send-queue-max-bytes must hold them). Null, with a test failure, if the
// connection never opened.
std::unique_ptr<WsClient> stalled_client(TestServer& server, const std::string& user, int count = 160);

// {"type":"ack","ids":[id]}: the client acknowledges a require_ack notification.
std::string ack_message(const std::string& id);

// {"epoch": epoch, "offset": offset} as JSON text.
std::string at(const std::string& epoch, std::uint64_t offset);

// {"type":"resume","id":<id>,"streams":{<name>: <position JSON>, ...}}.
std::string resume_message(const std::vector<std::pair<std::string, std::string>>& streams, int id = 1);

// Reads `total` notifications of `user`'s own stream while reconnecting
// (to port_for(n) for the n-th connection, from 1) after every
// 1 + n % quota_mod of them and resuming from the last offset seen. Fails
// the test on a gap, a duplicate, a resume_failed or a stall; `seqs` gets
// the data "seq" of each notification in the order received.
void receive_while_reconnecting(const std::function<std::uint16_t(int)>& port_for, const std::string& user, int total,
                                int quota_mod, int max_connections, std::vector<int>& seqs, int& connections);

}  // namespace notify::testing
