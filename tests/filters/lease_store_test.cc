// Leased Redis buckets without Redis: a fake lease client answers when the test says, so the
// lease, debt, refill timing, failure modes and URL parsing are checked exactly.
#include "filters/lease_store.h"

#include <catch2/catch.hpp>
#include <deque>
#include <vector>

#include "filters/rate_limit.h"
#include "tests/filters/fake_callbacks.h"

namespace wsb::filters {
namespace {

using namespace std::chrono_literals;
const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);

// Records lease requests; the test answers them in order with answer().
class FakeLeaseClient final : public LeaseClient {
 public:
  struct Request {
    std::string key;
    BucketLimit limit;
    double want;
    std::function<void(const LeaseReply&)> done;
  };
  bool up() const override { return up_; }
  void lease(std::string_view key, const BucketLimit& limit, double want,
             std::function<void(const LeaseReply&)> done) override {
    requests.push_back({std::string(key), limit, want, std::move(done)});
  }
  void answer(double granted, Duration retry_after = 0ms, bool ok = true) {
    Request r = std::move(requests.front());
    requests.pop_front();
    r.done({ok, granted, retry_after});
  }
  bool up_ = true;
  std::deque<Request> requests;
};

struct Fixture {
  explicit Fixture(RedisFailure failure = RedisFailure::Allow,
                   Duration timeout = RedisStoreOptions::kDefaultTimeout)
      : client(new FakeLeaseClient),
        local(std::make_shared<LocalBucketStore>()),
        store(std::unique_ptr<LeaseClient>(client), failure, local, timeout) {}
  FakeLeaseClient* client;  // owned by the store
  std::shared_ptr<LocalBucketStore> local;
  LeasedBucketStore store;
};

TEST_CASE("leased store passes the first message at once and asks Redis for a lease") {
  Fixture f;
  BucketLimit limit{5, 5};  // lease: one token (a tenth of the burst, at least one)
  TakeResult first = f.store.take("k", limit, 1, t0);
  CHECK(first.allowed);
  REQUIRE(f.client->requests.size() == 1);
  CHECK(f.client->requests[0].key == "k");
  CHECK(f.client->requests[0].want == 2);  // the debt of one plus a lease of one
  // In debt and waiting for Redis: refused, no second request in flight.
  TakeResult second = f.store.take("k", limit, 1, t0 + 1ms);
  CHECK_FALSE(second.allowed);
  CHECK(second.retry_after == 200ms);  // the debt of one token at 5/s
  CHECK(f.client->requests.size() == 1);
  f.client->answer(2);
  // The debt is paid and one token is held: the next message spends it and refills again.
  CHECK(f.store.take("k", limit, 1, t0 + 2ms).allowed);
  REQUIRE(f.client->requests.size() == 1);
  CHECK(f.client->requests[0].want == 1);
}

TEST_CASE("leased store refuses while Redis has nothing and asks again when Redis said") {
  Fixture f;
  BucketLimit limit{5, 5};
  CHECK(f.store.take("k", limit, 1, t0).allowed);
  f.client->answer(0, 150ms);  // another instance took everything
  for (int i = 0; i < 3; ++i) {
    TakeResult r = f.store.take("k", limit, 1, t0 + 10ms);
    CHECK_FALSE(r.allowed);
    CHECK(r.retry_after == 200ms);  // the longer of the debt (200 ms) and Redis' 140 ms
  }
  CHECK(f.client->requests.empty());  // refused messages do not hammer Redis
  CHECK_FALSE(f.store.take("k", limit, 1, t0 + 150ms).allowed);
  REQUIRE(f.client->requests.size() == 1);  // Redis' hint has passed: ask again
  f.client->answer(1);                      // pays the debt only
  CHECK(f.store.take("k", limit, 1, t0 + 160ms).allowed);  // into debt again: one ahead
  CHECK_FALSE(f.store.take("k", limit, 1, t0 + 160ms).allowed);
}

TEST_CASE("leased store counts exactly what Redis grants, plus one message ahead") {
  Fixture f;
  BucketLimit limit{100, 100};  // lease of ten
  int passed = 0;
  for (int i = 0; i < 50; ++i) {
    if (f.store.take("k", limit, 1, t0).allowed) ++passed;
    while (!f.client->requests.empty()) f.client->answer(f.client->requests.front().want);
  }
  CHECK(passed == 50);
  // Redis now grants nothing more: at most the held lease (ten) and one message pass.
  for (int i = 0; i < 50; ++i) {
    if (f.store.take("k", limit, 1, t0).allowed) ++passed;
    while (!f.client->requests.empty()) f.client->answer(0, 10ms);
  }
  CHECK(passed <= 50 + 10 + 1);
  CHECK(passed >= 50 + 10);
}

TEST_CASE("leased store in shape mode charges debt and says how long to wait") {
  Fixture f;
  BucketLimit limit{10, 10};
  CHECK(f.store.take("k", limit, 1, t0, TakeMode::Always).allowed);
  TakeResult r = f.store.take("k", limit, 1, t0, TakeMode::Always);
  CHECK_FALSE(r.allowed);
  CHECK(r.retry_after == 200ms);  // two tokens of debt at 10/s
}

TEST_CASE("leased store keeps a grant for a failed request from counting") {
  Fixture f;
  BucketLimit limit{5, 5};
  CHECK(f.store.take("k", limit, 1, t0).allowed);
  f.client->answer(0, 0ms, /*ok=*/false);
  CHECK_FALSE(f.store.take("k", limit, 1, t0 + 1ms).allowed);
  CHECK(f.client->requests.size() == 1);  // asked again at once
}

TEST_CASE("leased store while Redis is down: allow, deny or local buckets") {
  BucketLimit limit{1, 2};
  Fixture allow(RedisFailure::Allow);
  allow.client->up_ = false;
  for (int i = 0; i < 5; ++i) CHECK(allow.store.take("k", limit, 1, t0).allowed);
  CHECK(allow.client->requests.empty());

  Fixture deny(RedisFailure::Deny);
  deny.client->up_ = false;
  TakeResult r = deny.store.take("k", limit, 1, t0);
  CHECK_FALSE(r.allowed);
  CHECK(r.retry_after == LeasedBucketStore::kDenyRetry);

  Fixture local(RedisFailure::Local);
  local.client->up_ = false;
  CHECK(local.store.take("k", limit, 1, t0).allowed);
  CHECK(local.store.take("k", limit, 1, t0).allowed);
  CHECK_FALSE(local.store.take("k", limit, 1, t0).allowed);  // burst 2, from this process
  CHECK(local.local->size() == 1);
  // Back up: leases again.
  local.client->up_ = true;
  CHECK(local.store.take("k", limit, 1, t0).allowed);
  CHECK(local.client->requests.size() == 1);
}

TEST_CASE("leased store: a lease unanswered past the timeout follows redis_failure for its key") {
  BucketLimit limit{5, 5};
  constexpr Duration kTimeout = 300ms;
  for (RedisFailure failure : {RedisFailure::Allow, RedisFailure::Deny, RedisFailure::Local}) {
    Fixture f(failure, kTimeout);
    CHECK(f.store.take("k", limit, 1, t0).allowed);  // into debt, a lease asked for
    REQUIRE(f.client->requests.size() == 1);
    // Within the timeout: the debt refuses, whatever redis_failure says.
    CHECK_FALSE(f.store.take("k", limit, 1, t0 + kTimeout - 1ms).allowed);
    // Past it, with no answer yet (the client still up): as if Redis were down.
    TakeResult late = f.store.take("k", limit, 1, t0 + kTimeout);
    if (failure == RedisFailure::Allow) {
      CHECK(late.allowed);
    } else if (failure == RedisFailure::Deny) {
      CHECK_FALSE(late.allowed);
      CHECK(late.retry_after == LeasedBucketStore::kDenyRetry);
    } else {
      CHECK(late.allowed);  // the local bucket (burst 5) has tokens
      CHECK(f.local->size() == 1);
    }
    CHECK(f.client->requests.size() == 1);  // not asked again while one is out
    // The answer comes (here, the client's timeout: not ok): leases are asked for again.
    f.client->answer(0, 0ms, /*ok=*/false);
    CHECK_FALSE(f.store.take("k", limit, 1, t0 + kTimeout + 1ms).allowed);  // still in debt
    REQUIRE(f.client->requests.size() == 1);
    f.client->answer(2);
    CHECK(f.store.take("k", limit, 1, t0 + kTimeout + 2ms).allowed);
  }
}

TEST_CASE("leased store sweeps idle keys and drops their late grants") {
  Fixture f;
  BucketLimit limit{5, 5};
  CHECK(f.store.take("a", limit, 1, t0).allowed);
  f.client->answer(2);
  CHECK(f.store.size() == 1);
  CHECK(f.store.take("b", limit, 1, t0 + LeasedBucketStore::kSweepInterval).allowed);
  CHECK(f.store.size() == 1);  // "a" was idle for the sweep interval
}

TEST_CASE("redis URLs: host, port, password, database") {
  std::string error;
  auto a = parseRedisUrl("redis://127.0.0.1:6380/2", &error);
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 6380);
  CHECK(a->db == 2);
  CHECK(a->password.empty());
  auto b = parseRedisUrl("redis://:s3cret@cache.internal", &error);
  REQUIRE(b);
  CHECK(b->host == "cache.internal");
  CHECK(b->port == 6379);
  CHECK(b->password == "s3cret");
  CHECK_FALSE(parseRedisUrl("http://x", &error));
  CHECK(error.find("redis://") != std::string::npos);
  CHECK_FALSE(parseRedisUrl("redis://host:99999", &error));
  CHECK_FALSE(parseRedisUrl("redis://host/x", &error));
  CHECK_FALSE(parseRedisUrl("redis://:pw@/0", &error));
}

TEST_CASE("rate_limit store options are checked at load") {
  std::vector<std::string> errors;
  CHECK(buildRateLimitFactory(testing::specFrom("type = 'rate_limit'\nkey = 'ip'\n"
                                                "messages_per_second = 5\nstore = 'redis'\n"
                                                "redis = 'redis://127.0.0.1:6379/0'\n"
                                                "redis_failure = 'deny'\n"
                                                "redis_timeout = '250ms'\n"),
                              &errors) != nullptr);
  CHECK(errors.empty());
  CHECK(buildRateLimitFactory(testing::specFrom("type = 'rate_limit'\nmessages_per_second = 5\n"
                                                "store = 'redis'\n"),
                              &errors) == nullptr);
  CHECK(buildRateLimitFactory(testing::specFrom("type = 'rate_limit'\nmessages_per_second = 5\n"
                                                "redis = 'redis://127.0.0.1'\n"),
                              &errors) == nullptr);
  CHECK(buildRateLimitFactory(testing::specFrom("type = 'rate_limit'\nmessages_per_second = 5\n"
                                                "store = 'redis'\nredis = 'tcp://x'\n"),
                              &errors) == nullptr);
  CHECK(buildRateLimitFactory(testing::specFrom("type = 'rate_limit'\nmessages_per_second = 5\n"
                                                "store = 'redis'\nredis = 'redis://127.0.0.1'\n"
                                                "redis_timeout = '0s'\n"),
                              &errors) == nullptr);
  CHECK(buildRateLimitFactory(testing::specFrom("type = 'rate_limit'\nmessages_per_second = 5\n"
                                                "redis_timeout = '1s'\n"),
                              &errors) == nullptr);
  REQUIRE(errors.size() == 5);
  CHECK(errors[0] == "test.toml:4:9: 'store = \"redis\"' needs "
                     "'redis = \"redis://host:port/db\"'");
  CHECK(errors[1] == "test.toml:4:9: 'redis' needs store = \"redis\"");
  CHECK(errors[2].find("'redis' must start with redis://") != std::string::npos);
  CHECK(errors[3] == "test.toml:6:17: 'redis_timeout' must be greater than 0");
  CHECK(errors[4] == "test.toml:4:17: 'redis_timeout' needs store = \"redis\"");
}

}  // namespace
}  // namespace wsb::filters
