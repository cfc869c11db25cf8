// Limits filter: message sizes per direction, header size, connection counts, config errors.
#include "filters/limits.h"

#include <catch2/catch.hpp>

#include "tests/filters/fake_callbacks.h"

namespace wsb::filters {
namespace {

using namespace testing;
using Calls = std::vector<std::string>;

FactoryPtr build(std::string_view body, std::vector<std::string>* errors,
                 std::string name = "test") {
  return buildLimitsFactory(specFrom(body, name), errors);
}

FactoryPtr build(std::string_view body, std::string name = "test") {
  std::vector<std::string> errors;
  FactoryPtr factory = build(body, &errors, std::move(name));
  INFO((errors.empty() ? "" : errors[0]));
  REQUIRE(factory != nullptr);
  return factory;
}

const ConnectionCounts& countsOf(const FactoryPtr& factory) {
  return dynamic_cast<const LimitsFactory&>(*factory).counts();
}

// A connection through the filter: its callbacks, handshake and filter.
struct Connection {
  explicit Connection(const FactoryPtr& factory, std::string ip = "192.0.2.7")
      : filter(factory->create(cb)) {
    hs.client_ip = std::move(ip);
  }
  Status handshake() {
    HandshakeContext context = hs.context();
    return filter->onHandshake(context);
  }
  FakeCallbacks cb;
  Handshake hs;
  std::unique_ptr<Filter> filter;
};

TEST_CASE("limits closes 1009 on a message one byte over max_message") {
  FakeCallbacks cb;
  auto filter = build("type = 'limits'\nmax_message = 4\n")->create(cb);
  Message fits = textMessage(Direction::ToUpstream, "abcd");
  CHECK(filter->onMessage(fits) == Status::Continue);
  Message out = textMessage(Direction::ToClient, "abcd");
  CHECK(filter->onMessage(out) == Status::Continue);
  CHECK(cb.take().empty());
  Message over = textMessage(Direction::ToClient, "abcde");
  CHECK(filter->onMessage(over) == Status::Drop);
  CHECK(cb.take() == Calls{"close 1009 message too big"});
}

TEST_CASE("limits applies max_message_in and max_message_out per direction") {
  FakeCallbacks cb;
  auto filter = build("type = 'limits'\nmax_message = '1KiB'\nmax_message_in = 2\n")->create(cb);
  Message out = textMessage(Direction::ToClient, std::string(1024, 'x'));
  CHECK(filter->onMessage(out) == Status::Continue);
  Message in = textMessage(Direction::ToUpstream, "abc");
  CHECK(filter->onMessage(in) == Status::Drop);
  CHECK(cb.take() == Calls{"close 1009 message too big"});

  FakeCallbacks cb2;
  auto events = build("type = 'limits'\nmax_message_out = 10\n")->create(cb2);
  Event big_in = event(Direction::ToUpstream, "up", {}, 1 << 20);
  CHECK(events->onEvent(big_in) == Status::Continue);
  Event ok = event(Direction::ToClient, "down", {}, 10);
  CHECK(events->onEvent(ok) == Status::Continue);
  Event big_out = event(Direction::ToClient, "down", {}, 11);
  CHECK(events->onEvent(big_out) == Status::Drop);
  CHECK(cb2.take() == Calls{"close 1009 message too big"});
}

TEST_CASE("limits refuses the connection over max_connections with 503 until one closes") {
  FactoryPtr factory = build("type = 'limits'\nmax_connections = 2\n", "total");
  auto a = std::make_unique<Connection>(factory, "10.0.0.1");
  auto b = std::make_unique<Connection>(factory, "10.0.0.2");
  Connection c(factory, "10.0.0.3");
  CHECK(a->handshake() == Status::Continue);
  CHECK(b->handshake() == Status::Continue);
  CHECK(c.handshake() == Status::Stop);
  CHECK(c.cb.take() == Calls{"reject 503 too many connections"});
  CHECK(countsOf(factory).total == 2);

  a->filter->onClose({1000, "", "client"});
  CHECK(countsOf(factory).total == 1);
  a.reset();  // the destructor after onClose must not release again
  CHECK(countsOf(factory).total == 1);
  b.reset();  // a destructor without onClose releases
  CHECK(countsOf(factory).total == 0);

  Connection d(factory);
  CHECK(d.handshake() == Status::Continue);
}

TEST_CASE("limits refuses a fourth connection from one address with 429 and Retry-After") {
  FactoryPtr factory =
      build("type = 'limits'\nmax_connections_per_ip = 3\nmax_connections = 10\n", "per_ip");
  std::vector<std::unique_ptr<Connection>> same;
  for (int i = 0; i < 3; ++i) {
    same.push_back(std::make_unique<Connection>(factory, "198.51.100.1"));
    CHECK(same.back()->handshake() == Status::Continue);
  }
  Connection fourth(factory, "198.51.100.1");
  CHECK(fourth.handshake() == Status::Stop);
  CHECK(fourth.cb.take() ==
        Calls{"reject 429 too many connections from this address [Retry-After: 1]"});
  CHECK(countsOf(factory).total == 3);  // the refused one gave its total slot back

  Connection other(factory, "198.51.100.2");
  CHECK(other.handshake() == Status::Continue);

  same[0]->filter->onClose({1000, "", "client"});
  Connection again(factory, "198.51.100.1");
  CHECK(again.handshake() == Status::Continue);
  same.clear();
  CHECK(countsOf(factory).per_ip.size() == 2);
}

TEST_CASE("limits counts survive a reload of the same table") {
  FactoryPtr before = build("type = 'limits'\nmax_connections = 1\n", "reloaded");
  Connection live(before);
  CHECK(live.handshake() == Status::Continue);
  FactoryPtr after = build("type = 'limits'\nmax_connections = 1\n", "reloaded");
  before.reset();
  Connection next(after);
  CHECK(next.handshake() == Status::Stop);
  CHECK(next.cb.take() == Calls{"reject 503 too many connections"});
  live.filter.reset();
  Connection last(after);
  CHECK(last.handshake() == Status::Continue);
}

TEST_CASE("limits refuses request headers over max_header_bytes with 431") {
  FactoryPtr factory = build("type = 'limits'\nmax_header_bytes = 64\n");
  // "GET /chat HTTP/1.1\r\n" (20) + "Host: a\r\n" (9) + "\r\n" (2) = 31 bytes.
  Connection small(factory);
  small.hs.header("Host", "a");
  CHECK(small.handshake() == Status::Continue);
  Connection exact(factory);
  exact.hs.header("Host", "a").header("X-Pad", std::string(24, 'p'));  // 31 + 33 = 64
  CHECK(exact.handshake() == Status::Continue);
  Connection big(factory);
  big.hs.header("Host", "a").header("X-Pad", std::string(25, 'p'));
  CHECK(big.handshake() == Status::Stop);
  CHECK(big.cb.take() == Calls{"reject 431 request header fields too large"});
}

TEST_CASE("limits exposes its settings, including handshake_timeout for the proxy") {
  FactoryPtr factory = build(
      "type = 'limits'\nmax_message = '1MiB'\nmax_connections_per_ip = 100\n"
      "max_connections = 10000\nhandshake_timeout = '10s'\n");
  const LimitsSettings* s = limitsSettings(*factory);
  REQUIRE(s != nullptr);
  CHECK(s->max_message_in == 1048576);
  CHECK(s->max_message_out == 1048576);
  CHECK(s->max_connections_per_ip == 100);
  CHECK(s->max_connections == 10000);
  CHECK(s->handshake_timeout == std::chrono::milliseconds(10000));
}

TEST_CASE("limits config errors carry line and column") {
  std::vector<std::string> errors;
  CHECK(build("type = 'limits'\nmax_message = '1 lightyear'\nmax_connections_per_ip = -1\n"
              "max_connections = 'many'\n",
              &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:3:15: 'max_message' must be a size such as 65536, \"64KiB\" or "
                      "\"1MiB\", not '1 lightyear'",
                      "test.toml:4:26: 'max_connections_per_ip' must be between 0 and "
                      "4294967295",
                      "test.toml:5:19: 'max_connections' must be an integer"});
}

}  // namespace
}  // namespace wsb::filters
