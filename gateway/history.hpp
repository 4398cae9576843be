#pragma once
// The recent notifications of each stream, kept so that a client that
// reconnects can be given what it missed (docs/protocol.md#history-and-resume). A stream is a user's own notifications,
// a topic's, or everyone's; its notifications get consecutive offsets from 1, and an epoch that names this history of
// the stream: when the history is lost (this process restarted, or the stream was idle longer than the ttl and
// forgotten), the next notification starts a new epoch at offset 1, so a position from before can never be mistaken for
// one of the new history.
//
// Bounded per stream by entries and by age. Thread-safe: streams live in
// striped maps, each stripe under its own mutex, like UserDirectory.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <functional>

#include "gateway/frame.hpp"
#include "gateway/protocol.hpp"

namespace notify::gateway {

// What a resume reads for one stream.
struct StreamRead {
  // The stream's epoch and last offset now (stream named); live delivery
  // goes on after it.
  protocol::Position position;
  // Empty: `frames` holds every notification after the client's position,
  // oldest first. Otherwise why not, for resume_failed (too_old,
  // epoch_changed, ahead), and `frames` is empty.
  std::string failure;
  std::vector<FramePtr> frames;
};

// Where history lives, as the client sessions see it: in this process
// (History) or in Redis (broker::RedisBroker). Callbacks run once, on any
// thread (a session posts back to its loop); `error` set: history can't be
// reached now.
class HistoryBackend {
 public:
  using PositionsDone = std::function<void(std::string error, std::vector<protocol::Position> positions)>;
  using ReadDone = std::function<void(std::string error, std::vector<StreamRead> reads)>;

  virtual ~HistoryBackend() = default;
  // True when callbacks run before the call returns (in-process).
  virtual bool synchronous() const = 0;
  // The current position of each stream, in order; a stream without history
  // gets its epoch now. Call once the connection receives the streams' live
  // notifications: every later offset reaches it.
  virtual void positions(std::vector<std::string> streams, PositionsDone done) = 0;
  // For each position, what came after it (same order). Same rule.
  virtual void read_after(std::vector<protocol::Position> wanted, ReadDone done) = 0;
};

struct HistoryLimits {
  std::size_t max_entries = 100;              // per stream (History needs at least 1; 0 in settings: no history)
  std::chrono::milliseconds ttl{5 * 60'000};  // entries older than this are dropped
};

class History final : public HistoryBackend {
 public:
  struct Entry {
    std::uint64_t offset;
    std::int64_t stored_ms;
    FramePtr frame;
  };
  // Why a position cannot be resumed from; `ok` also for a stream the
  // position is current in (nothing missed).
  enum class Resume { ok, epoch_changed, too_old, ahead };

  // `node_epoch`: unique to this process's history (a fresh random id at
  // start); stream epochs are made from it.
  History(HistoryLimits limits, std::string node_epoch);

  // Gives the stream's next offset to `make(offset, epoch)`, which builds the
  // frame that carries them, stores it, and runs `then(frame)` while the
  // stream is still locked: whatever `then` hands on (to the event loops)
  // leaves in offset order, even when several threads append to one stream.
  template <class Make, class Then>
  FramePtr append(std::string_view stream, std::int64_t now_ms, Make&& make, Then&& then) {
    Stripe& s = stripe(stream);
    std::lock_guard lock(s.mu);
    Stream& st = find_or_create(s, stream, now_ms);
    const std::uint64_t offset = ++st.head;
    FramePtr frame = make(offset, std::string_view(st.epoch));
    if (!frame->collapse.empty()) collapse(st, frame->collapse);
    st.entries.push_back(Entry{offset, now_ms, frame});
    st.last_ms = now_ms;
    trim(st, now_ms);
    then(frame);
    return frame;
  }

  // The entries of `stream` after `offset` in `epoch`, oldest first, into
  // `out`; `head` and `current_epoch` receive the stream's last offset and
  // epoch (0 and empty for a stream without history). Anything but `ok`
  // leaves `out` empty: a client never gets part of what it missed.
  Resume read_after(std::string_view stream, std::string_view epoch, std::uint64_t offset, std::int64_t now_ms,
                    std::vector<Entry>& out, std::uint64_t& head, std::string& current_epoch);

  // The stream's epoch and last offset; a stream without history gets its
  // epoch now, so that a client can hold a position in it before its first
  // notification.
  std::pair<std::string, std::uint64_t> position(std::string_view stream, std::int64_t now_ms);

  // Forgets the streams whose newest entry is older than the ttl; returns
  // how many. Their next notification starts a new epoch.
  std::size_t prune(std::int64_t now_ms);
  std::size_t stream_count() const;
  const HistoryLimits& limits() const { return limits_; }

  // The resume_failed reason for a result ("" for ok).
  static const char* reason(Resume r);

  // HistoryBackend, answered at once.
  bool synchronous() const override { return true; }
  void positions(std::vector<std::string> streams, PositionsDone done) override;
  void read_after(std::vector<protocol::Position> wanted, ReadDone done) override;

 private:
  static constexpr std::size_t kStripes = 64;

  struct Stream {
    std::string epoch;
    std::uint64_t head = 0;
    std::uint64_t trimmed_through = 0;  // the highest offset dropped for size or age (not collapsed)
    std::int64_t last_ms = 0;
    std::deque<Entry> entries;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct alignas(64) Stripe {
    mutable std::mutex mu;
    std::unordered_map<std::string, Stream, Hash, std::equal_to<>> streams;
  };

  Stripe& stripe(std::string_view stream) { return stripes_[Hash{}(stream) % kStripes]; }
  Stream& find_or_create(Stripe& s, std::string_view stream, std::int64_t now_ms);
  void trim(Stream& st, std::int64_t now_ms) const;
  // Removes the entry with this collapse scope, if one is kept: the new one
  // replaces it.
  static void collapse(Stream& st, std::string_view scope);

  HistoryLimits limits_;
  std::string node_epoch_;
  std::atomic<std::uint64_t> next_epoch_{0};
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace notify::gateway
