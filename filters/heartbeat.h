// The heartbeat filter: WebSocket pings toward each side with a pong deadline, text pings
// answered locally, and an idle timeout.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "filters/filter.h"

namespace wsb::filters {

struct HeartbeatSettings {
  Duration ping_interval{25000};  // 0 = no pings
  Duration ping_timeout{20000};   // a side that has not answered a ping by then is dead
  std::string text_ping;          // empty = off; a client text message equal to it ...
  std::string text_pong;          // ... is answered with this and never forwarded
  Duration idle_timeout{0};       // 0 = off; no message either way for this long -> close 1001
};

// The factory keeps its settings readable so the proxy can apply the same interval and timeout
// as Engine.IO ping/pong on Socket.IO sides.
class HeartbeatFactory final : public FilterFactory {
 public:
  explicit HeartbeatFactory(HeartbeatSettings settings)
      : settings_(std::make_shared<const HeartbeatSettings>(std::move(settings))) {}
  std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const override;
  const HeartbeatSettings& settings() const { return *settings_; }

 private:
  // Shared with each filter, which may outlive the factory after a reload.
  std::shared_ptr<const HeartbeatSettings> settings_;
};

// Reads [filter.NAME] with type = "heartbeat".
FactoryPtr buildHeartbeatFactory(const config::FilterSpec& spec, std::vector<std::string>* errors);

// The settings of a route's heartbeat filter (valid while the factory lives), or null when
// `factory` is another filter.
const HeartbeatSettings* heartbeatSettings(const FilterFactory& factory);

}  // namespace wsb::filters
