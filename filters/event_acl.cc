// The event_acl filter: sorted name lists searched per event, built once per config load.
#include "filters/event_acl.h"

#include <algorithm>
#include <memory>

#include "config/table_reader.h"

namespace wsb::filters {

namespace {

constexpr uint16_t kPolicyViolation = 1008;
constexpr std::string_view kForbidden = R"([{"error":"forbidden"}])";

// One direction's rule: with `allow`, only the listed names pass; otherwise they are refused.
struct EventRule {
  bool active = false;
  bool allow = false;
  std::vector<std::string> names;  // sorted

  bool permits(std::string_view name) const {
    if (!active) return true;
    return std::binary_search(names.begin(), names.end(), name, std::less<>()) == allow;
  }
};

struct EventAclSettings {
  EventRule in;
  EventRule out;
  bool close = false;
};

class EventAclFilter final : public Filter {
 public:
  EventAclFilter(std::shared_ptr<const EventAclSettings> settings, FilterCallbacks& callbacks)
      : settings_(std::move(settings)), callbacks_(callbacks) {}

  Status onEvent(Event& event) override {
    bool in = event.direction == Direction::ToUpstream;
    if ((in ? settings_->in : settings_->out).permits(event.name)) return Status::Continue;
    if (settings_->close) {
      callbacks_.close(kPolicyViolation, "event not allowed");
    } else if (event.ack) {
      callbacks_.ackError(in ? Side::Client : Side::Upstream, event, kForbidden);
    }
    return Status::Drop;
  }

 private:
  std::shared_ptr<const EventAclSettings> settings_;
  FilterCallbacks& callbacks_;
};

class EventAclFactory final : public FilterFactory {
 public:
  explicit EventAclFactory(EventAclSettings settings)
      : settings_(std::make_shared<const EventAclSettings>(std::move(settings))) {}
  std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const override {
    return std::make_unique<EventAclFilter>(settings_, callbacks);
  }

 private:
  std::shared_ptr<const EventAclSettings> settings_;
};

EventRule readRule(config::TableReader& reader, const std::string& allow_key,
                   const std::string& deny_key) {
  EventRule rule;
  if (reader.has(allow_key) && reader.has(deny_key))
    reader.error(reader.node(deny_key),
                 "'" + allow_key + "' and '" + deny_key + "' exclude each other: use one of them");
  rule.allow = reader.has(allow_key);
  rule.active = rule.allow || reader.has(deny_key);
  rule.names = reader.strings(rule.allow ? allow_key : deny_key);
  reader.strings(rule.allow ? deny_key : allow_key);  // marks the other one read
  std::sort(rule.names.begin(), rule.names.end());
  return rule;
}

}  // namespace

FactoryPtr buildEventAclFactory(const config::FilterSpec& spec, std::vector<std::string>* errors) {
  size_t before = errors->size();
  config::TableReader reader(*spec.table, "[filter." + spec.name + "]", spec.pos.file, errors);
  reader.markRead("type");
  EventAclSettings s;
  s.in = readRule(reader, "allow_in", "deny_in");
  s.out = readRule(reader, "allow_out", "deny_out");
  if (!s.in.active && !s.out.active)
    reader.error(nullptr, "[filter." + spec.name +
                              "] needs one of 'allow_in', 'deny_in', 'allow_out', 'deny_out'");
  s.close = reader.choice("action", false, {{"drop", false}, {"close", true}});
  reader.finish();
  if (errors->size() != before) return nullptr;
  return std::make_shared<EventAclFactory>(std::move(s));
}

}  // namespace wsb::filters
