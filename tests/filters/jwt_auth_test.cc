// auth.jwt filter: every token source, refusals, claims as attributes and headers, the first
// message mode, PEM and JWKS keys with rotation by kid, and config errors.
#include "filters/jwt_auth.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "filters/jwt.h"
#include "tests/filters/fake_callbacks.h"

namespace wsb::filters {
namespace {

using namespace testing;
using Calls = std::vector<std::string>;

constexpr int64_t kNow = 1'700'000'000;
const std::string kSecret = "correct horse battery staple";

std::string hsToken(std::string_view payload, const std::string& secret = kSecret,
                    const char* kid = nullptr) {
  std::string error;
  std::optional<jwt::Key> key = jwt::Key::fromSecret(secret, &error);
  REQUIRE(key);
  if (kid != nullptr) key->setKid(kid);
  std::optional<std::string> token = jwt::sign(jwt::Algorithm::HS256, *key, payload, &error);
  REQUIRE(token);
  return *token;
}

const std::string& alice() {
  static const std::string token = hsToken(
      R"({"sub":"alice","name":"Alice","admin":true,"n":42,"roles":["a"],"exp":1700000100})");
  return token;
}

FactoryPtr build(std::string_view body, std::vector<std::string>* errors) {
  return buildJwtAuthFactory(specFrom(body, "jwt"), errors);
}

FactoryPtr build(std::string_view body) {
  std::vector<std::string> errors;
  FactoryPtr factory = build(body, &errors);
  INFO((errors.empty() ? "" : errors[0]));
  REQUIRE(factory != nullptr);
  return factory;
}

std::string hsConfig(std::string_view extra = "") {
  return "type = 'auth.jwt'\nsecret = '" + kSecret + "'\nalgorithms = ['HS256']\n" +
         std::string(extra);
}

struct Connection {
  explicit Connection(const FactoryPtr& factory) {
    cb.clock_.setUnixSeconds(kNow);
    filter = factory->create(cb);
  }
  Status handshake() {
    HandshakeContext context = hs.context();
    return filter->onHandshake(context);
  }
  Status connect() {
    HandshakeContext context = hs.context();
    return filter->onConnect(context);
  }
  Status send(std::string_view text, Direction direction = Direction::ToUpstream) {
    Message m = textMessage(direction, text);
    return filter->onMessage(m);
  }
  FakeCallbacks cb;
  Handshake hs;
  std::unique_ptr<Filter> filter;
};

TEST_CASE("auth.jwt accepts a valid token and exposes its scalar claims as attributes") {
  Connection c(build(hsConfig("token_from = ['query:token']\n")));
  c.hs.query("room=1&token=" + alice());
  CHECK(c.handshake() == Status::Continue);
  CHECK(c.cb.take().empty());
  CHECK(c.cb.attributes() == Attributes{{"jwt.admin", "true"},
                                        {"jwt.exp", "1700000100"},
                                        {"jwt.n", "42"},
                                        {"jwt.name", "Alice"},
                                        {"jwt.sub", "alice"}});
  CHECK(c.hs.upstream_headers.empty());
}

TEST_CASE("auth.jwt refuses a missing token with 401 and a bad one with 403") {
  FactoryPtr factory = build(hsConfig("token_from = ['query:token']\n"));
  Connection none(factory);
  CHECK(none.handshake() == Status::Stop);
  CHECK(none.cb.take() == Calls{"reject 401 missing token"});
  Connection empty(factory);
  empty.hs.query("token=");
  CHECK(empty.handshake() == Status::Stop);
  CHECK(empty.cb.take() == Calls{"reject 401 missing token"});

  for (const std::string& bad :
       {hsToken(R"({"sub":"alice"})", "another secret"), std::string("not.a.token"),
        hsToken(R"({"sub":"alice","exp":1699999999})"),
        hsToken(R"({"sub":"alice","nbf":1700000100})")}) {
    Connection c(factory);
    c.hs.query("token=" + bad);
    CHECK(c.handshake() == Status::Stop);
    CHECK(c.cb.take() == Calls{"reject 403 invalid token"});
    CHECK(c.cb.attributes().empty());
  }
}

TEST_CASE("auth.jwt tells a Socket.IO client only 'unauthorized'") {
  FactoryPtr factory = build(hsConfig());
  // Without a token in the HTTP request the handshake passes: the CONNECT packet may carry it.
  Connection missing(factory);
  missing.hs.socketio_client = true;
  CHECK(missing.handshake() == Status::Continue);
  CHECK(missing.cb.take().empty());
  CHECK(missing.connect() == Status::Stop);
  CHECK(missing.cb.take() == Calls{"reject 401 unauthorized"});
  Connection bad(factory);
  bad.hs.socketio_client = true;
  bad.hs.socketio_auth = R"({"token":"x.y.z"})";
  CHECK(bad.handshake() == Status::Stop);
  CHECK(bad.cb.take() == Calls{"reject 403 unauthorized"});
  CHECK(bad.connect() == Status::Stop);
  CHECK(bad.cb.take() == Calls{"reject 403 unauthorized"});
}

TEST_CASE("auth.jwt checks the token of a Socket.IO CONNECT auth payload") {
  FactoryPtr factory = build(hsConfig());
  Connection c(factory);
  c.hs.socketio_client = true;
  c.hs.socketio_auth = R"({"token":")" + alice() + R"("})";
  CHECK(c.connect() == Status::Continue);
  CHECK(c.cb.take().empty());
  CHECK(c.cb.attributes().count("jwt.sub") == 1);
}

TEST_CASE("auth.jwt checks issuer, audience, leeway and required claims") {
  FactoryPtr factory =
      build(hsConfig("issuer = 'https://issuer.test'\naudience = ['chat', 'api']\nleeway = '30s'\n"
                     "required_claims = ['sub']\ntoken_from = ['query:t']\n"));
  auto verdict = [&](std::string_view payload) {
    Connection c(factory);
    c.hs.query("t=" + hsToken(payload));
    return c.handshake();
  };
  CHECK(verdict(R"({"sub":"a","iss":"https://issuer.test","aud":"api","exp":1699999980})") ==
        Status::Continue);  // expired 20 s ago, within the leeway
  CHECK(verdict(R"({"sub":"a","iss":"https://issuer.test","aud":"api","exp":1699999960})") ==
        Status::Stop);
  CHECK(verdict(R"({"sub":"a","iss":"https://evil.test","aud":"api"})") == Status::Stop);
  CHECK(verdict(R"({"sub":"a","iss":"https://issuer.test","aud":"web"})") == Status::Stop);
  CHECK(verdict(R"({"iss":"https://issuer.test","aud":"chat"})") == Status::Stop);
}

TEST_CASE("auth.jwt refuses an algorithm outside the allow-list") {
  Connection c(build("type = 'auth.jwt'\nsecret = 'k'\nalgorithms = ['HS512']\n"));
  c.hs.header("Authorization", "Bearer " + hsToken(R"({"sub":"a"})", "k"));
  CHECK(c.handshake() == Status::Stop);
  CHECK(c.cb.take() == Calls{"reject 403 invalid token"});
}

TEST_CASE("auth.jwt reads Authorization: Bearer, other headers and cookies") {
  FactoryPtr factory =
      build(hsConfig("token_from = ['header:authorization', 'header:x-token', 'cookie:jwt']\n"));
  Connection bearer(factory);
  bearer.hs.header("authorization", "bearer " + alice());
  CHECK(bearer.handshake() == Status::Continue);
  Connection basic(factory);
  basic.hs.header("Authorization", "Basic " + alice());  // not a bearer token: the next source
  CHECK(basic.handshake() == Status::Stop);
  CHECK(basic.cb.take() == Calls{"reject 401 missing token"});
  Connection custom(factory);
  custom.hs.header("X-Token", alice());
  CHECK(custom.handshake() == Status::Continue);
  Connection cookie(factory);
  cookie.hs.header("Cookie", "theme=dark; jwt=" + alice() + "; lang=en");
  CHECK(cookie.handshake() == Status::Continue);
  CHECK(cookie.cb.attributes().at("jwt.sub") == "alice");
}

TEST_CASE("auth.jwt reads a token from Sec-WebSocket-Protocol") {
  FactoryPtr factory = build(hsConfig("token_from = ['protocol']\n"));
  Connection pair(factory);
  pair.hs.header("Sec-WebSocket-Protocol", "chat, access_token, " + alice());
  CHECK(pair.handshake() == Status::Continue);
  // The marker and the token are the proxy's to strip; "chat" still goes upstream.
  CHECK(pair.cb.consumed_protocols == std::vector<std::string>{"access_token", alice()});
  Connection prefixed(factory);
  prefixed.hs.header("Sec-WebSocket-Protocol", "chat")
      .header("Sec-WebSocket-Protocol", "bearer." + alice());
  CHECK(prefixed.handshake() == Status::Continue);
  CHECK(prefixed.cb.consumed_protocols == std::vector<std::string>{"bearer." + alice()});
  Connection plain(factory);
  plain.hs.header("Sec-WebSocket-Protocol", "chat, " + alice());
  CHECK(plain.handshake() == Status::Stop);
  CHECK(plain.cb.take() == Calls{"reject 401 missing token"});
  CHECK(plain.cb.consumed_protocols.empty());
}

TEST_CASE("auth.jwt leaves Sec-WebSocket-Protocol alone when another source has the token") {
  FactoryPtr factory = build(hsConfig("token_from = ['query:token', 'protocol']\n"));
  Connection c(factory);
  c.hs.query("token=" + alice()).header("Sec-WebSocket-Protocol", "access_token, other");
  CHECK(c.handshake() == Status::Continue);
  CHECK(c.cb.consumed_protocols.empty());
}

TEST_CASE("auth.jwt reads a field of the Socket.IO CONNECT auth payload") {
  FactoryPtr factory = build(hsConfig("token_from = ['socketio_auth:creds.jwt']\n"));
  Connection c(factory);
  c.hs.socketio_client = true;
  c.hs.socketio_auth = R"({"v":1,"creds":{"other":"x","jwt":")" + alice() + R"("}})";
  CHECK(c.handshake() == Status::Continue);
  CHECK(c.cb.attributes().at("jwt.sub") == "alice");
  Connection number(factory);
  number.hs.socketio_auth = R"({"creds":{"jwt":5}})";
  CHECK(number.handshake() == Status::Stop);
  CHECK(number.cb.take() == Calls{"reject 401 missing token"});
}

TEST_CASE("auth.jwt takes the first source that has a token, even a bad one") {
  FactoryPtr factory = build(hsConfig("token_from = ['query:token', 'header:authorization']\n"));
  Connection c(factory);
  c.hs.query("token=bad.token.here");
  c.hs.header("Authorization", "Bearer " + alice());
  CHECK(c.handshake() == Status::Stop);
  CHECK(c.cb.take() == Calls{"reject 403 invalid token"});
}

TEST_CASE("auth.jwt forwards configured claims as upstream headers") {
  FactoryPtr factory = build(
      hsConfig("token_from = ['query:token']\n"
               "forward_claims = { 'x-user-id' = 'sub', 'x-roles' = 'roles', 'x-org' = 'org' }\n"));
  Connection c(factory);
  c.hs.query("token=" + alice());
  CHECK(c.handshake() == Status::Continue);
  REQUIRE(c.hs.upstream_headers.size() == 2);  // no org claim: no header
  CHECK(c.hs.upstream_headers[0].name == "x-roles");
  CHECK(c.hs.upstream_headers[0].value == R"(["a"])");
  CHECK(c.hs.upstream_headers[1].name == "x-user-id");
  CHECK(c.hs.upstream_headers[1].value == "alice");

  Connection injected(factory);
  injected.hs.query("token=" + hsToken(R"({"sub":"alice\r\nx-admin: 1"})"));
  CHECK(injected.handshake() == Status::Stop);
  CHECK(injected.cb.take() == Calls{"reject 403 invalid token"});
  CHECK(injected.hs.upstream_headers.empty());
}

TEST_CASE("auth.jwt first_message: the first client message carries the token and is dropped") {
  FactoryPtr factory =
      build(hsConfig("token_from = ['query:token', 'first_message:data.token']\n"));
  Connection c(factory);
  CHECK(c.handshake() == Status::Continue);
  c.filter->onEstablished();
  CHECK(c.send("welcome", Direction::ToClient) == Status::Drop);  // held back until then
  CHECK(c.send(R"({"event":"start","data":{"token":")" + alice() + R"("}})") == Status::Drop);
  CHECK(c.cb.attributes().at("jwt.sub") == "alice");
  CHECK(c.send("hello") == Status::Continue);
  CHECK(c.send("hi", Direction::ToClient) == Status::Continue);
  c.cb.advance(std::chrono::seconds(60));
  CHECK(c.cb.take().empty());

  Connection with_query(factory);
  with_query.hs.query("token=" + alice());
  CHECK(with_query.handshake() == Status::Continue);
  CHECK(with_query.send("first") == Status::Continue);  // authenticated at the handshake
}

TEST_CASE("auth.jwt first_message can forward the message") {
  Connection c(
      build(hsConfig("token_from = ['first_message:token']\nforward_first_message = true\n")));
  CHECK(c.handshake() == Status::Continue);
  CHECK(c.send(R"({"token":")" + alice() + R"("})") == Status::Continue);
}

TEST_CASE("auth.jwt first_message closes 1008 on a bad, missing or late token") {
  FactoryPtr factory =
      build(hsConfig("token_from = ['first_message:data.token']\nfirst_message_timeout = '5s'\n"));
  Connection bad(factory);
  bad.handshake();
  bad.filter->onEstablished();
  CHECK(bad.send(R"({"event":"start","data":{"token":"x.y.z"}})") == Status::Drop);
  CHECK(bad.cb.take() == Calls{"close 1008 invalid token"});
  bad.cb.advance(std::chrono::seconds(10));
  CHECK(bad.cb.take().empty());

  Connection missing(factory);
  missing.handshake();
  CHECK(missing.send("hello") == Status::Drop);
  CHECK(missing.cb.take() == Calls{"close 1008 missing token"});

  Connection late(factory);
  late.handshake();
  late.filter->onEstablished();
  late.cb.advance(std::chrono::milliseconds(4999));
  CHECK(late.cb.take().empty());
  late.cb.advance(std::chrono::milliseconds(1));
  CHECK(late.cb.take() == Calls{"close 1008 missing token"});

  Connection event_first(factory);
  event_first.handshake();
  Event e = event(Direction::ToUpstream, "chat");
  CHECK(event_first.filter->onEvent(e) == Status::Drop);
  CHECK(event_first.cb.take() == Calls{"close 1008 missing token"});
}

// Temporary files for key material, removed at the end of the test.
struct TempDir {
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("wsb_jwt_auth_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
  std::filesystem::path path;
  static inline int counter = 0;
};

TEST_CASE("auth.jwt verifies ES256 tokens with a public key PEM file") {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(pkey != nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  std::string error;
  std::optional<jwt::Key> key = jwt::Key::fromEvp(pkey, &error);
  EVP_PKEY_free(pkey);
  REQUIRE(key);
  std::string token = *jwt::sign(jwt::Algorithm::ES256, *key, R"({"sub":"es"})");

  TempDir dir;
  std::string file = dir.write("key.pem", pem);
  FactoryPtr factory = build("type = 'auth.jwt'\npublic_key = '" + file +
                             "'\nalgorithms = ['ES256']\ntoken_from = ['query:token']\n");
  Connection ok(factory);
  ok.hs.query("token=" + token);
  CHECK(ok.handshake() == Status::Continue);
  CHECK(ok.cb.attributes().at("jwt.sub") == "es");
  // An HS256 token keyed with the public key's PEM bytes never verifies against that key.
  std::string signing_input = jwt::base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})") + "." +
                              jwt::base64UrlEncode(R"({"sub":"es"})");
  unsigned char mac[32];
  size_t mac_len = 0;
  REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, pem.data(), pem.size(),
                    reinterpret_cast<const unsigned char*>(signing_input.data()),
                    signing_input.size(), mac, sizeof mac, &mac_len) != nullptr);
  std::string forged =
      signing_input + "." +
      jwt::base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
  Connection hs256(factory);
  hs256.hs.query("token=" + forged);
  CHECK(hs256.handshake() == Status::Stop);
  CHECK(hs256.cb.take() == Calls{"reject 403 invalid token"});
}

TEST_CASE("auth.jwt picks up a rotated JWKS when a token names an unknown kid") {
  auto jwks = [](std::vector<std::pair<std::string, std::string>> keys) {
    std::string out = R"({"keys":[)";
    for (size_t i = 0; i < keys.size(); ++i) {
      out += (i ? "," : "") + std::string(R"({"kty":"oct","alg":"HS256","kid":")") + keys[i].first +
             R"(","k":")" + jwt::base64UrlEncode(keys[i].second) + R"("})";
    }
    return out + "]}";
  };
  TempDir dir;
  std::string file = dir.write("jwks.json", jwks({{"old", "old-secret"}}));
  FactoryPtr factory = build("type = 'auth.jwt'\njwks = '" + file +
                             "'\nalgorithms = ['HS256']\ntoken_from = ['query:token']\n");
  std::string old_token = hsToken(R"({"sub":"o"})", "old-secret", "old");
  std::string new_token = hsToken(R"({"sub":"n"})", "new-secret", "new");

  Connection first(factory);
  first.hs.query("token=" + old_token);
  CHECK(first.handshake() == Status::Continue);
  Connection early(factory);
  early.hs.query("token=" + new_token);
  CHECK(early.handshake() == Status::Stop);  // unknown kid: reloaded, still unknown

  dir.write("jwks.json", jwks({{"old", "old-secret"}, {"new", "new-secret"}}));
  Connection soon(factory);
  soon.cb.clock_.advance(std::chrono::seconds(9));
  soon.hs.query("token=" + new_token);
  CHECK(soon.handshake() == Status::Stop);  // the file is read at most every 10 s

  Connection later(factory);
  later.cb.clock_.advance(std::chrono::seconds(10));
  later.hs.query("token=" + new_token);
  CHECK(later.handshake() == Status::Continue);
  CHECK(later.cb.attributes().at("jwt.sub") == "n");
}

TEST_CASE("auth.jwt reads the secret from the environment") {
  ::setenv("WSB_TEST_JWT_SECRET", kSecret.c_str(), 1);
  Connection c(
      build("type = 'auth.jwt'\nsecret = '${WSB_TEST_JWT_SECRET}'\n"
            "algorithms = ['HS256']\n"));
  c.hs.header("Authorization", "Bearer " + alice());
  CHECK(c.handshake() == Status::Continue);
}

TEST_CASE("auth.jwt config errors carry line and column") {
  std::vector<std::string> errors;
  CHECK(build("type = 'auth.jwt'\nsecret = 'k'\nalgorithms = ['HS256', 'none']\n"
              "token_from = ['first_message:t', 'url:token']\n"
              "forward_claims = { 'x user' = 'sub' }\n",
              &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:4:24: 'none' is not a supported algorithm (HS256, HS384, "
                      "HS512, RS256, RS384, RS512, ES256, ES384)",
                      "test.toml:5:15: 'first_message:t' must come last in 'token_from'",
                      "test.toml:5:34: 'url:token' is not a token source (query:NAME, "
                      "header:NAME, cookie:NAME, protocol, socketio_auth:FIELD, "
                      "first_message:FIELD)",
                      "test.toml:6:31: 'x user' is not a header name"});
  errors.clear();
  CHECK(build("type = 'auth.jwt'\nalgorithms = ['RS256']\n", &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:1:1: [filter.jwt] needs 'secret', 'public_key' or 'jwks'"});
  errors.clear();
  CHECK(build("type = 'auth.jwt'\nsecret = 'k'\njwks = 'missing.json'\n", &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:4:8: 'jwks' file not found: missing.json",
                      "test.toml:1:1: missing required key 'algorithms' in [filter.jwt] (such "
                      "as [\"HS256\"])"});
  errors.clear();
  CHECK(build("type = 'auth.jwt'\nsecret = 'k'\nalgorithms = ['RS256']\n", &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("test.toml:3:10: ", 0) == 0);
}

}  // namespace
}  // namespace wsb::filters
