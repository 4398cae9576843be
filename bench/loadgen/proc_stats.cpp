#include "bench/loadgen/proc_stats.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace bench {

namespace {

struct StatLine {
  int ppid = 0;
  std::uint64_t ticks = 0;  // utime + stime
};

// Fields of /proc/<pid>/stat after the command name, which may hold spaces.
bool read_stat(int pid, StatLine& out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  // state(3) ppid(4) ... utime(14) stime(15), counted from 1 at the pid.
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 4) out.ppid = std::atoi(field.c_str());
    if (n == 14 || n == 15) out.ticks += std::strtoull(field.c_str(), nullptr, 10);
  }
  return true;
}

std::uint64_t read_rss_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

std::map<int, int> parents() {
  std::map<int, int> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (const dirent* entry = readdir(dir)) {
    const int pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    StatLine stat;
    if (read_stat(pid, stat)) out[pid] = stat.ppid;
  }
  closedir(dir);
  return out;
}

}  // namespace

std::vector<int> process_tree(int root) {
  std::vector<int> tree;
  if (root <= 0) return tree;
  const auto parent_of = parents();
  if (!parent_of.contains(root)) return tree;
  tree.push_back(root);
  // Processes are few; repeat until no new descendant turns up.
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [pid, ppid] : parent_of) {
      if (std::find(tree.begin(), tree.end(), pid) != tree.end()) continue;
      if (std::find(tree.begin(), tree.end(), ppid) != tree.end()) {
        tree.push_back(pid);
        grew = true;
      }
    }
  }
  return tree;
}

ProcSample sample_process_tree(int root) {
  ProcSample sample;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const int pid : process_tree(root)) {
    StatLine stat;
    if (!read_stat(pid, stat)) continue;
    sample.cpu_seconds += static_cast<double>(stat.ticks) / tick;
    sample.rss_bytes += read_rss_bytes(pid);
    ++sample.processes;
  }
  return sample;
}

std::int64_t now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace bench
