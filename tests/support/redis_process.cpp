#include "tests/support/redis_process.hpp"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace notify::testing {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

RedisProcess::RedisProcess(std::vector<std::string> extra) : extra_(std::move(extra)) {
  for (int attempt = 0; attempt < 5 && !process_; ++attempt) {
    port_ = free_port();
    start();
  }
  if (!process_) throw std::runtime_error("redis-server did not start");
}

RedisProcess::~RedisProcess() { process_.reset(); }  // ChildProcess SIGKILLs its child

void RedisProcess::start() {
  std::vector<std::string> args{
      "--port", std::to_string(port_),    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize",
      "no",     "--enable-debug-command", "local"};
  args.insert(args.end(), extra_.begin(), extra_.end());
  process_ = std::make_unique<ChildProcess>("/usr/bin/redis-server", args);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string reply = command({"PING"}, std::chrono::milliseconds(200));
    if (reply == "PONG" || reply.find("NOAUTH") != std::string::npos) return;
    if (process_->wait_exit(std::chrono::milliseconds(20))) break;  // e.g. the port was taken meanwhile
  }
  process_.reset();
}

void RedisProcess::kill() {
  if (!process_) return;
  process_->signal(SIGCONT);
  process_->signal(SIGKILL);
  process_->wait_exit(std::chrono::seconds(5));
  process_.reset();
}

void RedisProcess::freeze() {
  if (process_) process_->signal(SIGSTOP);
}

void RedisProcess::thaw() {
  if (process_) process_->signal(SIGCONT);
}

void RedisProcess::restart() {
  kill();
  start();
  if (!process_) throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_));
}

namespace {

std::string text_of(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(r->str, r->len);
    case REDIS_REPLY_ERROR:
      return "ERR:" + std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (std::size_t i = 0; i < r->elements; ++i) out += (i ? "\n" : "") + text_of(r->element[i]);
      return out;
    }
    default:
      return "?";
  }
}

}  // namespace

std::string redis_command(std::uint16_t port, const std::vector<std::string>& args, std::chrono::milliseconds timeout);

std::string RedisProcess::command(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  return redis_command(port_, args, timeout);
}

std::string redis_command(std::uint16_t port, const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return "ERR:" + why;
  }
  redisSetTimeout(c, tv);
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
  std::string out = r ? text_of(r) : "ERR:" + std::string(c->errstr);
  if (r) freeReplyObject(r);
  redisFree(c);
  return out;
}

SentinelProcess::SentinelProcess(std::uint16_t master_port, std::chrono::milliseconds down_after) {
  char tmpl[] = "/tmp/notify-sentinel-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  for (int attempt = 0; attempt < 5 && !process_; ++attempt) {
    port_ = free_port();
    const std::string conf = dir_ + "/sentinel.conf";
    {
      std::ofstream out(conf);
      out << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_ << "\n"
          << "sentinel monitor mymaster 127.0.0.1 " << master_port << " 1\n"
          << "sentinel down-after-milliseconds mymaster " << down_after.count() << "\n"
          << "sentinel failover-timeout mymaster 10000\n";
    }
    process_ = std::make_unique<ChildProcess>("/usr/bin/redis-sentinel", std::vector<std::string>{conf});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool up = false;
    while (!up && std::chrono::steady_clock::now() < deadline) {
      up = command({"PING"}) == "PONG";
      if (!up && process_->wait_exit(std::chrono::milliseconds(20))) break;
    }
    if (!up) process_.reset();
  }
  if (!process_) throw std::runtime_error("redis-sentinel did not start");
}

SentinelProcess::~SentinelProcess() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string SentinelProcess::command(const std::vector<std::string>& args) const {
  return redis_command(port_, args, std::chrono::milliseconds(2000));
}

}  // namespace notify::testing
