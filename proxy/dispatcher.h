// One worker's event loop: the only owner of a libevent event_base, with timers, cross-thread
// posts and deferred deletion (objects are never destroyed inside their own callbacks).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

struct event_base;
struct event;

namespace wsb::proxy {

using Duration = std::chrono::milliseconds;

class Dispatcher;

// A one-shot timer owned by whoever arms it; disarmed on destruction.
class Timer {
 public:
  Timer(Dispatcher& dispatcher, std::function<void()> callback);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void arm(Duration after);
  void cancel();
  bool armed() const;

 private:
  static void onFire(int, short, void* self);
  event* event_;
  std::function<void()> callback_;
};

// Base for objects handed to Dispatcher::deferDelete.
class Deletable {
 public:
  virtual ~Deletable() = default;
};

// Work queued with Dispatcher::flushSoon: runs once the callbacks of this loop iteration have run.
class Flushable {
 public:
  virtual void flush() = 0;

 protected:
  ~Flushable() = default;
};

class Dispatcher {
 public:
  Dispatcher();
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  event_base* base() { return base_; }
  // Runs until exit() is called.
  void run();
  // Thread-safe: asks the loop to return once the current iteration ends.
  void exit();
  // Thread-safe: runs `fn` on this dispatcher's thread, in a later iteration.
  void post(std::function<void()> fn);
  // Destroys `object` at the end of this loop iteration, after every callback on the stack.
  void deferDelete(std::unique_ptr<Deletable> object);
  // Calls `f->flush()` once, after the callbacks already due in this loop iteration (so a
  // connection's output queued by many of them is written by one system call). One event for the
  // whole loop: an object pays nothing for it while idle. An object that dies before its turn
  // must call cancelFlush().
  void flushSoon(Flushable* f);
  void cancelFlush(Flushable* f);

  std::chrono::steady_clock::time_point now() const { return std::chrono::steady_clock::now(); }

 private:
  static void onPosted(int, short, void* self);
  static void onDeferred(int, short, void* self);
  static void onFlush(int, short, void* self);

  event_base* base_;
  int wake_fd_;  // eventfd: post() from any thread wakes the loop
  event* post_event_;
  event* deferred_event_;
  event* flush_event_;
  std::vector<Flushable*> flush_queue_;
  std::vector<Flushable*> flushing_;  // the batch onFlush is working through
  std::mutex post_mutex_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::unique_ptr<Deletable>> to_delete_;
};

}  // namespace wsb::proxy
