// Connect claims: a small mutex-protected map, touched once per request (never per message) and
// pruned by idle age so abandoned sessions do not leak.
#include "proxy/connect_claims.h"

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace wsb::proxy {

namespace {
using Clock = std::chrono::steady_clock;
// A live polling session makes a request at least every ping interval; after the upgrade the
// WebSocket session has its own copy. Ten idle minutes means the session is gone.
constexpr auto kMaxIdle = std::chrono::minutes(10);

struct Store {
  std::mutex mutex;
  struct Entry {
    Clock::time_point used;
    filters::Attributes attributes;
  };
  std::map<std::string, Entry, std::less<>> entries;
};

Store& store() {
  static Store s;
  return s;
}
}  // namespace

void rememberConnectAttributes(std::string_view sid, const filters::Attributes& attributes) {
  if (attributes.empty()) return;
  Store& s = store();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto now = Clock::now();
  for (auto it = s.entries.begin(); it != s.entries.end();) {
    it = now - it->second.used > kMaxIdle ? s.entries.erase(it) : std::next(it);
  }
  s.entries[std::string(sid)] = {now, attributes};
}

filters::Attributes recallConnectAttributes(std::string_view sid) {
  Store& s = store();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.entries.find(sid);
  if (it == s.entries.end()) return {};
  it->second.used = Clock::now();
  return it->second.attributes;
}

}  // namespace wsb::proxy
