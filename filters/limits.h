// The limits filter: message size per direction (close 1009), request header size (431),
// concurrent connections per client IP (429) and in total (503); handshake timeout for the proxy.
//
// Connection counts are shared by every connection of every worker that passes through a
// [filter.NAME] table of this type, and survive a reload that keeps the table's name, so live
// connections still count against the new limits. A table listed by several routes counts
// their connections together: give each route its own table for a per-route limit.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "filters/filter.h"

namespace wsb::filters {

struct LimitsSettings {
  uint64_t max_message_in = 0;          // bytes, client -> upstream; 0 = no limit
  uint64_t max_message_out = 0;         // bytes, upstream -> client; 0 = no limit
  uint64_t max_header_bytes = 0;        // request line and headers; 0 = the listener's limit only
  uint32_t max_connections_per_ip = 0;  // concurrent; 0 = no limit
  uint64_t max_connections = 0;         // concurrent; 0 = no limit
  Duration handshake_timeout{0};        // 0 = the proxy's default; applied by the proxy
};

// The live connection counts of one [filter.NAME] table.
struct ConnectionCounts {
  std::atomic<uint64_t> total{0};
  std::mutex mutex;  // guards per_ip; taken once per handshake and once per close
  std::unordered_map<std::string, uint32_t> per_ip;
};

class LimitsFactory final : public FilterFactory {
 public:
  LimitsFactory(LimitsSettings settings, std::shared_ptr<ConnectionCounts> counts)
      : settings_(settings), counts_(std::move(counts)) {}
  std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const override;
  const LimitsSettings& settings() const { return settings_; }
  const ConnectionCounts& counts() const { return *counts_; }

 private:
  LimitsSettings settings_;
  std::shared_ptr<ConnectionCounts> counts_;
};

// Reads [filter.NAME] with type = "limits".
FactoryPtr buildLimitsFactory(const config::FilterSpec& spec, std::vector<std::string>* errors);

// The settings of a route's limits filter (valid while the factory lives), or null when
// `factory` is another filter.
const LimitsSettings* limitsSettings(const FilterFactory& factory);

}  // namespace wsb::filters
