// Event ACL filter: allow and deny lists per direction, ack errors, close action, config errors.
#include "filters/event_acl.h"

#include <catch2/catch.hpp>

#include "tests/filters/fake_callbacks.h"

namespace wsb::filters {
namespace {

using namespace testing;
using Calls = std::vector<std::string>;

FactoryPtr build(std::string_view body, std::vector<std::string>* errors) {
  return buildEventAclFactory(specFrom(body), errors);
}

FactoryPtr build(std::string_view body) {
  std::vector<std::string> errors;
  FactoryPtr factory = build(body, &errors);
  INFO((errors.empty() ? "" : errors[0]));
  REQUIRE(factory != nullptr);
  return factory;
}

TEST_CASE("event_acl passes only allowed events from the client") {
  FakeCallbacks cb;
  auto filter = build("type = 'event_acl'\nallow_in = ['join', 'chat']\n")->create(cb);
  Event chat = event(Direction::ToUpstream, "chat");
  CHECK(filter->onEvent(chat) == Status::Continue);
  Event join = event(Direction::ToUpstream, "join", 3);
  CHECK(filter->onEvent(join) == Status::Continue);
  Event out = event(Direction::ToClient, "anything");
  CHECK(filter->onEvent(out) == Status::Continue);
  CHECK(cb.take().empty());

  Event admin = event(Direction::ToUpstream, "admin");
  CHECK(filter->onEvent(admin) == Status::Drop);
  CHECK(cb.take().empty());  // no ack asked: dropped without a word
  Event asked = event(Direction::ToUpstream, "admin", 7);
  CHECK(filter->onEvent(asked) == Status::Drop);
  CHECK(cb.take() == Calls{R"(ack client admin 7 [{"error":"forbidden"}])"});
}

TEST_CASE("event_acl deny_out drops listed events toward the client and acks the upstream") {
  FakeCallbacks cb;
  auto filter = build("type = 'event_acl'\ndeny_out = ['internal']\n")->create(cb);
  Event news = event(Direction::ToClient, "news");
  CHECK(filter->onEvent(news) == Status::Continue);
  Event internal_in = event(Direction::ToUpstream, "internal");
  CHECK(filter->onEvent(internal_in) == Status::Continue);
  Event internal = event(Direction::ToClient, "internal", 0);
  CHECK(filter->onEvent(internal) == Status::Drop);
  CHECK(cb.take() == Calls{R"(ack upstream internal 0 [{"error":"forbidden"}])"});
}

TEST_CASE("event_acl names match exactly") {
  FakeCallbacks cb;
  auto filter = build("type = 'event_acl'\nallow_in = ['chat']\n")->create(cb);
  for (const char* name : {"Chat", "chat ", "cha", "chats", ""}) {
    INFO(name);
    Event e = event(Direction::ToUpstream, name);
    CHECK(filter->onEvent(e) == Status::Drop);
  }
}

TEST_CASE("event_acl with action close closes 1008 instead of acking") {
  FakeCallbacks cb;
  auto filter = build("type = 'event_acl'\ndeny_in = ['shutdown']\naction = 'close'\n")->create(cb);
  Event e = event(Direction::ToUpstream, "shutdown", 1);
  CHECK(filter->onEvent(e) == Status::Drop);
  CHECK(cb.take() == Calls{"close 1008 event not allowed"});
}

TEST_CASE("event_acl leaves raw messages alone") {
  FakeCallbacks cb;
  auto filter = build("type = 'event_acl'\nallow_in = []\n")->create(cb);
  Message m = textMessage(Direction::ToUpstream, R"({"event":"x"})");
  CHECK(filter->onMessage(m) == Status::Continue);
  Event e = event(Direction::ToUpstream, "x");
  CHECK(filter->onEvent(e) == Status::Drop);  // an empty allow list refuses every event
}

TEST_CASE("event_acl config errors carry line and column") {
  std::vector<std::string> errors;
  CHECK(build("type = 'event_acl'\nallow_in = ['a']\ndeny_in = ['b']\naction = 'ignore'\n"
              "allow_out = 'c'\n",
              &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:4:11: 'allow_in' and 'deny_in' exclude each other: use one of "
                      "them",
                      "test.toml:6:13: 'allow_out' must be an array of strings",
                      "test.toml:5:10: 'action' must be one of: drop, close"});
  errors.clear();
  CHECK(build("type = 'event_acl'\n", &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{"test.toml:1:1: [filter.test] needs one of "
                                           "'allow_in', 'deny_in', 'allow_out', 'deny_out'"});
}

}  // namespace
}  // namespace wsb::filters
