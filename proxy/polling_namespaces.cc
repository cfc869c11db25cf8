// Polling namespaces: sid -> namespaces asked for, with the time of the last change.
#include "proxy/polling_namespaces.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace wsb::proxy {

namespace {
using Clock = std::chrono::steady_clock;
// A session whose namespaces have not changed for this long is forgotten; it may then join
// `max` more, so the bound on a hostile client is `max` per hour, not unbounded.
constexpr auto kMaxIdle = std::chrono::hours(1);
constexpr auto kPruneEvery = std::chrono::seconds(10);

struct Registry {
  std::mutex mutex;
  struct Entry {
    Clock::time_point touched;
    std::vector<std::string> namespaces;
  };
  std::map<std::string, Entry, std::less<>> sessions;
  Clock::time_point pruned;
};

Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

bool admitNamespace(std::string_view sid, std::string_view nsp, size_t max) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto now = Clock::now();
  if (now - r.pruned > kPruneEvery) {
    r.pruned = now;
    std::erase_if(r.sessions, [now](const auto& s) { return now - s.second.touched > kMaxIdle; });
  }
  auto it = r.sessions.find(sid);
  if (it == r.sessions.end()) it = r.sessions.emplace(std::string(sid), Registry::Entry{}).first;
  Registry::Entry& entry = it->second;
  entry.touched = now;
  auto& names = entry.namespaces;
  if (std::find(names.begin(), names.end(), nsp) != names.end()) return true;
  if (names.size() >= max) return false;
  names.emplace_back(nsp);
  return true;
}

void leaveNamespace(std::string_view sid, std::string_view nsp) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.sessions.find(sid);
  if (it == r.sessions.end()) return;
  auto& names = it->second.namespaces;
  auto name = std::find(names.begin(), names.end(), nsp);
  if (name != names.end()) names.erase(name);
  if (names.empty()) r.sessions.erase(it);
}

void forgetNamespaces(std::string_view sid) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.sessions.find(sid);
  if (it != r.sessions.end()) r.sessions.erase(it);
}

}  // namespace wsb::proxy
