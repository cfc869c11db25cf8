// Unit tests for the RFC 6455 frame codec: wire examples, splits, violations, UTF-8, masking.
#include "codec/ws_frame.h"

#include <simdjson.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

namespace ws = wsb::ws;
using ws::Opcode;
using ws::Role;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes toBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

const uint8_t kKey[4] = {0x37, 0xfa, 0x21, 0x3d};  // the RFC 6455 5.7 example key

// A frame as `reader` expects it: masked with kKey toward a server, bare toward a client.
// `first` is the raw first byte (FIN, RSV, opcode), so tests can write illegal ones.
Bytes rawFrame(Role reader, uint8_t first, std::string_view payload) {
  std::string frame = ws::makeFrame(Opcode::Binary, payload, true,
                                    reader == Role::Server ? kKey : nullptr);
  frame[0] = static_cast<char>(first);
  return toBytes(frame);
}

Bytes frameFor(Role reader, Opcode op, std::string_view payload, bool fin = true) {
  return toBytes(ws::makeFrame(op, payload, fin, reader == Role::Server ? kKey : nullptr));
}

std::string closePayload(uint16_t code, std::string_view reason = "") {
  std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return p.append(reason);
}

// Records sink calls as lines; data is gathered per message so any split of the input gives the
// same lines.
struct RecordingSink {
  std::vector<std::string> events;
  std::string data;
  bool pause_on_end = false;
  bool pause_on_control = false;

  void onMessageBegin(Opcode op) {
    events.push_back(op == Opcode::Text ? "begin text" : op == Opcode::Binary ? "begin binary"
                                                                                : "begin ???");
  }
  void onMessageData(const uint8_t* p, size_t n) {
    CHECK(n > 0);
    data.append(reinterpret_cast<const char*>(p), n);
  }
  bool onMessageEnd() {
    events.push_back("end " + data);
    data.clear();
    return !pause_on_end;
  }
  bool onControl(Opcode op, const uint8_t* p, size_t n) {
    const char* name = op == Opcode::Ping ? "ping " : op == Opcode::Pong ? "pong " : "close ";
    events.push_back(name + std::string(reinterpret_cast<const char*>(p), n));
    return !pause_on_control;
  }
};

struct Outcome {
  std::vector<std::string> events;
  uint16_t error = 0;
};

// Feeds `input` cut at `cuts` (ascending offsets), each piece from a fresh copy so in-place
// unmasking never leaks between runs.
template <Role role>
Outcome parseCut(const Bytes& input, const std::vector<size_t>& cuts,
                 uint64_t max_message = 16u << 20) {
  Bytes copy = input;
  ws::FrameParser<role> parser(max_message);
  RecordingSink sink;
  size_t from = 0;
  for (size_t i = 0; i <= cuts.size() && !parser.failed(); ++i) {
    size_t to = i < cuts.size() ? cuts[i] : copy.size();
    size_t consumed = parser.consume(copy.data() + from, to - from, sink);
    if (!parser.failed()) REQUIRE(consumed == to - from);
    from = to;
  }
  return {sink.events, parser.error().code};
}

Outcome parse(Role role, const Bytes& input, const std::vector<size_t>& cuts = {},
              uint64_t max_message = 16u << 20) {
  return role == Role::Server ? parseCut<Role::Server>(input, cuts, max_message)
                              : parseCut<Role::Client>(input, cuts, max_message);
}

std::vector<size_t> everyByte(size_t size) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < size; ++i) cuts.push_back(i);
  return cuts;
}

using Events = std::vector<std::string>;

}  // namespace

// ---- RFC 6455 section 5.7 examples ----

TEST_CASE("RFC 5.7 single-frame unmasked text parses and writes byte-exact") {
  Bytes wire = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  CHECK(toBytes(ws::makeFrame(Opcode::Text, "Hello")) == wire);
  Outcome out = parse(Role::Client, wire);
  CHECK(out.error == 0);
  CHECK(out.events == Events{"begin text", "end Hello"});
}

TEST_CASE("RFC 5.7 single-frame masked text parses and writes byte-exact") {
  Bytes wire = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  CHECK(toBytes(ws::makeFrame(Opcode::Text, "Hello", true, kKey)) == wire);
  Outcome out = parse(Role::Server, wire);
  CHECK(out.error == 0);
  CHECK(out.events == Events{"begin text", "end Hello"});
}

TEST_CASE("RFC 5.7 fragmented unmasked text parses and writes byte-exact") {
  Bytes first = {0x01, 0x03, 0x48, 0x65, 0x6c};
  Bytes second = {0x80, 0x02, 0x6c, 0x6f};
  CHECK(toBytes(ws::makeFrame(Opcode::Text, "Hel", false)) == first);
  CHECK(toBytes(ws::makeFrame(Opcode::Continuation, "lo", true)) == second);
  Outcome out = parse(Role::Client, cat({first, second}));
  CHECK(out.error == 0);
  CHECK(out.events == Events{"begin text", "end Hello"});
}

TEST_CASE("RFC 5.7 unmasked ping and masked pong parse and write byte-exact") {
  Bytes ping = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  Bytes pong = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  CHECK(toBytes(ws::makeFrame(Opcode::Ping, "Hello")) == ping);
  CHECK(toBytes(ws::makeFrame(Opcode::Pong, "Hello", true, kKey)) == pong);
  CHECK(parse(Role::Client, ping).events == Events{"ping Hello"});
  CHECK(parse(Role::Server, pong).events == Events{"pong Hello"});
}

TEST_CASE("RFC 5.7 256-byte binary uses a 16-bit length") {
  std::string payload(256, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i);
  Bytes wire = cat({{0x82, 0x7E, 0x01, 0x00}, toBytes(payload)});
  CHECK(toBytes(ws::makeFrame(Opcode::Binary, payload)) == wire);
  uint8_t header[ws::kMaxHeaderSize];
  REQUIRE(ws::writeFrameHeader(header, Opcode::Binary, true, 256) == 4);
  CHECK(Bytes(header, header + 4) == Bytes{0x82, 0x7E, 0x01, 0x00});
  Outcome out = parse(Role::Client, wire);
  CHECK(out.error == 0);
  CHECK(out.events == Events{"begin binary", "end " + payload});
}

TEST_CASE("RFC 5.7 64 KiB binary uses a 64-bit length") {
  std::string payload(65536, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7);
  Bytes header_bytes = {0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
  Bytes wire = cat({header_bytes, toBytes(payload)});
  CHECK(toBytes(ws::makeFrame(Opcode::Binary, payload)) == wire);
  uint8_t header[ws::kMaxHeaderSize];
  REQUIRE(ws::writeFrameHeader(header, Opcode::Binary, true, 65536) == 10);
  CHECK(Bytes(header, header + 10) == header_bytes);
  Outcome out = parse(Role::Client, wire, {1, 5, 10, 11, 40000});
  CHECK(out.error == 0);
  CHECK(out.events == Events{"begin binary", "end " + payload});
}

// ---- writing ----

TEST_CASE("frame header length encodings switch at 126 and 65536") {
  uint8_t h[ws::kMaxHeaderSize];
  CHECK(ws::writeFrameHeader(h, Opcode::Text, true, 125) == 2);
  CHECK(Bytes(h, h + 2) == Bytes{0x81, 125});
  CHECK(ws::writeFrameHeader(h, Opcode::Text, false, 126) == 4);
  CHECK(Bytes(h, h + 4) == Bytes{0x01, 0x7E, 0x00, 0x7E});
  CHECK(ws::writeFrameHeader(h, Opcode::Binary, true, 65535) == 4);
  CHECK(Bytes(h, h + 4) == Bytes{0x82, 0x7E, 0xFF, 0xFF});
  CHECK(ws::writeFrameHeader(h, Opcode::Continuation, true, 0x0102030405060708ull) == 10);
  CHECK(Bytes(h, h + 10) == Bytes{0x80, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(ws::writeFrameHeader(h, Opcode::Close, true, 2, kKey) == 6);
  CHECK(Bytes(h, h + 6) == Bytes{0x88, 0x82, 0x37, 0xfa, 0x21, 0x3d});
  CHECK(ws::writeFrameHeader(h, Opcode::Ping, true, 70000, kKey) == 14);
  CHECK(Bytes(h, h + 14) ==
        Bytes{0x89, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70, 0x37, 0xfa, 0x21, 0x3d});
}

// ---- splits ----

namespace {

// Text, a 16-bit-length binary, a text fragmented mid-character with a ping between fragments,
// an empty binary, an empty pong and a close, as `reader` receives them.
Bytes mixedStream(Role reader) {
  std::string binary(130, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i);
  return cat({frameFor(reader, Opcode::Text, "Hello"), frameFor(reader, Opcode::Binary, binary),
              frameFor(reader, Opcode::Text, "H\xC3", false), frameFor(reader, Opcode::Ping, "p"),
              frameFor(reader, Opcode::Continuation, "\xA9llo \xF0\x9F", false),
              frameFor(reader, Opcode::Continuation, "\x98\x80", true),
              frameFor(reader, Opcode::Binary, ""), frameFor(reader, Opcode::Pong, ""),
              frameFor(reader, Opcode::Close, closePayload(1000, "bye"))});
}

Events mixedEvents() {
  std::string binary(130, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i);
  return {"begin text",   "end Hello", "begin binary",
          "end " + binary, "begin text", "ping p",
          "end H\xC3\xA9llo \xF0\x9F\x98\x80", "begin binary", "end ",
          "pong ",        "close " + closePayload(1000, "bye")};
}

}  // namespace

TEST_CASE("every two-cut split of a mixed stream gives the same events") {
  for (Role role : {Role::Server, Role::Client}) {
    Bytes stream = mixedStream(role);
    Events expected = mixedEvents();
    REQUIRE(parse(role, stream).events == expected);
    for (size_t i = 0; i <= stream.size(); ++i) {
      for (size_t j = i; j <= stream.size(); ++j) {
        Outcome out = parse(role, stream, {i, j});
        if (out.error != 0 || out.events != expected) FAIL("cuts " << i << "," << j);
      }
    }
  }
}

TEST_CASE("one byte per consume gives the same events") {
  for (Role role : {Role::Server, Role::Client}) {
    Bytes stream = mixedStream(role);
    Outcome out = parse(role, stream, everyByte(stream.size()));
    CHECK(out.error == 0);
    CHECK(out.events == mixedEvents());
  }
}

TEST_CASE("a control frame between fragments leaves the message in progress") {
  ws::FrameParser<Role::Client> parser;
  RecordingSink sink;
  Bytes part = cat({frameFor(Role::Client, Opcode::Binary, "ab", false),
                    frameFor(Role::Client, Opcode::Ping, "x")});
  REQUIRE(parser.consume(part.data(), part.size(), sink) == part.size());
  CHECK(parser.inMessage());
  Bytes rest = frameFor(Role::Client, Opcode::Continuation, "cd");
  REQUIRE(parser.consume(rest.data(), rest.size(), sink) == rest.size());
  CHECK_FALSE(parser.inMessage());
  CHECK(sink.events == Events{"begin binary", "ping x", "end abcd"});
}

TEST_CASE("non-minimal length encodings are accepted") {
  for (Role role : {Role::Server, Role::Client}) {
    uint8_t mask_bit = role == Role::Server ? 0x80 : 0x00;
    Bytes key = role == Role::Server ? Bytes(kKey, kKey + 4) : Bytes{};
    Bytes payload = toBytes("Hello");
    if (role == Role::Server) ws::applyMask(payload.data(), payload.size(), kKey);
    Bytes len16 = cat({{0x81, static_cast<uint8_t>(mask_bit | 126), 0, 5}, key, payload});
    Bytes len64 = cat({{0x81, static_cast<uint8_t>(mask_bit | 127), 0, 0, 0, 0, 0, 0, 0, 5}, key,
                       payload});
    CHECK(parse(role, len16).events == Events{"begin text", "end Hello"});
    CHECK(parse(role, len64).events == Events{"begin text", "end Hello"});
  }
}

// ---- violations ----

namespace {

struct FrameSpec {
  uint8_t first;
  std::string payload;
};

struct Violation {
  std::string name;
  std::vector<FrameSpec> frames;
  uint16_t code;
};

std::vector<Violation> violations() {
  std::vector<Violation> v = {
      {"RSV1 set", {{0xC1, "a"}}, 1002},
      {"RSV2 set", {{0xA1, "a"}}, 1002},
      {"RSV3 set", {{0x91, "a"}}, 1002},
      {"RSV1 on a ping", {{0xC9, ""}}, 1002},
      {"ping without FIN", {{0x09, ""}}, 1002},
      {"close without FIN", {{0x08, closePayload(1000)}}, 1002},
      {"ping of 126 bytes", {{0x89, std::string(126, 'x')}}, 1002},
      {"pong of 126 bytes", {{0x8A, std::string(126, 'x')}}, 1002},
      {"continuation without a message", {{0x80, "a"}}, 1002},
      {"unfinished continuation without a message", {{0x00, "a"}}, 1002},
      {"continuation after a finished message", {{0x81, "a"}, {0x80, "b"}}, 1002},
      {"text inside a fragmented text", {{0x01, "a"}, {0x81, "b"}}, 1002},
      {"binary inside a fragmented text", {{0x01, "a"}, {0x02, "b"}}, 1002},
      {"text inside a fragmented binary after a ping", {{0x02, "a"}, {0x89, ""}, {0x81, "b"}},
       1002},
      {"close payload of 1 byte", {{0x88, "\x03"}}, 1002},
      {"close reason not UTF-8", {{0x88, closePayload(1000, "\xC0\x80")}}, 1007},
      {"close reason with truncated UTF-8", {{0x88, closePayload(1000, "ok\xE2\x82")}}, 1007},
      {"text with byte FF", {{0x81, "ab\xFF"}}, 1007},
      {"text truncated at FIN", {{0x81, "\xE2\x82"}}, 1007},
      {"fragmented text truncated at FIN", {{0x01, "a"}, {0x80, "\xF0\x9F\x98"}}, 1007},
      {"text over max_message", {{0x81, std::string(1001, 'x')}}, 1009},
      {"binary over max_message", {{0x82, std::string(1001, 'x')}}, 1009},
      {"fragments over max_message", {{0x02, std::string(600, 'x')}, {0x80, std::string(401, 'x')}},
       1009},
  };
  for (uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    v.push_back({"opcode " + std::to_string(op), {{static_cast<uint8_t>(0x80 | op), ""}}, 1002});
  }
  for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    v.push_back({"close code " + std::to_string(code), {{0x88, closePayload(code)}}, 1002});
  }
  return v;
}

}  // namespace

TEST_CASE("each protocol violation closes with its code, whole or byte by byte") {
  for (const Violation& violation : violations()) {
    for (Role role : {Role::Server, Role::Client}) {
      Bytes input;
      for (const FrameSpec& f : violation.frames) {
        Bytes frame = rawFrame(role, f.first, f.payload);
        input.insert(input.end(), frame.begin(), frame.end());
      }
      // A valid frame behind the bad one must never be reported.
      Bytes trailer = frameFor(role, Opcode::Ping, "after");
      input.insert(input.end(), trailer.begin(), trailer.end());
      INFO(violation.name << (role == Role::Server ? " (server)" : " (client)"));
      Outcome whole = parse(role, input, {}, 1000);
      CHECK(whole.error == violation.code);
      Outcome bytewise = parse(role, input, everyByte(input.size()), 1000);
      CHECK(bytewise.error == violation.code);
      CHECK(bytewise.events == whole.events);
      for (const std::string& e : whole.events) CHECK(e != "ping after");
    }
  }
}

TEST_CASE("unmasked client frame closes 1002") {
  Outcome out = parse(Role::Server, {0x81, 0x01, 'a'});
  CHECK(out.error == 1002);
  CHECK(out.events.empty());
}

TEST_CASE("masked server frame closes 1002") {
  Outcome out = parse(Role::Client, {0x81, 0x81, 1, 2, 3, 4, 'a'});
  CHECK(out.error == 1002);
}

TEST_CASE("64-bit length with the high bit set closes 1002") {
  CHECK(parse(Role::Client, {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}).error == 1002);
  CHECK(parse(Role::Server, {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}).error == 1002);
}

TEST_CASE("a bad frame is refused on its first two bytes") {
  ws::FrameParser<Role::Client> parser;
  RecordingSink sink;
  uint8_t first_two[2] = {0xC1, 0x05};  // RSV1, rest of the frame not yet here
  parser.consume(first_two, 2, sink);
  CHECK(parser.failed());
  CHECK(parser.error().code == 1002);
}

TEST_CASE("an oversized message is refused on its header, before the payload") {
  ws::FrameParser<Role::Server> parser(1000);
  RecordingSink sink;
  uint8_t header[ws::kMaxHeaderSize];
  size_t n = ws::writeFrameHeader(header, Opcode::Binary, true, 1001, kKey);
  parser.consume(header, n, sink);
  CHECK(parser.error().code == 1009);
  CHECK(sink.events.empty());
}

TEST_CASE("a message of exactly max_message passes, in one frame or in fragments") {
  Bytes one = frameFor(Role::Client, Opcode::Binary, std::string(1000, 'x'));
  CHECK(parse(Role::Client, one, {}, 1000).error == 0);
  Bytes two = cat({frameFor(Role::Client, Opcode::Binary, std::string(600, 'x'), false),
                   frameFor(Role::Client, Opcode::Ping, std::string(125, 'p')),
                   frameFor(Role::Client, Opcode::Continuation, std::string(400, 'x'))});
  Outcome out = parse(Role::Client, two, {}, 1000);
  CHECK(out.error == 0);
  CHECK(out.events.size() == 3);
  // The size count starts over with each message.
  CHECK(parse(Role::Client, cat({one, one}), {}, 1000).error == 0);
}

TEST_CASE("after an error the parser stays failed and consumes nothing") {
  ws::FrameParser<Role::Client> parser;
  RecordingSink sink;
  Bytes bad = cat({frameFor(Role::Client, Opcode::Text, "ok"), {0x83, 0x00}});
  size_t consumed = parser.consume(bad.data(), bad.size(), sink);
  CHECK(consumed <= bad.size());
  CHECK(consumed >= 4);
  REQUIRE(parser.failed());
  CHECK(parser.error().code == 1002);
  CHECK(std::string(parser.error().reason) == "unknown opcode");
  Bytes good = frameFor(Role::Client, Opcode::Text, "more");
  CHECK(parser.consume(good.data(), good.size(), sink) == 0);
  CHECK(parser.failed());
  CHECK(sink.events == Events{"begin text", "end ok"});
}

// ---- UTF-8 ----

namespace {

struct Utf8Case {
  const char* name;
  std::string bytes;
  bool valid;
};

const std::vector<Utf8Case>& utf8Cases() {
  static const std::vector<Utf8Case> cases = {
      {"ASCII", "hello, world", true},
      {"2-byte", "\xC3\xA9", true},
      {"3-byte", "\xE2\x82\xAC", true},
      {"4-byte", "\xF0\x9F\x98\x80", true},
      {"U+D7FF below surrogates", "\xED\x9F\xBF", true},
      {"U+E000 above surrogates", "\xEE\x80\x80", true},
      {"U+10FFFF", "\xF4\x8F\xBF\xBF", true},
      {"U+0800 smallest 3-byte", "\xE0\xA0\x80", true},
      {"U+10000 smallest 4-byte", "\xF0\x90\x80\x80", true},
      {"overlong 2-byte C0", "\xC0\x80", false},
      {"overlong 2-byte C1", "\xC1\xBF", false},
      {"overlong 3-byte", "\xE0\x9F\xBF", false},
      {"overlong 4-byte", "\xF0\x8F\xBF\xBF", false},
      {"surrogate D800", "\xED\xA0\x80", false},
      {"surrogate DFFF", "\xED\xBF\xBF", false},
      {"U+110000", "\xF4\x90\x80\x80", false},
      {"lead F5", "\xF5\x80\x80\x80", false},
      {"byte FE", "\xFE", false},
      {"lone continuation", "a\x80", false},
      {"missing continuation", "\xC3(", false},
      {"truncated 3-byte", "\xE2\x82", false},
      {"truncated 4-byte", "\xF0\x9F\x98", false},
      {"invalid after 8 ASCII", "abcdefgh\xFF", false},
      {"long ASCII then 2-byte", "abcdefghijklmnopqrstuvwxyz\xC3\xA9", true},
  };
  return cases;
}

}  // namespace

TEST_CASE("UTF-8 edge cases in text messages: valid passes, invalid closes 1007") {
  for (const Utf8Case& c : utf8Cases()) {
    INFO(c.name);
    for (Role role : {Role::Server, Role::Client}) {
      Bytes wire = frameFor(role, Opcode::Text, c.bytes);
      for (const Outcome& out : {parse(role, wire), parse(role, wire, everyByte(wire.size()))}) {
        if (c.valid) {
          CHECK(out.error == 0);
          CHECK(out.events == Events{"begin text", "end " + c.bytes});
        } else {
          CHECK(out.error == 1007);
          CHECK(out.events == Events{"begin text"});
        }
      }
    }
  }
}

TEST_CASE("Utf8Validator agrees with whole-buffer validation for every split") {
  for (const Utf8Case& c : utf8Cases()) {
    INFO(c.name);
    const auto* p = reinterpret_cast<const uint8_t*>(c.bytes.data());
    for (size_t cut = 0; cut <= c.bytes.size(); ++cut) {
      ws::Utf8Validator v;
      bool ok = v.feed(p, cut) && v.feed(p + cut, c.bytes.size() - cut) && v.complete();
      CHECK(ok == c.valid);
    }
  }
}

TEST_CASE("Utf8Validator's bulk path agrees with simdjson at every split of long text") {
  std::string base;
  while (base.size() < 150) base += "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  std::vector<std::string> inputs;
  for (size_t len = 60; len <= base.size(); ++len) inputs.push_back(base.substr(0, len));
  for (size_t i = 0; i < base.size(); ++i) {
    for (char bad : {'\xFF', '\x80', '\xC0', '\xED'}) {
      std::string s = base;
      s[i] = bad;
      inputs.push_back(s);
    }
  }
  for (const std::string& s : inputs) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    bool want = simdjson::validate_utf8(s.data(), s.size());
    for (size_t cut = 0; cut <= s.size(); ++cut) {
      ws::Utf8Validator v;
      bool ok = v.feed(p, cut) && v.feed(p + cut, s.size() - cut) && v.complete();
      if (ok != want) FAIL("length " << s.size() << " cut " << cut);
    }
  }
}

TEST_CASE("a character split across fragments is valid") {
  Bytes wire = cat({frameFor(Role::Server, Opcode::Text, "\xF0\x9F", false),
                    frameFor(Role::Server, Opcode::Continuation, "\x98", false),
                    frameFor(Role::Server, Opcode::Continuation, "\x80")});
  Outcome out = parse(Role::Server, wire);
  CHECK(out.error == 0);
  CHECK(out.events == Events{"begin text", "end \xF0\x9F\x98\x80"});
}

TEST_CASE("invalid UTF-8 closes 1007 before the message ends") {
  for (std::string bad : {"\xC0", "ok\xED\xA0", "\xF4\x90"}) {
    ws::FrameParser<Role::Client> parser;
    RecordingSink sink;
    Bytes wire = frameFor(Role::Client, Opcode::Text, bad, false);
    parser.consume(wire.data(), wire.size(), sink);
    CHECK(parser.error().code == 1007);
    CHECK(sink.data.empty());  // invalid text never reaches the sink
  }
}

TEST_CASE("binary messages are not UTF-8 checked") {
  Outcome out = parse(Role::Client, frameFor(Role::Client, Opcode::Binary, "\xFF\xC0"));
  CHECK(out.error == 0);
}

TEST_CASE("Utf8Validator matches simdjson on all 1-3 byte inputs and 4-byte boundaries") {
  auto check = [](const uint8_t* p, size_t n) {
    ws::Utf8Validator whole;
    bool ours = whole.feed(p, n) && whole.complete();
    ws::Utf8Validator split;  // one byte at a time
    bool ours_split = true;
    for (size_t i = 0; i < n && ours_split; ++i) ours_split = split.feed(p + i, 1);
    ours_split = ours_split && split.complete();
    bool theirs = simdjson::validate_utf8(reinterpret_cast<const char*>(p), n);
    if (ours != theirs || ours_split != theirs) {
      FAIL("mismatch on " << n << " bytes: " << int{p[0]} << " " << (n > 1 ? int{p[1]} : -1)
                          << " " << (n > 2 ? int{p[2]} : -1) << " " << (n > 3 ? int{p[3]} : -1));
    }
  };
  uint8_t b[4];
  for (int a = 0; a < 256; ++a) {
    b[0] = static_cast<uint8_t>(a);
    check(b, 1);
    for (int c = 0; c < 256; ++c) {
      b[1] = static_cast<uint8_t>(c);
      check(b, 2);
      if (a < 0xC0) continue;  // after ASCII or a stray continuation: a shorter case
      for (int d = 0; d < 256; ++d) {
        b[2] = static_cast<uint8_t>(d);
        check(b, 3);
      }
    }
  }
  const uint8_t edges[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  for (int a = 0xF0; a < 0x100; ++a) {
    for (uint8_t c : edges) {
      for (uint8_t d : edges) {
        for (uint8_t e : edges) {
          uint8_t four[4] = {static_cast<uint8_t>(a), c, d, e};
          check(four, 4);
        }
      }
    }
  }
}

// ---- close payloads ----

TEST_CASE("isValidCloseCode follows RFC 6455 7.4 plus 1012-1014") {
  for (uint16_t ok : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                      3000, 4000, 4999}) {
    CHECK(ws::isValidCloseCode(ok));
  }
  for (uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    CHECK_FALSE(ws::isValidCloseCode(bad));
  }
}

TEST_CASE("makeClosePayload writes the code big-endian and the reason") {
  CHECK(ws::makeClosePayload(1000, "bye") == std::string("\x03\xE8" "bye"));
  CHECK(ws::makeClosePayload(4001, "") == std::string("\x0F\xA1"));
  CHECK(ws::makeClosePayload(1005, "ignored").empty());
}

TEST_CASE("makeClosePayload truncates the reason to 123 bytes on a character boundary") {
  CHECK(ws::makeClosePayload(1000, std::string(200, 'a')).size() == 125);
  std::string exact = "a";
  for (int i = 0; i < 61; ++i) exact += "\xC3\xA9";  // 123 bytes
  CHECK(ws::makeClosePayload(1000, exact) == "\x03\xE8" + exact);
  std::string euro = exact.substr(1) + "\xE2\x82\xAC";  // 122 + 3: 123 falls inside the euro
  std::string cut = ws::makeClosePayload(1000, euro);
  CHECK(cut == "\x03\xE8" + exact.substr(1));
  const auto* p = reinterpret_cast<const uint8_t*>(cut.data());
  CHECK(ws::closePayloadError(p, cut.size()) == 0);
}

TEST_CASE("parseClosePayload reads the code and reason and refuses bad payloads") {
  uint16_t code = 0;
  std::string_view reason = "x";
  CHECK(ws::parseClosePayload(nullptr, 0, &code, &reason));
  CHECK(code == 1005);
  CHECK(reason.empty());
  const uint8_t bye[] = {0x03, 0xE8, 'b', 'y', 'e'};
  CHECK(ws::parseClosePayload(bye, sizeof bye, &code, &reason));
  CHECK(code == 1000);
  CHECK(reason == "bye");
  const uint8_t app[] = {0x0B, 0xB8};
  CHECK(ws::parseClosePayload(app, 2, &code, &reason));
  CHECK(code == 3000);
  const uint8_t one[] = {0x03};
  CHECK_FALSE(ws::parseClosePayload(one, 1, &code, &reason));
  CHECK(ws::closePayloadError(one, 1) == 1002);
  const uint8_t no_status[] = {0x03, 0xED};
  CHECK_FALSE(ws::parseClosePayload(no_status, 2, &code, &reason));
  CHECK(ws::closePayloadError(no_status, 2) == 1002);
  const uint8_t bad_reason[] = {0x03, 0xE8, 0xED, 0xA0, 0x80};
  CHECK_FALSE(ws::parseClosePayload(bad_reason, sizeof bad_reason, &code, &reason));
  CHECK(ws::closePayloadError(bad_reason, sizeof bad_reason) == 1007);
}

TEST_CASE("an empty close frame is delivered as is") {
  Outcome out = parse(Role::Server, frameFor(Role::Server, Opcode::Close, ""));
  CHECK(out.error == 0);
  CHECK(out.events == Events{"close "});
}

// ---- pause and resume ----

TEST_CASE("sink returning false stops after that frame; consume resumes with the rest") {
  Bytes a = frameFor(Role::Server, Opcode::Text, "a");
  Bytes b = frameFor(Role::Server, Opcode::Binary, "bb", false);
  Bytes ping = frameFor(Role::Server, Opcode::Ping, "c");
  Bytes b_end = frameFor(Role::Server, Opcode::Continuation, "b");
  Bytes close = frameFor(Role::Server, Opcode::Close, closePayload(1001));
  Bytes stream = cat({a, b, ping, b_end, close});
  ws::FrameParser<Role::Server> parser;
  RecordingSink sink;
  sink.pause_on_end = true;
  sink.pause_on_control = true;
  std::vector<size_t> returns;
  size_t offset = 0;
  while (offset < stream.size()) {
    size_t c = parser.consume(stream.data() + offset, stream.size() - offset, sink);
    REQUIRE_FALSE(parser.failed());
    returns.push_back(c);
    offset += c;
  }
  CHECK(returns == std::vector<size_t>{a.size(), b.size() + ping.size(), b_end.size(),
                                       close.size()});
  CHECK(sink.events == Events{"begin text", "end a", "begin binary", "ping c", "end bbb",
                              "close " + closePayload(1001)});
}

TEST_CASE("pausing on the last frame of the buffer returns the whole length") {
  ws::FrameParser<Role::Client> parser;
  RecordingSink sink;
  sink.pause_on_end = true;
  Bytes a = frameFor(Role::Client, Opcode::Text, "a");
  CHECK(parser.consume(a.data(), a.size(), sink) == a.size());
  CHECK(parser.consume(a.data(), 0, sink) == 0);
  CHECK(parser.consume(a.data(), a.size(), sink) == a.size());
  CHECK(sink.events == Events{"begin text", "end a", "begin text", "end a"});
}

TEST_CASE("pausing with a split frame behind it resumes seamlessly") {
  Bytes stream = cat({frameFor(Role::Server, Opcode::Ping, "1"),
                      frameFor(Role::Server, Opcode::Text, std::string(300, 'z'))});
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    Bytes copy = stream;
    ws::FrameParser<Role::Server> parser;
    RecordingSink sink;
    sink.pause_on_control = true;
    size_t offset = 0;
    for (size_t limit : {cut, copy.size()}) {
      while (offset < limit && !parser.failed()) {
        offset += parser.consume(copy.data() + offset, limit - offset, sink);
      }
    }
    REQUIRE_FALSE(parser.failed());
    CHECK(sink.events == Events{"ping 1", "begin text", "end " + std::string(300, 'z')});
  }
}

// ---- masking ----

TEST_CASE("applyMask matches bytewise XOR at every phase, length and alignment") {
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  for (size_t phase = 0; phase < 4; ++phase) {
    for (size_t len = 0; len <= 40; ++len) {
      for (size_t align = 0; align < 8; ++align) {
        uint8_t buf[48];
        uint8_t original[48];
        for (size_t i = 0; i < sizeof buf; ++i) buf[i] = original[i] = static_cast<uint8_t>(i * 31);
        ws::applyMask(buf + align, len, key, phase);
        for (size_t i = 0; i < sizeof buf; ++i) {
          bool inside = i >= align && i < align + len;
          uint8_t want = inside ? original[i] ^ key[(phase + i - align) & 3] : original[i];
          if (buf[i] != want) FAIL("phase " << phase << " len " << len << " at " << i);
        }
        ws::applyMask(buf + align, len, key, phase);
        REQUIRE(std::memcmp(buf, original, sizeof buf) == 0);
      }
    }
  }
}

TEST_CASE("applyMask in two pieces with carried phase equals one pass") {
  const uint8_t key[4] = {0xA1, 0xB2, 0xC3, 0xD4};
  for (size_t split = 0; split <= 40; ++split) {
    uint8_t once[40];
    uint8_t twice[40];
    for (size_t i = 0; i < 40; ++i) once[i] = twice[i] = static_cast<uint8_t>(i);
    ws::applyMask(once, 40, key);
    ws::applyMask(twice, split, key, 0);
    ws::applyMask(twice + split, 40 - split, key, split & 3);
    CHECK(std::memcmp(once, twice, 40) == 0);
  }
}
