// RedisLeaseClient: EVALSHA of the lease script over hiredis' libevent adapter; reconnects with a
// timer, never blocking the loop (the host is resolved when the config loads).
#include "proxy/redis_leases.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <iterator>

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
                                   std::string label)
    : dispatcher_(dispatcher),
      address_(std::move(address)),
      label_(std::move(label)),
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
    markDown(context ? context->errstr : "out of memory");
    if (context != nullptr) redisAsyncFree(context);
    reconnect_.arm(kReconnectDelay);
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
}

void RedisLeaseClient::onConnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisLeaseClient*>(context->data);
  if (self->closing_) return;
  if (status != REDIS_OK) {
    self->context_ = nullptr;  // hiredis frees it after this callback
    self->markDown(context->errstr);
    self->reconnect_.arm(kReconnectDelay);
    return;
  }
  if (self->down_) spdlog::info("{}: connected again; shared rate limits apply", self->label_);
  self->down_ = false;
}

void RedisLeaseClient::onDisconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisLeaseClient*>(context->data);
  if (self->closing_) return;
  self->context_ = nullptr;
  self->markDown(status == REDIS_OK ? std::string("disconnected") : context->errstr);
  self->reconnect_.arm(kReconnectDelay);
}

void RedisLeaseClient::markDown(const std::string& why) {
  if (!down_)
    spdlog::warn("{}: unreachable ({}); rate limits follow redis_failure until it is back", label_,
                 why);
  down_ = true;
}

void RedisLeaseClient::lease(std::string_view key, const filters::BucketLimit& limit, double want,
                             std::function<void(const filters::LeaseReply&)> done) {
  auto pending = std::make_unique<Pending>(
      Pending{this, std::string(kKeyPrefix) + std::string(key), limit, want, std::move(done)});
  if (context_ == nullptr) {
    // Between connections: answer on the next loop iteration, as Redis would.
    dispatcher_.post([p = std::shared_ptr<Pending>(std::move(pending))] { p->done({}); });
    return;
  }
  send(std::move(pending), false);
}

void RedisLeaseClient::send(std::unique_ptr<Pending> pending, bool with_script) {
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
    std::unique_ptr<Pending> failed(raw);
    dispatcher_.post([p = std::shared_ptr<Pending>(std::move(failed))] { p->done({}); });
  }
}

void RedisLeaseClient::onReply(redisAsyncContext* context, void* reply_ptr, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  RedisLeaseClient* self = pending->client;
  if (self->closing_) return;
  auto* reply = static_cast<redisReply*>(reply_ptr);
  filters::LeaseReply out;
  if (reply == nullptr) {
    self->markDown(context->errstr[0] ? context->errstr : "connection lost");
  } else if (reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str).starts_with("NOSCRIPT")) {
    self->send(std::move(pending), true);  // EVAL also caches the script for the next EVALSHA
    return;
  } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[0]->type == REDIS_REPLY_INTEGER &&
             reply->element[1]->type == REDIS_REPLY_INTEGER) {
    out.ok = true;
    out.granted = static_cast<double>(reply->element[0]->integer);
    out.retry_after = Duration(reply->element[1]->integer);
  } else {
    // NOAUTH, a read-only replica, OOM ...: treated as an outage until a new connection works.
    self->markDown(reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    redisAsyncDisconnect(context);
  }
  pending->done(out);
}

filters::BucketStore& WorkerSharedStores::redis(const filters::RedisStoreOptions& options) {
  auto& store = stores_[{options.url, options.failure}];
  if (!store) {
    std::string label = "rate_limit Redis " + options.address.host + ":" +
                        std::to_string(options.address.port) + "/" +
                        std::to_string(options.address.db);
    store = std::make_unique<filters::LeasedBucketStore>(
        std::make_unique<RedisLeaseClient>(dispatcher_, options.address, std::move(label)),
        options.failure, filters::LocalBucketStore::shared());
  }
  return *store;
}

}  // namespace wsb::proxy
