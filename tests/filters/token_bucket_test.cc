// Tests for token buckets: starting full, lazy refill, and exact whole-token edges.
#include "filters/token_bucket.h"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using wsb::ratelimit::Clock;
using wsb::ratelimit::Duration;
using wsb::ratelimit::TokenBucket;

namespace {
// Far from the clock's epoch, as a steady clock's readings are.
const Clock::time_point t0 = Clock::time_point{} + 123456789s;
}  // namespace

TEST_CASE("at 5/s burst 5 the sixth take fails and one returns after exactly 200ms") {
  TokenBucket bucket(5, 5);
  for (int i = 0; i < 5; ++i) CHECK(bucket.take(1, t0));
  CHECK_FALSE(bucket.take(1, t0));
  CHECK(bucket.retryAfter(1, t0) == 200ms);
  CHECK_FALSE(bucket.take(1, t0 + 199ms));
  CHECK(bucket.retryAfter(1, t0 + 199ms) == 1ms);
  CHECK_FALSE(bucket.take(1, t0 + 199999999ns));
  CHECK(bucket.retryAfter(1, t0 + 199999999ns) == 1ns);
  CHECK(bucket.take(1, t0 + 200ms));
  CHECK_FALSE(bucket.take(1, t0 + 200ms));
}

TEST_CASE("the 200ms edge holds when the bucket is only asked at the edge") {
  TokenBucket bucket(5, 5);
  for (int i = 0; i < 5; ++i) REQUIRE(bucket.take(1, t0));
  TokenBucket early = bucket;
  CHECK_FALSE(early.take(1, t0 + 199ms));
  CHECK(bucket.take(1, t0 + 200ms));
}

TEST_CASE("a bucket starts full at its first use") {
  TokenBucket bucket(1, 3);
  CHECK(bucket.available(t0 + 1000s) == 3);
  CHECK(bucket.take(3, t0 + 1000s));
  CHECK_FALSE(bucket.take(1, t0 + 1000s));
}

TEST_CASE("refill stops at the burst") {
  TokenBucket bucket(5, 5);
  REQUIRE(bucket.take(5, t0));
  CHECK(bucket.available(t0 + 1h) == 5);
  CHECK(bucket.take(5, t0 + 1h));
  CHECK_FALSE(bucket.take(1, t0 + 1h));
}

TEST_CASE("many small refills add up exactly") {
  TokenBucket bucket(5, 5);
  REQUIRE(bucket.take(5, t0));
  for (int ms = 1; ms < 200; ++ms)
    REQUIRE_FALSE(bucket.take(1, t0 + std::chrono::milliseconds(ms)));
  CHECK(bucket.take(1, t0 + 200ms));
  for (int ms = 201; ms < 400; ++ms)
    REQUIRE_FALSE(bucket.take(1, t0 + std::chrono::milliseconds(ms)));
  CHECK(bucket.take(1, t0 + 400ms));
}

TEST_CASE("retryAfter is zero when tokens are there and max when they never can be") {
  TokenBucket bucket(2, 4);
  CHECK(bucket.retryAfter(4, t0) == Duration::zero());
  CHECK(bucket.retryAfter(5, t0) == Duration::max());
  REQUIRE(bucket.take(3, t0));
  CHECK(bucket.retryAfter(1, t0) == Duration::zero());
  CHECK(bucket.retryAfter(2, t0) == 500ms);
  CHECK(bucket.retryAfter(4, t0) == 1500ms);
  TokenBucket frozen(0, 1);
  REQUIRE(frozen.take(1, t0));
  CHECK(frozen.retryAfter(1, t0 + 1h) == Duration::max());
  CHECK_FALSE(frozen.take(1, t0 + 1h));
}

TEST_CASE("a failed take takes nothing") {
  TokenBucket bucket(1, 3);
  REQUIRE(bucket.take(2, t0));
  CHECK_FALSE(bucket.take(2, t0));
  CHECK(bucket.take(1, t0));
}

TEST_CASE("fractional rates and token counts refill in proportion") {
  TokenBucket slow(0.5, 1);  // a token every two seconds
  REQUIRE(slow.take(1, t0));
  CHECK(slow.retryAfter(1, t0) == 2s);
  CHECK_FALSE(slow.take(1, t0 + 1999ms));
  CHECK(slow.take(1, t0 + 2s));

  TokenBucket bytes(1024, 1024);  // bytes per second
  REQUIRE(bytes.take(1000, t0));
  CHECK_FALSE(bytes.take(100, t0));
  CHECK(bytes.retryAfter(100, t0) == Duration(std::chrono::nanoseconds(74218750)));
  CHECK(bytes.take(100, t0 + 74218750ns));
}

TEST_CASE("charge goes into debt that later takes wait out") {
  TokenBucket bytes(100, 100);
  bytes.charge(300, t0);  // a message bigger than the burst has already passed
  CHECK(bytes.available(t0) == -200);
  CHECK(bytes.retryAfter(1, t0) == 2010ms);
  CHECK_FALSE(bytes.take(1, t0 + 2009ms));
  CHECK(bytes.take(1, t0 + 2010ms));
}

TEST_CASE("a time point older than the last one refills nothing") {
  TokenBucket bucket(5, 5);
  REQUIRE(bucket.take(5, t0 + 1s));
  CHECK_FALSE(bucket.take(1, t0));
  CHECK_FALSE(bucket.take(1, t0 + 1199ms));
  CHECK(bucket.take(1, t0 + 1200ms));
}

TEST_CASE("rate and burst read back, negatives count as zero") {
  TokenBucket bucket(5, 7);
  CHECK(bucket.rate() == 5);
  CHECK(bucket.burst() == 7);
  TokenBucket broken(-1, -1);
  CHECK(broken.rate() == 0);
  CHECK(broken.burst() == 0);
  CHECK_FALSE(broken.take(1, t0));
  CHECK(broken.take(0, t0));
}
