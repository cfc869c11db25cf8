// The limits filter: size checks on the hot path are two compares; connection counting happens
// once at the handshake and once at close.
#include "filters/limits.h"

#include <map>

#include "config/table_reader.h"

namespace wsb::filters {

namespace {

constexpr uint16_t kMessageTooBig = 1009;

// The counts of every limits table by name, so that a reload continues counting.
std::shared_ptr<ConnectionCounts> countsFor(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<ConnectionCounts>> by_name;
  std::lock_guard lock(mutex);
  std::erase_if(by_name, [](const auto& entry) { return entry.second.expired(); });
  std::weak_ptr<ConnectionCounts>& slot = by_name[name];
  std::shared_ptr<ConnectionCounts> counts = slot.lock();
  if (counts == nullptr) {
    counts = std::make_shared<ConnectionCounts>();
    slot = counts;
  }
  return counts;
}

size_t headerBytes(const http::Request& request) {
  // "GET /target HTTP/1.1\r\n", "Name: value\r\n" each, and the final "\r\n".
  size_t bytes = request.method.size() + request.target.size() + 12 + 2;
  for (const http::Header& h : request.headers) bytes += h.name.size() + h.value.size() + 4;
  return bytes;
}

class LimitsFilter final : public Filter {
 public:
  LimitsFilter(LimitsSettings settings, std::shared_ptr<ConnectionCounts> counts,
               FilterCallbacks& callbacks)
      : settings_(settings), counts_(std::move(counts)), callbacks_(callbacks) {}
  ~LimitsFilter() override { release(); }

  Status onHandshake(HandshakeContext& context) override {
    if (settings_.max_header_bytes > 0 && headerBytes(context.request) > settings_.max_header_bytes)
      return refuse(431, "request header fields too large");
    if (settings_.max_connections > 0) {
      if (counts_->total.fetch_add(1) >= settings_.max_connections) {
        counts_->total.fetch_sub(1);
        return refuse(503, "too many connections");
      }
      holds_total_ = true;
    }
    if (settings_.max_connections_per_ip > 0) {
      std::lock_guard lock(counts_->mutex);
      auto it = counts_->per_ip.try_emplace(std::string(context.client_ip), 0).first;
      if (it->second >= settings_.max_connections_per_ip) {
        releaseTotal();
        return refuse(429, "too many connections from this address", {{"Retry-After", "1"}});
      }
      ++it->second;
      ip_ = it->first;
    }
    return Status::Continue;
  }

  Status onMessage(Message& message) override {
    return check(message.direction, message.payload.size());
  }
  Status onEvent(Event& event) override { return check(event.direction, event.size); }

  void onClose(const CloseInfo&) override { release(); }

 private:
  Status refuse(int status, std::string_view message, const http::Headers& extra = {}) {
    callbacks_.reject(status, message, extra);
    return Status::Stop;
  }

  Status check(Direction direction, size_t size) {
    uint64_t limit =
        direction == Direction::ToUpstream ? settings_.max_message_in : settings_.max_message_out;
    if (limit == 0 || size <= limit) return Status::Continue;
    callbacks_.close(kMessageTooBig, "message too big");
    return Status::Drop;
  }

  void releaseTotal() {
    if (holds_total_) counts_->total.fetch_sub(1);
    holds_total_ = false;
  }

  // Runs from onClose and again from the destructor: only the first call counts.
  void release() {
    releaseTotal();
    if (ip_.empty()) return;
    std::lock_guard lock(counts_->mutex);
    auto it = counts_->per_ip.find(ip_);
    if (it != counts_->per_ip.end() && --it->second == 0) counts_->per_ip.erase(it);
    ip_.clear();
  }

  LimitsSettings settings_;
  std::shared_ptr<ConnectionCounts> counts_;
  FilterCallbacks& callbacks_;
  bool holds_total_ = false;
  std::string ip_;  // non-empty while this connection counts against its address
};

}  // namespace

std::unique_ptr<Filter> LimitsFactory::create(FilterCallbacks& callbacks) const {
  return std::make_unique<LimitsFilter>(settings_, counts_, callbacks);
}

FactoryPtr buildLimitsFactory(const config::FilterSpec& spec, std::vector<std::string>* errors) {
  size_t before = errors->size();
  config::TableReader reader(*spec.table, "[filter." + spec.name + "]", spec.pos.file, errors);
  reader.markRead("type");
  LimitsSettings s;
  uint64_t both = reader.size("max_message", 0);
  s.max_message_in = reader.size("max_message_in", both);
  s.max_message_out = reader.size("max_message_out", both);
  s.max_header_bytes = reader.size("max_header_bytes", 0);
  s.max_connections_per_ip =
      static_cast<uint32_t>(reader.integer("max_connections_per_ip", 0, 0, UINT32_MAX));
  s.max_connections = static_cast<uint64_t>(reader.integer("max_connections", 0, 0));
  s.handshake_timeout = reader.duration("handshake_timeout", s.handshake_timeout);
  reader.finish();
  if (errors->size() != before) return nullptr;
  return std::make_shared<LimitsFactory>(s, countsFor(spec.name));
}

const LimitsSettings* limitsSettings(const FilterFactory& factory) {
  const auto* limits = dynamic_cast<const LimitsFactory*>(&factory);
  return limits != nullptr ? &limits->settings() : nullptr;
}

}  // namespace wsb::filters
