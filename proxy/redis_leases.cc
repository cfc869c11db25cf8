// RedisLeaseClient: EVALSHA of the lease script over hiredis' libevent adapter, a deadline on
// every command, reconnects with a backoff timer; never blocking the loop (the host is resolved
// when the config loads).
#include "proxy/redis_leases.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <utility>

#include "proxy/stats.h"

namespace wsb::proxy {

namespace {

// KEYS[1]: the bucket (a hash: tokens "t", last refill "at" in microseconds of Redis' clock).
// ARGV: rate per second, burst, tokens wanted. Returns {granted, ms until a whole token}.
// Redis' own TIME refills it, so instances with skewed clocks still share one bucket exactly.
constexpr const char* kLeaseScript = R"(
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local s = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens, at = tonumber(s[1]), tonumber(s[2])
if tokens == nil or at == nil then tokens, at = burst, now end
if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000000) end
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
local wait = 0
if tokens < 1 then wait = math.ceil((1 - tokens) * 1000 / rate) end
return {granted, wait}
)";

constexpr std::string_view kKeyPrefix = "wsbridge:rl:";

const std::string& scriptSha() {
  static const std::string sha = [] {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(kLeaseScript), std::strlen(kLeaseScript), digest);
    std::string hex;
    char byte[3];
    for (unsigned char c : digest) {
      std::snprintf(byte, sizeof byte, "%02x", c);
      hex += byte;
    }
    return hex;
  }();
  return sha;
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

}  // namespace

struct RedisLeaseClient::Pending {
  RedisLeaseClient* client;
  std::string key;  // with the prefix
  filters::BucketLimit limit;
  double want;
  std::function<void(const filters::LeaseReply&)> done;
};

RedisLeaseClient::RedisLeaseClient(Dispatcher& dispatcher, filters::RedisAddress address,
                                   Duration timeout, std::string label, ErrorCounter count_error)
    : dispatcher_(dispatcher),
      address_(std::move(address)),
      timeout_(timeout),
      label_(std::move(label)),
      count_error_(std::move(count_error)),
      deadline_(dispatcher, [this] { onDeadline(); }),
      reconnect_(dispatcher, [this] { connect(); }) {
  connect();
}

RedisLeaseClient::~RedisLeaseClient() {
  closing_ = true;
  if (context_ != nullptr) redisAsyncFree(context_);
}

void RedisLeaseClient::connect() {
  redisAsyncContext* context = redisAsyncConnect(address_.host.c_str(), address_.port);
  if (context == nullptr || context->err) {
    std::string why = context ? context->errstr : "out of memory";
    if (context != nullptr) redisAsyncFree(context);
    lost("connect", why);
    return;
  }
  context->data = this;
  redisLibeventAttach(context, dispatcher_.base());
  redisAsyncSetConnectCallback(context, &RedisLeaseClient::onConnect);
  redisAsyncSetDisconnectCallback(context, &RedisLeaseClient::onDisconnect);
  context_ = context;
  // Queued ahead of every lease on this connection; a wrong password shows as NOAUTH there.
  if (!address_.password.empty())
    redisAsyncCommand(context_, nullptr, nullptr, "AUTH %s", address_.password.c_str());
  if (address_.db != 0) redisAsyncCommand(context_, nullptr, nullptr, "SELECT %d", address_.db);
  // Its deadline also bounds the connect; its answer is what makes the connection up.
  if (redisAsyncCommand(context_, &RedisLeaseClient::onPong, nullptr, "PING") == REDIS_OK) sent();
}

void RedisLeaseClient::onConnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisLeaseClient*>(context->data);
  if (self->closing_ || context != self->context_ || status == REDIS_OK) return;
  self->context_ = nullptr;  // hiredis frees it after this callback
  self->lost("connect", context->errstr);
}

void RedisLeaseClient::onDisconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisLeaseClient*>(context->data);
  // Not context_: this side dropped it (abandon), and has said why.
  if (self->closing_ || context != self->context_) return;
  self->context_ = nullptr;
  self->lost("closed", status == REDIS_OK ? std::string("disconnected") : context->errstr);
}

void RedisLeaseClient::onPong(redisAsyncContext* context, void* reply_ptr, void*) {
  auto* self = static_cast<RedisLeaseClient*>(context->data);
  if (self->closing_ || context != self->context_) return;
  self->replied(context);
  auto* reply = static_cast<redisReply*>(reply_ptr);
  if (reply == nullptr) return;  // the connection is going; onDisconnect says why
  if (reply->type == REDIS_REPLY_STATUS && std::string_view(reply->str) == "PONG") {
    self->markUp();
    return;
  }
  self->abandon("error", reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
}

void RedisLeaseClient::markUp() {
  if (down_) spdlog::info("{}: connected again; shared rate limits apply", label_);
  down_ = false;
  reconnect_delay_ = kFirstReconnectDelay;
}

void RedisLeaseClient::markDown(const std::string& why) {
  if (!down_)
    spdlog::warn("{}: unreachable ({}); rate limits follow redis_failure until it is back", label_,
                 why);
  down_ = true;
}

void RedisLeaseClient::sent() {
  waiting_.push_back(dispatcher_.now());
  if (!deadline_.armed()) deadline_.arm(timeout_);
}

void RedisLeaseClient::replied(const redisAsyncContext* context) {
  if (context != context_ || waiting_.empty()) return;
  waiting_.pop_front();
  deadline_.cancel();
  if (waiting_.empty()) return;
  auto left = waiting_.front() + timeout_ - dispatcher_.now();
  deadline_.arm(std::max(Duration{0}, std::chrono::ceil<Duration>(left)));
}

void RedisLeaseClient::onDeadline() {
  if (waiting_.empty()) return;
  auto left = waiting_.front() + timeout_ - dispatcher_.now();
  if (left > Duration{0}) {
    deadline_.arm(std::chrono::ceil<Duration>(left));
    return;
  }
  abandon("timeout", "no reply within " + std::to_string(timeout_.count()) + " ms");
}

void RedisLeaseClient::abandon(std::string_view reason, const std::string& why) {
  redisAsyncContext* context = std::exchange(context_, nullptr);
  lost(reason, why);
  // Runs the pending callbacks with no reply (so every lease is answered, not ok) now, or once
  // the hiredis callback on the stack returns.
  if (context != nullptr) redisAsyncFree(context);
}

void RedisLeaseClient::lost(std::string_view reason, const std::string& why) {
  waiting_.clear();
  deadline_.cancel();
  if (count_error_) count_error_(reason);
  markDown(why);
  reconnect_.arm(reconnect_delay_);
  reconnect_delay_ = std::min(reconnect_delay_ * 2, kMaxReconnectDelay);
}

void RedisLeaseClient::lease(std::string_view key, const filters::BucketLimit& limit, double want,
                             std::function<void(const filters::LeaseReply&)> done) {
  send(std::make_unique<Pending>(Pending{this, std::string(kKeyPrefix) + std::string(key), limit,
                                         want, std::move(done)}),
       false);
}

// Between connections, or refused by hiredis: answered on the next loop iteration, as Redis would.
void RedisLeaseClient::answerLater(std::unique_ptr<Pending> pending) {
  dispatcher_.post([p = std::shared_ptr<Pending>(std::move(pending))] { p->done({}); });
}

void RedisLeaseClient::send(std::unique_ptr<Pending> pending, bool with_script) {
  if (context_ == nullptr) {
    answerLater(std::move(pending));
    return;
  }
  std::string rate = number(pending->limit.rate), burst = number(pending->limit.burst),
              want = number(pending->want);
  const char* argv[] = {with_script ? "EVAL" : "EVALSHA",
                        with_script ? kLeaseScript : scriptSha().c_str(),
                        "1",
                        pending->key.c_str(),
                        rate.c_str(),
                        burst.c_str(),
                        want.c_str()};
  size_t lengths[std::size(argv)];
  for (size_t i = 0; i < std::size(argv); ++i) lengths[i] = std::strlen(argv[i]);
  Pending* raw = pending.release();
  if (redisAsyncCommandArgv(context_, &RedisLeaseClient::onReply, raw,
                            static_cast<int>(std::size(argv)), argv, lengths) != REDIS_OK) {
    answerLater(std::unique_ptr<Pending>(raw));
    return;
  }
  sent();
}

void RedisLeaseClient::onReply(redisAsyncContext* context, void* reply_ptr, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  RedisLeaseClient* self = pending->client;
  if (self->closing_) return;
  self->replied(context);
  auto* reply = static_cast<redisReply*>(reply_ptr);
  filters::LeaseReply out;
  if (reply == nullptr) {
    // The connection went (or was given up); whoever ended it has marked Redis down.
  } else if (reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str).starts_with("NOSCRIPT")) {
    self->send(std::move(pending), true);  // EVAL also caches the script for the next EVALSHA
    return;
  } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[0]->type == REDIS_REPLY_INTEGER &&
             reply->element[1]->type == REDIS_REPLY_INTEGER) {
    out.ok = true;
    out.granted = static_cast<double>(reply->element[0]->integer);
    out.retry_after = Duration(reply->element[1]->integer);
  } else if (context == self->context_) {
    // NOAUTH, a read-only replica, OOM, BUSY ...: an outage until a new connection works.
    self->abandon("error", reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
  }
  pending->done(out);
}

filters::BucketStore& WorkerSharedStores::redis(const filters::RedisStoreOptions& options) {
  auto& store = stores_[{options.url, options.failure, options.timeout}];
  if (!store) {
    std::string name = options.address.host + ":" + std::to_string(options.address.port) + "/" +
                       std::to_string(options.address.db);
    RedisLeaseClient::ErrorCounter count;
    if (stats_ != nullptr) {
      count = [stats = stats_, name](std::string_view reason) {
        stats->countRedisError(name, reason);
      };
    }
    store = std::make_unique<filters::LeasedBucketStore>(
        std::make_unique<RedisLeaseClient>(dispatcher_, options.address, options.timeout,
                                           "rate_limit Redis " + name, std::move(count)),
        options.failure, filters::LocalBucketStore::shared(), options.timeout);
  }
  return *store;
}

}  // namespace wsb::proxy
