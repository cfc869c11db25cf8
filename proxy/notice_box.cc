// Notice box: a small mutex-protected map, pruned by age so abandoned sessions do not leak.
#include "proxy/notice_box.h"

#include <chrono>
#include <map>
#include <mutex>

namespace wsb::proxy {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kMaxAge = std::chrono::seconds(120);
constexpr size_t kMaxPerSession = 64;

struct Box {
  std::mutex mutex;
  struct Entry {
    Clock::time_point posted;
    std::vector<std::string> packets;
  };
  std::map<std::string, Entry, std::less<>> entries;
};

Box& box() {
  static Box b;
  return b;
}
}  // namespace

void postNotice(std::string_view sid, std::string packet) {
  Box& b = box();
  std::lock_guard<std::mutex> lock(b.mutex);
  auto now = Clock::now();
  for (auto it = b.entries.begin(); it != b.entries.end();) {
    it = now - it->second.posted > kMaxAge ? b.entries.erase(it) : std::next(it);
  }
  auto& entry = b.entries[std::string(sid)];
  entry.posted = now;
  if (entry.packets.size() < kMaxPerSession) entry.packets.push_back(std::move(packet));
}

std::vector<std::string> takeNotices(std::string_view sid) {
  Box& b = box();
  std::lock_guard<std::mutex> lock(b.mutex);
  auto it = b.entries.find(sid);
  if (it == b.entries.end()) return {};
  std::vector<std::string> out = std::move(it->second.packets);
  b.entries.erase(it);
  return out;
}

}  // namespace wsb::proxy
