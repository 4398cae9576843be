#include "gateway/send_queue.hpp"

#include <cassert>

#include "gateway/protocol.hpp"

namespace notify::gateway {

bool parse_overflow_policy(std::string_view text, OverflowPolicy& out) {
  if (text == "close") {
    out = OverflowPolicy::close;
  } else if (text == "drop-oldest") {
    out = OverflowPolicy::drop_oldest;
  } else {
    return false;
  }
  return true;
}

std::string_view to_string(OverflowPolicy policy) { return policy == OverflowPolicy::close ? "close" : "drop-oldest"; }

SendQueue::PushResult SendQueue::push(FramePtr frame) {
  PushResult result{true, 0, 0, 0, 0, 0, nullptr};
  const std::size_t frame_bytes = frame->payload.size();
  // A frame that could not fit even beside nothing but the frame in flight
  // is refused before anything is removed for it (under close the
  // connection goes either way; under drop-oldest nothing is sacrificed,
  // not even the older frame of its collapse key).
  const std::size_t in_flight_bytes = in_flight_ ? frames_[head_]->payload.size() : 0;
  if (in_flight_bytes + frame_bytes > limits_->max_bytes || (in_flight_ ? 2u : 1u) > limits_->max_messages) {
    result.accepted = false;
    return result;
  }
  if (!frame->collapse.empty()) {
    // The frame in flight belongs to the socket already; behind it, the
    // older frame of this scope, if one waits, is stale now.
    for (std::size_t i = head_ + (in_flight_ ? 1 : 0); i < frames_.size(); ++i) {
      if (frames_[i]->collapse != frame->collapse) continue;
      result.collapsed = 1;
      result.replaced = frames_[i];
      result.collapsed_bytes = frames_[i]->payload.size();
      bytes_ -= result.collapsed_bytes;
      if (frames_[i]->offset == 0) {
        frames_.erase(frames_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
      // A frame with an offset leaves a marker in its place, so that the
      // client sees every offset of the stream and no gap.
      result.marker_bytes = leave_marker(i, head_ + (in_flight_ ? 1 : 0), result.collapsed_bytes);
      break;
    }
  }
  auto fits = [&] { return size() < limits_->max_messages && bytes_ + frame_bytes <= limits_->max_bytes; };
  if (!fits()) {
    if (limits_->policy == OverflowPolicy::close) {
      result.accepted = false;
      return result;
    }
    // Keep the in-flight frame: its bytes already belong to the socket.
    const std::size_t keep = in_flight_ ? 1 : 0;
    while (!fits() && size() > keep) {
      // The victim is the oldest waiting frame, right behind the one in
      // flight (if any): O(1) by moving the in-flight frame onto it.
      const std::size_t victim = head_ + keep;
      const std::size_t victim_bytes = frames_[victim]->payload.size();
      if (keep) frames_[victim] = std::move(frames_[head_]);
      frames_[head_].reset();
      ++head_;
      bytes_ -= victim_bytes;
      ++result.dropped;
      result.dropped_bytes += victim_bytes;
    }
    compact();
    // The check at the top made sure that the frame fits beside the one in
    // flight, which is all that is left at worst.
    assert(fits());
  }
  bytes_ += frame_bytes;
  frames_.push_back(std::move(frame));
  return result;
}

std::size_t SendQueue::leave_marker(std::size_t i, std::size_t first_waiting, std::size_t& released) {
  const Frame& old = *frames_[i];
  // Markers of the same stream on either side, with the offsets right
  // before or after, merge with it: a flood of keyed notifications leaves
  // one marker, not one per notification.
  auto marker_next_to = [&](std::size_t j, bool before) {
    if (j < first_waiting || j >= frames_.size()) return false;
    const Frame& m = *frames_[j];
    return m.skipped_from != 0 && m.stream == old.stream && m.epoch == old.epoch &&
           (before ? m.offset + 1 == old.offset : m.skipped_from == old.offset + 1);
  };
  const bool merge_before = i > 0 && marker_next_to(i - 1, true);
  const bool merge_after = marker_next_to(i + 1, false);
  const std::uint64_t from = merge_before ? frames_[i - 1]->skipped_from : old.offset;
  const std::uint64_t to = merge_after ? frames_[i + 1]->offset : old.offset;
  auto marker =
      std::make_shared<Frame>(Frame::Kind::control, protocol::encode_skipped({old.stream, old.epoch, to}, from));
  marker->stream = old.stream;
  marker->epoch = old.epoch;
  marker->offset = to;
  marker->skipped_from = from;
  std::size_t start = merge_before ? i - 1 : i;
  std::size_t end = merge_after ? i + 2 : i + 1;
  // Their bytes leave with them (the replaced frame's were taken off already).
  for (std::size_t j = start; j < end; ++j) {
    if (j == i) continue;
    bytes_ -= frames_[j]->payload.size();
    released += frames_[j]->payload.size();
  }
  const std::size_t marker_bytes = marker->payload.size();
  frames_[start] = std::move(marker);
  frames_.erase(frames_.begin() + static_cast<std::ptrdiff_t>(start + 1),
                frames_.begin() + static_cast<std::ptrdiff_t>(end));
  bytes_ += marker_bytes;
  return marker_bytes;
}

const FramePtr& SendQueue::begin_write() {
  assert(!empty() && !in_flight_);
  in_flight_ = true;
  return frames_[head_];
}

FramePtr SendQueue::end_write() {
  assert(in_flight_);
  in_flight_ = false;
  FramePtr done = std::move(frames_[head_]);
  bytes_ -= done->payload.size();
  pop_front();
  return done;
}

std::size_t SendQueue::clear_waiting() {
  std::size_t kept = head_ + (in_flight_ ? 1 : 0);
  std::size_t released = 0;
  for (std::size_t i = kept; i < frames_.size(); ++i) {
    if (frames_[i]->kind == Frame::Kind::wire) {
      frames_[kept++] = std::move(frames_[i]);
    } else {
      released += frames_[i]->payload.size();
    }
  }
  frames_.resize(kept);
  bytes_ -= released;
  compact();  // releases the storage when nothing is left
  return released;
}

void SendQueue::push_protocol(FramePtr frame) {
  bytes_ += frame->payload.size();
  frames_.push_back(std::move(frame));
}

void SendQueue::push_partial(FramePtr frame, std::size_t written) {
  assert(empty() && written > 0 && written < frame->wire.size());
  bytes_ += frame->payload.size();
  frames_.push_back(std::move(frame));
  offset_ = written;
  in_flight_ = true;
}

std::size_t SendQueue::gather(iovec* out, std::size_t max, std::size_t& bytes) const {
  std::size_t count = 0;
  bytes = 0;
  std::size_t offset = offset_;
  for (std::size_t i = head_; i < frames_.size() && count < max; ++i) {
    const std::string& wire = frames_[i]->wire;
    out[count].iov_base = const_cast<char*>(wire.data() + offset);  // sendmsg never writes through it
    out[count].iov_len = wire.size() - offset;
    bytes += out[count].iov_len;
    ++count;
    offset = 0;
  }
  return count;
}

std::size_t SendQueue::clear_all() {
  const std::size_t released = bytes_;
  frames_.clear();
  head_ = 0;
  bytes_ = 0;
  offset_ = 0;
  in_flight_ = false;
  compact();
  return released;
}

void SendQueue::pop_front() {
  if (head_ < frames_.size()) ++head_;
  compact();
}

void SendQueue::compact() {
  if (head_ == frames_.size()) {
    // An idle connection holds no queue storage at all.
    frames_.clear();
    if (frames_.capacity() > 8) frames_.shrink_to_fit();
    head_ = 0;
  } else if (head_ >= 64 && head_ * 2 >= frames_.size()) {
    frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

}  // namespace notify::gateway
