// Traffic counters: one WorkerStats per worker thread, written by that thread with relaxed atomics
// and no locks, summed by the admin thread into StatsTotals and rendered as JSON or Prometheus text.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace wsb::proxy {

// Slots (counters, or groups of them) keyed by label values. Only the owning worker looks up and
// inserts keys, so its lookups take no lock; the lock is taken to insert a key (once per label set)
// and by readers on other threads, so the map never changes shape under them. Slot addresses are
// stable (std::map nodes), so the owner may keep references.
template <typename Key, typename Slot = std::atomic<uint64_t>>
class LabelTable {
 public:
  // Owner thread only.
  Slot& at(const Key& key) {
    auto it = slots_.find(key);
    if (it != slots_.end()) return it->second;
    std::lock_guard<std::mutex> lock(mutex_);
    return slots_.try_emplace(key).first->second;
  }
  // Any thread: `fn(key, slot)` for every key, in key order.
  template <typename Fn>
  void forEach(Fn&& fn) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, slot] : slots_) fn(key, slot);
  }

 private:
  mutable std::mutex mutex_;
  std::map<Key, Slot> slots_;
};

inline void bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
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
    active.fetch_add(1, std::memory_order_relaxed);
  }
  // Message and byte counts are added when a connection closes (they live in its endpoints
  // until then), so the totals trail live traffic by the connections still open.
  void countClosed(uint16_t code, const uint64_t (&flow_messages)[2],
                   const uint64_t (&flow_bytes)[2]) {
    active.fetch_sub(1, std::memory_order_relaxed);
    bump(closed.at(code));
    for (int i = 0; i < 2; ++i) {
      bump(messages[i], flow_messages[i]);
      bump(bytes[i], flow_bytes[i]);
    }
  }
};

class WorkerStats {
 public:
  // Owner thread only: the route's counters, created on first use; the reference stays valid.
  RouteCounters& route(const std::string& path) { return routes_.at(path); }
  void countAccepted() { bump(tcp_accepted_); }
  void countRefused(int status) { bump(refused_.at(status)); }
  void countConnectFailure(const std::string& cluster, const std::string& endpoint) {
    bump(connect_failures_.at({cluster, endpoint}));
  }

 private:
  friend struct StatsTotals;
  std::atomic<uint64_t> tcp_accepted_{0};
  LabelTable<std::string, RouteCounters> routes_;
  LabelTable<int> refused_;  // by HTTP status
  LabelTable<std::pair<std::string, std::string>> connect_failures_;  // (cluster, endpoint)
};

// Plain sums over workers, for rendering.
struct RouteTotals {
  uint64_t accepted = 0;
  int64_t active = 0;
  uint64_t messages[2] = {0, 0};
  uint64_t bytes[2] = {0, 0};
  std::map<uint16_t, uint64_t> closed;
};

// What the admin thread knows of an endpoint from its TCP probe.
struct EndpointHealth {
  bool probed = false;
  bool reachable = false;
};

struct StatsTotals {
  uint64_t tcp_accepted = 0;
  std::map<std::string, RouteTotals> routes;
  std::map<int, uint64_t> refused;
  std::map<std::pair<std::string, std::string>, uint64_t> connect_failures;
  // (cluster, endpoint) -> probe result; filled by the admin listener, not by workers.
  std::map<std::pair<std::string, std::string>, EndpointHealth> health;

  void add(const WorkerStats& worker);
};

// Prometheus text exposition format 0.0.4.
std::string renderPrometheus(const StatsTotals& totals);
// {"connections":{...},"routes":{...},"handshakes_refused":{...},"upstreams":{...}}
std::string renderStatsJson(const StatsTotals& totals);
// A Prometheus label value with \\, \" and \n escaped.
std::string escapeLabelValue(std::string_view value);

}  // namespace wsb::proxy
