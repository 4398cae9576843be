#include "gateway/shard.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>

#include "common/ids.hpp"

namespace notify::gateway {

namespace {

// A fan-out spends most of its time in send(), and each recipient's state is
// cold by then: while one recipient writes, the loop fetches the state of
// one a few places ahead, and the socket of one a little closer (its address
// is in the state fetched earlier).
constexpr std::size_t kPrefetchState = 8;
constexpr std::size_t kPrefetchSocket = 4;

}  // namespace

bool SubscriberSet::insert(Subscriber* s) {
  const auto [it, inserted] = positions_.try_emplace(s, members_.size());
  if (inserted) members_.push_back(s);
  return inserted;
}

bool SubscriberSet::erase(Subscriber* s) {
  const auto it = positions_.find(s);
  if (it == positions_.end()) return false;
  const std::size_t pos = it->second;
  positions_.erase(it);
  if (pos + 1 != members_.size()) {
    members_[pos] = members_.back();
    positions_[members_[pos]] = pos;
  }
  members_.pop_back();
  return true;
}

Shard::Shard(std::size_t index, boost::asio::io_context& context, LoopMetrics& metrics)
    : index_(index),
      context_(context),
      metrics_(metrics),
      expiry_timer_(std::make_unique<boost::asio::steady_timer>(context)) {}

void Shard::enqueue(std::function<void()> task) {
  std::lock_guard lock(inbox_mu_);
  inbox_.push_back(std::move(task));
  if (inbox_scheduled_) return;
  inbox_scheduled_ = true;
  boost::asio::post(context_, [this] { drain_inbox(); });
}

void Shard::drain_inbox() {
  {
    std::lock_guard lock(inbox_mu_);
    running_.swap(inbox_);
    inbox_scheduled_ = false;
  }
  // Tasks enqueued meanwhile (by these ones too) go to the next drain, behind these.
  for (auto& task : running_) task();
  running_.clear();
}

Shard::ExpiryHandle Shard::track_expiry(Subscriber* s, std::int64_t unix_ms) {
  const auto handle = expiries_.emplace(unix_ms, s);
  if (timer_armed_for_ == 0 || unix_ms < timer_armed_for_) arm_expiry_timer();
  return handle;
}

void Shard::untrack_expiry(ExpiryHandle handle) { expiries_.erase(handle); }

void Shard::arm_expiry_timer() {
  if (!expiry_timer_ || expiries_.empty()) {
    timer_armed_for_ = 0;
    return;
  }
  timer_armed_for_ = expiries_.begin()->first;
  const auto wait = std::chrono::milliseconds(std::max<std::int64_t>(0, timer_armed_for_ - unix_millis()));
  expiry_timer_->expires_after(wait);
  expiry_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) on_expiry_timer();
  });
}

void Shard::on_expiry_timer() {
  const std::int64_t now = unix_millis();
  // Collect first: expire() starts a close, which must not run while the
  // index is being walked.
  std::vector<Subscriber*> due;
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    due.push_back(expiries_.begin()->second);
    expiries_.erase(expiries_.begin());
  }
  for (Subscriber* s : due) s->expire();
  arm_expiry_timer();
}

void Shard::enable_idle_sweep(std::chrono::milliseconds idle_timeout) {
  if (idle_timeout.count() <= 0) return;
  sweep_interval_ = std::max(idle_timeout / 4, std::chrono::milliseconds(50));
  sweep_timer_ = std::make_unique<boost::asio::steady_timer>(context_);
  arm_sweep_timer();
}

void Shard::arm_sweep_timer() {
  sweep_timer_->expires_after(sweep_interval_);
  sweep_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const std::int64_t now = steady_millis();
    // A copy: a connection that times out leaves the index.
    const std::vector<Subscriber*> members = all_.members();
    for (Subscriber* s : members) s->idle_check(now);
    arm_sweep_timer();
  });
}

void Shard::add(Subscriber* s) {
  if (!all_.insert(s)) return;
  auto& list = users_[std::string(s->user_id())];
  list.push_back(s);
  if (observer_) observer_->user_changed(s->user_id(), +1);
  if (list.size() == 1 && directory_) directory_->join(s->user_id(), index_);
}

void Shard::remove(Subscriber* s, std::span<const std::string> topics) {
  for (const auto& topic : topics) unsubscribe(s, topic);
  if (!all_.erase(s)) return;
  if (observer_) observer_->user_changed(s->user_id(), -1);
  const auto it = users_.find(s->user_id());
  if (it == users_.end()) return;
  auto& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), s), list.end());
  if (!list.empty()) return;
  if (directory_) directory_->leave(it->first, index_);
  users_.erase(it);
}

void Shard::subscribe(Subscriber* s, std::string_view topic) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) it = topics_.emplace(std::string(topic), SubscriberSet{}).first;
  if (it->second.insert(s) && observer_) observer_->topic_changed(topic, +1);
}

void Shard::unsubscribe(Subscriber* s, std::string_view topic) {
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  if (it->second.erase(s) && observer_) observer_->topic_changed(topic, -1);
  if (it->second.empty()) topics_.erase(it);
}

std::size_t Shard::deliver_each(const std::vector<Subscriber*>& list, const FramePtr& frame) {
  // Subscribers don't change the indexes synchronously (see Subscriber), so
  // the list is stable during the loop.
  const std::size_t n = list.size();
  std::size_t delivered = 0;
  clock_.begin_fanout();
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kPrefetchState < n) list[i + kPrefetchState]->prefetch_state();
    if (i + kPrefetchSocket < n) list[i + kPrefetchSocket]->prefetch_socket();
    delivered += list[i]->deliver(frame) ? 1 : 0;
  }
  clock_.end_fanout();
  return delivered;
}

std::size_t Shard::deliver_to_users(std::span<const std::string> users, const FramePtr& frame) {
  std::size_t delivered = 0;
  for (const auto& user : users) {
    const auto it = users_.find(user);
    if (it == users_.end()) continue;
    delivered += deliver_each(it->second, frame);
  }
  return delivered;
}

std::size_t Shard::deliver_to_topic(std::string_view topic, const FramePtr& frame) {
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return 0;
  return deliver_each(it->second.members(), frame);
}

std::size_t Shard::deliver_to_all(const FramePtr& frame) { return deliver_each(all_.members(), frame); }

std::size_t Shard::close_users(std::span<const std::string> users, std::uint16_t code, std::string_view reason) {
  std::size_t closed = 0;
  for (const auto& user : users) {
    const auto it = users_.find(user);
    if (it == users_.end()) continue;
    for (Subscriber* s : it->second) closed += s->close(code, std::string(reason)) ? 1 : 0;
  }
  return closed;
}

std::size_t Shard::close_all(std::uint16_t code, std::string_view reason) {
  std::size_t closed = 0;
  for (Subscriber* s : all_.members()) closed += s->close(code, std::string(reason)) ? 1 : 0;
  return closed;
}

void Shard::count_users(std::span<const std::string> users, std::span<std::atomic<std::uint32_t>> counts) const {
  for (std::size_t i = 0; i < users.size(); ++i) {
    const auto it = users_.find(users[i]);
    if (it != users_.end())
      counts[i].fetch_add(static_cast<std::uint32_t>(it->second.size()), std::memory_order_relaxed);
  }
}

}  // namespace notify::gateway
