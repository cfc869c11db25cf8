// Tests for the HTTP/1.1 codec: incremental parsing, limits, upgrade checks and writers.
#include "codec/http1.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace wsb::http;

namespace {

const std::string kUpgradeRequest =
    "GET /chat?token=abc%20d&room=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Cookie: a=1; token=xyz\r\n"
    "\r\n";
// A masked text frame "Hello" that a client may send right behind its handshake.
const std::string kFrame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

struct Fed {
  ParseState state;
  size_t consumed;
};

// Feeds `bytes` in the given piece sizes (the last piece takes the rest) as a connection would.
template <typename Parser>
Fed feedPieces(Parser& parser, const std::string& bytes, const std::vector<size_t>& pieces) {
  size_t offset = 0;
  size_t consumed = 0;
  for (size_t i = 0; i <= pieces.size() && offset < bytes.size(); ++i) {
    size_t len =
        i < pieces.size() ? std::min(pieces[i], bytes.size() - offset) : bytes.size() - offset;
    size_t n = parser.feed(bytes.data() + offset, len);
    consumed += n;
    if (parser.state() != ParseState::NeedMore) break;
    REQUIRE(n == len);  // while it needs more it takes everything it is given
    offset += len;
  }
  return {parser.state(), consumed};
}

Request parseRequest(const std::string& bytes, Limits limits = {}) {
  RequestParser parser(limits);
  size_t n = parser.feed(bytes.data(), bytes.size());
  REQUIRE(parser.state() == ParseState::Done);
  REQUIRE(n == bytes.size());
  return parser.request();
}

Request requestWith(const Headers& headers, std::string method = "GET", int minor = 1) {
  Request request;
  request.method = std::move(method);
  request.target = "/chat";
  request.path = "/chat";
  request.version_minor = minor;
  request.headers = headers;
  return request;
}

const Headers kValidUpgradeHeaders = {
    {"Host", "example.com"},         {"Upgrade", "websocket"},
    {"Connection", "Upgrade"},       {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
    {"Sec-WebSocket-Version", "13"},
};

Headers replaced(const std::string& name, const std::string& value) {
  Headers headers;
  for (const Header& h : kValidUpgradeHeaders)
    if (h.name != name) headers.push_back(h);
  if (!value.empty()) headers.push_back({name, value});
  return headers;
}

int errorStatusOf(const std::string& bytes, Limits limits = {}) {
  RequestParser parser(limits);
  parser.feed(bytes.data(), bytes.size());
  REQUIRE(parser.state() == ParseState::Error);
  return parser.errorStatus();
}

}  // namespace

TEST_CASE("upgrade request split at every byte parses the same and leaves the frame") {
  const std::string bytes = kUpgradeRequest + kFrame;
  for (size_t split = 0; split <= bytes.size(); ++split) {
    RequestParser parser;
    Fed fed = feedPieces(parser, bytes, {split});
    INFO("split at " << split);
    REQUIRE(fed.state == ParseState::Done);
    REQUIRE(fed.consumed == kUpgradeRequest.size());
    const Request& r = parser.request();
    CHECK(parser.upgrade());
    CHECK(r.method == "GET");
    CHECK(r.target == "/chat?token=abc%20d&room=1");
    CHECK(r.path == "/chat");
    CHECK(r.query == "token=abc%20d&room=1");
    CHECK(r.version_major == 1);
    CHECK(r.version_minor == 1);
    REQUIRE(r.headers.size() == 6);
    CHECK(r.headers[0].name == "Host");
    CHECK(r.headers[0].value == "example.com");
    CHECK(r.headers[3].name == "Sec-WebSocket-Key");
    CHECK(r.headers[3].value == "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK(r.headers[5].value == "a=1; token=xyz");
    CHECK(r.body.empty());
  }
}

TEST_CASE("request fed one byte at a time stops at the end of the message") {
  const std::string bytes = kUpgradeRequest + kFrame;
  RequestParser parser;
  size_t consumed = 0;
  for (size_t i = 0; i < bytes.size() && parser.state() == ParseState::NeedMore; ++i)
    consumed += parser.feed(bytes.data() + i, 1);
  CHECK(parser.state() == ParseState::Done);
  CHECK(consumed == kUpgradeRequest.size());
  CHECK(parser.feed(kFrame.data(), kFrame.size()) == 0);  // done until reset
}

TEST_CASE("request with content-length body split at every byte keeps trailing bytes") {
  const std::string message =
      "POST /engine.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\n"
      "Host: a\r\n"
      "Content-Length: 11\r\n"
      "\r\n"
      "4hello\x1e"
      "2\x1e"
      "40";
  const std::string bytes = message + "GET / HTTP/1.1\r\n";
  for (size_t split = 0; split <= bytes.size(); ++split) {
    RequestParser parser;
    Fed fed = feedPieces(parser, bytes, {split});
    INFO("split at " << split);
    REQUIRE(fed.state == ParseState::Done);
    REQUIRE(fed.consumed == message.size());
    CHECK_FALSE(parser.upgrade());
    CHECK(parser.request().body ==
          "4hello\x1e"
          "2\x1e"
          "40");
    CHECK(parser.request().method == "POST");
  }
}

TEST_CASE("chunked request body is reassembled across every split") {
  const std::string message =
      "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n"
      "a;ext=1\r\n0123456789\r\n"
      "0\r\n\r\n";
  const std::string bytes = message + "X";
  for (size_t split = 0; split <= bytes.size(); ++split) {
    RequestParser parser;
    Fed fed = feedPieces(parser, bytes, {split});
    INFO("split at " << split);
    REQUIRE(fed.state == ParseState::Done);
    REQUIRE(fed.consumed == message.size());
    CHECK(parser.request().body == "abc0123456789");
  }
}

TEST_CASE("trailer fields after a chunked body are dropped, not added to the headers") {
  // Found by the fuzzer: a "Connection: Upgrade" trailer turned the request, re-serialised,
  // into an upgrade. Trailers are still checked like header fields.
  const std::string message =
      "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n"
      "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  for (size_t split = 0; split <= message.size(); ++split) {
    RequestParser parser;
    Fed fed = feedPieces(parser, message, {split});
    INFO("split at " << split);
    REQUIRE(fed.state == ParseState::Done);
    CHECK(fed.consumed == message.size());
    CHECK(parser.request().body == "abc");
    CHECK(parser.request().headers.size() == 2);
    CHECK(parser.request().header("connection") == nullptr);
  }
  ResponseParser response;
  const std::string answer =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Late: 1\r\n\r\n";
  CHECK(response.feed(answer.data(), answer.size()) == answer.size());
  REQUIRE(response.state() == ParseState::Done);
  CHECK(response.response().header("x-late") == nullptr);
  RequestParser bad;
  const std::string bad_trailer =
      "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A b: 1\r\n\r\n";
  bad.feed(bad_trailer.data(), bad_trailer.size());
  CHECK(bad.state() == ParseState::Error);
  CHECK(bad.errorStatus() == 400);
}

TEST_CASE("keep-alive: reset parses a second pipelined request") {
  const std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "POST /b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok";
  const std::string bytes = first + second;
  RequestParser parser;
  size_t n = parser.feed(bytes.data(), bytes.size());
  REQUIRE(parser.state() == ParseState::Done);
  REQUIRE(n == first.size());
  CHECK(parser.request().path == "/a");
  CHECK(parser.request().keep_alive);

  parser.reset();
  CHECK(parser.state() == ParseState::NeedMore);
  size_t m = parser.feed(bytes.data() + n, bytes.size() - n);
  REQUIRE(parser.state() == ParseState::Done);
  CHECK(m == second.size());
  CHECK(parser.request().method == "POST");
  CHECK(parser.request().path == "/b");
  CHECK(parser.request().query == "x=1");
  CHECK(parser.request().body == "ok");
  CHECK(parser.request().headers.size() == 2);
}

TEST_CASE("HTTP/1.0 is accepted and not kept alive by default") {
  Request r = parseRequest("GET / HTTP/1.0\r\n\r\n");
  CHECK(r.version_minor == 0);
  CHECK_FALSE(r.keep_alive);
  Request c = parseRequest("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  CHECK_FALSE(c.keep_alive);
}

TEST_CASE("header values lose surrounding whitespace and empty values survive") {
  Request r = parseRequest("GET / HTTP/1.1\r\nX-Empty:\r\nX-Pad: \t v a \t\r\nHost:h\r\n\r\n");
  REQUIRE(r.headers.size() == 3);
  CHECK(r.headers[0].name == "X-Empty");
  CHECK(r.headers[0].value.empty());
  CHECK(r.headers[1].value == "v a");
  CHECK(*r.header("host") == "h");
  CHECK(r.header("missing") == nullptr);
}

TEST_CASE("absolute-form and asterisk targets split into path and query") {
  Request a = parseRequest("GET http://example.com:80/chat?x=1#frag HTTP/1.1\r\n\r\n");
  CHECK(a.path == "/chat");
  CHECK(a.query == "x=1");
  Request b = parseRequest("GET http://example.com HTTP/1.1\r\n\r\n");
  CHECK(b.path == "/");
  CHECK(b.query.empty());
  Request c = parseRequest("OPTIONS * HTTP/1.1\r\n\r\n");
  CHECK(c.path == "*");
}

TEST_CASE("header section at the limit passes, one byte over is 431") {
  const std::string head = "GET / HTTP/1.1\r\nX: ";
  const std::string tail = "\r\n\r\n";
  Limits limits;
  limits.max_header_bytes = 100;
  std::string exact = head + std::string(100 - head.size() - tail.size(), 'a') + tail;
  REQUIRE(exact.size() == 100);
  for (size_t split = 0; split <= exact.size(); ++split) {
    RequestParser parser(limits);
    INFO("split at " << split);
    CHECK(feedPieces(parser, exact, {split}).state == ParseState::Done);
  }
  std::string over = head + std::string(101 - head.size() - tail.size(), 'a') + tail;
  for (size_t split = 0; split <= over.size(); ++split) {
    RequestParser parser(limits);
    INFO("split at " << split);
    Fed fed = feedPieces(parser, over, {split});
    REQUIRE(fed.state == ParseState::Error);
    CHECK(parser.errorStatus() == 431);
    CHECK(parser.errorReason() == "header section too large");
  }
}

TEST_CASE("an endless header line is 431 as soon as the budget is spent") {
  Limits limits;
  limits.max_header_bytes = 64;
  RequestParser parser(limits);
  std::string line = "GET / HTTP/1.1\r\nX: " + std::string(45, 'a');
  REQUIRE(line.size() == 64);
  CHECK(parser.feed(line.data(), line.size()) == 64);
  CHECK(parser.state() == ParseState::Error);
  CHECK(parser.errorStatus() == 431);
}

TEST_CASE("more headers than max_headers is 431") {
  Limits limits;
  limits.max_headers = 3;
  std::string three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  CHECK(parseRequest(three, limits).headers.size() == 3);
  std::string four = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
  RequestParser parser(limits);
  parser.feed(four.data(), four.size());
  REQUIRE(parser.state() == ParseState::Error);
  CHECK(parser.errorStatus() == 431);
  CHECK(parser.errorReason() == "too many headers");
  CHECK(parser.request().headers.size() == 3);  // the extra one was not kept
}

TEST_CASE("content-length over max_body is 413 before the body arrives") {
  Limits limits;
  limits.max_body = 10;
  std::string head = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
  RequestParser parser(limits);
  parser.feed(head.data(), head.size());
  REQUIRE(parser.state() == ParseState::Error);
  CHECK(parser.errorStatus() == 413);
  CHECK(parser.errorReason() == "body too large");

  std::string fits = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
  CHECK(parseRequest(fits, limits).body == "0123456789");
}

TEST_CASE("chunked body growing over max_body is 413") {
  Limits limits;
  limits.max_body = 5;
  CHECK(errorStatusOf("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
                      limits) == 413);
}

TEST_CASE("malformed requests are 400") {
  CHECK(errorStatusOf("GET /a b HTTP/1.1\r\n\r\n") == 400);
  CHECK(errorStatusOf("FOO / HTTP/1.1\r\n\r\n") == 400);
  CHECK(errorStatusOf("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n") == 400);
  CHECK(errorStatusOf("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n") == 400);
  CHECK(errorStatusOf("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n") == 400);
  CHECK(errorStatusOf(std::string("GET / HTTP/1.1\r\nHost: \0h\r\n\r\n", 28)) == 400);
  CHECK(errorStatusOf("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n") == 400);
  CHECK(errorStatusOf("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400);
  const char tls_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
  CHECK(errorStatusOf(std::string(tls_hello, sizeof(tls_hello) - 1)) == 400);
}

TEST_CASE("HTTP versions other than 1.0 and 1.1 are 505") {
  CHECK(errorStatusOf("GET / HTTP/2.0\r\n\r\n") == 505);
  CHECK(errorStatusOf("GET / HTTP/1.2\r\nHost: h\r\n\r\n") == 505);
  CHECK(errorStatusOf("GET / HTTP/0.9\r\n\r\n") == 505);
  CHECK(errorStatusOf("GET / HTTP/12.0\r\n\r\n") == 505);
  RequestParser parser;
  std::string bytes = "GET / HTTP/3.0\r\nHost: h\r\n\r\n";
  parser.feed(bytes.data(), bytes.size());
  CHECK(parser.state() == ParseState::Error);
  CHECK(parser.errorReason() == "HTTP version not supported");
}

TEST_CASE("an upgrade request's body is not read") {
  const std::string head =
      "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
      "Content-Length: 5\r\n\r\n";
  const std::string bytes = head + "abcde";
  RequestParser parser;
  CHECK(parser.feed(bytes.data(), bytes.size()) == head.size());
  CHECK(parser.state() == ParseState::Done);
  CHECK(parser.upgrade());
  CHECK(parser.request().body.empty());
}

TEST_CASE("Upgrade without Connection: upgrade is an ordinary request") {
  RequestParser parser;
  std::string bytes = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\nrest";
  CHECK(parser.feed(bytes.data(), bytes.size()) == bytes.size() - 4);
  CHECK(parser.state() == ParseState::Done);
  CHECK_FALSE(parser.upgrade());
  CHECK(isWebSocketUpgrade(parser.request()));
}

// ---- WebSocket upgrade checks ----

TEST_CASE("a valid opening handshake passes") {
  CHECK(checkWebSocketUpgrade(requestWith(kValidUpgradeHeaders)).ok());
  Request parsed = parseRequest(kUpgradeRequest);
  CHECK(checkWebSocketUpgrade(parsed).ok());
  CHECK(isWebSocketUpgrade(parsed));
}

TEST_CASE("upgrade tokens match case-insensitively inside comma lists") {
  Headers listed = kValidUpgradeHeaders;
  listed[1] = {"upgrade", "h2c , WebSocket"};
  listed[2].value = "keep-alive, Upgrade";
  CHECK(checkWebSocketUpgrade(requestWith(listed)).ok());
  Headers repeated = kValidUpgradeHeaders;
  repeated[2].value = "keep-alive";
  repeated.push_back({"Connection", "upgrade"});
  CHECK(checkWebSocketUpgrade(requestWith(repeated)).ok());
}

TEST_CASE("each upgrade rule violation names what is wrong") {
  auto check = [](const Request& r) { return checkWebSocketUpgrade(r); };
  UpgradeCheck post = check(requestWith(kValidUpgradeHeaders, "POST"));
  CHECK(post.status == 400);
  CHECK(post.reason == "WebSocket upgrade requires GET");
  UpgradeCheck old = check(requestWith(kValidUpgradeHeaders, "GET", 0));
  CHECK(old.status == 400);
  CHECK(old.reason == "WebSocket upgrade requires HTTP/1.1");
  UpgradeCheck no_host = check(requestWith(replaced("Host", "")));
  CHECK(no_host.status == 400);
  CHECK(no_host.reason == "missing Host header");
  Headers two_hosts = kValidUpgradeHeaders;
  two_hosts.push_back({"host", "other"});
  CHECK(check(requestWith(two_hosts)).reason == "more than one Host header");
  UpgradeCheck no_upgrade = check(requestWith(replaced("Upgrade", "")));
  CHECK(no_upgrade.status == 400);
  CHECK(no_upgrade.reason == "Upgrade header does not list websocket");
  CHECK(check(requestWith(replaced("Upgrade", "h2c"))).status == 400);
  UpgradeCheck no_conn = check(requestWith(replaced("Connection", "keep-alive")));
  CHECK(no_conn.status == 400);
  CHECK(no_conn.reason == "Connection header does not list upgrade");
  UpgradeCheck no_key = check(requestWith(replaced("Sec-WebSocket-Key", "")));
  CHECK(no_key.status == 400);
  CHECK(no_key.reason == "missing Sec-WebSocket-Key header");
  UpgradeCheck bad_key = check(requestWith(replaced("Sec-WebSocket-Key", "not base64!")));
  CHECK(bad_key.status == 400);
  CHECK(bad_key.reason == "Sec-WebSocket-Key is not base64 of 16 bytes");
  // 15 and 17 bytes decode fine but are the wrong size.
  CHECK(check(requestWith(replaced("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"))).status == 400);
  CHECK(check(requestWith(replaced("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="))).status ==
        400);
  Headers two_keys = kValidUpgradeHeaders;
  two_keys.push_back({"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="});
  CHECK(check(requestWith(two_keys)).reason == "more than one Sec-WebSocket-Key header");
}

TEST_CASE("Sec-WebSocket-Version other than 13 is 426") {
  UpgradeCheck v8 = checkWebSocketUpgrade(requestWith(replaced("Sec-WebSocket-Version", "8")));
  CHECK(v8.status == 426);
  CHECK(v8.reason == "unsupported Sec-WebSocket-Version (only 13)");
  CHECK(checkWebSocketUpgrade(requestWith(replaced("Sec-WebSocket-Version", ""))).status == 426);
  CHECK(checkWebSocketUpgrade(requestWith(replaced("Sec-WebSocket-Version", "13, 8"))).status ==
        426);
}

TEST_CASE("accept key matches the RFC 6455 example") {
  CHECK(computeAcceptKey("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("fresh WebSocket keys are base64 of 16 random bytes") {
  std::string a = makeWebSocketKey();
  std::string b = makeWebSocketKey();
  std::string raw;
  REQUIRE(a.size() == 24);
  CHECK(base64Decode(a, &raw));
  CHECK(raw.size() == 16);
  CHECK(a != b);
}

// ---- responses ----

TEST_CASE("101 response split at every byte leaves the frames after it") {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "\r\n";
  const std::string bytes = head + "\x81\x02hi";
  for (size_t split = 0; split <= bytes.size(); ++split) {
    ResponseParser parser;
    Fed fed = feedPieces(parser, bytes, {split});
    INFO("split at " << split);
    REQUIRE(fed.state == ParseState::Done);
    REQUIRE(fed.consumed == head.size());
    CHECK(parser.response().status == 101);
    CHECK(parser.response().reason == "Switching Protocols");
    CHECK(*parser.response().header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(parser.response().body.empty());
  }
}

TEST_CASE("401 response with a body is read to its length") {
  const std::string message =
      "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
      "{\"error\":\"nope\"}";
  ResponseParser parser;
  std::string bytes = message + "junk";
  CHECK(parser.feed(bytes.data(), bytes.size()) == message.size());
  REQUIRE(parser.state() == ParseState::Done);
  CHECK(parser.response().status == 401);
  CHECK(parser.response().body == "{\"error\":\"nope\"}");
}

TEST_CASE("chunked response is reassembled") {
  const std::string message =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
  for (size_t split = 0; split <= message.size(); ++split) {
    ResponseParser parser;
    Fed fed = feedPieces(parser, message, {split});
    INFO("split at " << split);
    REQUIRE(fed.state == ParseState::Done);
    CHECK(fed.consumed == message.size());
    CHECK(parser.response().body == "hello world");
  }
}

TEST_CASE("close-delimited response completes at EOF") {
  const std::string message = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close";
  ResponseParser parser;
  CHECK(parser.feed(message.data(), message.size()) == message.size());
  CHECK(parser.state() == ParseState::NeedMore);
  parser.finishAtEof();
  REQUIRE(parser.state() == ParseState::Done);
  CHECK(parser.response().body == "until close");
}

TEST_CASE("EOF inside a response or before one is an error") {
  ResponseParser partial;
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  partial.feed(head.data(), head.size());
  partial.finishAtEof();
  CHECK(partial.state() == ParseState::Error);
  ResponseParser empty;
  empty.finishAtEof();
  CHECK(empty.state() == ParseState::Error);
  CHECK(empty.errorReason() == "connection closed before a response");
}

TEST_CASE("responses without a body: HEAD, 204, 304") {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n";
  ResponseParser parser;
  parser.expectNoBody(true);
  CHECK(parser.feed(head.data(), head.size()) == head.size());
  CHECK(parser.state() == ParseState::Done);
  for (const std::string status : {"204 No Content", "304 Not Modified"}) {
    ResponseParser p;
    std::string bytes = "HTTP/1.1 " + status + "\r\nContent-Length: 3\r\n\r\nabc";
    CHECK(p.feed(bytes.data(), bytes.size()) == bytes.size() - 3);
    CHECK(p.state() == ParseState::Done);
    CHECK(p.response().body.empty());
  }
}

TEST_CASE("response parser resets for a second response on the connection") {
  const std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string second = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  const std::string bytes = first + second;
  ResponseParser parser;
  size_t n = parser.feed(bytes.data(), bytes.size());
  REQUIRE(n == first.size());
  parser.reset();
  CHECK(parser.feed(bytes.data() + n, bytes.size() - n) == second.size());
  CHECK(parser.state() == ParseState::Done);
  CHECK(parser.response().status == 400);
  CHECK(parser.response().headers.size() == 1);
}

TEST_CASE("response limits and malformed responses are errors with a reason") {
  Limits limits;
  limits.max_body = 4;
  ResponseParser big(limits);
  std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  big.feed(bytes.data(), bytes.size());
  CHECK(big.state() == ParseState::Error);
  CHECK(big.errorReason() == "body too large");
  ResponseParser bad;
  std::string junk = "HTTP/1.1 2x0 OK\r\n\r\n";
  bad.feed(junk.data(), junk.size());
  CHECK(bad.state() == ParseState::Error);
  CHECK_FALSE(bad.errorReason().empty());
  for (const std::string line : {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200 O\x01K\r\n\r\n"}) {
    ResponseParser p;
    p.feed(line.data(), line.size());
    CHECK(p.state() == ParseState::Error);
  }
}

// ---- query and cookies ----

TEST_CASE("query parameters are percent-decoded with plus as space") {
  Request r;
  r.query = "token=a%2Bb+c%3D&empty=&flag&x%20y=1&dup=1&dup=2&bad=%zz%4";
  std::string v;
  CHECK(r.queryParam("token", &v));
  CHECK(v == "a+b c=");
  CHECK(r.queryParam("empty", &v));
  CHECK(v.empty());
  CHECK(r.queryParam("flag", &v));
  CHECK(v.empty());
  CHECK(r.queryParam("x y", &v));
  CHECK(v == "1");
  CHECK(r.queryParam("dup", &v));
  CHECK(v == "1");
  CHECK(r.queryParam("bad", &v));
  CHECK(v == "%zz%4");
  CHECK_FALSE(r.queryParam("missing", &v));
  CHECK_FALSE(r.queryParam("toke", &v));
  CHECK(r.queryParam("token", nullptr));
}

TEST_CASE("cookies are found across Cookie headers") {
  Request r;
  r.headers = {{"Cookie", "a=1; token=xyz;theme=\"dark\""}, {"cookie", " sid = s1 "}};
  std::string v;
  CHECK(r.cookie("token", &v));
  CHECK(v == "xyz");
  CHECK(r.cookie("a", &v));
  CHECK(v == "1");
  CHECK(r.cookie("theme", &v));
  CHECK(v == "dark");
  CHECK(r.cookie("sid", &v));
  CHECK(v == "s1");
  CHECK_FALSE(r.cookie("tok", &v));
  CHECK_FALSE(r.cookie("xyz", &v));
}

// ---- writers ----

TEST_CASE("serializeResponse writes status line, headers and Content-Length") {
  Response r;
  r.status = 401;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = "{}";
  CHECK(serializeResponse(r) ==
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\n\r\n{}");
  Response sw;
  sw.status = 101;
  sw.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
  CHECK(serializeResponse(sw) ==
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  Response own;
  own.status = 200;
  own.reason = "Fine";
  own.headers = {{"content-length", "0"}};
  CHECK(serializeResponse(own) == "HTTP/1.1 200 Fine\r\ncontent-length: 0\r\n\r\n");
  Response none;
  none.status = 204;
  CHECK(serializeResponse(none) == "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST_CASE("serialized headers cannot inject lines") {
  Response r;
  r.status = 200;
  r.headers = {{"X-User", "bob\r\nSet-Cookie: admin=1"}};
  CHECK(serializeResponse(r) ==
        "HTTP/1.1 200 OK\r\nX-User: bobSet-Cookie: admin=1\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("serializeRequest writes a request that parses back") {
  std::string get = serializeRequest("GET", "/socket.io/?EIO=4&transport=websocket",
                                     {{"Host", "up:9000"}, {"Upgrade", "websocket"}});
  CHECK(get ==
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: up:9000\r\n"
        "Upgrade: websocket\r\n\r\n");
  std::string post = serializeRequest("POST", "/p", {{"Host", "h"}}, "4hi");
  CHECK(post == "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n4hi");
  CHECK(parseRequest(post).body == "4hi");
  CHECK(serializeRequest("POST", "/p", {}) == "POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("errorResponse is JSON with Connection: close") {
  CHECK(errorResponse(426, "{\"error\":\"upgrade required\"}", {{"Sec-WebSocket-Version", "13"}}) ==
        "HTTP/1.1 426 Upgrade Required\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nSec-WebSocket-Version: 13\r\nContent-Length: 28\r\n\r\n"
        "{\"error\":\"upgrade required\"}");
}

TEST_CASE("reason phrases for common and unknown statuses") {
  CHECK(reasonPhrase(431) == "Request Header Fields Too Large");
  CHECK(reasonPhrase(429) == "Too Many Requests");
  CHECK(reasonPhrase(599).empty());
}

// ---- text codecs ----

TEST_CASE("base64 round trips every length and byte value") {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    std::string encoded = base64Encode(bytes);
    CHECK(encoded.size() == (bytes.size() + 2) / 3 * 4);
    std::string decoded;
    REQUIRE(base64Decode(encoded, &decoded));
    REQUIRE(decoded == bytes);
    bytes.push_back(static_cast<char>(i * 37));
  }
  CHECK(base64Encode("") == "");
  CHECK(base64Encode("f") == "Zg==");
  CHECK(base64Encode("fo") == "Zm8=");
  CHECK(base64Encode("foo") == "Zm9v");
  CHECK(base64Encode("\xff\xfe") == "//4=");
}

TEST_CASE("base64 decode rejects invalid input") {
  std::string out;
  CHECK_FALSE(base64Decode("Zg=", &out));  // length not a multiple of 4
  CHECK_FALSE(base64Decode("Zm9", &out));
  CHECK_FALSE(base64Decode("Z===", &out));      // too much padding
  CHECK_FALSE(base64Decode("Zg==Zg==", &out));  // padding in the middle
  CHECK_FALSE(base64Decode("Zm9v!A==", &out));  // not in the alphabet
  CHECK_FALSE(base64Decode("Zm-_", &out));      // base64url is not base64
  CHECK_FALSE(base64Decode("Zh==", &out));      // non-zero bits after the last byte
  CHECK_FALSE(base64Decode("Zm9=", &out));
  CHECK_FALSE(base64Decode("Zm 9v", &out));
  CHECK(base64Decode("", &out));
  CHECK(out.empty());
}

TEST_CASE("percentDecode keeps plus and malformed escapes") {
  CHECK(percentDecode("a%20b+c") == "a b+c");
  CHECK(percentDecode("%e2%82%AC") == "\xe2\x82\xac");
  CHECK(percentDecode("100%") == "100%");
  CHECK(percentDecode("%4") == "%4");
  CHECK(percentDecode("%G0") == "%G0");
  CHECK(percentDecode("%00") == std::string(1, '\0'));
}

TEST_CASE("jsonEscape escapes quotes, backslashes and control characters only") {
  CHECK(jsonEscape("say \"hi\"\\") == "say \\\"hi\\\"\\\\");
  CHECK(jsonEscape("a\nb\r\t\b\f") == "a\\nb\\r\\t\\b\\f");
  CHECK(jsonEscape(std::string("\x01\x1f", 2)) == "\\u0001\\u001f");
  CHECK(jsonEscape("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");
}

TEST_CASE("redactTarget keeps the path and hides every query value but Engine.IO's own") {
  CHECK(redactTarget("/chat") == "/chat");
  CHECK(redactTarget("/chat?") == "/chat?");
  CHECK(redactTarget("/chat?token=eyJ.abc.def") == "/chat?token=<redacted>");
  CHECK(redactTarget("/socket.io/?EIO=4&transport=polling&t=PZx1&sid=abc.def&token=s3cr3t") ==
        "/socket.io/?EIO=4&transport=polling&t=PZx1&sid=<redacted>&token=<redacted>");
  // A value of an Engine.IO parameter that is not plain text is not trusted either.
  CHECK(redactTarget("/s?EIO=4%20x&transport=") == "/s?EIO=<redacted>&transport=<redacted>");
  // A bare parameter, or a name that is not a name, may be the credential itself.
  CHECK(redactTarget("/s?eyJhbGciOiJIUzI1NiJ9.e30.sig") == "/s?<redacted>");
  CHECK(redactTarget("/s?short&a=1") == "/s?<redacted>&a=<redacted>");
  CHECK(redactTarget("/s?eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig=1") == "/s?<redacted>");
  CHECK(redactTarget("/s?a%3D=1&&b=2") == "/s?<redacted>&&b=<redacted>");
  // A Socket.IO v4 CONNECT namespace carries its auth the same way.
  CHECK(redactTarget("/admin?token=1") == "/admin?token=<redacted>");
}
