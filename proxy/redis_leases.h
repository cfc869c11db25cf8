// The Redis side of shared rate-limit buckets: an asynchronous hiredis connection on a worker's
// event loop that leases tokens with one atomic script, and the per-worker set of stores.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include "filters/lease_store.h"
#include "proxy/dispatcher.h"

struct redisAsyncContext;

namespace wsb::proxy {

class WorkerStats;

// One connection to one Redis. hiredis (0.14) has no timeouts of its own, so this client keeps
// one: a command, or the connect itself, unanswered within `timeout` drops the connection as a
// lost one is dropped. Either way the pending leases are answered (not ok) at once, Redis counts
// as down and a new connection is tried after a backoff (100 ms, doubling to 2 s). A new
// connection counts as up only once Redis answers its PING: a server that accepts and stays
// silent is still down. An outage is logged once when it starts and once when it ends.
class RedisLeaseClient final : public filters::LeaseClient {
 public:
  static constexpr Duration kFirstReconnectDelay{100};
  static constexpr Duration kMaxReconnectDelay{2000};
  // Counts a dropped connection by reason: "connect" (refused or failed), "closed" (lost),
  // "timeout" (no reply within the timeout), "error" (an error reply such as NOAUTH).
  using ErrorCounter = std::function<void(std::string_view reason)>;

  // `label` names the Redis in logs (never its password).
  RedisLeaseClient(Dispatcher& dispatcher, filters::RedisAddress address, Duration timeout,
                   std::string label, ErrorCounter count_error = {});
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
  static void onPong(redisAsyncContext* context, void* reply, void* privdata);
  static void onReply(redisAsyncContext* context, void* reply, void* privdata);

  void connect();
  void send(std::unique_ptr<Pending> pending, bool with_script);
  void answerLater(std::unique_ptr<Pending> pending);
  // A command that expects a reply was queued / its reply (or its failure) came.
  void sent();
  void replied(const redisAsyncContext* context);
  void onDeadline();
  // This side gives the connection up (a timeout, an error reply) and frees it.
  void abandon(std::string_view reason, const std::string& why);
  // The connection is gone (context_ already cleared): down, counted, reconnect scheduled.
  void lost(std::string_view reason, const std::string& why);
  void markUp();
  void markDown(const std::string& why);

  Dispatcher& dispatcher_;
  filters::RedisAddress address_;
  Duration timeout_;
  std::string label_;
  ErrorCounter count_error_;
  redisAsyncContext* context_ = nullptr;
  bool down_ = false;
  bool closing_ = false;  // in the destructor: pending callbacks are dropped, not run
  // When each command still owed a reply on context_ was sent, oldest first: Redis answers in
  // order, so only the oldest can be late.
  std::deque<std::chrono::steady_clock::time_point> waiting_;
  Duration reconnect_delay_ = kFirstReconnectDelay;
  Timer deadline_;
  Timer reconnect_;
};

// A worker's Redis-backed stores, one per (url, redis_failure, redis_timeout), made on first use
// and living as long as the worker's loop runs.
class WorkerSharedStores final : public filters::SharedStores {
 public:
  // `stats` (may be null) counts the stores' Redis errors.
  WorkerSharedStores(Dispatcher& dispatcher, WorkerStats* stats)
      : dispatcher_(dispatcher), stats_(stats) {}
  filters::BucketStore& redis(const filters::RedisStoreOptions& options) override;

 private:
  Dispatcher& dispatcher_;
  WorkerStats* stats_;
  std::map<std::tuple<std::string, filters::RedisFailure, Duration>,
           std::unique_ptr<filters::LeasedBucketStore>>
      stores_;
};

}  // namespace wsb::proxy
