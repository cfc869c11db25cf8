// Engine.IO server role: request checks in the ref server's order, error bodies, CORS, sids and
// the application query forwarded upstream.
#include "proxy/eio_server.h"

#include <catch2/catch.hpp>

#include <set>

using namespace wsb;
using proxy::checkEioRequest;

namespace {
const std::vector<config::Transport> kBoth{config::Transport::Polling,
                                           config::Transport::WebSocket};

http::Request get(std::string query, std::string method = "GET") {
  http::Request r;
  r.method = std::move(method);
  r.path = "/socket.io/";
  r.query = std::move(query);
  r.target = r.path + "?" + r.query;
  return r;
}

int codeOf(const http::Request& r, const std::vector<config::Transport>& t = kBoth) {
  auto checked = checkEioRequest(r, t);
  return checked.error == nullptr ? -1 : checked.error->code;
}
}  // namespace

TEST_CASE("missing or unknown transport is code 0, checked before everything else") {
  CHECK(codeOf(get("EIO=4")) == 0);
  CHECK(codeOf(get("EIO=4&transport=abc")) == 0);
  CHECK(codeOf(get("transport=abc&sid=x", "PUT")) == 0);
  CHECK(codeOf(get("EIO=4&transport=websocket"), {config::Transport::Polling}) == 0);
}

TEST_CASE("a handshake that is not GET is code 2") {
  CHECK(codeOf(get("EIO=4&transport=polling", "POST")) == 2);
  CHECK(codeOf(get("EIO=4&transport=polling", "PUT")) == 2);
}

TEST_CASE("transport=websocket without Upgrade is code 3") {
  CHECK(codeOf(get("EIO=4&transport=websocket")) == 3);
}

TEST_CASE("EIO other than 4, or missing, is code 5") {
  CHECK(codeOf(get("transport=polling")) == 5);
  CHECK(codeOf(get("EIO=abc&transport=polling")) == 5);
  CHECK(codeOf(get("EIO=3&transport=polling")) == 5);
  CHECK(codeOf(get("EIO=4&transport=polling")) == -1);
}

TEST_CASE("with allow_eio3, EIO=3 is a v3 handshake; anything else but 4 is still code 5") {
  auto v3 = checkEioRequest(get("EIO=3&transport=polling"), kBoth, true);
  CHECK(v3.error == nullptr);
  CHECK(v3.version == eio::Version::V3);
  auto v4 = checkEioRequest(get("EIO=4&transport=polling"), kBoth, true);
  CHECK(v4.error == nullptr);
  CHECK(v4.version == eio::Version::V4);
  auto garbage = checkEioRequest(get("EIO=2&transport=polling"), kBoth, true);
  REQUIRE(garbage.error != nullptr);
  CHECK(garbage.error->code == 5);
}

TEST_CASE("a request with a sid is left to the session lookup") {
  auto checked = checkEioRequest(get("EIO=4&transport=polling&sid=abc", "POST"), kBoth);
  CHECK(checked.error == nullptr);
  CHECK(checked.sid == "abc");
  CHECK(checked.transport == config::Transport::Polling);
}

TEST_CASE("websocket upgrade is recognised") {
  http::Request r = get("EIO=4&transport=websocket");
  r.headers.push_back({"Upgrade", "websocket"});
  r.headers.push_back({"Connection", "Upgrade"});
  auto checked = checkEioRequest(r, kBoth);
  CHECK(checked.error == nullptr);
  CHECK(checked.upgrade);
  CHECK(checked.transport == config::Transport::WebSocket);
}

TEST_CASE("HTTP error body is engine.io's JSON, upgrade errors are a bare 400") {
  std::string polling =
      proxy::eioErrorResponse(eio::server_error::kSessionIdUnknown, false, true, {});
  CHECK(polling.rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(polling.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(polling.substr(polling.size() - 41) == "{\"code\":1,\"message\":\"Session ID unknown\"}");
  std::string upgrade = proxy::eioErrorResponse(eio::server_error::kSessionIdUnknown, true, true);
  CHECK(upgrade ==
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n"
        "Content-Length: 18\r\n\r\nSession ID unknown");
}

TEST_CASE("CORS headers only for listed origins") {
  http::Request r = get("EIO=4&transport=polling");
  CHECK(proxy::corsHeaders({"http://a.example"}, r).empty());  // no Origin
  r.headers.push_back({"Origin", "http://a.example"});
  auto headers = proxy::corsHeaders({"http://a.example"}, r);
  REQUIRE(headers.size() == 3);
  CHECK(headers[0].name == "Access-Control-Allow-Origin");
  CHECK(headers[0].value == "http://a.example");
  CHECK(headers[1].value == "true");
  CHECK(proxy::corsHeaders({"http://b.example"}, r).empty());
  CHECK(proxy::corsHeaders({}, r).empty());
  CHECK(proxy::corsHeaders({"*"}, r).size() == 3);
}

TEST_CASE("sids are 20 URL-safe characters and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string sid = proxy::makeBase64Id();
    REQUIRE(sid.size() == 20);
    for (char c : sid) {
      REQUIRE((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'));
    }
    seen.insert(sid);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("the application query drops the Engine.IO parameters") {
  CHECK(proxy::appQuery("EIO=4&transport=polling&t=abc&sid=x") == "");
  CHECK(proxy::appQuery("EIO=4&token=a%20b&transport=websocket&room=1") == "token=a%20b&room=1");
  CHECK(proxy::appQuery("b64=1&j=0&&x") == "x");
  CHECK(proxy::appQuery("") == "");
}
