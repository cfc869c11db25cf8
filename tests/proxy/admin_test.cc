// The admin listener: who may talk to it (Host, Origin, bearer token), the redacted /config view,
// and a real listener answering over a socket.
#include "proxy/admin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "config/loader.h"

using namespace wsb::proxy;

namespace {

AdminAccess::Request withHost(std::string_view host) {
  AdminAccess::Request r;
  r.host_headers = 1;
  r.host = host;
  return r;
}

}  // namespace

TEST_CASE("a loopback admin accepts its own names as Host and Origin, nothing else") {
  AdminAccess access("127.0.0.1", 9901, "127.0.0.1");
  for (const char* host : {"127.0.0.1:9901", "localhost:9901", "LOCALHOST:9901", "[::1]:9901"}) {
    CHECK(access.check(withHost(host), "", false).status == 0);
  }
  for (const char* host : {"evil.example:9901", "127.0.0.1", "127.0.0.1:9902", "localhost",
                           "attacker.com", ""}) {
    auto v = access.check(withHost(host), "", false);
    CHECK(v.status == 403);
    CHECK(v.error == "Host does not name this admin listener");
  }
  CHECK(access.originAllowed("http://127.0.0.1:9901", "127.0.0.1:9901"));
  CHECK(access.originAllowed("http://localhost:9901", "127.0.0.1:9901"));
  CHECK_FALSE(access.originAllowed("http://evil.example", "127.0.0.1:9901"));
  CHECK_FALSE(access.originAllowed("https://127.0.0.1:9901", "127.0.0.1:9901"));
  CHECK_FALSE(access.originAllowed("null", "127.0.0.1:9901"));
  CHECK_FALSE(access.originAllowed("http://127.0.0.1:9901/", "127.0.0.1:9901"));
}

TEST_CASE("a foreign Origin is refused 403 even without a token and on open paths") {
  AdminAccess access("localhost", 9901, "127.0.0.1");
  AdminAccess::Request r = withHost("localhost:9901");
  r.origin = "http://evil.example";
  for (bool open : {false, true}) {
    auto v = access.check(r, "", open);
    CHECK(v.status == 403);
    CHECK(v.error == "cross-origin request refused");
  }
  r.origin = "http://127.0.0.1:9901";
  CHECK(access.check(r, "", false).status == 0);
}

TEST_CASE("Host is required on HTTP/1.1, once, and optional on HTTP/1.0") {
  AdminAccess access("127.0.0.1", 9901, "127.0.0.1");
  AdminAccess::Request r;
  auto v = access.check(r, "", true);
  CHECK(v.status == 400);
  CHECK(v.error == "missing Host header");
  r.http11 = false;
  CHECK(access.check(r, "", true).status == 0);
  r = withHost("127.0.0.1:9901");
  r.host_headers = 2;
  CHECK(access.check(r, "", true).status == 400);
}

TEST_CASE("a wildcard bind takes any Host but only a same-origin Origin") {
  AdminAccess access("0.0.0.0", 9901, "0.0.0.0");
  CHECK(access.hostAllowed("admin.internal:9901"));
  CHECK(access.hostAllowed("10.1.2.3:9901"));
  CHECK(access.originAllowed("http://admin.internal:9901", "admin.internal:9901"));
  CHECK_FALSE(access.originAllowed("http://evil.example", "admin.internal:9901"));
  CHECK_FALSE(access.originAllowed("http://admin.internal:9901", ""));
}

TEST_CASE("a specific address accepts its configured name and bound IP, on port 80 bare too") {
  AdminAccess access("admin.internal", 80, "10.1.2.3");
  CHECK(access.hostAllowed("admin.internal:80"));
  CHECK(access.hostAllowed("admin.internal"));
  CHECK(access.hostAllowed("10.1.2.3"));
  CHECK_FALSE(access.hostAllowed("localhost"));
  CHECK_FALSE(access.hostAllowed("127.0.0.1:80"));
  AdminAccess v6("::1", 9901, "::1");
  CHECK(v6.hostAllowed("[::1]:9901"));
  CHECK(v6.hostAllowed("127.0.0.1:9901"));
}

TEST_CASE("with a token every path but the open ones needs the bearer token") {
  AdminAccess access("127.0.0.1", 9901, "127.0.0.1");
  AdminAccess::Request r = withHost("127.0.0.1:9901");
  auto v = access.check(r, "s3cret-token", false);
  CHECK(v.status == 401);
  CHECK_FALSE(v.authorized);
  v = access.check(r, "s3cret-token", true);
  CHECK(v.status == 0);
  CHECK_FALSE(v.authorized);
  r.authorization = "Bearer wrong";
  CHECK(access.check(r, "s3cret-token", false).status == 401);
  r.authorization = "Bearer s3cret-token";
  v = access.check(r, "s3cret-token", false);
  CHECK(v.status == 0);
  CHECK(v.authorized);
  r.authorization = nullptr;
  CHECK(access.check(r, "", false).authorized);  // no token configured
}

TEST_CASE("bearer tokens match exactly, the scheme in any case") {
  CHECK(bearerMatches("Bearer abc", "abc"));
  CHECK(bearerMatches("bearer abc", "abc"));
  CHECK(bearerMatches("BEARER   abc ", "abc"));
  CHECK_FALSE(bearerMatches("Bearer abcd", "abc"));
  CHECK_FALSE(bearerMatches("Bearer ab", "abc"));
  CHECK_FALSE(bearerMatches("Bearer ABC", "abc"));
  CHECK_FALSE(bearerMatches("Basic abc", "abc"));
  CHECK_FALSE(bearerMatches("Bearerabc", "abc"));
  CHECK_FALSE(bearerMatches("abc", "abc"));
  CHECK_FALSE(bearerMatches("Bearer ", ""));
  CHECK_FALSE(bearerMatches("", ""));
}

TEST_CASE("secret keys are recognised by name") {
  CHECK(isSecretKey("secret"));
  CHECK(isSecretKey("sid_key"));
  CHECK(isSecretKey("client_secret"));
  CHECK(isSecretKey("redis_password"));
  CHECK(isSecretKey("SECRET"));
  CHECK(isSecretKey("token"));
  CHECK(isSecretKey("api_token"));
  CHECK(isSecretKey("private_key"));
  CHECK_FALSE(isSecretKey("public_key"));
  CHECK_FALSE(isSecretKey("token_from"));
  CHECK_FALSE(isSecretKey("key"));
}

namespace {
constexpr const char* kSecretConfig = R"(
[admin]
address = "127.0.0.1:0"
token = "admin-token-value"

[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
path = "/chat"
downstream = "websocket"
cluster = "chat"
filters = ["jwt", "limit"]
sid_key = "sid-key-value"
upstream_auth = { token = "{query.token}", static = "upstream-static-value" }

[cluster.chat]
protocol = "socketio"
endpoints = ["127.0.0.1:9000"]

[filter.jwt]
type = "auth.jwt"
secret = "jwt-secret-value"
algorithms = ["HS256"]
token_from = ["query:token"]

[filter.limit]
type = "rate_limit"
messages_per_second = 5
store = "redis"
redis = "redis://:redis-p@ss/word@127.0.0.1:6379/0"
[filter.limit.nested]
api_token = "nested-token-value"
)";
}  // namespace

TEST_CASE("config JSON shows settings and redacts every secret") {
  auto loaded = wsb::config::loadString(kSecretConfig, "test.toml");
  REQUIRE(loaded.ok());
  std::string json = renderConfigJson(*loaded.config);
  for (const char* leaked : {"admin-token-value", "jwt-secret-value", "sid-key-value",
                             "upstream-static-value", "{query.token}", "redis-p", "ss/word",
                             "nested-token-value"}) {
    INFO(leaked);
    CHECK(json.find(leaked) == std::string::npos);
  }
  CHECK(json.find(R"("token":"<redacted>","allow_remote":false)") != std::string::npos);
  CHECK(json.find(R"("secret":"<redacted>")") != std::string::npos);
  CHECK(json.find(R"("sid_key":"<redacted>")") != std::string::npos);
  CHECK(json.find(R"("upstream_auth":{"static":"<redacted>","token":"<redacted>"})") !=
        std::string::npos);
  CHECK(json.find(R"("redis":"redis://:<redacted>@127.0.0.1:6379/0")") != std::string::npos);
  CHECK(json.find(R"("api_token":"<redacted>")") != std::string::npos);
  CHECK(json.find(R"("algorithms":["HS256"])") != std::string::npos);
  CHECK(json.find(R"("token_from":["query:token"])") != std::string::npos);
  CHECK(json.find(R"("endpoints":["127.0.0.1:9000"])") != std::string::npos);
  CHECK(json.find(R"("path":"/chat")") != std::string::npos);
}

TEST_CASE("a password inside a URL value is redacted") {
  auto loaded = wsb::config::loadString(R"(
[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
cluster = "c"
filters = ["limit", "other"]

[cluster.c]
endpoints = ["127.0.0.1:9000"]

[filter.limit]
type = "rate_limit"
messages_per_second = 5
redis = "redis://user:hunter2@127.0.0.1:6379/0"

[filter.other]
type = "rate_limit"
redis = "redis://justapassword@127.0.0.1"
url = "http://example.com/a@b"
)",
                                        "test.toml");
  // Filter tables are kept whole by the loader (their factories validate them later).
  REQUIRE(loaded.ok());
  std::string json = renderConfigJson(*loaded.config);
  CHECK(json.find("hunter2") == std::string::npos);
  CHECK(json.find("justapassword") == std::string::npos);
  CHECK(json.find("redis://user:<redacted>@127.0.0.1:6379/0") != std::string::npos);
  CHECK(json.find("redis://<redacted>@127.0.0.1") != std::string::npos);
  CHECK(json.find("http://<redacted>@b") != std::string::npos);  // over-redacts, never under
}

namespace {
// One HTTP/1.1 exchange with the listener on 127.0.0.1:port; returns the whole response.
std::string exchange(uint16_t port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}
}  // namespace

TEST_CASE("the listener answers 401, 403 and 400 before any endpoint runs") {
  auto loaded = wsb::config::loadString(R"(
[admin]
address = "127.0.0.1:0"
token = "admin-token-value"
[[listener]]
address = "127.0.0.1:0"
[[route]]
cluster = "c"
sid_key = "sid-key-value"
[cluster.c]
endpoints = ["127.0.0.1:9000"]
)",
                                        "admin.toml");
  REQUIRE(loaded.ok());
  std::vector<std::string> errors;
  SnapshotPtr snapshot = Snapshot::build(loaded.config, &errors);
  REQUIRE(snapshot);
  bool drained = false;
  AdminListener admin({}, {{}, [&drained] { drained = true; }});
  std::string error;
  REQUIRE(admin.start(snapshot, &error));
  std::string host = "Host: 127.0.0.1:" + std::to_string(admin.port()) + "\r\n";
  const std::string close = "Connection: close\r\n\r\n";

  std::string r = exchange(admin.port(), "GET /stats HTTP/1.1\r\n" + host + close);
  CHECK(r.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
  CHECK(r.find("WWW-Authenticate: Bearer realm=\"wsbridge admin\"\r\n") != std::string::npos);
  CHECK(r.ends_with("\r\n\r\n{\"error\":\"unauthorized\"}\n"));

  r = exchange(admin.port(), "GET /config HTTP/1.1\r\n" + host +
                                 "Authorization: Bearer admin-token-value\r\n" + close);
  CHECK(r.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(r.find("<redacted>") != std::string::npos);
  CHECK(r.find("admin-token-value") == std::string::npos);

  r = exchange(admin.port(), "GET /healthz HTTP/1.1\r\n" + host + close);
  CHECK(r.starts_with("HTTP/1.1 200 OK\r\n"));
  r = exchange(admin.port(), "GET /healthz HTTP/1.1\r\nHost: rebind.example:80\r\n" + close);
  CHECK(r.starts_with("HTTP/1.1 403 Forbidden\r\n"));
  r = exchange(admin.port(), "GET /healthz HTTP/1.1\r\n" + close);
  CHECK(r.starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(r.ends_with("{\"error\":\"missing Host header\"}\n"));
  r = exchange(admin.port(), "GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(r.starts_with("HTTP/1.0 200 OK\r\n"));

  // A web page's simple cross-site POST, even one that somehow carried the token.
  r = exchange(admin.port(), "POST /drain HTTP/1.1\r\n" + host +
                                 "Origin: http://evil.example\r\n"
                                 "Authorization: Bearer admin-token-value\r\n"
                                 "Content-Type: text/plain\r\nContent-Length: 0\r\n" + close);
  CHECK(r.starts_with("HTTP/1.1 403 Forbidden\r\n"));
  CHECK(r.ends_with("{\"error\":\"cross-origin request refused\"}\n"));
  admin.stop();
  CHECK_FALSE(drained);
}

TEST_CASE("a reload may not drop the token of a non-loopback admin listener") {
  auto loaded = wsb::config::loadString(R"(
[admin]
address = "0.0.0.0:0"
token = "t"
[[listener]]
address = "127.0.0.1:0"
[[route]]
cluster = "c"
[cluster.c]
endpoints = ["127.0.0.1:9000"]
)",
                                        "admin.toml");
  REQUIRE(loaded.ok());
  std::vector<std::string> errors;
  SnapshotPtr snapshot = Snapshot::build(loaded.config, &errors);
  REQUIRE(snapshot);
  AdminListener admin({}, {});
  std::string error;
  REQUIRE(admin.start(snapshot, &error));
  CHECK(admin.canServe(*loaded.config, &error));
  wsb::config::Config next = *loaded.config;
  next.admin.token.clear();
  next.admin.address = wsb::config::Address{"127.0.0.1", 9901};
  CHECK_FALSE(admin.canServe(next, &error));
  CHECK(error == "admin.toml: [admin] token cannot be removed while the admin listener is bound "
                 "to 0.0.0.0:0, which is not a loopback address (restart to change the admin "
                 "address)");
  admin.stop();
}
