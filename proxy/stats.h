// Traffic counters: one WorkerStats per worker thread, written by that thread with relaxed atomics
// (plain stores and loads on x86, no read-modify-write contention: one writer per counter) and no
// locks, summed into StatsTotals and rendered as JSON or Prometheus text.
#pragma once

#include <atomic>
#include <chrono>
#include <iterator>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsb::proxy {

// Slots (counters, or groups of them) keyed by label values. Only the owning worker looks up and
// inserts keys, so its lookups take no lock; the lock is taken to insert a key (once per label set)
// and by readers on other threads, so the map never changes shape under them. Slot addresses are
// stable (std::map nodes), so the owner may keep references. Lookups are heterogeneous (a
// std::string key is found by a std::string_view without building a string).
template <typename Key, typename Slot = std::atomic<uint64_t>>
class LabelTable {
 public:
  // Owner thread only.
  template <typename K = Key>
  Slot& at(const K& key) {
    if (Slot* slot = find(key)) return *slot;
    std::lock_guard<std::mutex> lock(mutex_);
    return slots_.try_emplace(Key(key)).first->second;
  }
  // Owner thread only: the slot, or null when the key has none yet.
  template <typename K = Key>
  Slot* find(const K& key) {
    auto it = slots_.find(key);
    return it != slots_.end() ? &it->second : nullptr;
  }
  // Any thread: `fn(key, slot)` for every key, in key order.
  template <typename Fn>
  void forEach(Fn&& fn) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, slot] : slots_) fn(key, slot);
  }

 private:
  mutable std::mutex mutex_;
  std::map<Key, Slot, std::less<>> slots_;
};

// One writer per counter: a relaxed load and store (plain moves), never a locked read-modify-write.
template <typename T>
inline void bump(std::atomic<T>& counter, T n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Which way a message went, seen from the client.
enum class Flow : uint8_t { ToUpstream = 0, ToClient = 1 };
std::string_view flowName(Flow flow);  // "to_upstream" | "to_client"

// One route's counters in one worker. A route is named by its path; routes that share a path
// (other listeners or hosts) share their counters.
struct RouteCounters {
  std::atomic<uint64_t> accepted{0};  // handshakes completed (bridge established)
  std::atomic<int64_t> active{0};
  std::atomic<uint64_t> messages[2]{};  // by Flow
  std::atomic<uint64_t> bytes[2]{};
  LabelTable<uint16_t> closed;  // by close code

  void countOpened() {
    bump(accepted);
    bump<int64_t>(active, 1);
  }
  // Message and byte counts are added when a connection closes (they live in its endpoints
  // until then), so the totals trail live traffic by the connections still open.
  void countClosed(uint16_t code, const uint64_t (&flow_messages)[2],
                   const uint64_t (&flow_bytes)[2]) {
    bump<int64_t>(active, -1);
    bump<uint64_t>(closed.at(code), 1);
    for (int i = 0; i < 2; ++i) {
      bump(messages[i], flow_messages[i]);
      bump(bytes[i], flow_bytes[i]);
    }
  }
};

// Upper bounds (milliseconds) of the latency histograms' buckets; one more bucket counts the rest.
inline constexpr double kLatencyBucketsMs[] = {0.025, 0.05, 0.1, 0.25, 0.5,  1,    2.5,  5, 10,
                                               25,    50,   100, 250,  500, 1000, 2500, 5000};
inline constexpr size_t kLatencyBuckets = std::size(kLatencyBucketsMs) + 1;

// A latency histogram with fixed buckets, written by one worker.
struct Histogram {
  std::atomic<uint64_t> buckets[kLatencyBuckets]{};  // not cumulative
  std::atomic<uint64_t> sum_us{0};

  void observe(std::chrono::microseconds elapsed);
};

// A Socket.IO event name past this many distinct names per route (per worker) counts as "other",
// so a client inventing names cannot grow the tables; rendering keeps the top names as well.
inline constexpr size_t kTopEvents = 20;
inline constexpr std::string_view kOtherEvent = "other";

// One route's Socket.IO event counts in one worker, by event name. Sessions resolve it once, so
// counting an event is one lookup by string_view: no allocation once the name has its slot.
class RouteEvents {
 public:
  // Owner thread only.
  void count(std::string_view name);

 private:
  friend struct StatsTotals;
  LabelTable<std::string> names_;  // at most kTopEvents names, and kOtherEvent
  size_t distinct_ = 0;            // names with their own slot (owner thread only)
};

class WorkerStats {
 public:
  // Owner thread only: the route's (or cluster's) counters, created on first use; the reference
  // stays valid, so a session resolves it once.
  RouteCounters& route(const std::string& path) { return routes_.at(path); }
  RouteCounters& cluster(const std::string& name) { return clusters_.at(name); }
  void countAccepted() { bump(tcp_accepted_); }
  // Connections not taken, by reason: accept() failures ("no_descriptors" | "other") and
  // connections closed at accept ("handshakes_per_ip").
  void countAcceptError(const std::string& reason) { bump(accept_errors_.at(reason)); }
  void countTlsFailure(const std::string& listener) { bump(tls_failures_.at(listener)); }
  // A rate_limit Redis connection dropped: `redis` is host:port/db, `reason` one of "connect",
  // "closed", "timeout", "error" (proxy/redis_leases.h).
  void countRedisError(const std::string& redis, std::string_view reason) {
    bump(redis_errors_.at(std::pair<std::string, std::string>(redis, reason)));
  }
  void countRefused(int status) { bump(refused_.at(status)); }
  void countConnectFailure(const std::string& cluster, const std::string& endpoint) {
    bump(connect_failures_.at({cluster, endpoint}));
  }
  Histogram& connectLatency(const std::string& cluster, const std::string& endpoint) {
    return connect_latency_.at({cluster, endpoint});
  }
  // A filter's decision on a connection, e.g. ("auth.jwt", "reject_401"), ("rate_limit", "shape").
  void countFilterAction(std::string_view filter, std::string_view action) {
    bump(filter_actions_.at({std::string(filter), std::string(action)}));
  }
  // The Socket.IO event counts of `route` (either direction), created on first use; the
  // reference stays valid, so a session resolves it once.
  RouteEvents& events(const std::string& route) { return events_.at(route); }
  void countEvent(const std::string& route, std::string_view name) { events(route).count(name); }
  // A Socket.IO / Engine.IO packet that did not decode (the connection was closed), by route and
  // by who sent it ("client" | "upstream").
  void countParseError(const std::string& route, std::string_view from) {
    bump(parse_errors_.at({route, std::string(from)}));
  }
  // Time from reading a batch of frames to having written what they became to the other side.
  Histogram& relayLatency() { return relay_latency_; }

 private:
  friend struct StatsTotals;
  std::atomic<uint64_t> tcp_accepted_{0};
  LabelTable<std::string, RouteCounters> routes_;
  LabelTable<std::string, RouteCounters> clusters_;
  LabelTable<int> refused_;  // by HTTP status
  LabelTable<std::string> accept_errors_;  // by reason
  LabelTable<std::string> tls_failures_;   // by listener
  LabelTable<std::pair<std::string, std::string>> redis_errors_;  // (redis, reason)
  LabelTable<std::pair<std::string, std::string>> connect_failures_;  // (cluster, endpoint)
  LabelTable<std::pair<std::string, std::string>, Histogram> connect_latency_;
  LabelTable<std::pair<std::string, std::string>> filter_actions_;  // (filter, action)
  LabelTable<std::string, RouteEvents> events_;                     // by route
  LabelTable<std::pair<std::string, std::string>> parse_errors_;    // (route, from)
  Histogram relay_latency_;
};

// One live connection, as GET /connections lists it (gathered on its worker's thread).
struct ConnectionInfo {
  std::string route;
  std::string cluster;
  std::string client;  // ip:port
  std::string user;    // the JWT subject, when a filter set one
  int64_t age_us = 0;  // shown in ms; sorts connections opened within the same ms
  uint64_t messages[2] = {0, 0};  // by Flow
  uint64_t bytes[2] = {0, 0};
};

// Plain sums over workers, for rendering.
struct RouteTotals {
  uint64_t accepted = 0;
  int64_t active = 0;
  uint64_t messages[2] = {0, 0};
  uint64_t bytes[2] = {0, 0};
  std::map<uint16_t, uint64_t> closed;
};

struct HistogramTotals {
  uint64_t buckets[kLatencyBuckets] = {};  // not cumulative
  uint64_t sum_us = 0;

  void add(const Histogram& h);
  void add(const HistogramTotals& h);
  uint64_t count() const;
};

// What the admin thread knows of an endpoint from its TCP probe.
struct EndpointHealth {
  bool probed = false;
  bool reachable = false;
};

struct StatsTotals {
  using Pair = std::pair<std::string, std::string>;
  uint64_t tcp_accepted = 0;
  std::map<std::string, RouteTotals> routes;
  std::map<std::string, RouteTotals> clusters;  // connection counts only
  std::map<int, uint64_t> refused;
  std::map<std::string, uint64_t> accept_errors;  // by reason
  std::map<std::string, uint64_t> tls_failures;   // by listener
  std::map<Pair, uint64_t> redis_errors;          // (redis, reason)
  std::map<Pair, uint64_t> connect_failures;        // (cluster, endpoint)
  std::map<Pair, HistogramTotals> connect_latency;  // (cluster, endpoint)
  std::map<Pair, uint64_t> filter_actions;          // (filter, action)
  std::map<Pair, uint64_t> events;                  // (route, event name)
  std::map<Pair, uint64_t> parse_errors;            // (route, from)
  HistogramTotals relay_latency;
  // (cluster, endpoint) -> probe result; filled by the admin listener, not by workers.
  std::map<Pair, EndpointHealth> health;

  void add(const WorkerStats& worker);
  // Message counts of a connection still open (closed ones are in the counters already).
  void addLive(const ConnectionInfo& connection);
  void merge(const StatsTotals& other);
  // The `n` busiest event names per route, the rest folded into "other" (for rendering).
  std::map<Pair, uint64_t> topEvents(size_t n = kTopEvents) const;
};

// What one worker reports to the admin listener, gathered on its own thread: its counters and its
// live connections, read at the same instant so none is counted twice.
struct WorkerReport {
  StatsTotals totals;  // live connections' messages included
  std::vector<ConnectionInfo> connections;
};

// Prometheus text exposition format 0.0.4.
std::string renderPrometheus(const StatsTotals& totals);
// {"connections":{...},"routes":{...},"handshakes_refused":{...},"upstreams":{...}}
std::string renderStatsJson(const StatsTotals& totals);
// A Prometheus label value with \\, \" and \n escaped.
std::string escapeLabelValue(std::string_view value);

}  // namespace wsb::proxy
