#include "tests/support/process.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace notify::testing {

namespace {

// Reaps `pid` once it has exited: its exit status, or 128 + the signal that
// ended it, kept in `status_out`; nullopt while it still runs after `timeout`.
std::optional<int> wait_child(pid_t pid, std::optional<int>& status_out, std::chrono::milliseconds timeout) {
  if (status_out) return status_out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      status_out = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_out;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

std::vector<std::string> GatewayProcess::default_args() {
  return {"--bind",         "127.0.0.1", "--ws-port",    "0",    "--grpc-port",   "0",
          "--metrics-port", "0",         "--log-format", "json", "--insecure-dev"};
}

GatewayProcess::GatewayProcess(std::vector<std::string> args) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<std::string> argv_storage = {NOTIFY_GATEWAY_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, NOTIFY_GATEWAY_BINARY, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    throw std::runtime_error(std::string("cannot start ") + NOTIFY_GATEWAY_BINARY);
  }
  out_fd_ = pipe_fds[0];
  reader_ = std::thread([this] { pump(); });
}

GatewayProcess::~GatewayProcess() {
  if (!wait_exit(std::chrono::milliseconds(0))) {
    kill(pid_, SIGKILL);
    wait_exit(std::chrono::milliseconds(5000));
  }
  if (reader_.joinable()) reader_.join();
  if (out_fd_ >= 0) close(out_fd_);
}

void GatewayProcess::pump() {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard lock(mu_);
    if (n <= 0) {
      eof_ = true;
      cv_.notify_all();
      return;
    }
    output_.append(buf, static_cast<std::size_t>(n));
    cv_.notify_all();
  }
}

bool GatewayProcess::wait_listening(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::size_t scanned = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::size_t eol;
    while ((eol = output_.find('\n', scanned)) != std::string::npos) {
      const std::string line = output_.substr(scanned, eol - scanned);
      scanned = eol + 1;
      boost::system::error_code ec;
      auto value = boost::json::parse(line, ec);
      if (ec || !value.is_object()) continue;
      const auto& obj = value.as_object();
      if (obj.contains("msg") && obj.at("msg") == "listening") {
        ws_port_ = static_cast<std::uint16_t>(obj.at("ws_port").to_number<int>());
        grpc_port_ = static_cast<std::uint16_t>(obj.at("grpc_port").to_number<int>());
        metrics_port_ = static_cast<std::uint16_t>(obj.at("metrics_port").to_number<int>());
        return true;
      }
    }
    if (eof_) return false;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return false;
  }
}

void GatewayProcess::signal(int signal_number) { kill(pid_, signal_number); }

std::optional<int> GatewayProcess::wait_exit(std::chrono::milliseconds timeout) {
  auto status = wait_child(pid_, exit_status_, timeout);
  if (status) {
    // The child is gone, but what it wrote last may still be in the pipe:
    // output() after an exit must hold all of it.
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(2), [this] { return eof_; });
  }
  return status;
}

std::string GatewayProcess::output() {
  std::lock_guard lock(mu_);
  return output_;
}

ChildProcess::ChildProcess(const std::string& binary, const std::vector<std::string>& args,
                           const std::vector<std::string>& env) {
  // A child that exits before reading all of its input must not take the
  // test down with it.
  ::signal(SIGPIPE, SIG_IGN);
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("NOTIFY_", 0) != 0) env_storage.emplace_back(*e);
  }
  env_storage.insert(env_storage.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  // The child starts as from a shell: default signal dispositions (SIGPIPE
  // included, which this process ignores) and nothing blocked.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults, none;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  const int rc = posix_spawn(&pid_, binary.c_str(), &actions, &attributes, argv.data(), envp.data());
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    throw std::runtime_error("cannot start " + binary);
  }
  stdin_fd_ = in[1];
  out_.fd = out[0];
  err_.fd = err[0];
  out_.reader = std::thread([this] { pump(out_); });
  err_.reader = std::thread([this] { pump(err_); });
}

ChildProcess::~ChildProcess() {
  close_stdin();
  if (!wait_exit(std::chrono::milliseconds(0))) {
    kill(pid_, SIGKILL);
    wait_exit(std::chrono::milliseconds(5000));
  }
  for (Pipe* p : {&out_, &err_}) {
    if (p->reader.joinable()) p->reader.join();
    close(p->fd);
  }
}

void ChildProcess::pump(Pipe& pipe) {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(pipe.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard lock(mu_);
    if (n <= 0) {
      pipe.eof = true;
      cv_.notify_all();
      return;
    }
    pipe.text.append(buf, static_cast<std::size_t>(n));
    cv_.notify_all();
  }
}

void ChildProcess::write_stdin(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(stdin_fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("cannot write to the child's stdin");
    done += static_cast<std::size_t>(n);
  }
}

void ChildProcess::close_stdin() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
}

void ChildProcess::signal(int signal_number) { kill(pid_, signal_number); }

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  return wait_child(pid_, exit_status_, timeout);
}

bool ChildProcess::wait_lines(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    return static_cast<std::size_t>(std::count(out_.text.begin(), out_.text.end(), '\n')) >= count || out_.eof;
  }) && static_cast<std::size_t>(std::count(out_.text.begin(), out_.text.end(), '\n')) >= count;
}

bool ChildProcess::wait_output_end(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return out_.eof && err_.eof; });
}

std::string ChildProcess::out() {
  std::lock_guard lock(mu_);
  return out_.text;
}

std::string ChildProcess::err() {
  std::lock_guard lock(mu_);
  return err_.text;
}

CommandResult run_command(const std::string& binary, const std::vector<std::string>& args, const std::string& input,
                          const std::vector<std::string>& env, std::chrono::milliseconds timeout) {
  ChildProcess child(binary, args, env);
  // Written on its own thread: a child may print before reading all of it.
  std::thread feeder([&] {
    try {
      if (!input.empty()) child.write_stdin(input);
    } catch (const std::exception&) {
      // the child stopped reading (it exited early): what it printed tells why
    }
    child.close_stdin();
  });
  const auto status = child.wait_exit(timeout);
  if (!status) child.signal(SIGKILL);
  feeder.join();
  child.wait_exit(std::chrono::milliseconds(5000));
  CommandResult result;
  result.exit_code = status.value_or(-1);
  child.wait_output_end(std::chrono::milliseconds(1000));
  result.out = child.out();
  result.err = child.err();
  return result;
}

}  // namespace notify::testing
