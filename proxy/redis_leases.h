// The Redis side of shared rate-limit buckets: an asynchronous hiredis connection on a worker's
// event loop that leases tokens with one atomic script, and the per-worker set of stores.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "filters/lease_store.h"
#include "proxy/dispatcher.h"

struct redisAsyncContext;

namespace wsb::proxy {

// One connection to one Redis, reconnecting every second while it is down. An outage is logged
// once when it starts and once when it ends.
class RedisLeaseClient final : public filters::LeaseClient {
 public:
  static constexpr Duration kReconnectDelay{1000};

  // `label` names the Redis in logs (never its password).
  RedisLeaseClient(Dispatcher& dispatcher, filters::RedisAddress address, std::string label);
  ~RedisLeaseClient() override;
  RedisLeaseClient(const RedisLeaseClient&) = delete;
  RedisLeaseClient& operator=(const RedisLeaseClient&) = delete;

  bool up() const override { return !down_; }
  void lease(std::string_view key, const filters::BucketLimit& limit, double want,
             std::function<void(const filters::LeaseReply&)> done) override;

 private:
  struct Pending;
  static void onConnect(const redisAsyncContext* context, int status);
  static void onDisconnect(const redisAsyncContext* context, int status);
  static void onReply(redisAsyncContext* context, void* reply, void* privdata);

  void connect();
  void send(std::unique_ptr<Pending> pending, bool with_script);
  void markDown(const std::string& why);

  Dispatcher& dispatcher_;
  filters::RedisAddress address_;
  std::string label_;
  redisAsyncContext* context_ = nullptr;
  bool down_ = false;
  bool closing_ = false;  // in the destructor: pending callbacks are dropped, not run
  Timer reconnect_;
};

// A worker's Redis-backed stores, one per (url, redis_failure), made on first use and living as
// long as the worker's loop runs.
class WorkerSharedStores final : public filters::SharedStores {
 public:
  explicit WorkerSharedStores(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  filters::BucketStore& redis(const filters::RedisStoreOptions& options) override;

 private:
  Dispatcher& dispatcher_;
  std::map<std::pair<std::string, filters::RedisFailure>,
           std::unique_ptr<filters::LeasedBucketStore>>
      stores_;
};

}  // namespace wsb::proxy
