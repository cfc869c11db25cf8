// Token buckets keyed beyond one connection (a client IP, a JWT subject), shared by every
// connection on every worker: the store interface and its in-process implementation.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "filters/filter.h"
#include "filters/token_bucket.h"

namespace wsb::filters {

struct BucketLimit {
  double rate = 0;   // tokens per second
  double burst = 0;  // capacity, at least 1; a new bucket starts full
};

enum class TakeMode {
  IfAvailable,  // refuse (taking nothing) unless the tokens are there
  Always,       // shaping: the thing has passed anyway, so take the tokens even into debt
};

struct TakeResult {
  bool allowed = false;  // the tokens were there
  // Refused: how long until they will be. Always mode: how long until the debt is paid (zero
  // when there is none), which is how long the sender should wait before its next message.
  Duration retry_after{0};
};

// Admits `cost` from one bucket. A cost above the burst (a message bigger than bytes_burst)
// passes when the bucket is full and leaves it in debt, so it is slowed, never starved.
TakeResult takeTokens(ratelimit::TokenBucket& bucket, double cost, TimePoint now, TakeMode mode);

class BucketStore {
 public:
  virtual ~BucketStore() = default;
  // Takes from the bucket `key`, made with `limit` on first use (and made anew, full, when the
  // limit of an existing bucket differs: a reload changed it). Callers prefix keys with their
  // filter's name so that filters never share a bucket by accident.
  virtual TakeResult take(std::string_view key, const BucketLimit& limit, double cost,
                          TimePoint now, TakeMode mode = TakeMode::IfAvailable) = 0;
};

// Buckets in this process's memory, in mutex-guarded shards so workers rarely contend. A bucket
// that has refilled to full is the same as no bucket, so idle ones are swept away.
class LocalBucketStore final : public BucketStore {
 public:
  // How often each shard looks for full buckets to drop.
  static constexpr Duration kSweepInterval{10000};

  TakeResult take(std::string_view key, const BucketLimit& limit, double cost, TimePoint now,
                  TakeMode mode = TakeMode::IfAvailable) override;

  // Buckets held now, over all shards.
  size_t size() const;

  // The store every filter of this process shares.
  static const std::shared_ptr<LocalBucketStore>& shared();

 private:
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key); }
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, ratelimit::TokenBucket, KeyHash, std::equal_to<>> buckets;
    TimePoint next_sweep{};
  };
  static constexpr size_t kShards = 16;

  void sweep(Shard& shard, TimePoint now);

  std::array<Shard, kShards> shards_;
};

}  // namespace wsb::filters
