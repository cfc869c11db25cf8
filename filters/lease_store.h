// Rate-limit buckets shared by many wsbridge instances through Redis: each worker spends tokens
// it leased from the Redis-side bucket, so a message costs no Redis round trip.
//
// How it works, per bucket key and per worker:
// * The worker holds a small lease of tokens (a tenth of the burst, at least one) and answers
//   take() from it at once. When the lease runs low it asks Redis for more (LeaseClient, one
//   atomic script per request, refilled by Redis' own clock) without waiting for the answer.
// * A message that finds the lease short but not in debt passes and leaves it in debt (at most
//   one message per worker ahead of its grants); the debt is paid from the next grant. So the
//   first message of a new key never waits for Redis, and nothing passes that is not paid for.
// * A lease in debt refuses (notify / close) or, for shaping, charges further debt and asks the
//   sender to wait debt / rate.
// Accuracy: over any window, all instances together pass at most the configured rate and burst
// plus, per worker and key, the unspent lease and one message. Grants are never returned, so a
// worker whose client went quiet keeps its lease until the key is swept (10 s idle): stricter,
// never looser.
//
// Redis unreachable (LeaseClient::up() false): `redis_failure` decides: allow everything, deny
// everything (retry after 1 s), or fall back to this process's local buckets. A key whose lease
// request has waited longer than `redis_timeout` is treated the same way until the answer (or the
// client's own timeout) comes, so a Redis that hangs costs a key at most that long.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "filters/bucket_store.h"

namespace wsb::filters {

enum class RedisFailure { Allow, Deny, Local };

struct RedisAddress {
  std::string host;  // a numeric address once resolved
  int port = 6379;
  std::string password;  // empty: no AUTH
  int db = 0;
};

// Parses a redis:// URL; nullopt with `error` set when it is not one.
std::optional<RedisAddress> parseRedisUrl(std::string_view url, std::string* error);
// Replaces a host name by its first address (at config load, so workers never block on DNS).
bool resolveRedisHost(RedisAddress* address, std::string* error);

// `store = "redis"` options of a rate_limit table.
struct RedisStoreOptions {
  static constexpr Duration kDefaultTimeout{500};

  std::string url;  // redis://[:password@]host[:port][/db]
  RedisAddress address;
  RedisFailure failure = RedisFailure::Allow;
  // `redis_timeout`: how long a command (or a connect) may go unanswered before Redis counts as
  // down. Redis answers in well under a millisecond; this only has to outlast its rare stalls.
  Duration timeout = kDefaultTimeout;
};

struct LeaseReply {
  bool ok = false;       // false: Redis did not answer (the client counts the outage)
  double granted = 0;    // tokens now the worker's to spend
  Duration retry_after{0};  // when Redis will have a whole token again (0: it has one now)
};

// The Redis side of leasing, one per worker event loop. Callbacks run on that loop, later,
// never inside lease().
class LeaseClient {
 public:
  virtual ~LeaseClient() = default;
  // False while Redis is known to be unreachable; true while connecting.
  virtual bool up() const = 0;
  // Asks the bucket `key` (made with `limit`, full, on first use) for up to `want` tokens.
  virtual void lease(std::string_view key, const BucketLimit& limit, double want,
                     std::function<void(const LeaseReply&)> done) = 0;
};

// One worker's view of the Redis buckets: not thread-safe, used from that worker's loop only.
class LeasedBucketStore final : public BucketStore {
 public:
  static constexpr Duration kSweepInterval{10000};
  static constexpr Duration kDenyRetry{1000};

  // `fetch_timeout`: a lease request unanswered this long gives way to `failure` for its key.
  LeasedBucketStore(std::unique_ptr<LeaseClient> client, RedisFailure failure,
                    std::shared_ptr<BucketStore> local_fallback,
                    Duration fetch_timeout = RedisStoreOptions::kDefaultTimeout);

  TakeResult take(std::string_view key, const BucketLimit& limit, double cost, TimePoint now,
                  TakeMode mode = TakeMode::IfAvailable) override;

  // Keys with a lease held now.
  size_t size() const { return leases_.size(); }

 private:
  struct Lease {
    BucketLimit limit;
    double tokens = 0;  // negative: debt
    bool fetching = false;
    TimePoint fetch_deadline{};  // fetching: past this, the key follows redis_failure
    TimePoint retry_at{};  // Redis had nothing: do not ask again before this
    TimePoint used{};
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key); }
  };

  TakeResult whileDown(std::string_view key, const BucketLimit& limit, double cost, TimePoint now,
                       TakeMode mode);
  void refill(const std::string& key, Lease& lease, TimePoint now);
  void sweep(TimePoint now);

  RedisFailure failure_;
  std::shared_ptr<BucketStore> local_fallback_;
  Duration fetch_timeout_;
  std::unordered_map<std::string, Lease, KeyHash, std::equal_to<>> leases_;
  TimePoint next_sweep_{};
  // Declared last so it is destroyed first, while the leases its pending callbacks name exist.
  std::unique_ptr<LeaseClient> client_;
};

// Where rate_limit filters find their worker's Redis-backed stores: each worker thread installs
// one for its event loop (proxy/worker.cc); none is installed in unit tests, whose filters use
// the store given to their factory.
class SharedStores {
 public:
  virtual ~SharedStores() = default;
  virtual BucketStore& redis(const RedisStoreOptions& options) = 0;

  static SharedStores* current();  // this thread's, or null
  static void setCurrent(SharedStores* stores);
};

}  // namespace wsb::filters
