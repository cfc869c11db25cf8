// The admin listener: an evhttp server on its own thread and event loop answering /healthz,
// /ready, /stats, /metrics, /config, /connections, POST /drain and /reload, and the dashboard at /,
// behind Host, Origin and bearer-token checks, and probing upstream endpoints for readiness.
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

// Who may talk to the admin listener. Pure (no sockets), so unit tests drive it directly.
// * Host must name the listener (DNS rebinding): the configured host:port, the bound IP:port,
//   and localhost / 127.0.0.1 / [::1] with the port when bound to loopback. A wildcard bind
//   (0.0.0.0, ::), which the loader allows only with a token, accepts any Host: the token guards
//   it. Missing Host: 400 on HTTP/1.1, accepted on HTTP/1.0 (no browser sends that).
// * Origin, when sent, must be http:// plus one of those hosts (for a wildcard bind: the
//   request's own Host), whatever the method: a web page's cross-site POST /drain gets 403.
// * With a token, every path but /healthz and /ready needs `Authorization: Bearer <token>`.
class AdminAccess {
 public:
  struct Request {
    bool http11 = true;                   // HTTP/1.1 or later
    int host_headers = 0;                 // how many Host headers were sent
    std::string_view host;                // the (first) Host header
    const char* origin = nullptr;         // null = no Origin header
    const char* authorization = nullptr;  // null = no Authorization header
  };
  struct Verdict {
    int status = 0;           // 0 = go on; else 400, 401 or 403
    bool authorized = false;  // the token was right, or none is configured
    std::string error;
  };

  AdminAccess() = default;
  // `host` as configured (brackets or not), the bound port and the bound IP as text.
  AdminAccess(std::string_view host, uint16_t port, std::string_view bound_ip);

  // `open` = a path served without the token (/healthz, /ready).
  Verdict check(const Request& request, std::string_view token, bool open) const;
  bool hostAllowed(std::string_view host) const;
  bool originAllowed(std::string_view origin, std::string_view host) const;

 private:
  bool any_host_ = false;
  std::vector<std::string> hosts_;  // lowercase host:port (and bare host when the port is 80)
};

// Whether `authorization` is `Bearer <token>`. Compares the SHA-256 digests of both with
// CRYPTO_memcmp: equal lengths, so the comparison takes the same time wherever they differ and
// however long either is (hashing depends only on lengths, in 64-byte blocks). An empty token
// never matches.
bool bearerMatches(std::string_view authorization, std::string_view token);

class AdminListener {
 public:
  // `workers` must outlive stop().
  AdminListener(std::vector<WorkerHandle> workers, AdminActions actions);
  ~AdminListener();
  AdminListener(const AdminListener&) = delete;
  AdminListener& operator=(const AdminListener&) = delete;

  // Binds `[admin] address` on the calling thread (so errors surface at startup) and starts the
  // admin thread. Whether the address needs a token is the loader's call (config/loader.cc).
  bool start(SnapshotPtr snapshot, std::string* error);
  void stop();  // ends the admin thread; idempotent

  // Thread-safe. Whether a reloaded config may take over: the address stays bound as it was at
  // start, so a config without a token is refused while that address is not loopback.
  bool canServe(const config::Config& next, std::string* error) const;

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
  std::string bound_;     // the address as configured at start, for messages
  bool loopback_ = true;  // whether it is a loopback address
  AdminAccess access_;    // set at start, read-only after
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

using config::isLoopbackHost;
// Config keys whose values never leave the process: sid_key, token and *_token, private_key,
// api_key, and any key naming a secret or a password (secret, client_secret, redis_password ...).
bool isSecretKey(std::string_view key);
// The effective configuration as JSON, secrets as "<redacted>" (also a password inside a URL).
std::string renderConfigJson(const config::Config& config);

}  // namespace wsb::proxy
