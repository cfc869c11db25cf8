// The rate_limit filter: picks the rule and buckets for each message or event, takes from them,
// and applies the configured action when they are empty.
#include "filters/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "config/table_reader.h"

namespace wsb::filters {

namespace {

constexpr uint16_t kPolicyViolation = 1008;
// Distinct event names with buckets of their own per connection (key = "event").
constexpr size_t kMaxEventBuckets = 64;

struct LocalBuckets {
  std::optional<ratelimit::TokenBucket> messages;
  std::optional<ratelimit::TokenBucket> bytes;
};

// Both results together: refused if either was, waiting for the longer of the two.
TakeResult combine(TakeResult a, TakeResult b) {
  return {a.allowed && b.allowed, std::max(a.retry_after, b.retry_after)};
}

class RateLimitFilter final : public Filter {
 public:
  // `store` is the factory's store or the worker's Redis-backed one; both outlive the filter.
  RateLimitFilter(std::shared_ptr<const RateLimitSettings> settings, BucketStore& store,
                  FilterCallbacks& callbacks)
      : settings_(std::move(settings)), store_(store), callbacks_(callbacks) {}

  Status onHandshake(HandshakeContext& context) override {
    client_ip_ = context.client_ip;
    const BucketLimit& limit = settings_->connections;
    if (limit.rate <= 0) return Status::Continue;
    scratch_ = settings_->name;
    scratch_ += "|connect|";
    scratch_ += context.client_ip;
    TakeResult r = store_.take(scratch_, limit, 1, callbacks_.clock().now());
    if (r.allowed) return Status::Continue;
    int64_t ms = std::min<int64_t>(r.retry_after.count(), 86'400'000);
    std::string seconds = std::to_string(std::max<int64_t>(1, (ms + 999) / 1000));
    callbacks_.reject(429, "too many connections", {{"Retry-After", seconds}});
    return Status::Stop;
  }

  Status onMessage(Message& message) override {
    if (message.event_follows) return Status::Continue;
    return charge(message.direction, std::nullopt, message.payload.size());
  }

  Status onEvent(Event& event) override { return charge(event.direction, event.name, event.size); }

 private:
  Status charge(Direction direction, std::optional<std::string_view> event, size_t size) {
    bool in = direction == Direction::ToUpstream;
    if (!(in ? settings_->limit_in : settings_->limit_out)) return Status::Continue;
    const RateRule* rule = &settings_->rule;
    std::string_view bucket;  // empty: the subject's default buckets
    if (event) {
      if (auto it = settings_->events.find(*event); it != settings_->events.end()) {
        rule = &it->second;
        bucket = it->first;
      } else if (settings_->key == RateKey::Event) {
        bucket = *event;
      }
    }
    if (!rule->active()) return Status::Continue;

    TakeMode mode =
        settings_->action == RateAction::Shape ? TakeMode::Always : TakeMode::IfAvailable;
    TimePoint now = callbacks_.clock().now();
    bool shared = settings_->key == RateKey::Ip || settings_->key == RateKey::Claim;
    TakeResult r = shared ? takeShared(in, bucket, *rule, size, now, mode)
                          : takeLocal(localBuckets(in, bucket), *rule, size, now, mode);

    Side sender = in ? Side::Client : Side::Upstream;
    if (mode == TakeMode::Always) {
      if (r.retry_after.count() > 0) callbacks_.pauseReading(sender, r.retry_after);
      return Status::Continue;
    }
    if (r.allowed) return Status::Continue;
    if (settings_->action == RateAction::Close) {
      callbacks_.close(kPolicyViolation, "rate limit exceeded");
    } else {
      callbacks_.notify(sender, settings_->notice);
    }
    return Status::Drop;
  }

  // The message bucket is taken before the bytes bucket; when the second refuses, the first
  // keeps its token (slightly stricter, never looser).
  static TakeResult takeLocal(LocalBuckets& buckets, const RateRule& rule, size_t size,
                              TimePoint now, TakeMode mode) {
    TakeResult result{true, Duration{0}};
    if (rule.messages.rate > 0) {
      if (!buckets.messages) buckets.messages.emplace(rule.messages.rate, rule.messages.burst);
      result = takeTokens(*buckets.messages, 1, now, mode);
      if (!result.allowed && mode == TakeMode::IfAvailable) return result;
    }
    if (rule.bytes.rate > 0) {
      if (!buckets.bytes) buckets.bytes.emplace(rule.bytes.rate, rule.bytes.burst);
      result = combine(result, takeTokens(*buckets.bytes, static_cast<double>(size), now, mode));
    }
    return result;
  }

  LocalBuckets& localBuckets(bool in, std::string_view bucket) {
    size_t d = in ? 0 : 1;
    if (bucket.empty()) return default_[d];
    auto it = by_event_[d].find(bucket);
    if (it != by_event_[d].end()) return it->second;
    if (by_event_[d].size() >= kMaxEventBuckets && !settings_->events.count(bucket))
      return default_[d];
    return by_event_[d].try_emplace(std::string(bucket)).first->second;
  }

  TakeResult takeShared(bool in, std::string_view bucket, const RateRule& rule, size_t size,
                        TimePoint now, TakeMode mode) {
    if (subject_.empty()) subject_ = subjectKey();
    // "<name>|<subject>|<in|out>|<event>|" then "m" or "b": built in place, no allocation once
    // the scratch buffer has grown.
    scratch_ = subject_;
    scratch_ += in ? "|in|" : "|out|";
    scratch_ += bucket;
    scratch_ += "|m";
    TakeResult result{true, Duration{0}};
    if (rule.messages.rate > 0) {
      result = store_.take(scratch_, rule.messages, 1, now, mode);
      if (!result.allowed && mode == TakeMode::IfAvailable) return result;
    }
    if (rule.bytes.rate > 0) {
      scratch_.back() = 'b';
      result =
          combine(result, store_.take(scratch_, rule.bytes, static_cast<double>(size), now, mode));
    }
    return result;
  }

  std::string subjectKey() const {
    std::string key = settings_->name;
    if (settings_->key == RateKey::Claim) {
      const Attributes& attributes = callbacks_.attributes();
      if (auto it = attributes.find(settings_->claim_attribute); it != attributes.end()) {
        key += '|';
        key += settings_->claim_attribute;
        key += ':';
        key += it->second;
        return key;
      }
    }
    key += "|ip:";
    key += client_ip_;
    return key;
  }

  std::shared_ptr<const RateLimitSettings> settings_;
  BucketStore& store_;
  FilterCallbacks& callbacks_;
  std::string client_ip_;
  std::string subject_;  // shared keys' prefix, fixed at the first message
  std::string scratch_;
  LocalBuckets default_[2];  // [0] toward the upstream, [1] toward the client
  std::map<std::string, LocalBuckets, std::less<>> by_event_[2];
};

class RateLimitFactory final : public FilterFactory {
 public:
  RateLimitFactory(RateLimitSettings settings, std::shared_ptr<BucketStore> store)
      : settings_(std::make_shared<const RateLimitSettings>(std::move(settings))),
        store_(std::move(store)) {}
  std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const override {
    // Filters are made on their worker's thread, whose Redis connection they use.
    SharedStores* shared = settings_->redis ? SharedStores::current() : nullptr;
    BucketStore& store = shared != nullptr ? shared->redis(*settings_->redis) : *store_;
    return std::make_unique<RateLimitFilter>(settings_, store, callbacks);
  }

 private:
  std::shared_ptr<const RateLimitSettings> settings_;
  std::shared_ptr<BucketStore> store_;
};

double atLeast(config::TableReader& reader, std::string_view key, double fallback, double min) {
  double value = reader.number(key, fallback);
  if (value >= min) return value;
  reader.error(reader.node(key), "'" + std::string(key) + "' must be at least " +
                                     (min == 0 ? std::string("0") : std::string("1")));
  return fallback;
}

RateRule readRule(config::TableReader& reader) {
  RateRule rule;
  rule.messages.rate = atLeast(reader, "messages_per_second", 0, 0);
  rule.messages.burst = atLeast(reader, "burst", std::max(1.0, rule.messages.rate), 1);
  if (rule.messages.rate == 0 && reader.has("burst"))
    reader.error(reader.node("burst"), "'burst' needs 'messages_per_second'");
  rule.bytes.rate = static_cast<double>(reader.size("bytes_per_second", 0));
  rule.bytes.burst = static_cast<double>(reader.size("bytes_burst", 0));
  if (rule.bytes.burst == 0) rule.bytes.burst = rule.bytes.rate;
  if (rule.bytes.rate == 0 && reader.has("bytes_burst"))
    reader.error(reader.node("bytes_burst"), "'bytes_burst' needs 'bytes_per_second'");
  return rule;
}

}  // namespace

FactoryPtr buildRateLimitFactory(const config::FilterSpec& spec, std::vector<std::string>* errors) {
  return buildRateLimitFactory(spec, errors, LocalBucketStore::shared());
}

FactoryPtr buildRateLimitFactory(const config::FilterSpec& spec, std::vector<std::string>* errors,
                                 std::shared_ptr<BucketStore> store) {
  size_t before = errors->size();
  config::TableReader reader(*spec.table, "[filter." + spec.name + "]", spec.pos.file, errors);
  reader.markRead("type");
  RateLimitSettings s;
  s.name = spec.name;
  std::string key = reader.string("key", "connection");
  if (key == "connection") {
    s.key = RateKey::Connection;
  } else if (key == "ip") {
    s.key = RateKey::Ip;
  } else if (key == "event") {
    s.key = RateKey::Event;
  } else if (key.size() > 4 && key.compare(0, 4, "jwt.") == 0) {
    s.key = RateKey::Claim;
    s.claim_attribute = key;
  } else {
    reader.error(reader.node("key"),
                 "'key' must be one of: connection, ip, event, jwt.<claim> (such as jwt.sub)");
  }
  s.rule = readRule(reader);
  s.connections.rate = atLeast(reader, "connections_per_second", 0, 0);
  s.connections.burst =
      atLeast(reader, "connections_burst", std::max(1.0, std::ceil(s.connections.rate)), 1);
  s.action = reader.choice(
      "action", RateAction::Notify,
      {{"notify", RateAction::Notify}, {"close", RateAction::Close}, {"shape", RateAction::Shape}});
  s.notice = reader.string("notice", s.notice);
  std::optional<size_t> direction = reader.oneOf("direction", {"in", "out", "both"});
  if (direction) {
    s.limit_in = *direction != 1;
    s.limit_out = *direction != 0;
  }
  std::optional<size_t> store_kind = reader.oneOf("store", {"local", "redis"});
  if (store_kind == 1) {
    RedisStoreOptions redis;
    redis.url = reader.string("redis", "");
    std::string error;
    if (redis.url.empty()) {
      reader.error(reader.node("store"),
                   "'store = \"redis\"' needs 'redis = \"redis://host:port/db\"'");
    } else if (auto address = parseRedisUrl(redis.url, &error);
               !address || !resolveRedisHost(&*address, &error)) {
      reader.error(reader.node("redis"), "'redis' " + error);
    } else {
      redis.address = *address;
    }
    redis.failure = reader.choice(
        "redis_failure", RedisFailure::Allow,
        {{"allow", RedisFailure::Allow}, {"deny", RedisFailure::Deny}, {"local", RedisFailure::Local}});
    redis.timeout = reader.duration("redis_timeout", redis.timeout);
    if (redis.timeout.count() <= 0)
      reader.error(reader.node("redis_timeout"), "'redis_timeout' must be greater than 0");
    s.redis = std::move(redis);
  } else {
    for (std::string_view key : {"redis", "redis_failure", "redis_timeout"}) {
      if (reader.has(key)) reader.error(reader.node(key), "'" + std::string(key) + "' needs store = \"redis\"");
    }
  }
  if (const toml::table* events = reader.table("events")) {
    for (auto&& [name, node] : *events) {
      std::string event(name.str());
      const toml::table* table = node.as_table();
      if (table == nullptr) {
        reader.error(&node, "'events." + event +
                                "' must be a table such as { messages_per_second = 5, burst = 5 }");
        continue;
      }
      config::TableReader sub(*table, "[filter." + spec.name + ".events." + event + "]",
                              spec.pos.file, errors);
      s.events.emplace(event, readRule(sub));
      sub.finish();
    }
  }
  if (!s.rule.active() && s.events.empty() && s.connections.rate == 0)
    reader.error(nullptr, "[filter." + spec.name +
                              "] limits nothing: set messages_per_second, bytes_per_second, "
                              "connections_per_second or [filter." +
                              spec.name + ".events]");
  reader.finish();
  if (errors->size() != before) return nullptr;
  return std::make_shared<RateLimitFactory>(std::move(s), std::move(store));
}

}  // namespace wsb::filters
