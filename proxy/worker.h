// A worker thread: its own event loop, its own SO_REUSEPORT listeners, and every connection it
// accepts, from accept to close.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "proxy/dispatcher.h"
#include "proxy/handshake_counts.h"
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
  // `handshakes` is shared by every worker of the process and outlives them.
  Worker(int index, SnapshotPtr snapshot, HandshakeCounts& handshakes);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds this worker's listeners (on the calling thread, so bind errors surface at startup).
  bool bind(std::string* error);
  // Sockets opened for a reload, by listener (name, address).
  using ListenerKey = std::pair<std::string, std::string>;
  using PreparedListeners = std::map<ListenerKey, int>;
  // Reload, main thread: opens the sockets of the listeners `next` adds (a listener whose address
  // changed counts as new), so a bind error refuses the reload; nothing is opened then.
  bool prepareListeners(const Snapshot& next, PreparedListeners* out, std::string* error) const;
  static void closePrepared(const PreparedListeners& prepared);
  void start();  // runs the loop on a new thread
  void join();

  // Main thread. New connections use the new snapshot; live ones keep theirs. Listeners gone
  // from it stop accepting, the `prepared` ones start.
  void setSnapshot(SnapshotPtr snapshot, PreparedListeners prepared = {});
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
    const ListenerRuntime* runtime = nullptr;  // in the worker's current snapshot
    evconnlistener* listener = nullptr;
    Worker* worker = nullptr;
    std::unique_ptr<Timer> resume;  // accepting again after running out of descriptors
  };
  static ListenerKey keyOf(const ListenerRuntime& runtime);
  void listen(const ListenerRuntime& runtime, int fd);
  void applyListeners(PreparedListeners prepared);
  static void onAccept(evconnlistener*, int fd, sockaddr* addr, int len, void* self);
  // accept() failed: out of descriptors (EMFILE / ENFILE / ENOBUFS / ENOMEM) pauses the listener
  // for a moment instead of spinning on a readable socket it cannot accept from; logged at most
  // once a second with the count, counted in /metrics.
  static void onAcceptError(evconnlistener*, void* self);
  // The source already has the listener's max_handshakes_per_ip connections in the handshake:
  // closed at once (on a plain listener after a best-effort 429), counted in /metrics, logged at
  // most once a second per worker.
  void refuseHandshake(const Listening& listening, int fd, const std::string& ip);
  // Logs the refusals not logged yet (one line), if any.
  void logHandshakeRefusals();
  void closeListeners();
  void maybeFinishDrain();

  int index_;
  Dispatcher dispatcher_;
  MaskSource masks_;
  SnapshotPtr snapshot_;  // for new connections
  std::vector<std::unique_ptr<Listening>> listening_;
  uint64_t accept_errors_unlogged_ = 0;
  std::chrono::steady_clock::time_point accept_error_logged_{};
  HandshakeCounts& handshakes_;
  // Refusals at accept since the last log line, and what the line names: the last one's
  // listener, source and cap. The timer writes the line that a burst within the second owes.
  uint64_t handshake_refusals_unlogged_ = 0;
  std::chrono::steady_clock::time_point handshake_refusal_logged_{};
  std::string refused_listener_;
  std::string refused_ip_;
  uint32_t refused_cap_ = 0;
  std::unique_ptr<Timer> refusal_log_timer_;
  std::set<ListenerKey> bound_;  // main thread only: the listeners of the last snapshot set
  std::map<std::string, ClusterBalance> balance_;
  std::unordered_set<Session*> sessions_;
  WorkerStats stats_;
  std::unique_ptr<Timer> drain_timer_;
  bool draining_ = false;
  std::thread thread_;
};

}  // namespace wsb::proxy
