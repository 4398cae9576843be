#include "gateway/inbox.hpp"

#include <algorithm>

#include "common/ids.hpp"
#include "gateway/hub.hpp"

namespace notify::gateway {

std::string encode_unread(std::uint64_t count, std::string_view id_json) {
  std::string out = "{\"type\":\"unread\",\"count\":" + std::to_string(count);
  if (!id_json.empty()) {
    out += ",\"id\":";
    out += id_json;
  }
  out += '}';
  return out;
}

void push_unread(Hub& hub, const std::string& user, std::uint64_t count, std::string except_connection) {
  auto frame = std::make_shared<Frame>(Frame::Kind::control, encode_unread(count));
  frame->except_connection = std::move(except_connection);
  frame->unread_count = true;
  hub.send_to_users({user}, FramePtr(std::move(frame)));
}

Inbox::UserInbox* Inbox::live(const std::string& user, std::int64_t now_ms) {
  const auto it = users_.find(user);
  if (it == users_.end()) return nullptr;
  std::erase_if(it->second, [now_ms](const Kept& k) { return k.entry.expires_ms <= now_ms; });
  return &it->second;
}

void Inbox::add(const std::vector<std::string>& users, const InboxEntry& entry) {
  {
    std::lock_guard lock(mu_);
    for (const std::string& user : users) {
      UserInbox& inbox = users_[user];
      std::erase_if(inbox, [&](const Kept& k) { return k.entry.id == entry.id; });
      // Kept in ts order; a notification almost always comes last.
      auto at = std::upper_bound(inbox.begin(), inbox.end(), entry.ts_ms,
                                 [](std::int64_t ts, const Kept& k) { return ts < k.entry.ts_ms; });
      inbox.insert(at, Kept{entry, true});
      if (inbox.size() > max_entries_) inbox.erase(inbox.begin());
    }
  }
}

void Inbox::settle(const std::vector<std::string>& users, const std::vector<std::string>& offline,
                   const std::string& id) {
  const std::int64_t now = unix_millis();
  std::vector<std::pair<std::string, std::uint64_t>> counts;
  {
    std::lock_guard lock(mu_);
    for (const std::string& user : users) {
      UserInbox* inbox = live(user, now);
      if (inbox == nullptr) continue;
      if (std::find(offline.begin(), offline.end(), user) == offline.end()) {
        for (Kept& k : *inbox) {
          if (k.entry.id == id) k.pending = false;
        }
      }
      counts.emplace_back(user, inbox->size());
    }
  }
  for (auto& [user, count] : counts) push_unread(hub_, user, count);
}

void Inbox::take_pending(std::string user, EntriesDone done) {
  std::vector<InboxEntry> entries;
  std::uint64_t unread = 0;
  bool more = false;
  {
    std::lock_guard lock(mu_);
    if (UserInbox* inbox = live(user, unix_millis())) {
      unread = inbox->size();
      std::size_t bytes = 0;
      for (Kept& k : *inbox) {
        if (!k.pending) continue;
        if (!entries.empty() &&
            (entries.size() >= kInboxPageItems || bytes + k.entry.payload.size() > kInboxPageBytes)) {
          more = true;
          break;
        }
        k.pending = false;
        bytes += k.entry.payload.size();
        entries.push_back(k.entry);
      }
    }
  }
  done({}, std::move(entries), unread, more);
}

void Inbox::restore_pending(std::string user, std::vector<std::string> ids) {
  std::lock_guard lock(mu_);
  if (UserInbox* inbox = live(user, unix_millis())) {
    for (Kept& k : *inbox) {
      if (std::find(ids.begin(), ids.end(), k.entry.id) != ids.end()) k.pending = true;
    }
  }
}

void Inbox::list(std::string user, std::string before, std::size_t limit, EntriesDone done) {
  std::vector<InboxEntry> entries;
  std::uint64_t unread = 0;
  bool more = false;
  bool found = before.empty();
  {
    std::lock_guard lock(mu_);
    if (UserInbox* inbox = live(user, unix_millis())) {
      unread = inbox->size();
      auto it = inbox->rbegin();
      if (!before.empty()) {
        it = std::find_if(inbox->rbegin(), inbox->rend(), [&](const Kept& k) { return k.entry.id == before; });
        found = it != inbox->rend();
        if (found) ++it;
      }
      std::size_t bytes = 0;
      for (; found && it != inbox->rend(); ++it) {
        if (!entries.empty() && (entries.size() >= limit || bytes + it->entry.payload.size() > kInboxPageBytes)) {
          more = true;
          break;
        }
        bytes += it->entry.payload.size();
        entries.push_back(it->entry);
      }
    }
  }
  // `before` is gone (read, expired): the client lists from the newest again.
  if (!found) {
    done(std::string(kInboxNotFound), {}, unread, false);
    return;
  }
  done({}, std::move(entries), unread, more);
}

void Inbox::mark_read(std::string user, std::vector<std::string> ids, bool all, std::string except_connection,
                      CountDone done) {
  std::uint64_t unread = 0;
  {
    std::lock_guard lock(mu_);
    if (UserInbox* inbox = live(user, unix_millis())) {
      if (all) {
        inbox->clear();
      } else {
        std::erase_if(*inbox,
                      [&](const Kept& k) { return std::find(ids.begin(), ids.end(), k.entry.id) != ids.end(); });
      }
      unread = inbox->size();
      if (inbox->empty()) users_.erase(user);
    }
  }
  push_unread(hub_, user, unread, std::move(except_connection));
  done({}, unread);
}

std::size_t Inbox::prune(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::size_t kept = 0;
  for (auto it = users_.begin(); it != users_.end();) {
    std::erase_if(it->second, [now_ms](const Kept& k) { return k.entry.expires_ms <= now_ms; });
    if (it->second.empty()) {
      it = users_.erase(it);
    } else {
      kept += it->second.size();
      ++it;
    }
  }
  return kept;
}

}  // namespace notify::gateway
