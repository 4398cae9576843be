#include "gateway/event_loops.hpp"

#include <pthread.h>

#include <string>

#include "common/log.hpp"

namespace notify::gateway {

EventLoops::EventLoops(std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
}

EventLoops::~EventLoops() { destroy(); }

void EventLoops::start() {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    guards_.push_back(boost::asio::make_work_guard(*contexts_[i]));
    threads_.emplace_back([this, i] {
      const std::string name = "loop-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      for (;;) {
        try {
          contexts_[i]->run();
          return;
        } catch (const std::exception& e) {
          // A handler threw: log it and keep the loop serving its other connections.
          log::error("event loop handler threw", {{"loop", i}, {"error", e.what()}});
        }
      }
    });
  }
}

void EventLoops::stop() {
  guards_.clear();
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void EventLoops::destroy() {
  stop();
  contexts_.clear();
}

}  // namespace notify::gateway
