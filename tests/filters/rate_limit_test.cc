// Rate limit filter: exact notices at a known send rate, close and shape actions, byte buckets,
// every key kind, per-event overrides, directions, connect limits and config errors.
#include "filters/rate_limit.h"

#include <catch2/catch.hpp>

#include "tests/filters/fake_callbacks.h"

namespace wsb::filters {
namespace {

using namespace testing;
using Calls = std::vector<std::string>;

constexpr std::string_view kNotice =
    R"(notify client {"event":"rate-limit-exceeded","data":{"message":"too many messages"}})";

struct Limiter {
  explicit Limiter(std::string_view body) {
    std::vector<std::string> errors;
    factory = buildRateLimitFactory(specFrom(body, "limit"), &errors, store);
    INFO((errors.empty() ? "" : errors[0]));
    REQUIRE(factory != nullptr);
  }
  std::shared_ptr<LocalBucketStore> store = std::make_shared<LocalBucketStore>();
  FactoryPtr factory;
};

// One connection through the limiter, with its own callbacks and (shared) manual time.
struct Connection {
  Connection(const Limiter& limiter, std::string ip = "192.0.2.7") {
    hs.client_ip = std::move(ip);
    filter = limiter.factory->create(cb);
  }
  Status handshake() {
    HandshakeContext context = hs.context();
    return filter->onHandshake(context);
  }
  Status send(std::string_view text, Direction direction = Direction::ToUpstream) {
    Message m = textMessage(direction, text);
    return filter->onMessage(m);
  }
  Status emit(std::string_view name, size_t size = 10,
              Direction direction = Direction::ToUpstream) {
    Event e = event(direction, name, {}, size);
    return filter->onEvent(e);
  }
  FakeCallbacks cb;
  Handshake hs;
  std::unique_ptr<Filter> filter;
};

TEST_CASE("rate_limit at 5/s drops and notifies exactly the excess of 20 messages in 1 s") {
  Limiter limiter("type = 'rate_limit'\nmessages_per_second = 5\nburst = 5\n");
  Connection c(limiter);
  REQUIRE(c.handshake() == Status::Continue);
  std::string passed;
  for (int i = 0; i < 20; ++i) {
    if (i > 0) c.cb.advance(50ms);
    passed += c.send("m") == Status::Continue ? 'P' : 'd';
  }
  // Five at once, then one every 200 ms: 0 50 100 150 200 250 | 400 | 600 | 800.
  CHECK(passed == "PPPPPPddPdddPdddPddd");
  Calls notices = c.cb.take();
  CHECK(notices.size() == 11);
  CHECK(std::all_of(notices.begin(), notices.end(),
                    [](const std::string& n) { return n == kNotice; }));
}

TEST_CASE("rate_limit refill edge: one message 200 ms after the burst, not 199 ms") {
  Limiter limiter("type = 'rate_limit'\nmessages_per_second = 5\n");
  Connection c(limiter);
  for (int i = 0; i < 5; ++i) CHECK(c.send("m") == Status::Continue);
  CHECK(c.send("m") == Status::Drop);
  c.cb.advance(199ms);
  CHECK(c.send("m") == Status::Drop);
  c.cb.advance(1ms);
  CHECK(c.send("m") == Status::Continue);
}

TEST_CASE("rate_limit close action closes 1008") {
  Limiter limiter("type = 'rate_limit'\nmessages_per_second = 1\naction = 'close'\n");
  Connection c(limiter);
  CHECK(c.send("a") == Status::Continue);
  CHECK(c.send("b") == Status::Drop);
  CHECK(c.cb.take() == Calls{"close 1008 rate limit exceeded"});
}

TEST_CASE("rate_limit notice is configurable") {
  Limiter limiter("type = 'rate_limit'\nmessages_per_second = 1\nnotice = 'slow down'\n");
  Connection c(limiter);
  c.send("a");
  CHECK(c.send("b") == Status::Drop);
  CHECK(c.cb.take() == Calls{"notify client slow down"});
}

TEST_CASE("rate_limit shape passes everything and pauses the sender until tokens return") {
  Limiter limiter("type = 'rate_limit'\nmessages_per_second = 5\nburst = 2\naction = 'shape'\n");
  Connection c(limiter);
  CHECK(c.send("1") == Status::Continue);
  CHECK(c.send("2") == Status::Continue);
  CHECK(c.cb.take().empty());
  CHECK(c.send("3") == Status::Continue);
  CHECK(c.cb.take() == Calls{"pause client 200ms"});
  c.cb.advance(200ms);
  CHECK(c.send("4") == Status::Continue);
  CHECK(c.cb.take() == Calls{"pause client 200ms"});
  c.cb.advance(200ms);
  CHECK(c.send("5") == Status::Continue);
  CHECK(c.send("6") == Status::Continue);  // read before the pause took effect: more debt
  CHECK(c.cb.take() == Calls{"pause client 200ms", "pause client 400ms"});
}

TEST_CASE("rate_limit bytes bucket lets a big message pass when full, then waits for the debt") {
  Limiter limiter("type = 'rate_limit'\nbytes_per_second = 100\n");
  Connection c(limiter);
  CHECK(c.send(std::string(250, 'x')) == Status::Continue);
  CHECK(c.send("y") == Status::Drop);
  c.cb.advance(1500ms);  // 150 of the 150 owed: level 0, short of one byte
  CHECK(c.send("y") == Status::Drop);
  c.cb.advance(10ms);
  CHECK(c.send("y") == Status::Continue);
}

TEST_CASE("rate_limit by ip shares buckets between connections from one address") {
  Limiter limiter("type = 'rate_limit'\nkey = 'ip'\nmessages_per_second = 2\n");
  Connection a(limiter, "198.51.100.1");
  Connection b(limiter, "198.51.100.1");
  Connection other(limiter, "198.51.100.2");
  for (Connection* c : {&a, &b, &other}) REQUIRE(c->handshake() == Status::Continue);
  CHECK(a.send("1") == Status::Continue);
  CHECK(b.send("2") == Status::Continue);
  CHECK(a.send("3") == Status::Drop);
  CHECK(b.send("4") == Status::Drop);
  CHECK(other.send("5") == Status::Continue);
  CHECK(limiter.store->size() == 2);
}

TEST_CASE("rate_limit by jwt claim shares buckets per subject and falls back to the ip") {
  Limiter limiter("type = 'rate_limit'\nkey = 'jwt.sub'\nmessages_per_second = 1\n");
  Connection phone(limiter, "10.0.0.1");
  Connection laptop(limiter, "10.0.0.2");
  Connection anonymous(limiter, "10.0.0.1");
  phone.cb.attributes()["jwt.sub"] = "alice";
  laptop.cb.attributes()["jwt.sub"] = "alice";
  for (Connection* c : {&phone, &laptop, &anonymous}) REQUIRE(c->handshake() == Status::Continue);
  CHECK(phone.send("1") == Status::Continue);
  CHECK(laptop.send("2") == Status::Drop);
  CHECK(anonymous.send("3") == Status::Continue);  // keyed by 10.0.0.1, not by alice
  CHECK(anonymous.send("4") == Status::Drop);
}

TEST_CASE("rate_limit per-event overrides get buckets of their own") {
  Limiter limiter(
      "type = 'rate_limit'\nmessages_per_second = 2\n[filter.limit.events]\n"
      "chat = { messages_per_second = 1, burst = 1 }\naudio = { messages_per_second = 0 }\n");
  Connection c(limiter);
  CHECK(c.emit("chat") == Status::Continue);
  CHECK(c.emit("chat") == Status::Drop);
  CHECK(c.emit("move") == Status::Continue);
  CHECK(c.emit("join") == Status::Continue);
  CHECK(c.emit("move") == Status::Drop);
  CHECK(c.send("raw") == Status::Drop);  // raw messages share the default bucket
  for (int i = 0; i < 100; ++i) CHECK(c.emit("audio") == Status::Continue);  // exempt
}

TEST_CASE("rate_limit keyed by event gives each event name its own bucket") {
  Limiter limiter("type = 'rate_limit'\nkey = 'event'\nmessages_per_second = 1\n");
  Connection c(limiter);
  CHECK(c.emit("a") == Status::Continue);
  CHECK(c.emit("b") == Status::Continue);
  CHECK(c.emit("a") == Status::Drop);
  CHECK(c.emit("b") == Status::Drop);
}

TEST_CASE("rate_limit keyed by event caps the names a connection can make buckets for") {
  Limiter limiter("type = 'rate_limit'\nkey = 'event'\nmessages_per_second = 1\n");
  Connection c(limiter);
  for (int i = 0; i < 64; ++i) CHECK(c.emit("e" + std::to_string(i)) == Status::Continue);
  CHECK(c.emit("e64") == Status::Continue);  // the shared default bucket's one token
  CHECK(c.emit("e65") == Status::Drop);
  CHECK(c.emit("e0") == Status::Drop);
}

TEST_CASE("rate_limit counts the event, not also its raw message") {
  Limiter limiter("type = 'rate_limit'\nmessages_per_second = 1\n");
  Connection c(limiter);
  Message raw = textMessage(Direction::ToUpstream, R"({"event":"chat"})");
  raw.event_follows = true;
  CHECK(c.filter->onMessage(raw) == Status::Continue);
  CHECK(c.emit("chat") == Status::Continue);
  CHECK(c.filter->onMessage(raw) == Status::Continue);
  CHECK(c.emit("chat") == Status::Drop);
}

TEST_CASE("rate_limit limits the direction it is told to, and notifies the sender") {
  Limiter limiter("type = 'rate_limit'\nmessages_per_second = 1\ndirection = 'out'\n");
  Connection c(limiter);
  CHECK(c.send("in") == Status::Continue);
  CHECK(c.send("in") == Status::Continue);
  CHECK(c.send("out", Direction::ToClient) == Status::Continue);
  CHECK(c.send("out", Direction::ToClient) == Status::Drop);
  CHECK(c.cb.take() == Calls{"notify upstream " + std::string(kNotice.substr(14))});

  Limiter both("type = 'rate_limit'\nmessages_per_second = 1\ndirection = 'both'\n");
  Connection d(both);
  CHECK(d.send("in") == Status::Continue);
  CHECK(d.send("out", Direction::ToClient) == Status::Continue);  // buckets per direction
  CHECK(d.send("in") == Status::Drop);
  CHECK(d.send("out", Direction::ToClient) == Status::Drop);
}

TEST_CASE("rate_limit refuses connections over connections_per_second with 429 and Retry-After") {
  Limiter limiter("type = 'rate_limit'\nconnections_per_second = 0.5\nconnections_burst = 2\n");
  Connection a(limiter, "203.0.113.9");
  Connection b(limiter, "203.0.113.9");
  Connection c(limiter, "203.0.113.9");
  Connection elsewhere(limiter, "203.0.113.10");
  CHECK(a.handshake() == Status::Continue);
  CHECK(b.handshake() == Status::Continue);
  CHECK(c.handshake() == Status::Stop);
  CHECK(c.cb.take() == Calls{"reject 429 too many connections [Retry-After: 2]"});
  CHECK(elsewhere.handshake() == Status::Continue);
  Connection later(limiter, "203.0.113.9");
  later.cb.clock_.advance(2s);
  // The store's time comes from each connection's clock: this one is 2 s on.
  CHECK(later.handshake() == Status::Continue);
  // Messages are not limited by a connect-only table.
  CHECK(a.send("x") == Status::Continue);
  CHECK(a.send("x") == Status::Continue);
}

TEST_CASE("rate_limit config errors carry line and column") {
  std::vector<std::string> errors;
  auto build = [&](std::string_view body) {
    errors.clear();
    return buildRateLimitFactory(specFrom(body, "limit"), &errors);
  };
  CHECK(build("type = 'rate_limit'\nkey = 'user'\nmessages_per_second = -1\naction = 'drop'\n") ==
        nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:3:7: 'key' must be one of: connection, ip, event, jwt.<claim> "
                      "(such as jwt.sub)",
                      "test.toml:4:23: 'messages_per_second' must be at least 0",
                      "test.toml:5:10: 'action' must be one of: notify, close, shape",
                      "test.toml:1:1: [filter.limit] limits nothing: set messages_per_second, "
                      "bytes_per_second, connections_per_second or [filter.limit.events]"});
  CHECK(build("type = 'rate_limit'\nmessages_per_second = 5\nburst = 0.5\n"
              "[filter.limit.events]\nchat = { messages_per_secnd = 5 }\naudio = 5\n") == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:4:9: 'burst' must be at least 1",
                      "test.toml:7:9: 'events.audio' must be a table such as { "
                      "messages_per_second = 5, burst = 5 }",
                      "test.toml:6:10: unknown key 'messages_per_secnd' in "
                      "[filter.limit.events.chat] (did you mean 'messages_per_second'?)"});
}

}  // namespace
}  // namespace wsb::filters
