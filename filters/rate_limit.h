// The rate_limit filter: token buckets on messages and bytes, per connection, client IP, JWT
// claim or event name, with per-event overrides, and a connections-per-second limit per IP.
//
// Buckets:
// * `key = "connection"`: the connection's own buckets (no lock, no store).
// * `key = "event"`: the connection's own buckets, one per event name (raw messages share one;
//   past 64 names the rest share it too, so a client cannot grow them without bound).
// * `key = "ip"` and `key = "jwt.<claim>"`: shared by every connection of the process through
//   the BucketStore; a connection without the claim (no token) is keyed by its IP instead.
// Events named in `[filter.NAME.events]` get buckets of their own with their own limits, under
// the same key (so `key = "ip"` with `chat = {...}` gives each IP one `chat` bucket).
// Each direction limited (`direction`: in, out or both; default in) has its own buckets.
// With `store = "redis"` the shared buckets (ip, jwt.<claim>, connections_per_second) are shared
// by every instance through Redis instead; see filters/lease_store.h for the accuracy.
//
// When a bucket is empty: `notify` drops the message and sends `notice` to its sender, `close`
// closes with 1008, `shape` lets it pass into debt and pauses reading from the sender until the
// debt is paid, so nothing is dropped. A message bigger than `bytes_burst` passes when the bytes
// bucket is full and leaves it in debt. On routes where each message is also an event, the
// event is what is counted (Message::event_follows).
#pragma once

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "filters/bucket_store.h"
#include "filters/filter.h"
#include "filters/lease_store.h"

namespace wsb::filters {

enum class RateKey { Connection, Ip, Claim, Event };
enum class RateAction { Notify, Close, Shape };

struct RateRule {
  BucketLimit messages;  // rate 0 = not limited
  BucketLimit bytes;     // rate 0 = not limited
  bool active() const { return messages.rate > 0 || bytes.rate > 0; }
};

struct RateLimitSettings {
  std::string name;  // the table's name: shared bucket keys start with it
  RateKey key = RateKey::Connection;
  std::string claim_attribute;  // "jwt.sub" for key = "jwt.sub"
  RateRule rule;
  std::map<std::string, RateRule, std::less<>> events;
  BucketLimit connections;  // per client IP at the handshake; rate 0 = off
  RateAction action = RateAction::Notify;
  std::string notice = R"({"event":"rate-limit-exceeded","data":{"message":"too many messages"}})";
  bool limit_in = true;    // client -> upstream
  bool limit_out = false;  // upstream -> client
  // store = "redis": shared buckets live in Redis (filters/lease_store.h), leased per worker.
  std::optional<RedisStoreOptions> redis;
};

// Reads [filter.NAME] with type = "rate_limit"; shared buckets live in
// LocalBucketStore::shared().
FactoryPtr buildRateLimitFactory(const config::FilterSpec& spec, std::vector<std::string>* errors);
// The same with shared buckets in `store`.
FactoryPtr buildRateLimitFactory(const config::FilterSpec& spec, std::vector<std::string>* errors,
                                 std::shared_ptr<BucketStore> store);

}  // namespace wsb::filters
