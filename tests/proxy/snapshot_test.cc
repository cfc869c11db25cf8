// Route lookup and snapshot building.
#include "proxy/snapshot.h"

#include <algorithm>

#include <catch2/catch.hpp>

#include "config/loader.h"

using wsb::proxy::Snapshot;

namespace {
std::shared_ptr<const Snapshot> build(const std::string& toml) {
  auto loaded = wsb::config::loadString(toml, "test.toml");
  INFO((loaded.errors.empty() ? std::string() : loaded.errors.front()));
  REQUIRE(loaded.ok());
  std::vector<std::string> errors;
  auto snap = Snapshot::build(loaded.config, &errors);
  REQUIRE(snap);
  return snap;
}

const char* kRoutes = R"(
[[listener]]
name = "public"
address = "127.0.0.1:0"
[[route]]
path = "/"
cluster = "a"
[[route]]
path = "/chat"
cluster = "b"
[[route]]
path = "/chat"
host = "chat.example.com"
cluster = "c"
[[route]]
path = "/chat/admin"
cluster = "d"
[cluster.a]
endpoints = ["127.0.0.1:1"]
[cluster.b]
endpoints = ["127.0.0.1:2"]
[cluster.c]
endpoints = ["127.0.0.1:3"]
[cluster.d]
endpoints = ["127.0.0.1:4"]
)";
}  // namespace

TEST_CASE("longest path prefix wins") {
  auto snap = build(kRoutes);
  CHECK(snap->route("public", "x", "/")->cluster == "a");
  CHECK(snap->route("public", "x", "/other")->cluster == "a");
  CHECK(snap->route("public", "x", "/chat")->cluster == "b");
  CHECK(snap->route("public", "x", "/chat/admin/x")->cluster == "d");
}

TEST_CASE("a route with a matching host beats one without at the same length") {
  auto snap = build(kRoutes);
  CHECK(snap->route("public", "chat.example.com:8080", "/chat")->cluster == "c");
  CHECK(snap->route("public", "CHAT.example.com", "/chat/x")->cluster == "c");
  CHECK(snap->route("public", "other.example.com", "/chat")->cluster == "b");
}

TEST_CASE("no route on another listener") {
  auto snap = build(kRoutes);
  CHECK(snap->route("internal", "x", "/chat") == nullptr);
}

TEST_CASE("endpoints are resolved when the snapshot is built") {
  auto snap = build(kRoutes);
  const auto* cluster = snap->cluster("d");
  REQUIRE(cluster != nullptr);
  REQUIRE(cluster->endpoints.size() == 1);
  CHECK(cluster->endpoints[0].address.port == 4);
  CHECK(cluster->endpoints[0].sockaddr_len > 0);
}

TEST_CASE("an unknown filter type is refused with its position") {
  auto loaded = wsb::config::loadString(std::string(kRoutes) + R"(
[filter.x]
type = "no_such_filter"
)", "test.toml");
  REQUIRE(loaded.ok());
  std::vector<std::string> errors;
  CHECK_FALSE(Snapshot::build(loaded.config, &errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("test.toml:", 0) == 0);
  CHECK(errors[0].find("unknown filter type 'no_such_filter'") != std::string::npos);
}

TEST_CASE("a route owns the header names of its JWT filters' forward_claims") {
  auto snap = build(R"(
[[listener]]
name = "public"
address = "127.0.0.1:0"
[[route]]
path = "/auth"
cluster = "a"
filters = ["jwt"]
[[route]]
path = "/open"
cluster = "a"
[cluster.a]
endpoints = ["127.0.0.1:1"]
[filter.jwt]
type = "auth.jwt"
secret = "s"
algorithms = ["HS256"]
forward_claims = { "x-user-id" = "sub", "X-Org" = "org" }
)");
  auto owned = snap->ownedHeadersOf(*snap->route("public", "x", "/auth"));
  std::sort(owned.begin(), owned.end());
  CHECK(owned == std::vector<std::string>{"X-Org", "x-user-id"});
  CHECK(snap->ownedHeadersOf(*snap->route("public", "x", "/open")).empty());
}
