// A worker thread: its own event loop, its own SO_REUSEPORT listeners, and every connection it
// accepts, from accept to close.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "proxy/dispatcher.h"
#include "proxy/mask_source.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"

struct evconnlistener;
struct sockaddr;

namespace wsb::proxy {

class Session;

// Per-worker load-balancing state (no locks: only this worker's thread touches it).
struct ClusterBalance {
  size_t next = 0;                  // round robin cursor
  std::vector<uint32_t> active;     // open upstream connections per endpoint (least_conn)
};

class Worker {
 public:
  Worker(int index, SnapshotPtr snapshot);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds this worker's listeners (on the calling thread, so bind errors surface at startup).
  bool bind(std::string* error);
  void start();  // runs the loop on a new thread
  void join();

  // Thread-safe. New connections use the new snapshot; live ones keep theirs.
  void setSnapshot(SnapshotPtr snapshot);
  // Thread-safe. Stops accepting, asks every connection to close, and ends the loop when the
  // last one is gone or after `timeout`.
  void drain(Duration timeout);

  // Thread-safe: builds this worker's report on its thread and hands it to `done` there.
  void report(std::function<void(WorkerReport)> done);

  int index() const { return index_; }
  Dispatcher& dispatcher() { return dispatcher_; }
  MaskSource& masks() { return masks_; }
  ClusterBalance& balance(const std::string& cluster) { return balance_[cluster]; }
  WorkerStats& stats() { return stats_; }  // written by this worker only, read by the admin

  void add(Session* session) { sessions_.insert(session); }
  void remove(Session* session);
  size_t connections() const { return sessions_.size(); }

 private:
  struct Listening {
    const ListenerRuntime* runtime;
    evconnlistener* listener;
    Worker* worker;
  };
  static void onAccept(evconnlistener*, int fd, sockaddr* addr, int len, void* self);
  void closeListeners();
  void maybeFinishDrain();

  int index_;
  Dispatcher dispatcher_;
  MaskSource masks_;
  SnapshotPtr snapshot_;        // for new connections
  SnapshotPtr bound_snapshot_;  // the one the listeners were bound from (owns their runtimes)
  std::vector<std::unique_ptr<Listening>> listening_;
  std::map<std::string, ClusterBalance> balance_;
  std::unordered_set<Session*> sessions_;
  WorkerStats stats_;
  std::unique_ptr<Timer> drain_timer_;
  bool draining_ = false;
  std::thread thread_;
};

}  // namespace wsb::proxy
