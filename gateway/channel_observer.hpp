#pragma once
// Told what the connections of a process need from other replicas: called
// on the event loop's thread for every connection that opens or closes (its
// user) and every topic subscription that starts or ends. The Redis broker
// counts these to subscribe to a channel while any connection needs it and
// to publish presence. Implementations must not block (they hand the change
// to their own thread).
#include <string_view>

namespace notify::gateway {

class ChannelObserver {
 public:
  virtual ~ChannelObserver() = default;
  // One connection of `user` more (+1) or less (-1).
  virtual void user_changed(std::string_view user, int delta) = 0;
  // One subscriber of `topic` more (+1) or less (-1).
  virtual void topic_changed(std::string_view topic, int delta) = 0;
};

}  // namespace notify::gateway
