// Origin filter: pattern parsing, matching rules, handshake decisions, config errors.
#include "filters/origin.h"

#include <catch2/catch.hpp>

#include "tests/filters/fake_callbacks.h"

namespace wsb::filters {
namespace {

using namespace testing;
using Calls = std::vector<std::string>;

bool matches(std::string_view pattern, std::string_view origin) {
  std::optional<OriginPattern> p = parseOriginPattern(pattern);
  REQUIRE(p.has_value());
  return originMatches(*p, origin);
}

TEST_CASE("origin exact pattern with scheme matches only that scheme, host and default port") {
  CHECK(matches("https://app.example.com", "https://app.example.com"));
  CHECK(matches("https://app.example.com", "HTTPS://App.Example.COM"));
  CHECK(matches("https://app.example.com", "https://app.example.com:443"));
  CHECK_FALSE(matches("https://app.example.com", "http://app.example.com"));
  CHECK_FALSE(matches("https://app.example.com", "https://app.example.com:8443"));
  CHECK_FALSE(matches("https://app.example.com", "https://evil.app.example.com"));
  CHECK_FALSE(matches("https://app.example.com", "https://app.example.com.evil.net"));
  CHECK_FALSE(matches("https://app.example.com", "https://app.example.com/"));
}

TEST_CASE("origin pattern without scheme matches any scheme") {
  CHECK(matches("app.example.com", "https://app.example.com"));
  CHECK(matches("app.example.com", "http://app.example.com"));
  CHECK_FALSE(matches("app.example.com", "http://app.example.com:8080"));
}

TEST_CASE("origin pattern with a port matches that port only") {
  CHECK(matches("http://localhost:3000", "http://localhost:3000"));
  CHECK_FALSE(matches("http://localhost:3000", "http://localhost"));
  CHECK_FALSE(matches("http://localhost:3000", "http://localhost:3001"));
  CHECK(matches("https://example.com:443", "https://example.com"));
  CHECK(matches("http://[::1]:8080", "http://[::1]:8080"));
}

TEST_CASE("origin wildcard matches subdomains at any depth but not the apex") {
  CHECK(matches("*.example.com", "https://sub.example.com"));
  CHECK(matches("*.example.com", "http://a.b.example.com"));
  CHECK_FALSE(matches("*.example.com", "https://example.com"));
  CHECK_FALSE(matches("*.example.com", "https://evilexample.com"));
  CHECK_FALSE(matches("*.example.com", "https://example.com.evil.net"));
  CHECK(matches("https://*.example.com", "https://x.example.com"));
  CHECK_FALSE(matches("https://*.example.com", "http://x.example.com"));
}

TEST_CASE("origin star matches anything, even null") {
  CHECK(matches("*", "https://anything.test"));
  CHECK(matches("*", "null"));
  CHECK_FALSE(matches("*.example.com", "null"));
  CHECK_FALSE(matches("example.com", "null"));
}

TEST_CASE("origin invalid patterns are refused") {
  for (const char* bad : {"", "*.", "*..com", "*example.com", "https://", "https://a.com/",
                          "a.com:0", "a.com:70000", "a.com:", "example.com.", "://a.com",
                          "1http://a.com", "https://*", "*.[::1]", "a b.com", "[zz]"}) {
    INFO(bad);
    CHECK_FALSE(parseOriginPattern(bad).has_value());
  }
}

FactoryPtr build(std::string_view body, std::vector<std::string>* errors) {
  return buildOriginFactory(specFrom(body), errors);
}

FactoryPtr build(std::string_view body) {
  std::vector<std::string> errors;
  FactoryPtr factory = build(body, &errors);
  INFO((errors.empty() ? "" : errors[0]));
  REQUIRE(factory != nullptr);
  return factory;
}

TEST_CASE("origin filter passes allowed origins and refuses others with 403") {
  FactoryPtr factory =
      build("type = 'origin'\nallow = ['https://app.example.com', '*.example.com']\n");
  for (const char* ok : {"https://app.example.com", "https://sub.example.com"}) {
    FakeCallbacks cb;
    Handshake hs;
    hs.header("Origin", ok);
    HandshakeContext context = hs.context();
    CHECK(factory->create(cb)->onHandshake(context) == Status::Continue);
    CHECK(cb.take().empty());
  }
  FakeCallbacks cb;
  Handshake hs;
  hs.header("origin", "https://example.com");
  HandshakeContext context = hs.context();
  CHECK(factory->create(cb)->onHandshake(context) == Status::Stop);
  CHECK(cb.take() == Calls{"reject 403 origin not allowed"});
}

TEST_CASE("origin filter lets clients without Origin pass unless required") {
  {
    FakeCallbacks cb;
    Handshake hs;
    HandshakeContext context = hs.context();
    auto filter = build("type = 'origin'\nallow = ['https://app.example.com']\n")->create(cb);
    CHECK(filter->onHandshake(context) == Status::Continue);
    CHECK(cb.take().empty());
  }
  FakeCallbacks cb;
  Handshake hs;
  HandshakeContext context = hs.context();
  auto filter =
      build("type = 'origin'\nallow = ['https://app.example.com']\nrequire = true\n")->create(cb);
  CHECK(filter->onHandshake(context) == Status::Stop);
  CHECK(cb.take() == Calls{"reject 403 origin not allowed"});
}

TEST_CASE("origin config errors carry line and column") {
  std::vector<std::string> errors;
  CHECK(build("type = 'origin'\nallow = ['https://ok.com', 'https://bad.com/']\nrequire = 1\n",
              &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:3:28: 'https://bad.com/' is not an origin pattern (such as "
                      "\"https://app.example.com\", \"*.example.com\" or \"*\")",
                      "test.toml:4:11: 'require' must be true or false"});
  errors.clear();
  CHECK(build("type = 'origin'\n", &errors) == nullptr);
  CHECK(errors ==
        std::vector<std::string>{"test.toml:1:1: missing required key 'allow' in [filter.test]"});
}

}  // namespace
}  // namespace wsb::filters
