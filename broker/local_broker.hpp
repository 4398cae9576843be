#pragma once
// The broker of a single process: publications go straight to the hub.
// Thread-safe (the hub is).
#include "broker/broker.hpp"
#include "gateway/frame.hpp"
#include "gateway/hub.hpp"
#include "gateway/inbox.hpp"
#include "gateway/protocol.hpp"

namespace notify::broker {

// The frame every recipient of `p` shares, encoded once. The audience, a
// Notify's users or a Broadcast's subscribers (a topic's, or everyone's when
// the topic is empty), scopes its collapse key. `position`: the frame's place
// in history, if kept (then the frame belongs to that stream alone).
enum class Audience { users, subscribers };
gateway::FramePtr notification_frame(const Publication& p, Audience audience,
                                     const gateway::protocol::Position* position = nullptr);

// What a persisted publication looks like in an inbox: its frame with
// "inbox": true and no stream position (a push on connect is outside history).
std::string inbox_payload(const Publication& p);

class LocalBroker final : public Broker {
 public:
  // `inbox`: where persisted publications are kept; null: the inbox is off.
  LocalBroker(gateway::Hub& hub, gateway::Inbox* inbox) : hub_(hub), inbox_(inbox) {}

  void notify(std::vector<std::string> users, Publication publication, Done done) override;
  void broadcast(Publication publication, Done done) override;
  void disconnect(std::vector<std::string> users, std::string reason, Done done) override;
  void presence(std::vector<std::string> users, PresenceDone done) override;

 private:
  gateway::Hub& hub_;
  gateway::Inbox* inbox_;
};

}  // namespace notify::broker
