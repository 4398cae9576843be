#include "broker/local_broker.hpp"

#include "gateway/protocol.hpp"

namespace notify::broker {

namespace {

gateway::Hub::CountCallback counted(Broker::Done done) {
  return [done = std::move(done)](std::uint32_t n) { done(Outcome{.error = {}, .count = n}); };
}

}  // namespace

gateway::FramePtr notification_frame(const Publication& p) {
  return std::make_shared<const gateway::Frame>(
      gateway::Frame::Kind::notification,
      gateway::protocol::encode_notification(p.id, p.event, p.topic, p.data_json, p.ts_ms));
}

void LocalBroker::notify(std::vector<std::string> users, Publication publication, Done done) {
  hub_.notify(std::move(users), notification_frame(publication), counted(std::move(done)));
}

void LocalBroker::broadcast(Publication publication, Done done) {
  auto frame = notification_frame(publication);
  hub_.broadcast(std::move(publication.topic), std::move(frame), counted(std::move(done)));
}

void LocalBroker::disconnect(std::vector<std::string> users, std::string reason, Done done) {
  hub_.disconnect(std::move(users), gateway::protocol::close_code::disconnected, std::move(reason),
                  counted(std::move(done)));
}

void LocalBroker::presence(std::vector<std::string> users, PresenceDone done) {
  hub_.presence(std::move(users),
                [done = std::move(done)](std::vector<std::uint32_t> counts) { done({}, std::move(counts)); });
}

}  // namespace notify::broker
