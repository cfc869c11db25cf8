// Dispatcher: libevent event_base wrapper with timers, posts and deferred deletion.
#include "proxy/dispatcher.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>

namespace wsb::proxy {

namespace {
timeval toTimeval(Duration d) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}
}  // namespace

Timer::Timer(Dispatcher& dispatcher, std::function<void()> callback)
    : event_(evtimer_new(dispatcher.base(), &Timer::onFire, this)),
      callback_(std::move(callback)) {}

Timer::~Timer() { event_free(event_); }

void Timer::arm(Duration after) {
  timeval tv = toTimeval(after);
  evtimer_add(event_, &tv);
}

void Timer::cancel() { evtimer_del(event_); }

bool Timer::armed() const { return evtimer_pending(event_, nullptr) != 0; }

void Timer::onFire(int, short, void* self) {
  // The callback may destroy the owner of this timer: copy nothing after the call.
  static_cast<Timer*>(self)->callback_();
}

Dispatcher::Dispatcher() {
  // No evthread locking: every event_base, bufferevent and evbuffer is touched by one thread
  // only. The one cross-thread path, post(), wakes the loop through an eventfd.
  base_ = event_base_new();
  if (base_ == nullptr) std::abort();
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) std::abort();
  post_event_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, &Dispatcher::onPosted, this);
  deferred_event_ = event_new(base_, -1, 0, &Dispatcher::onDeferred, this);
  flush_event_ = event_new(base_, -1, 0, &Dispatcher::onFlush, this);
  event_add(post_event_, nullptr);
}

Dispatcher::~Dispatcher() {
  to_delete_.clear();
  event_free(post_event_);
  event_free(deferred_event_);
  event_free(flush_event_);
  event_base_free(base_);
  close(wake_fd_);
}

void Dispatcher::run() { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); }

void Dispatcher::exit() {
  post([this] { event_base_loopbreak(base_); });
}

void Dispatcher::post(std::function<void()> fn) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    wake = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  if (wake) {
    uint64_t one = 1;
    // A full counter (never, in practice) still leaves the fd readable: the wake-up is not lost.
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }
}

void Dispatcher::deferDelete(std::unique_ptr<Deletable> object) {
  if (to_delete_.empty()) event_active(deferred_event_, 0, 0);
  to_delete_.push_back(std::move(object));
}

void Dispatcher::flushSoon(Flushable* f) {
  if (flush_queue_.empty()) event_active(flush_event_, 0, 0);
  flush_queue_.push_back(f);
}

void Dispatcher::cancelFlush(Flushable* f) {
  for (auto* queue : {&flush_queue_, &flushing_}) {
    for (auto& queued : *queue) {
      if (queued == f) queued = nullptr;
    }
  }
}

void Dispatcher::onFlush(int, short, void* self) {
  auto* d = static_cast<Dispatcher*>(self);
  // Flushes may queue more (a write error closes the other side): those get their own turn.
  d->flushing_.swap(d->flush_queue_);
  for (size_t i = 0; i < d->flushing_.size(); ++i) {
    if (Flushable* f = d->flushing_[i]) f->flush();
  }
  d->flushing_.clear();
}

void Dispatcher::onPosted(int, short, void* self) {
  auto* d = static_cast<Dispatcher*>(self);
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(d->wake_fd_, &count, sizeof count);
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(d->post_mutex_);
    batch.swap(d->posted_);
  }
  for (auto& fn : batch) fn();
}

void Dispatcher::onDeferred(int, short, void* self) {
  auto* d = static_cast<Dispatcher*>(self);
  // Destructors may defer more deletions; loop until quiet.
  while (!d->to_delete_.empty()) {
    std::vector<std::unique_ptr<Deletable>> batch;
    batch.swap(d->to_delete_);
    batch.clear();
  }
}

}  // namespace wsb::proxy
