#include "cli/stream_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <google/protobuf/util/json_util.h>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "cli/stop_signals.hpp"
#include "common/json_text.hpp"
#include "notify/v1/notification_service.grpc.pb.h"

namespace notify::cli {
namespace {

constexpr std::size_t kMaxLineBytes = 64 << 20;

// Lines from a file descriptor. read() is only called once poll() says data
// is there, so a reader waiting on an idle pipe or terminal notices `stop`
// within 100 ms.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // The next line without its "\n" (and "\r"), or nullopt at the end of the
  // input, on a read error or once `stop` is set. `too_long` reports a line
  // above kMaxLineBytes, of which the text returned holds only the start.
  std::optional<std::string> next(const std::atomic<bool>& stop, bool& too_long) {
    too_long = false;
    std::string line;
    for (;;) {
      const auto eol = buffer_.find('\n', scan_from_);
      if (eol != std::string::npos) {
        line.append(buffer_, pos_, eol - pos_);
        pos_ = scan_from_ = eol + 1;
        break;
      }
      if (eof_) {
        if (pos_ == buffer_.size() && line.empty() && !too_long) return std::nullopt;
        line.append(buffer_, pos_);
        pos_ = scan_from_ = buffer_.size();
        break;
      }
      buffer_.erase(0, pos_);
      pos_ = 0;
      if (buffer_.size() > kMaxLineBytes) {  // keep the start, drop the rest of the line
        if (!too_long) line = buffer_.substr(0, 256);
        too_long = true;
        buffer_.clear();
      }
      scan_from_ = buffer_.size();
      if (!fill(stop)) return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  // The errno of a failed read (or poll), 0 if none failed.
  int error() const { return error_; }

 private:
  bool fill(const std::atomic<bool>& stop) {
    pollfd p{fd_, POLLIN, 0};
    for (;;) {
      if (stop.load()) return false;
      const int ready = poll(&p, 1, 100);
      if (ready < 0 && errno != EINTR) {
        error_ = errno;
        return false;
      }
      if (ready <= 0) continue;
      char chunk[65536];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) {
        error_ = errno;
        return false;
      }
      if (n == 0) {
        eof_ = true;
        return true;
      }
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
  }

  int fd_;
  int error_ = 0;
  std::string buffer_;
  std::size_t pos_ = 0;        // start of what next() has not returned yet
  std::size_t scan_from_ = 0;  // where to look for the next "\n"
  bool eof_ = false;
};

// The output line of one input line.
std::string result_line(std::size_t line, std::optional<std::uint64_t> sequence, int code, const std::string& message,
                        const v1::NotifyResult* ok) {
  std::string out = "{\"line\":" + std::to_string(line);
  if (sequence) out += ",\"sequence\":" + std::to_string(*sequence);
  if (ok != nullptr && code == 0) {
    out += ",\"id\":";
    append_json_string(out, ok->id());
    out += ",\"deliveredConnections\":" + std::to_string(ok->delivered_connections());
    out += ",\"offlineUserIds\":[";
    for (int i = 0; i < ok->offline_user_ids_size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, ok->offline_user_ids(i));
    }
    out += ']';
  }
  out += ",\"code\":" + std::to_string(code) + ",\"status\":\"" + status_name(code) + "\"";
  if (code != 0) {
    out += ",\"errorMessage\":";
    append_json_string(out, message);
  }
  out += '}';
  return out;
}

// The input lines whose results are not printed yet, in input order. A
// line's result is printed once every earlier line's has been.
class ResultQueue {
 public:
  // A line refused before sending: its result is known at once.
  void refused(std::size_t line, const std::string& why) {
    std::lock_guard lock(mu_);
    ++failed_;
    slots_.push_back({line, std::nullopt, result_line(line, std::nullopt, 3, why, nullptr)});
    print_ready();
  }
  // A line about to be sent as request `sequence`.
  void sent(std::size_t line, std::uint64_t sequence) {
    std::lock_guard lock(mu_);
    outstanding_[sequence] = first_slot_ + slots_.size();
    slots_.push_back({line, sequence, std::nullopt});
  }
  void answered(const v1::NotifyStreamResponse& response) {
    std::lock_guard lock(mu_);
    for (const auto& r : response.results()) {
      const auto it = outstanding_.find(r.sequence());
      if (it == outstanding_.end()) continue;  // not ours: nothing to match it with
      Slot& slot = slots_[it->second - first_slot_];
      outstanding_.erase(it);
      if (r.code() != 0) ++failed_;
      slot.output = result_line(slot.line, r.sequence(), r.code(), r.error_message(), &r);
    }
    print_ready();
  }
  // The call ended: every request still without a result was not handled.
  void abandon(const grpc::Status& status) {
    std::lock_guard lock(mu_);
    const int code = status.ok() ? static_cast<int>(grpc::StatusCode::UNKNOWN) : status.error_code();
    const std::string why = "not handled: " + (status.ok() ? "no result received" : status.error_message());
    for (auto& slot : slots_) {
      if (slot.output) continue;
      ++failed_;
      slot.output = result_line(slot.line, slot.sequence, code, why, nullptr);
    }
    print_ready();
  }
  std::size_t failed() {
    std::lock_guard lock(mu_);
    return failed_;
  }

 private:
  struct Slot {
    std::size_t line;
    std::optional<std::uint64_t> sequence;
    std::optional<std::string> output;
  };

  void print_ready() {
    bool printed = false;
    while (!slots_.empty() && slots_.front().output) {
      std::cout << *slots_.front().output << '\n';
      slots_.pop_front();
      ++first_slot_;
      printed = true;
    }
    if (printed) std::cout.flush();
  }

  std::mutex mu_;
  std::deque<Slot> slots_;
  std::size_t first_slot_ = 0;                                  // index of slots_.front() among all slots
  std::unordered_map<std::uint64_t, std::size_t> outstanding_;  // sequence -> slot index
  std::size_t failed_ = 0;
};

}  // namespace

std::variant<v1::NotifyRequest, std::string> parse_stream_line(std::string_view line) {
  if (auto problem = check_json(line)) return "not valid JSON: " + *problem;
  v1::NotifyRequest request;
  const auto status = google::protobuf::util::JsonStringToMessage(line, &request);
  if (!status.ok()) return "not a NotifyRequest: " + std::string(status.message());
  return request;
}

int stream(const Connection& connection, const std::string& path, std::size_t max_request_bytes) {
  int fd = STDIN_FILENO;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw UsageError("--file " + path + ": cannot open the file (" + std::strerror(errno) + ")");
    struct stat info {};
    if (fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
      ::close(fd);
      throw UsageError("--file " + path + " is a folder, not a file");
    }
  }
  const std::string input_name = path == "-" ? "standard input" : path;

  auto stub = v1::NotificationService::NewStub(connection.channel());
  grpc::ClientContext context;
  connection.prepare(context, false);
  auto call = stub->NotifyStream(&context);

  ResultQueue results;
  std::atomic<bool> stop{false};
  // A first stop signal ends the input: the requests sent still get their
  // results. A second one cancels them; a third ends the process.
  SignalWatcher signals([&](int signal, int count) {
    if (count == 1) {
      stop = true;
      std::cerr << "notifyctl stream: stopping; the requests sent are being answered (signal again to cancel them)\n";
    } else if (count == 2) {
      context.TryCancel();
    } else {
      std::_Exit(128 + signal);
    }
  });

  std::size_t last_line = 0;
  std::uint64_t sent = 0;
  int read_error = 0;
  std::thread writer([&] {
    LineReader reader(fd);
    bool too_long = false;
    bool writable = true;
    for (std::size_t line = 1;; ++line) {
      auto text = reader.next(stop, too_long);
      if (!text || stop.load()) break;
      last_line = line;
      if (too_long) {
        results.refused(line, "longer than " + std::to_string(kMaxLineBytes >> 20) + " MiB");
        continue;
      }
      if (text->find_first_not_of(" \t") == std::string::npos) continue;
      auto parsed = parse_stream_line(*text);
      if (auto* why = std::get_if<std::string>(&parsed)) {
        results.refused(line, *why);
        continue;
      }
      const auto& request = std::get<v1::NotifyRequest>(parsed);
      // gRPC would end the whole call on a message above the gateway's limit.
      if (const std::size_t size = request.ByteSizeLong(); size > max_request_bytes) {
        results.refused(line, "the request is " + std::to_string(size) + " bytes, more than --max-request-bytes " +
                                  std::to_string(max_request_bytes) + " (the gateway's --grpc-max-message-bytes)");
        continue;
      }
      results.sent(line, sent++);
      if (!call->Write(request)) {
        writable = false;  // the call has ended; its status says why
        break;
      }
    }
    read_error = reader.error();
    if (writable) call->WritesDone();
  });

  v1::NotifyStreamResponse response;
  while (call->Read(&response)) results.answered(response);
  stop = true;  // the call is over: a writer waiting for input has nothing to send it to
  writer.join();
  if (fd != STDIN_FILENO) ::close(fd);
  const grpc::Status status = call->Finish();
  results.abandon(status);

  const auto progress = [&] {
    std::cerr << "notifyctl stream: " << sent << " requests sent; input read up to line " << last_line
              << "; a request without an OK result was not handled\n";
  };
  if (const int signal = signals.first_signal(); signal != 0) {
    std::cerr << "notifyctl stream: stopped by a signal\n";
    progress();
    return 128 + signal;
  }
  if (!status.ok()) {
    const int code = report_failure("stream", status);
    progress();
    return code;
  }
  if (read_error != 0) {
    std::cerr << "notifyctl stream: cannot read " << input_name << " after line " << last_line << ": "
              << std::strerror(read_error) << "\n";
    return kExitUsage;
  }
  if (const std::size_t failed = results.failed(); failed != 0) {
    std::cerr << "notifyctl stream: " << failed << " of the requests failed (see their result lines)\n";
    return kExitNegative;
  }
  return kExitOk;
}

}  // namespace notify::cli
