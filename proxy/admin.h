// The admin listener: an evhttp server on its own thread and event loop answering /healthz,
// /ready, /stats, /metrics and /config, and probing upstream endpoints for readiness.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.h"
#include "proxy/dispatcher.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"

struct evhttp;
struct evhttp_request;

namespace wsb::proxy {

class AdminListener {
 public:
  // `workers`: every worker's counters; they must outlive stop().
  explicit AdminListener(std::vector<const WorkerStats*> workers);
  ~AdminListener();
  AdminListener(const AdminListener&) = delete;
  AdminListener& operator=(const AdminListener&) = delete;

  // Binds `[admin] address` on the calling thread (so errors surface at startup) and starts the
  // admin thread. Refuses a non-loopback address unless allow_remote is set.
  bool start(SnapshotPtr snapshot, std::string* error);
  void stop();  // ends the admin thread; idempotent

  // Thread-safe. The config /config shows and the clusters /ready probes.
  void setSnapshot(SnapshotPtr snapshot);
  // Thread-safe. Listeners accept once the workers run; from the first moment of a drain /ready
  // answers 503.
  void setAccepting(bool accepting) { accepting_.store(accepting); }
  void setDraining() { draining_.store(true); }

  uint16_t port() const { return port_; }  // the bound port (useful when configured as 0)

 private:
  struct Probe;
  static void onRequest(evhttp_request* req, void* self);
  void handle(evhttp_request* req);
  StatsTotals collect() const;
  // 200 {"ready":true} or 503 {"ready":false,"reasons":[...]}.
  std::pair<int, std::string> readiness() const;
  void probeAll();
  void startProbe(Probe& probe);

  std::vector<const WorkerStats*> workers_;
  Dispatcher dispatcher_;
  evhttp* http_ = nullptr;
  uint16_t port_ = 0;
  std::thread thread_;
  std::unique_ptr<Timer> probe_timer_;
  std::atomic<bool> accepting_{false};
  std::atomic<bool> draining_{false};
  // Admin thread only (setSnapshot posts to it).
  SnapshotPtr snapshot_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Probe>> probes_;
};

// 127.0.0.0/8, ::1 and localhost.
bool isLoopbackHost(std::string_view host);
// Config keys whose values never leave the process: sid_key, and any key naming a secret or a
// password (secret, client_secret, redis_password ...).
bool isSecretKey(std::string_view key);
// The effective configuration as JSON, secrets as "<redacted>" (also a password inside a URL).
std::string renderConfigJson(const config::Config& config);

}  // namespace wsb::proxy
