#include "gateway/history.hpp"

#include "common/ids.hpp"

namespace notify::gateway {

History::History(HistoryLimits limits, std::string node_epoch) : limits_(limits), node_epoch_(std::move(node_epoch)) {
  if (limits_.max_entries == 0) limits_.max_entries = 1;
}

History::Stream& History::find_or_create(Stripe& s, std::string_view stream, std::int64_t now_ms) {
  auto it = s.streams.find(stream);
  if (it == s.streams.end()) {
    Stream st;
    // Unique per stream incarnation: this process's epoch and a counter.
    st.epoch = node_epoch_ + "-" + std::to_string(next_epoch_.fetch_add(1, std::memory_order_relaxed) + 1);
    st.last_ms = now_ms;
    it = s.streams.emplace(std::string(stream), std::move(st)).first;
  }
  return it->second;
}

void History::trim(Stream& st, std::int64_t now_ms) const {
  const std::int64_t oldest = now_ms - limits_.ttl.count();
  while (!st.entries.empty() && (st.entries.size() > limits_.max_entries || st.entries.front().stored_ms < oldest)) {
    st.trimmed_through = st.entries.front().offset;
    st.entries.pop_front();
  }
}

void History::collapse(Stream& st, std::string_view scope) {
  for (auto it = st.entries.begin(); it != st.entries.end(); ++it) {
    if (it->frame->collapse == scope) {
      st.entries.erase(it);
      return;  // at most one is kept: each append removes the previous
    }
  }
}

std::pair<std::string, std::uint64_t> History::position(std::string_view stream, std::int64_t now_ms) {
  Stripe& s = stripe(stream);
  std::lock_guard lock(s.mu);
  const Stream& st = find_or_create(s, stream, now_ms);
  return {st.epoch, st.head};
}

History::Resume History::read_after(std::string_view stream, std::string_view epoch, std::uint64_t offset,
                                    std::int64_t now_ms, std::vector<Entry>& out, std::uint64_t& head,
                                    std::string& current_epoch) {
  out.clear();
  Stripe& s = stripe(stream);
  std::lock_guard lock(s.mu);
  const auto it = s.streams.find(stream);
  if (it == s.streams.end()) {
    head = 0;
    current_epoch.clear();
    // Nothing was ever kept here, or it was forgotten: only a client that
    // has no position yet is current.
    return epoch.empty() && offset == 0 ? Resume::ok : Resume::epoch_changed;
  }
  Stream& st = it->second;
  trim(st, now_ms);
  head = st.head;
  current_epoch = st.epoch;
  if (epoch != st.epoch) return Resume::epoch_changed;
  if (offset > st.head) return Resume::ahead;
  // Entries trimmed for size or age are lost to a client behind them;
  // collapsed ones are not (a newer entry with their key is kept).
  if (offset < st.trimmed_through) return Resume::too_old;
  for (const Entry& e : st.entries) {
    if (e.offset > offset) out.push_back(e);
  }
  return Resume::ok;
}

std::size_t History::prune(std::int64_t now_ms) {
  const std::int64_t oldest = now_ms - limits_.ttl.count();
  std::size_t removed = 0;
  for (Stripe& s : stripes_) {
    std::lock_guard lock(s.mu);
    for (auto it = s.streams.begin(); it != s.streams.end();) {
      if (it->second.last_ms < oldest) {
        it = s.streams.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
  }
  return removed;
}

void History::positions(std::vector<std::string> streams, PositionsDone done) {
  const std::int64_t now = unix_millis();
  std::vector<protocol::Position> out;
  out.reserve(streams.size());
  for (std::string& stream : streams) {
    auto [epoch, head] = position(stream, now);
    out.push_back(protocol::Position{std::move(stream), std::move(epoch), head});
  }
  done({}, std::move(out));
}

const char* History::reason(Resume r) {
  switch (r) {
    case Resume::ok:
      return "";
    case Resume::too_old:
      return "too_old";
    case Resume::ahead:
      return "ahead";
    case Resume::epoch_changed:
      break;
  }
  return "epoch_changed";
}

void History::read_after(std::vector<protocol::Position> wanted, ReadDone done) {
  const std::int64_t now = unix_millis();
  std::vector<StreamRead> reads;
  reads.reserve(wanted.size());
  std::vector<Entry> entries;
  for (protocol::Position& w : wanted) {
    StreamRead r;
    r.position.stream = w.stream;
    const Resume result = read_after(w.stream, w.epoch, w.offset, now, entries, r.position.offset, r.position.epoch);
    r.failure = reason(result);
    for (Entry& e : entries) r.frames.push_back(std::move(e.frame));
    reads.push_back(std::move(r));
  }
  done({}, std::move(reads));
}

std::size_t History::stream_count() const {
  std::size_t n = 0;
  for (const Stripe& s : stripes_) {
    std::lock_guard lock(s.mu);
    n += s.streams.size();
  }
  return n;
}

}  // namespace notify::gateway
