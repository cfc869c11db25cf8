// The admin listener: an evhttp server on its own thread and event loop answering /healthz,
// /ready, /stats, /metrics, /config, /connections, POST /drain and /reload, and the dashboard at /,
// and probing upstream endpoints for readiness.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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

// How the admin listener reaches one worker.
struct WorkerHandle {
  // Asks the worker's thread for its report; `done` runs on that thread.
  std::function<void(std::function<void(WorkerReport)>)> report;
  // Read directly when the worker does not answer (its loop has ended).
  const WorkerStats* stats = nullptr;
};

// What POST /reload and POST /drain do (the server's SIGHUP and SIGTERM). Called on the admin
// thread; they hand the work to the main thread.
struct AdminActions {
  // `done(errors)`, from any thread: empty errors = reloaded.
  std::function<void(std::function<void(std::vector<std::string>)>)> reload;
  std::function<void()> drain;
};

class AdminListener {
 public:
  // `workers` must outlive stop().
  AdminListener(std::vector<WorkerHandle> workers, AdminActions actions);
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
  struct Gather;
  static void onRequest(evhttp_request* req, void* self);
  void handle(evhttp_request* req);
  // Asks every worker for its report, then `render(totals, connections)` answers the request.
  using Render = std::function<std::pair<int, std::string>(StatsTotals&,
                                                           std::vector<ConnectionInfo>&)>;
  void gather(evhttp_request* req, const char* type, Render render);
  void onReport(uint64_t id, size_t worker, WorkerReport report);
  void finishGather(uint64_t id);
  // Removes gather `id` and returns it while its client still waits for the answer; else null.
  std::unique_ptr<Gather> takeGather(uint64_t id);
  void postReload(evhttp_request* req);
  // 200 {"ready":true} or 503 {"ready":false,"reasons":[...]}.
  std::pair<int, std::string> readiness() const;
  void probeAll();
  void startProbe(Probe& probe);

  std::vector<WorkerHandle> workers_;
  AdminActions actions_;
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
  std::map<uint64_t, std::unique_ptr<Gather>> gathers_;  // requests waiting for worker reports
  uint64_t next_gather_ = 0;
};

// GET /connections: {"total":N,"connections":[...]} with at most `limit` entries, oldest first.
std::string renderConnectionsJson(std::vector<ConnectionInfo> connections, size_t limit);

// 127.0.0.0/8, ::1 and localhost.
bool isLoopbackHost(std::string_view host);
// Config keys whose values never leave the process: sid_key, and any key naming a secret or a
// password (secret, client_secret, redis_password ...).
bool isSecretKey(std::string_view key);
// The effective configuration as JSON, secrets as "<redacted>" (also a password inside a URL).
std::string renderConfigJson(const config::Config& config);

}  // namespace wsb::proxy
