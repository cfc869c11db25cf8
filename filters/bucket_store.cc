// The in-process bucket store: a hash picks the shard, the shard's mutex guards its map.
#include "filters/bucket_store.h"

#include <algorithm>

namespace wsb::filters {

namespace {

Duration toDuration(ratelimit::Duration wait) {
  if (wait == ratelimit::Duration::max()) return Duration::max();
  return std::chrono::ceil<Duration>(wait);
}

}  // namespace

TakeResult takeTokens(ratelimit::TokenBucket& bucket, double cost, TimePoint now, TakeMode mode) {
  double need = std::min(cost, bucket.burst());
  TakeResult result;
  result.allowed = bucket.retryAfter(need, now) == ratelimit::Duration::zero();
  if (result.allowed || mode == TakeMode::Always) {
    bucket.charge(cost, now);
    // Time until the level is back at zero: the next message then waits for its own tokens.
    result.retry_after = toDuration(bucket.retryAfter(0, now));
  } else {
    result.retry_after = toDuration(bucket.retryAfter(need, now));
  }
  return result;
}

TakeResult LocalBucketStore::take(std::string_view key, const BucketLimit& limit, double cost,
                                  TimePoint now, TakeMode mode) {
  Shard& shard = shards_[KeyHash()(key) % kShards];
  std::lock_guard lock(shard.mutex);
  if (now >= shard.next_sweep) sweep(shard, now);
  auto it = shard.buckets.find(key);
  if (it == shard.buckets.end()) {
    it = shard.buckets.try_emplace(std::string(key), limit.rate, limit.burst).first;
  } else if (it->second.rate() != limit.rate || it->second.burst() != limit.burst) {
    it->second = ratelimit::TokenBucket(limit.rate, limit.burst);
  }
  return takeTokens(it->second, cost, now, mode);
}

void LocalBucketStore::sweep(Shard& shard, TimePoint now) {
  shard.next_sweep = now + kSweepInterval;
  for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
    if (it->second.available(now) >= it->second.burst()) {
      it = shard.buckets.erase(it);
    } else {
      ++it;
    }
  }
}

size_t LocalBucketStore::size() const {
  size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.buckets.size();
  }
  return total;
}

const std::shared_ptr<LocalBucketStore>& LocalBucketStore::shared() {
  static const std::shared_ptr<LocalBucketStore> store = std::make_shared<LocalBucketStore>();
  return store;
}

}  // namespace wsb::filters
