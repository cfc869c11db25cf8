// LeasedBucketStore: spends leased tokens locally and asks Redis for more before they run out.
#include "filters/lease_store.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace wsb::filters {

namespace {

// A lease is a tenth of the burst: few Redis requests, little slack.
double leaseSize(const BucketLimit& limit) { return std::max(1.0, std::floor(limit.burst / 10)); }

Duration secondsToDuration(double seconds) {
  return Duration(static_cast<Duration::rep>(std::ceil(seconds * 1000)));
}

bool parseInt(std::string_view text, int* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

thread_local SharedStores* current_stores = nullptr;

}  // namespace

std::optional<RedisAddress> parseRedisUrl(std::string_view url, std::string* error) {
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    *error = "must start with redis:// (redis://[:password@]host[:port][/db])";
    return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  RedisAddress address;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view user_info = rest.substr(0, at);
    size_t colon = user_info.find(':');
    // Redis 6 ACL users are not supported: AUTH is sent with the password alone.
    address.password = std::string(colon == std::string_view::npos ? user_info
                                                                   : user_info.substr(colon + 1));
    rest.remove_prefix(at + 1);
  }
  std::string_view host_port = rest.substr(0, rest.find('/'));
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!parseInt(db, &address.db) || address.db < 0)) {
      *error = "database '" + std::string(db) + "' is not a number";
      return std::nullopt;
    }
  }
  size_t colon = host_port.rfind(':');
  address.host = std::string(host_port.substr(0, colon));
  if (colon != std::string_view::npos &&
      (!parseInt(host_port.substr(colon + 1), &address.port) || address.port <= 0 ||
       address.port > 65535)) {
    *error = "port '" + std::string(host_port.substr(colon + 1)) + "' is not a port number";
    return std::nullopt;
  }
  if (address.host.empty()) {
    *error = "has no host";
    return std::nullopt;
  }
  return address;
}

bool resolveRedisHost(RedisAddress* address, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(address->host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    *error = "cannot resolve " + address->host + ": " + gai_strerror(rc);
    return false;
  }
  char text[INET6_ADDRSTRLEN] = {};
  const void* raw = result->ai_family == AF_INET6
                        ? static_cast<const void*>(
                              &reinterpret_cast<sockaddr_in6*>(result->ai_addr)->sin6_addr)
                        : &reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr;
  inet_ntop(result->ai_family, raw, text, sizeof text);
  freeaddrinfo(result);
  address->host = text;
  return true;
}

LeasedBucketStore::LeasedBucketStore(std::unique_ptr<LeaseClient> client, RedisFailure failure,
                                     std::shared_ptr<BucketStore> local_fallback,
                                     Duration fetch_timeout)
    : failure_(failure),
      local_fallback_(std::move(local_fallback)),
      fetch_timeout_(fetch_timeout),
      client_(std::move(client)) {}

TakeResult LeasedBucketStore::take(std::string_view key, const BucketLimit& limit, double cost,
                                   TimePoint now, TakeMode mode) {
  if (!client_->up()) return whileDown(key, limit, cost, now, mode);
  if (now >= next_sweep_) sweep(now);
  auto it = leases_.find(key);
  if (it == leases_.end()) {
    it = leases_.try_emplace(std::string(key)).first;
    it->second.limit = limit;
  } else if (it->second.limit.rate != limit.rate || it->second.limit.burst != limit.burst) {
    it->second = Lease{limit};  // a reload changed the limit: Redis applies it from now on
  }
  Lease& lease = it->second;
  lease.used = now;
  // Redis has sat on this key's request too long: it is as good as down, whatever the client
  // knows yet (its timer may not have fired in this loop iteration).
  if (lease.fetching && now >= lease.fetch_deadline) return whileDown(key, limit, cost, now, mode);

  TakeResult result;
  result.allowed = lease.tokens >= 0;  // short but not in debt: passes, into debt
  if (result.allowed || mode == TakeMode::Always) lease.tokens -= cost;
  if (lease.tokens < 0) {
    Duration paid_back = secondsToDuration(-lease.tokens / limit.rate);
    Duration redis_has = std::max(Duration{0}, std::chrono::ceil<Duration>(lease.retry_at - now));
    result.retry_after = std::max(paid_back, redis_has);
  }
  refill(it->first, lease, now);
  return result;
}

TakeResult LeasedBucketStore::whileDown(std::string_view key, const BucketLimit& limit,
                                        double cost, TimePoint now, TakeMode mode) {
  switch (failure_) {
    case RedisFailure::Allow:
      return {true, Duration{0}};
    case RedisFailure::Deny:
      return {false, kDenyRetry};
    case RedisFailure::Local:
      return local_fallback_->take(key, limit, cost, now, mode);
  }
  return {true, Duration{0}};
}

void LeasedBucketStore::refill(const std::string& key, Lease& lease, TimePoint now) {
  double size = leaseSize(lease.limit);
  if (lease.fetching || lease.tokens >= size || now < lease.retry_at) return;
  lease.fetching = true;
  lease.fetch_deadline = now + fetch_timeout_;
  double want = std::ceil(size - lease.tokens);  // a full lease after paying the debt
  client_->lease(key, lease.limit, want, [this, key, now](const LeaseReply& reply) {
    auto it = leases_.find(key);
    if (it == leases_.end()) return;  // swept meanwhile: the grant is lost (stricter)
    Lease& l = it->second;
    l.fetching = false;
    if (!reply.ok) return;
    l.tokens += reply.granted;
    // Redis was short: it said when it will have a token again.
    l.retry_at = reply.retry_after.count() > 0 ? now + reply.retry_after : TimePoint{};
  });
}

void LeasedBucketStore::sweep(TimePoint now) {
  next_sweep_ = now + kSweepInterval;
  std::erase_if(leases_, [now](const auto& entry) {
    return !entry.second.fetching && now - entry.second.used >= kSweepInterval;
  });
}

SharedStores* SharedStores::current() { return current_stores; }
void SharedStores::setCurrent(SharedStores* stores) { current_stores = stores; }

}  // namespace wsb::filters
