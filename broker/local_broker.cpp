#include "broker/local_broker.hpp"

#include <memory>

#include "gateway/protocol.hpp"

namespace notify::broker {

namespace {

gateway::Hub::CountCallback counted(Broker::Done done) {
  return [done = std::move(done)](std::uint32_t n) { done(Outcome{.error = {}, .count = n, .offline = {}}); };
}

}  // namespace

gateway::FramePtr notification_frame(const Publication& p, Audience audience,
                                     const gateway::protocol::Position* position) {
  std::string payload =
      gateway::protocol::encode_notification(p.id, p.event, p.topic, p.data_json, p.ts_ms, p.collapse_key, position,
                                             p.ack_deadline_ms != 0, p.inbox_expires_ms != 0);
  std::shared_ptr<gateway::Frame> frame;
  if (p.collapse_key.empty()) {
    frame = std::make_shared<gateway::Frame>(gateway::Frame::Kind::notification, payload);
  } else {
    // The scope: the stream the frame belongs to (the addressed user's own,
    // a topic, or everyone) and the key.
    const std::string stream = audience == Audience::users ? std::string("u") : p.topic.empty() ? "*" : "t:" + p.topic;
    frame = std::make_shared<gateway::Frame>(payload, stream + '\n' + p.collapse_key);
  }
  if (p.ack_deadline_ms != 0) {
    frame->ack_id = p.id;
    frame->published_ms = p.ts_ms;
    frame->ack_deadline_ms = p.ack_deadline_ms;
  }
  if (p.inbox_expires_ms != 0) frame->inbox_id = p.id;
  if (position != nullptr) {
    frame->stream = position->stream;
    frame->epoch = position->epoch;
    frame->offset = position->offset;
  }
  return frame;
}

std::string inbox_payload(const Publication& p) {
  return gateway::protocol::encode_notification(p.id, p.event, {}, p.data_json, p.ts_ms, {}, nullptr, false, true);
}

void LocalBroker::notify(std::vector<std::string> users, Publication publication, Done done) {
  if (publication.inbox_expires_ms != 0 && inbox_ != nullptr) {
    // Kept before it is published, so a connection opening meanwhile finds
    // it pending; no longer pending, after, for those who got it live.
    inbox_->add(users, gateway::InboxEntry{.id = publication.id,
                                           .ts_ms = publication.ts_ms,
                                           .expires_ms = publication.inbox_expires_ms,
                                           .payload = inbox_payload(publication)});
    done = [this, users, id = publication.id, done = std::move(done)](Outcome outcome) {
      inbox_->settle(users, outcome.offline, id);
      done(std::move(outcome));
    };
  }
  // With a user directory the hub fills `offline` before any loop runs, so
  // before `done` can; without one (more loops than it tracks) it is filled
  // here first, from every loop's presence.
  auto deliver = [this, publication = std::move(publication), done = std::move(done)](
                     std::vector<std::string> addressed, std::shared_ptr<std::vector<std::string>> offline) {
    hub_.notify(
        std::move(addressed),
        [&publication](const gateway::protocol::Position* position) {
          return notification_frame(publication, Audience::users, position);
        },
        [done, offline](std::uint32_t n) { done(Outcome{.error = {}, .count = n, .offline = std::move(*offline)}); },
        offline.get());
  };
  auto offline = std::make_shared<std::vector<std::string>>();
  if (hub_.tracks_users()) {
    deliver(std::move(users), std::move(offline));
    return;
  }
  auto shared_users = std::make_shared<std::vector<std::string>>(users);
  hub_.presence(std::move(users),
                [deliver = std::move(deliver), shared_users, offline](std::vector<std::uint32_t> counts) {
                  for (std::size_t i = 0; i < counts.size(); ++i) {
                    if (counts[i] == 0) offline->push_back((*shared_users)[i]);
                  }
                  deliver(std::move(*shared_users), offline);
                });
}

void LocalBroker::broadcast(Publication publication, Done done) {
  std::string topic = publication.topic;
  hub_.broadcast(
      std::move(topic),
      [&publication](const gateway::protocol::Position* position) {
        return notification_frame(publication, Audience::subscribers, position);
      },
      counted(std::move(done)));
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
