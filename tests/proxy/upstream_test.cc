// forwardedHeaders: what of the client's request reaches the upstream.
#include "proxy/upstream.h"

#include <catch2/catch.hpp>

using wsb::http::Headers;
using wsb::http::Request;
using wsb::proxy::forwardedHeaders;

namespace {
std::vector<std::string> valuesOf(const Headers& headers, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& h : headers) {
    if (wsb::http::iequals(h.name, name)) out.push_back(h.value);
  }
  return out;
}

Request requestWith(Headers headers) {
  Request r;
  r.method = "GET";
  r.target = r.path = "/";
  r.headers = std::move(headers);
  return r;
}
}  // namespace

TEST_CASE("a client's header of a forwarded claim's name is dropped though the claim is absent") {
  Request req = requestWith({{"X-User-Id", "mallory"}, {"x-USER-id", "eve"}, {"X-App", "1"}});
  Headers out = forwardedHeaders(req, "10.0.0.1", false, {}, {"x-user-id"});
  CHECK(valuesOf(out, "x-user-id").empty());
  CHECK(valuesOf(out, "x-app") == std::vector<std::string>{"1"});
}

TEST_CASE("a forwarded claim reaches the upstream once, with the filter's value") {
  Request req = requestWith({{"X-User-Id", "mallory"}});
  Headers out = forwardedHeaders(req, "10.0.0.1", false, {{"x-user-id", "alice"}}, {"x-user-id"});
  CHECK(valuesOf(out, "x-user-id") == std::vector<std::string>{"alice"});
}

TEST_CASE("forwarded headers append the client to X-Forwarded-For and set the proto") {
  Request req = requestWith({{"X-Forwarded-For", "1.2.3.4"}, {"Connection", "Upgrade"}});
  Headers out = forwardedHeaders(req, "10.0.0.1", true, {}, {});
  CHECK(valuesOf(out, "x-forwarded-for") == std::vector<std::string>{"1.2.3.4, 10.0.0.1"});
  CHECK(valuesOf(out, "x-forwarded-proto") == std::vector<std::string>{"https"});
  CHECK(valuesOf(out, "connection").empty());
}
