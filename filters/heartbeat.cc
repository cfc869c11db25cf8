// The heartbeat filter: one timer per connection, armed for the earliest of its deadlines, so a
// message costs a clock read rather than a timer re-arm.
#include "filters/heartbeat.h"

#include <algorithm>
#include <array>

#include "config/table_reader.h"

namespace wsb::filters {

namespace {

constexpr TimePoint kNever = TimePoint::max();
constexpr uint16_t kGoingAway = 1001;
constexpr uint16_t kInternalError = 1011;

class HeartbeatFilter final : public Filter {
 public:
  HeartbeatFilter(std::shared_ptr<const HeartbeatSettings> settings, FilterCallbacks& callbacks)
      : owned_settings_(std::move(settings)), settings_(*owned_settings_), callbacks_(callbacks) {}

  void onEstablished() override {
    if (settings_.ping_interval.count() == 0 && settings_.idle_timeout.count() == 0) return;
    TimePoint now = callbacks_.clock().now();
    if (settings_.ping_interval.count() > 0) next_ping_ = now + settings_.ping_interval;
    last_activity_ = now;
    timer_ = callbacks_.createTimer([this] { onTimer(); });
    schedule(now);
  }

  Status onMessage(Message& message) override {
    noteActivity();
    if (message.direction == Direction::ToUpstream && message.opcode == ws::Opcode::Text &&
        !settings_.text_ping.empty() && message.payload == settings_.text_ping) {
      callbacks_.notify(Side::Client, settings_.text_pong);
      return Status::Drop;
    }
    return Status::Continue;
  }

  Status onEvent(Event&) override {
    noteActivity();
    return Status::Continue;
  }

  void onPong(Side side) override { pong_deadline_[index(side)] = kNever; }

  void onClose(const CloseInfo&) override {
    closed_ = true;
    timer_.reset();
  }

 private:
  static size_t index(Side side) { return side == Side::Client ? 0 : 1; }

  void noteActivity() {
    if (settings_.idle_timeout.count() > 0) last_activity_ = callbacks_.clock().now();
  }

  TimePoint idleDeadline() const {
    return settings_.idle_timeout.count() > 0 ? last_activity_ + settings_.idle_timeout : kNever;
  }

  void schedule(TimePoint now) {
    TimePoint deadline =
        std::min({next_ping_, pong_deadline_[0], pong_deadline_[1], idleDeadline()});
    if (deadline == kNever) return;
    timer_->arm(deadline <= now ? Duration{0} : std::chrono::ceil<Duration>(deadline - now));
  }

  void onTimer() {
    if (closed_) return;
    TimePoint now = callbacks_.clock().now();
    if (pong_deadline_[0] <= now) return closeWith(kGoingAway, "client ping timeout");
    if (pong_deadline_[1] <= now) return closeWith(kInternalError, "upstream ping timeout");
    if (idleDeadline() <= now) return closeWith(kGoingAway, "idle timeout");
    if (next_ping_ <= now) {
      // A side still owing a pong keeps its deadline: pinging again must not extend it.
      for (Side side : {Side::Client, Side::Upstream}) {
        if (pong_deadline_[index(side)] != kNever) continue;
        if (callbacks_.ping(side)) pong_deadline_[index(side)] = now + settings_.ping_timeout;
      }
      next_ping_ = now + settings_.ping_interval;
    }
    schedule(now);
  }

  void closeWith(uint16_t code, const char* reason) {
    closed_ = true;
    callbacks_.close(code, reason);
  }

  std::shared_ptr<const HeartbeatSettings> owned_settings_;
  const HeartbeatSettings& settings_;
  FilterCallbacks& callbacks_;
  std::unique_ptr<FilterCallbacks::Timer> timer_;
  TimePoint next_ping_ = kNever;
  std::array<TimePoint, 2> pong_deadline_{kNever, kNever};  // by side; kNever = none owed
  TimePoint last_activity_{};
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<Filter> HeartbeatFactory::create(FilterCallbacks& callbacks) const {
  return std::make_unique<HeartbeatFilter>(settings_, callbacks);
}

FactoryPtr buildHeartbeatFactory(const config::FilterSpec& spec, std::vector<std::string>* errors) {
  size_t before = errors->size();
  config::TableReader reader(*spec.table, "[filter." + spec.name + "]", spec.pos.file, errors);
  reader.markRead("type");
  HeartbeatSettings s;
  s.ping_interval = reader.duration("ping_interval", s.ping_interval);
  s.ping_timeout = reader.duration("ping_timeout", s.ping_timeout);
  if (s.ping_interval.count() > 0 && s.ping_timeout.count() == 0)
    reader.error(reader.node("ping_timeout"),
                 "'ping_timeout' must be more than 0 when pings are on");
  s.text_ping = reader.string("text_ping", "");
  s.text_pong = reader.string("text_pong", s.text_ping.empty() ? "" : "pong");
  if (s.text_ping.empty() && reader.has("text_pong"))
    reader.error(reader.node("text_pong"), "'text_pong' needs 'text_ping'");
  s.idle_timeout = reader.duration("idle_timeout", s.idle_timeout);
  reader.finish();
  if (errors->size() != before) return nullptr;
  return std::make_shared<HeartbeatFactory>(std::move(s));
}

const HeartbeatSettings* heartbeatSettings(const FilterFactory& factory) {
  const auto* heartbeat = dynamic_cast<const HeartbeatFactory*>(&factory);
  return heartbeat != nullptr ? &heartbeat->settings() : nullptr;
}

}  // namespace wsb::filters
