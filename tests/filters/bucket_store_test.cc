// Bucket store: refill edges, debt for oversized costs, shaping mode, limit changes, eviction,
// and exact counts under concurrent workers.
#include "filters/bucket_store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

namespace wsb::filters {
namespace {

using namespace std::chrono_literals;
const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);

TEST_CASE("bucket store gives burst tokens at once and one more per 1/rate") {
  LocalBucketStore store;
  BucketLimit limit{5, 5};
  for (int i = 0; i < 5; ++i) CHECK(store.take("k", limit, 1, t0).allowed);
  TakeResult refused = store.take("k", limit, 1, t0);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after == 200ms);
  refused = store.take("k", limit, 1, t0 + 199ms);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after == 1ms);
  CHECK(store.take("k", limit, 1, t0 + 200ms).allowed);
  CHECK_FALSE(store.take("k", limit, 1, t0 + 200ms).allowed);
  CHECK(store.take("k", limit, 1, t0 + 400ms).allowed);
}

TEST_CASE("bucket store keeps keys apart") {
  LocalBucketStore store;
  BucketLimit limit{1, 1};
  CHECK(store.take("ip:1", limit, 1, t0).allowed);
  CHECK_FALSE(store.take("ip:1", limit, 1, t0).allowed);
  CHECK(store.take("ip:2", limit, 1, t0).allowed);
  CHECK(store.size() == 2);
}

TEST_CASE("bucket store lets a cost above the burst pass when full and leaves a debt") {
  LocalBucketStore store;
  BucketLimit bytes{1000, 1000};
  TakeResult big = store.take("b", bytes, 3000, t0);
  CHECK(big.allowed);
  CHECK(big.retry_after == 2000ms);  // the debt of 2000 bytes at 1000/s
  TakeResult next = store.take("b", bytes, 10, t0 + 1s);
  CHECK_FALSE(next.allowed);
  CHECK(next.retry_after == 1010ms);
  CHECK(store.take("b", bytes, 10, t0 + 2010ms).allowed);
}

TEST_CASE("bucket store Always mode charges a refused cost and says when the debt is paid") {
  LocalBucketStore store;
  BucketLimit limit{5, 1};
  TakeResult first = store.take("s", limit, 1, t0, TakeMode::Always);
  CHECK(first.allowed);
  CHECK(first.retry_after == 0ms);
  TakeResult second = store.take("s", limit, 1, t0, TakeMode::Always);
  CHECK_FALSE(second.allowed);
  CHECK(second.retry_after == 200ms);
  TakeResult third = store.take("s", limit, 1, t0 + 200ms, TakeMode::Always);
  CHECK_FALSE(third.allowed);
  CHECK(third.retry_after == 200ms);
  CHECK(store.take("s", limit, 1, t0 + 600ms).allowed);
}

TEST_CASE("bucket store makes a bucket anew when its limit changes") {
  LocalBucketStore store;
  CHECK(store.take("k", {1, 1}, 1, t0).allowed);
  CHECK_FALSE(store.take("k", {1, 1}, 1, t0).allowed);
  CHECK(store.take("k", {2, 2}, 1, t0).allowed);
  CHECK(store.take("k", {2, 2}, 1, t0).allowed);
  CHECK_FALSE(store.take("k", {2, 2}, 1, t0).allowed);
}

TEST_CASE("bucket store drops buckets that have refilled") {
  LocalBucketStore store;
  BucketLimit limit{10, 10};
  for (int i = 0; i < 100; ++i) store.take("ip:" + std::to_string(i), limit, 1, t0);
  CHECK(store.size() == 100);
  store.take("busy", {1, 10}, 10, t0 + 9s);  // empty until t0 + 19s
  CHECK(store.size() == 101);
  // One sweep interval on, the first take in each shard sweeps it (1000 keys reach all 16):
  // every refilled bucket goes, the one still refilling stays.
  for (int i = 0; i < 1000; ++i) store.take("n:" + std::to_string(i), limit, 0, t0 + 10s);
  CHECK(store.size() == 1001);
  TakeResult busy = store.take("busy", {1, 10}, 2, t0 + 10s);  // kept: 1 token back, not 10
  CHECK_FALSE(busy.allowed);
  CHECK(busy.retry_after == 1s);
}

TEST_CASE("bucket store hands out exactly the burst to concurrent workers") {
  LocalBucketStore store;
  BucketLimit limit{1, 1000};
  std::atomic<int> allowed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (store.take("shared", limit, 1, t0).allowed) ++allowed;
      }
    });
  }
  for (auto& t : workers) t.join();
  CHECK(allowed == 1000);
}

TEST_CASE("takeTokens on a connection's own bucket follows the same rules") {
  ratelimit::TokenBucket bucket(2, 2);
  CHECK(takeTokens(bucket, 1, t0, TakeMode::IfAvailable).allowed);
  CHECK(takeTokens(bucket, 1, t0, TakeMode::IfAvailable).allowed);
  TakeResult refused = takeTokens(bucket, 1, t0, TakeMode::IfAvailable);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after == 500ms);
}

}  // namespace
}  // namespace wsb::filters
