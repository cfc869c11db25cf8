// Upstream faults in the log, one line a second per endpoint and worker thread.
#include "proxy/upstream_log.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace wsb::proxy {

void logUpstreamFault(std::string_view upstream, std::string_view what) {
  struct Throttle {
    std::chrono::steady_clock::time_point logged{};
    uint64_t held_back = 0;
  };
  // By label: one endpoint failing under thousands of connections must not hide another's
  // failure. Bounded by the endpoints ever configured.
  thread_local std::map<std::string, Throttle, std::less<>> throttles;
  auto it = throttles.find(upstream);
  if (it == throttles.end()) it = throttles.emplace(std::string(upstream), Throttle{}).first;
  Throttle& t = it->second;
  const auto now = std::chrono::steady_clock::now();
  if (now - t.logged < std::chrono::seconds(1)) {
    ++t.held_back;
    return;
  }
  spdlog::warn("{}: {}{}", upstream, what,
               t.held_back ? fmt::format(" ({} more failures of it since the last such line)",
                                         t.held_back)
                           : std::string());
  t.logged = now;
  t.held_back = 0;
}

}  // namespace wsb::proxy
