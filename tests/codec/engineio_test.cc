// Engine.IO codec tests: exact bytes for packets, payloads (v3 and v4) and the OPEN handshake.
#include "codec/engineio.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace std::string_literals;
using namespace std::string_view_literals;
using wsb::eio::DecodeError;
using wsb::eio::Packet;
using wsb::eio::PacketType;
using wsb::eio::PayloadFormat;
using wsb::eio::Version;

namespace {

Packet text(PacketType type, std::string_view data = {}) { return Packet{type, false, data}; }
Packet bin(std::string_view data, PacketType type = PacketType::Message) {
  return Packet{type, true, data};
}

std::string encode(Version version, PayloadFormat format, const std::vector<Packet>& packets) {
  std::string out;
  wsb::eio::encodePayload(version, format, packets, out);
  return out;
}

struct Decoded {
  DecodeError error;
  std::vector<Packet> packets;
  std::string storage;
};

Decoded decode(Version version, PayloadFormat format, std::string_view body, size_t max = 1000000) {
  Decoded d;
  d.error = wsb::eio::decodePayload(version, format, body, max, d.packets, d.storage);
  return d;
}

}  // namespace

TEST_CASE("every text packet type decodes to its type and data, and encodes back", "[eio]") {
  struct Case {
    std::string_view wire;
    PacketType type;
    std::string_view data;
  };
  const Case cases[] = {
      {R"(0{"sid":"x"})", PacketType::Open, R"({"sid":"x"})"},
      {"1", PacketType::Close, ""},
      {"2", PacketType::Ping, ""},
      {"2probe", PacketType::Ping, "probe"},
      {"3probe", PacketType::Pong, "probe"},
      {"4hello", PacketType::Message, "hello"},
      {"4", PacketType::Message, ""},
      {"5", PacketType::Upgrade, ""},
      {"6", PacketType::Noop, ""},
  };
  for (Version version : {Version::V3, Version::V4}) {
    for (const Case& c : cases) {
      Packet packet;
      std::string storage;
      REQUIRE(wsb::eio::decodeText(version, c.wire, &packet, &storage) == DecodeError::None);
      CHECK(packet.type == c.type);
      CHECK_FALSE(packet.binary);
      CHECK(packet.data == c.data);
      CHECK(packet.data.data() == c.wire.data() + 1);  // a view, not a copy
      std::string out;
      wsb::eio::appendText(out, packet.type, packet.data);
      CHECK(out == c.wire);
    }
  }
}

TEST_CASE("a text packet with a bad type is rejected", "[eio]") {
  Packet packet;
  std::string storage;
  CHECK(wsb::eio::decodeText(Version::V4, "", &packet, &storage) == DecodeError::Empty);
  CHECK(wsb::eio::decodeText(Version::V4, "7", &packet, &storage) == DecodeError::UnknownType);
  CHECK(wsb::eio::decodeText(Version::V4, "xhello", &packet, &storage) == DecodeError::UnknownType);
  CHECK(wsb::eio::decodeText(Version::V3, " 4", &packet, &storage) == DecodeError::UnknownType);
  CHECK(wsb::eio::decodeText(Version::V3, "b", &packet, &storage) == DecodeError::Empty);
  CHECK(wsb::eio::decodeText(Version::V3, "b9AQID", &packet, &storage) == DecodeError::UnknownType);
  CHECK(wsb::eio::decodeText(Version::V4, "bAQ*D", &packet, &storage) ==
        DecodeError::InvalidBase64);
}

TEST_CASE("base64 text packets are binary messages: v4 without, v3 with a type digit", "[eio]") {
  Packet packet;
  std::string storage;
  REQUIRE(wsb::eio::decodeText(Version::V4, "bAQIDBA==", &packet, &storage) == DecodeError::None);
  CHECK(packet.type == PacketType::Message);
  CHECK(packet.binary);
  CHECK(packet.data == "\x01\x02\x03\x04"sv);
  REQUIRE(wsb::eio::decodeText(Version::V3, "b4AQIDBA==", &packet, &storage) == DecodeError::None);
  CHECK(packet.type == PacketType::Message);
  CHECK(packet.data == "\x01\x02\x03\x04"sv);

  std::string out;
  wsb::eio::appendBase64Packet(out, Version::V4, bin("\x01\x02\x03\x04"sv));
  CHECK(out == "bAQIDBA==");
  out.clear();
  wsb::eio::appendBase64Packet(out, Version::V3, bin("\x01\x02\x03\x04"sv));
  CHECK(out == "b4AQIDBA==");
}

TEST_CASE("websocket binary frames: v4 raw message bytes, v3 a leading type byte", "[eio]") {
  Packet packet;
  std::string storage;
  REQUIRE(wsb::eio::decodeFrame(Version::V4, true, "\x01\x02\x03\x04"sv, &packet, &storage) ==
          DecodeError::None);
  CHECK(packet == bin("\x01\x02\x03\x04"sv));
  REQUIRE(wsb::eio::decodeFrame(Version::V4, true, ""sv, &packet, &storage) == DecodeError::None);
  CHECK(packet == bin(""));
  REQUIRE(wsb::eio::decodeFrame(Version::V3, true, "\x04\x01\x02\x03\x04"sv, &packet, &storage) ==
          DecodeError::None);
  CHECK(packet == bin("\x01\x02\x03\x04"sv));
  CHECK(wsb::eio::decodeFrame(Version::V3, true, ""sv, &packet, &storage) == DecodeError::Empty);
  CHECK(wsb::eio::decodeFrame(Version::V3, true, "\x07\x01"sv, &packet, &storage) ==
        DecodeError::UnknownType);
  REQUIRE(wsb::eio::decodeFrame(Version::V3, false, "4hi", &packet, &storage) == DecodeError::None);
  CHECK(packet == text(PacketType::Message, "hi"));

  CHECK(wsb::eio::binaryFramePrefix(Version::V4, PacketType::Message).empty());
  CHECK(wsb::eio::binaryFramePrefix(Version::V3, PacketType::Message) == "\x04"sv);
}

TEST_CASE("v4 polling payload joins packets with a record separator", "[eio]") {
  const std::string_view wire =
      "4hello\x1e"
      "2\x1e"
      "4world\x1e"
      "bAQIDBA=="sv;
  Decoded d = decode(Version::V4, PayloadFormat::Text, wire);
  REQUIRE(d.error == DecodeError::None);
  REQUIRE(d.packets.size() == 4);
  CHECK(d.packets[0] == text(PacketType::Message, "hello"));
  CHECK(d.packets[1] == text(PacketType::Ping));
  CHECK(d.packets[2] == text(PacketType::Message, "world"));
  CHECK(d.packets[3] == bin("\x01\x02\x03\x04"sv));
  CHECK(encode(Version::V4, PayloadFormat::Text, d.packets) == wire);
  CHECK(encode(Version::V4, PayloadFormat::Text, {text(PacketType::Noop)}) == "6");
}

TEST_CASE("v4 polling payload stops at the first invalid packet", "[eio]") {
  CHECK(decode(Version::V4, PayloadFormat::Text, "").error == DecodeError::Empty);
  Decoded d = decode(Version::V4, PayloadFormat::Text,
                     "4a\x1e\x1e"
                     "4b");
  CHECK(d.error == DecodeError::Empty);
  REQUIRE(d.packets.size() == 1);
  CHECK(d.packets[0] == text(PacketType::Message, "a"));
  CHECK(decode(Version::V4, PayloadFormat::Text,
               "4a\x1e"
               "9")
            .error == DecodeError::UnknownType);
  CHECK(decode(Version::V4, PayloadFormat::Text, "4a\x1e").error == DecodeError::Empty);
}

TEST_CASE("v3 text payload lengths count UTF-16 code units, not bytes", "[eio]") {
  // "€" is 3 bytes and 1 unit; "😀" is 4 bytes and 2 units (a surrogate pair).
  const std::string_view wire =
      "6:4hello2:4\xe2\x82\xac"
      "3:4\xf0\x9f\x98\x80"
      "1:2"sv;
  Decoded d = decode(Version::V3, PayloadFormat::Text, wire);
  REQUIRE(d.error == DecodeError::None);
  REQUIRE(d.packets.size() == 4);
  CHECK(d.packets[0] == text(PacketType::Message, "hello"));
  CHECK(d.packets[1] == text(PacketType::Message, "\xe2\x82\xac"));
  CHECK(d.packets[2] == text(PacketType::Message, "\xf0\x9f\x98\x80"));
  CHECK(d.packets[3] == text(PacketType::Ping));
  CHECK(encode(Version::V3, PayloadFormat::Text, d.packets) == wire);
  CHECK(wsb::eio::utf16Length("a\xe2\x82\xac\xf0\x9f\x98\x80") == 4);
}

TEST_CASE("v3 text payload carries binary as b4 + base64, length counting all of it", "[eio]") {
  Decoded d = decode(Version::V3, PayloadFormat::Text, "10:b4AQIDBA==6:4hello");
  REQUIRE(d.error == DecodeError::None);
  REQUIRE(d.packets.size() == 2);
  CHECK(d.packets[0] == bin("\x01\x02\x03\x04"sv));
  CHECK(d.packets[1] == text(PacketType::Message, "hello"));
  CHECK(encode(Version::V3, PayloadFormat::Text, d.packets) == "10:b4AQIDBA==6:4hello");
  // A client that asked for b64=1 gets text even with binary packets.
  CHECK(wsb::eio::responseFormat(Version::V3, false, d.packets) == PayloadFormat::Text);
}

TEST_CASE("v3 empty payload is 0: both ways", "[eio]") {
  CHECK(encode(Version::V3, PayloadFormat::Text, {}) == "0:");
  Decoded d = decode(Version::V3, PayloadFormat::Text, "0:");
  CHECK(d.error == DecodeError::None);
  CHECK(d.packets.empty());
  CHECK(encode(Version::V3, PayloadFormat::Text, {text(PacketType::Close)}) == "1:1");
}

TEST_CASE("v3 text payload with a bad length prefix is rejected", "[eio]") {
  CHECK(decode(Version::V3, PayloadFormat::Text, "").error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Text, ":4a").error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Text, "x:4a").error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Text, "7:4hello").error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Text, "5:4hello").error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Text, "2:4a3").error == DecodeError::InvalidLength);
  // A length ending inside a surrogate pair would split the character.
  CHECK(decode(Version::V3, PayloadFormat::Text, "2:4\xf0\x9f\x98\x80").error ==
        DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Text, "2:4\xff").error == DecodeError::InvalidUtf8);
  CHECK(decode(Version::V3, PayloadFormat::Text, "2:9a").error == DecodeError::UnknownType);
}

TEST_CASE("v3 binary payload: kind, length digits as bytes, 0xFF, packet", "[eio]") {
  const std::string_view wire =
      "\x00\x06\xff"
      "4hello"
      "\x01\x05\xff\x04\x01\x02\x03\x04"sv;
  Decoded d = decode(Version::V3, PayloadFormat::Binary, wire);
  REQUIRE(d.error == DecodeError::None);
  REQUIRE(d.packets.size() == 2);
  CHECK(d.packets[0] == text(PacketType::Message, "hello"));
  CHECK(d.packets[1] == bin("\x01\x02\x03\x04"sv));
  CHECK(wsb::eio::responseFormat(Version::V3, true, d.packets) == PayloadFormat::Binary);
  CHECK(encode(Version::V3, PayloadFormat::Binary, d.packets) == wire);

  // Lengths of text entries count UTF-8 bytes; ten and more take several digit bytes.
  std::vector<Packet> packets = {text(PacketType::Message,
                                      "\xe2\x82\xac"
                                      "abcdefghi")};
  CHECK(encode(Version::V3, PayloadFormat::Binary, packets) ==
        "\x00\x01\x03\xff"
        "4\xe2\x82\xac"
        "abcdefghi"sv);
}

TEST_CASE("v3 binary payload with a bad entry is rejected", "[eio]") {
  CHECK(decode(Version::V3, PayloadFormat::Binary,
               "\x02\x01\xff"
               "4"sv)
            .error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Binary,
               "\x00\x09\xff"
               "4hi"sv)
            .error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Binary,
               "\x00\x0a\xff"
               "4"sv)
            .error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Binary,
               "\x00\x02"
               "4a"sv)
            .error == DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Binary, "\x00\xff"sv).error ==
        DecodeError::InvalidLength);
  CHECK(decode(Version::V3, PayloadFormat::Binary, "\x01\x00\xff"sv).error == DecodeError::Empty);
  CHECK(decode(Version::V3, PayloadFormat::Binary, "\x01\x01\xff\x08"sv).error ==
        DecodeError::UnknownType);
  CHECK(decode(Version::V3, PayloadFormat::Binary,
               "\x00\x02\xff"
               "4\xc3"sv)
            .error == DecodeError::InvalidUtf8);
}

TEST_CASE("a payload over the max is too large and nothing is decoded", "[eio]") {
  Decoded d = decode(Version::V4, PayloadFormat::Text, "4hello", 5);
  CHECK(d.error == DecodeError::TooLarge);
  CHECK(d.packets.empty());
  CHECK(decode(Version::V4, PayloadFormat::Text, "4hello", 6).error == DecodeError::None);
  CHECK(decode(Version::V3, PayloadFormat::Text, "6:4hello", 7).error == DecodeError::TooLarge);
  CHECK(wsb::eio::kPayloadTooLargeStatus == 413);
}

TEST_CASE("binary data views stay valid across many base64 packets", "[eio]") {
  std::string wire;
  std::vector<Packet> packets;
  std::vector<std::string> blobs;
  for (int i = 0; i < 50; ++i) blobs.push_back(std::string(static_cast<size_t>(i), char(i)));
  for (const auto& blob : blobs) packets.push_back(bin(blob));
  wire = encode(Version::V4, PayloadFormat::Text, packets);
  Decoded d = decode(Version::V4, PayloadFormat::Text, wire);
  REQUIRE(d.error == DecodeError::None);
  REQUIRE(d.packets.size() == blobs.size());
  for (size_t i = 0; i < blobs.size(); ++i) CHECK(d.packets[i].data == blobs[i]);
}

TEST_CASE("OPEN handshake renders the five keys in engine.io's order", "[eio]") {
  wsb::eio::Handshake handshake;
  handshake.sid = "lv_VI97HAXpY6yYWAAAC";
  handshake.upgrades = {"websocket"};
  std::string out;
  wsb::eio::appendHandshake(out, handshake);
  CHECK(out == R"({"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,)"
               R"("pingTimeout":20000,"maxPayload":1000000})");
  handshake.upgrades.clear();
  handshake.max_payload.reset();
  out.clear();
  wsb::eio::appendHandshake(out, handshake);
  CHECK(out == R"({"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,)"
               R"("pingTimeout":20000})");
}

TEST_CASE("OPEN handshake parses v4 and v3 (no maxPayload) and rejects malformed", "[eio]") {
  wsb::eio::Handshake h;
  REQUIRE(wsb::eio::parseHandshake(
              R"({"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,)"
              R"("maxPayload":1e6,"extra":{"x":[1]}})",
              &h) == false);  // maxPayload must be an integer
  REQUIRE(wsb::eio::parseHandshake(
      R"({"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,)"
      R"("maxPayload":1000000,"extra":{"x":[1]}})",
      &h));
  CHECK(h.sid == "abc");
  CHECK(h.upgrades == std::vector<std::string>{"websocket"});
  CHECK(h.ping_interval == 300);
  CHECK(h.ping_timeout == 200);
  CHECK(h.max_payload == 1000000u);
  REQUIRE(wsb::eio::parseHandshake(
      R"({"sid":"q","upgrades":[],"pingInterval":25000,"pingTimeout":5000})", &h));
  CHECK(h.sid == "q");
  CHECK(h.upgrades.empty());
  CHECK_FALSE(h.max_payload);

  CHECK_FALSE(wsb::eio::parseHandshake(R"({"upgrades":[],"pingInterval":1,"pingTimeout":1})", &h));
  CHECK_FALSE(
      wsb::eio::parseHandshake(R"({"sid":1,"upgrades":[],"pingInterval":1,"pingTimeout":1})", &h));
  CHECK_FALSE(wsb::eio::parseHandshake(
      R"({"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":1} x)", &h));
  CHECK_FALSE(wsb::eio::parseHandshake(R"({"sid":"a",)", &h));
  CHECK_FALSE(wsb::eio::parseHandshake("", &h));
}

TEST_CASE("rewriting the sid of an OPEN keeps every other byte", "[eio]") {
  const std::string_view json =
      R"( { "upgrades" : ["websocket"], "sid" : "old\"id", "pingInterval":25000,)"
      R"("pingTimeout":20000, "maxPayload" : 1000000 , "x":"sid"} )";
  std::string out;
  REQUIRE(wsb::eio::replaceSid(json, "NEW", &out));
  CHECK(out == R"( { "upgrades" : ["websocket"], "sid" : "NEW", "pingInterval":25000,)"
               R"("pingTimeout":20000, "maxPayload" : 1000000 , "x":"sid"} )");
  CHECK_FALSE(wsb::eio::replaceSid(R"({"sid":5})", "NEW", &out));
  CHECK_FALSE(wsb::eio::replaceSid(R"({"id":"a"})", "NEW", &out));
  CHECK_FALSE(wsb::eio::replaceSid(R"({"sid":"a")", "NEW", &out));
}

TEST_CASE("server errors carry engine.io's codes, statuses and messages", "[eio]") {
  namespace se = wsb::eio::server_error;
  CHECK(wsb::eio::errorBody(se::kTransportUnknown) ==
        R"({"code":0,"message":"Transport unknown"})");
  CHECK(wsb::eio::errorBody(se::kSessionIdUnknown) ==
        R"({"code":1,"message":"Session ID unknown"})");
  CHECK(wsb::eio::errorBody(se::kBadHandshakeMethod) ==
        R"({"code":2,"message":"Bad handshake method"})");
  CHECK(wsb::eio::errorBody(se::kBadRequest) == R"({"code":3,"message":"Bad request"})");
  CHECK(wsb::eio::errorBody(se::kForbidden) == R"({"code":4,"message":"Forbidden"})");
  CHECK(wsb::eio::errorBody(se::kUnsupportedProtocolVersion) ==
        R"({"code":5,"message":"Unsupported protocol version"})");
  CHECK(wsb::eio::errorBody(se::kForbidden, "no \"token\"") ==
        R"({"code":4,"message":"no \"token\""})");
  CHECK(se::kForbidden.status == 403);
  CHECK(se::kBadRequest.status == 400);
  CHECK(se::kUnsupportedProtocolVersion.status == 400);
}

TEST_CASE("base64 matches Node's output and accepts URL-safe or unpadded input", "[eio]") {
  std::string out;
  wsb::eio::appendBase64(out, "");
  CHECK(out.empty());
  wsb::eio::appendBase64(out, "f");
  CHECK(out == "Zg==");
  out.clear();
  wsb::eio::appendBase64(out, "fo");
  CHECK(out == "Zm8=");
  out.clear();
  wsb::eio::appendBase64(out, "\xfb\xff\xbf"sv);
  CHECK(out == "+/+/");

  std::string bytes;
  CHECK(wsb::eio::decodeBase64("-_-_", bytes));
  CHECK(bytes == "\xfb\xff\xbf"sv);
  bytes.clear();
  CHECK(wsb::eio::decodeBase64("Zm8", bytes));
  CHECK(bytes == "fo");
  bytes.clear();
  CHECK_FALSE(wsb::eio::decodeBase64("Zm8==", bytes));
  CHECK_FALSE(wsb::eio::decodeBase64("Z", bytes));
  CHECK_FALSE(wsb::eio::decodeBase64("Zm 8", bytes));
  CHECK_FALSE(wsb::eio::decodeBase64("Zg=a", bytes));
}
