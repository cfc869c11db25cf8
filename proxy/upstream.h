// The upstream side shared by the bridges that open their own upstream WebSockets (translate
// down, the Engine.IO v3 pass-through adapter): endpoint order, forwarded headers, and the
// connector that connects and upgrades one WebSocket, trying endpoints in turn.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "codec/http1.h"
#include "filters/filter.h"
#include "proxy/dispatcher.h"
#include "proxy/snapshot.h"

struct bufferevent;

namespace wsb::proxy {

class Worker;
struct ClusterBalance;
struct ConnectionInfo;

// Request headers that belong to one hop (and those wsbridge sets itself).
bool isHopByHop(std::string_view name);

// The worker's balancer state of a cluster, sized to its endpoints (a reload may change them).
ClusterBalance& balanceOf(Worker& worker, const config::Route& route, const ClusterRuntime& cluster);

// Endpoint indices in the order to try them: the balancer's pick first, then the ring; the
// next to try is at the back.
std::vector<size_t> endpointOrder(Worker& worker, const config::Route& route,
                                  const ClusterRuntime& cluster, std::string_view client_ip,
                                  const filters::Attributes& attributes);

// The client's end-to-end headers, X-Forwarded-For (appended) and X-Forwarded-Proto, and what
// filters add. The client's headers named in `owned` (Snapshot::ownedHeadersOf: forwarded claims)
// or in `filter_headers` are dropped, case-insensitively: those values come from filters only.
http::Headers forwardedHeaders(const http::Request& request, std::string_view client_ip, bool tls,
                               const http::Headers& filter_headers,
                               const std::vector<std::string>& owned);

// Connects and upgrades one WebSocket, trying endpoints in turn; hands the upgraded bufferevent
// (frames may already wait in its input) or an error to `done`, as its last act. The owner
// destroys it later (deferDelete), never inside `done`.
class UpstreamConnector final : public Deletable {
 public:
  using Done = std::function<void(bufferevent* bev, size_t endpoint, std::string error)>;

  UpstreamConnector(Worker& worker, const ClusterRuntime& cluster, std::vector<size_t> order,
                    std::string target, http::Headers headers, Done done);
  ~UpstreamConnector() override;

  void start() { next(); }
  // The HTTP status the endpoint refused the upgrade with (404 ...), 0 for other failures.
  int refusedStatus() const { return refused_status_; }
  // The last endpoint tried accepted the connection but did not answer the upgrade in time.
  bool handshakeTimedOut() const { return handshake_timed_out_; }

 private:
  void next();
  static void onEvent(bufferevent*, short what, void* self);
  static void onRead(bufferevent*, void* self);
  void sendUpgrade();
  void read();
  void attemptFailed(const std::string& why);
  void finish(bufferevent* bev, std::string error);

  Worker& worker_;
  const ClusterRuntime& cluster_;
  std::vector<size_t> order_;
  std::string target_;
  http::Headers headers_;
  Done done_;
  Timer timer_;
  bufferevent* bev_ = nullptr;
  size_t endpoint_ = 0;
  std::string key_;
  std::string last_error_;
  std::unique_ptr<http::ResponseParser> parser_;
  int refused_status_ = 0;
  bool handshaking_ = false;
  bool handshake_timed_out_ = false;
  bool finished_ = false;
};

// Every live Engine.IO server object (translate down, the v3 adapter) by worker loop: SIGTERM drains them, and objects a stopped
// loop leaves behind stay reachable (the process is exiting; nothing frees them).
class LiveObjects {
 public:
  static LiveObjects& instance() {
    static auto* live = new LiveObjects;
    return *live;
  }
  // `describe` (optional) fills one GET /connections entry, false when there is none yet.
  using Describe = std::function<bool(ConnectionInfo&)>;
  void add(Dispatcher* loop, Deletable* object, std::function<void()> drain,
           Describe describe = nullptr) {
    std::lock_guard lock(mutex_);
    objects_[object] = {loop, std::move(drain), std::move(describe)};
  }
  void remove(Deletable* object) {
    std::lock_guard lock(mutex_);
    objects_.erase(object);
  }
  // The drain actions of one loop's objects (run them on that loop, without the lock held).
  std::vector<std::function<void()>> drainsOf(Dispatcher* loop) {
    std::lock_guard lock(mutex_);
    std::vector<std::function<void()>> out;
    for (auto& [object, entry] : objects_) {
      if (entry.loop == loop) out.push_back(entry.drain);
    }
    return out;
  }
  // The live connections of one loop's objects (call on that loop's thread).
  std::vector<ConnectionInfo> connectionsOf(Dispatcher* loop);

 private:
  struct Entry {
    Dispatcher* loop;
    std::function<void()> drain;
    Describe describe;
  };
  std::mutex mutex_;
  std::map<Deletable*, Entry> objects_;
};

}  // namespace wsb::proxy
