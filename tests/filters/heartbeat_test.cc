// Heartbeat filter: ping schedule, pong deadlines per side, text ping/pong, idle timeout, config.
#include "filters/heartbeat.h"

#include <catch2/catch.hpp>

#include "tests/filters/fake_callbacks.h"

namespace wsb::filters {
namespace {

using namespace testing;
using Calls = std::vector<std::string>;

FactoryPtr build(std::string_view body, std::vector<std::string>* errors) {
  return buildHeartbeatFactory(specFrom(body), errors);
}

FactoryPtr build(std::string_view body) {
  std::vector<std::string> errors;
  FactoryPtr factory = build(body, &errors);
  INFO((errors.empty() ? "" : errors[0]));
  REQUIRE(factory != nullptr);
  return factory;
}

TEST_CASE("heartbeat pings both sides every interval while they answer") {
  FakeCallbacks cb;
  auto filter =
      build("type = 'heartbeat'\nping_interval = '10s'\nping_timeout = '5s'\n")->create(cb);
  filter->onEstablished();
  cb.advance(9999ms);
  CHECK(cb.take().empty());
  cb.advance(1ms);
  CHECK(cb.take() == Calls{"ping client", "ping upstream"});
  filter->onPong(Side::Client);
  filter->onPong(Side::Upstream);
  cb.advance(10s);
  CHECK(cb.take() == Calls{"ping client", "ping upstream"});
  filter->onPong(Side::Client);
  filter->onPong(Side::Upstream);
  for (int i = 0; i < 6; ++i) {
    cb.advance(10s);
    CHECK(cb.take() == Calls{"ping client", "ping upstream"});
    filter->onPong(Side::Client);
    filter->onPong(Side::Upstream);
  }
  CHECK(cb.closings.empty());
}

TEST_CASE("heartbeat closes 1001 when the client misses its pong deadline") {
  FakeCallbacks cb;
  auto filter =
      build("type = 'heartbeat'\nping_interval = '10s'\nping_timeout = '5s'\n")->create(cb);
  filter->onEstablished();
  cb.advance(10s);
  CHECK(cb.take() == Calls{"ping client", "ping upstream"});
  filter->onPong(Side::Upstream);
  cb.advance(4999ms);
  CHECK(cb.take().empty());
  cb.advance(1ms);
  CHECK(cb.take() == Calls{"close 1001 client ping timeout"});
  filter->onClose({1001, "client ping timeout", "wsbridge"});
  cb.advance(60s);
  CHECK(cb.take().empty());
  CHECK(cb.armedTimers() == 0);
}

TEST_CASE("heartbeat owes no pong deadline to a side it could not ping") {
  // Translate down's Engine.IO client: no WebSocket to ping, Engine.IO's heartbeat watches it.
  FakeCallbacks cb;
  cb.pingable = false;
  auto filter =
      build("type = 'heartbeat'\nping_interval = '10s'\nping_timeout = '5s'\n")->create(cb);
  filter->onEstablished();
  for (int i = 0; i < 5; ++i) {
    cb.advance(10s);
    CHECK(cb.take() == Calls{"ping client", "ping upstream"});
  }
  CHECK(cb.closings.empty());
}

TEST_CASE("heartbeat closes 1011 toward the client when the upstream misses its pong") {
  FakeCallbacks cb;
  auto filter =
      build("type = 'heartbeat'\nping_interval = '10s'\nping_timeout = '5s'\n")->create(cb);
  filter->onEstablished();
  cb.advance(10s);
  filter->onPong(Side::Client);
  cb.advance(5s);
  CHECK(cb.take() == Calls{"ping client", "ping upstream", "close 1011 upstream ping timeout"});
}

TEST_CASE("heartbeat never extends a deadline by pinging a side that still owes a pong") {
  FakeCallbacks cb;
  auto filter =
      build("type = 'heartbeat'\nping_interval = '10s'\nping_timeout = '25s'\n")->create(cb);
  filter->onEstablished();
  cb.advance(10s);
  CHECK(cb.take() == Calls{"ping client", "ping upstream"});
  filter->onPong(Side::Upstream);
  cb.advance(10s);  // t=20s: only the upstream answered, so only it is pinged again
  CHECK(cb.take() == Calls{"ping upstream"});
  filter->onPong(Side::Upstream);
  cb.advance(10s);  // t=30s
  CHECK(cb.take() == Calls{"ping upstream"});
  filter->onPong(Side::Upstream);
  cb.advance(4999ms);
  CHECK(cb.take().empty());
  cb.advance(1ms);  // t=35s = first client ping + 25s
  CHECK(cb.take() == Calls{"close 1001 client ping timeout"});
}

TEST_CASE("heartbeat answers a client text ping itself and never forwards it") {
  FakeCallbacks cb;
  auto filter = build("type = 'heartbeat'\nping_interval = 0\ntext_ping = 'ping'\n")->create(cb);
  filter->onEstablished();
  Message ping = textMessage(Direction::ToUpstream, "ping");
  CHECK(filter->onMessage(ping) == Status::Drop);
  CHECK(cb.take() == Calls{"notify client pong"});

  Message other = textMessage(Direction::ToUpstream, "ping!");
  CHECK(filter->onMessage(other) == Status::Continue);
  Message from_upstream = textMessage(Direction::ToClient, "ping");
  CHECK(filter->onMessage(from_upstream) == Status::Continue);
  Message binary{Direction::ToUpstream, ws::Opcode::Binary, "ping"};
  CHECK(filter->onMessage(binary) == Status::Continue);
  CHECK(cb.take().empty());
  CHECK(cb.armedTimers() == 0);
}

TEST_CASE("heartbeat text pong is configurable") {
  FakeCallbacks cb;
  auto filter = build("type = 'heartbeat'\ntext_ping = '2'\ntext_pong = '3'\n")->create(cb);
  Message ping = textMessage(Direction::ToUpstream, "2");
  CHECK(filter->onMessage(ping) == Status::Drop);
  CHECK(cb.take() == Calls{"notify client 3"});
}

TEST_CASE("heartbeat forwards text pings when text_ping is unset") {
  FakeCallbacks cb;
  auto filter = build("type = 'heartbeat'\n")->create(cb);
  Message ping = textMessage(Direction::ToUpstream, "ping");
  CHECK(filter->onMessage(ping) == Status::Continue);
  CHECK(cb.take().empty());
}

TEST_CASE("heartbeat idle timeout closes 1001 after no message either way") {
  FakeCallbacks cb;
  auto filter = build("type = 'heartbeat'\nping_interval = 0\nidle_timeout = '30s'\n")->create(cb);
  filter->onEstablished();
  cb.advance(20s);
  Message in = textMessage(Direction::ToUpstream, "hello");
  CHECK(filter->onMessage(in) == Status::Continue);
  cb.advance(20s);
  Event out = event(Direction::ToClient, "news");
  CHECK(filter->onEvent(out) == Status::Continue);
  cb.advance(29999ms);
  CHECK(cb.take().empty());
  cb.advance(1ms);
  CHECK(cb.take() == Calls{"close 1001 idle timeout"});
}

TEST_CASE("heartbeat pongs do not count as activity for the idle timeout") {
  FakeCallbacks cb;
  auto filter = build(
                    "type = 'heartbeat'\nping_interval = '10s'\nping_timeout = '5s'\n"
                    "idle_timeout = '25s'\n")
                    ->create(cb);
  filter->onEstablished();
  cb.advance(10s);
  filter->onPong(Side::Client);
  filter->onPong(Side::Upstream);
  cb.advance(10s);
  filter->onPong(Side::Client);
  filter->onPong(Side::Upstream);
  cb.advance(5s);
  CHECK(cb.take() == Calls{"ping client", "ping upstream", "ping client", "ping upstream",
                           "close 1001 idle timeout"});
}

TEST_CASE("heartbeat with everything off creates no timer") {
  FakeCallbacks cb;
  auto filter = build("type = 'heartbeat'\nping_interval = 0\n")->create(cb);
  filter->onEstablished();
  cb.advance(1h);
  CHECK(cb.take().empty());
  CHECK(cb.armedTimers() == 0);
}

TEST_CASE("heartbeat factory exposes its settings for Engine.IO sides") {
  FactoryPtr factory = build(
      "type = 'heartbeat'\nping_interval = '5s'\nping_timeout = '3s'\ntext_ping = 'ping'\n"
      "idle_timeout = '1m'\n");
  const HeartbeatSettings* s = heartbeatSettings(*factory);
  REQUIRE(s != nullptr);
  CHECK(s->ping_interval == 5000ms);
  CHECK(s->ping_timeout == 3000ms);
  CHECK(s->text_ping == "ping");
  CHECK(s->text_pong == "pong");
  CHECK(s->idle_timeout == 60000ms);
}

TEST_CASE("heartbeat defaults follow DESIGN") {
  FactoryPtr factory = build("type = 'heartbeat'\n");
  const HeartbeatSettings* s = heartbeatSettings(*factory);
  REQUIRE(s != nullptr);
  CHECK(s->ping_interval == 25000ms);
  CHECK(s->ping_timeout == 20000ms);
  CHECK(s->text_ping.empty());
  CHECK(s->idle_timeout == 0ms);
}

TEST_CASE("heartbeat config errors carry line and column") {
  std::vector<std::string> errors;
  CHECK(build("type = 'heartbeat'\nping_interval = 'soon'\nping_tmeout = '1s'\n", &errors) ==
        nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:3:17: 'ping_interval' must be a duration such as \"250ms\", "
                      "\"30s\" or \"5m\", not 'soon'",
                      "test.toml:4:1: unknown key 'ping_tmeout' in [filter.test] (did you mean "
                      "'ping_timeout'?)"});
  errors.clear();
  CHECK(build("type = 'heartbeat'\ntext_pong = 'pong'\nping_timeout = 0\n", &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:4:16: 'ping_timeout' must be more than 0 when pings are on",
                      "test.toml:3:13: 'text_pong' needs 'text_ping'"});
}

}  // namespace
}  // namespace wsb::filters
