// Tests for the envelope <-> Socket.IO event mapping: shapes, errors, round trips, binary.
#include "codec/envelope.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace env = wsb::envelope;
using env::Message;
using env::ParseStatus;
using env::Shape;

namespace {

struct Parsed {
  ParseStatus status;
  Message message;
  std::string error;
};

Parsed parseJson(std::string_view text, bool allow_nsp = false) {
  Parsed p;
  p.status = env::parse(text, {Shape::Json, allow_nsp}, &p.message, &p.error);
  return p;
}

Parsed parseArray(std::string_view text) {
  Parsed p;
  p.status = env::parse(text, {Shape::Array, false}, &p.message, &p.error);
  return p;
}

Message event(std::string name, std::string args, std::optional<uint64_t> ack = std::nullopt,
              std::string nsp = "") {
  Message m;
  m.event = std::move(name);
  m.args = std::move(args);
  m.ack = ack;
  m.nsp = std::move(nsp);
  return m;
}

Message ackAnswer(uint64_t ack, std::string args) {
  Message m;
  m.kind = Message::Kind::AckAnswer;
  m.ack = ack;
  m.args = std::move(args);
  return m;
}

void requireInvalid(std::string_view text, const char* error, bool allow_nsp = false) {
  INFO(text);
  const Parsed p = parseJson(text, allow_nsp);
  CHECK(p.status == ParseStatus::Invalid);
  CHECK(p.error == error);
}

void requireNotEnvelope(std::string_view text, const char* error, Shape shape = Shape::Json) {
  INFO(text);
  Parsed p;
  p.status = env::parse(text, {shape, true}, &p.message, &p.error);
  CHECK(p.status == ParseStatus::NotEnvelope);
  CHECK(p.error == error);
}

std::string render(const Message& m, Shape shape = Shape::Json) {
  if (m.kind == Message::Kind::AckAnswer) return env::renderAckAnswer(shape, *m.ack, m.args, m.nsp);
  return env::renderEvent(shape, m.event, m.args, m.ack, m.nsp);
}

}  // namespace

TEST_CASE("json envelope with data maps to one argument, bytes kept") {
  const Parsed p = parseJson(R"({"event": "chat", "data": {"text": "hi"}})");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("chat", R"([{"text": "hi"}])"));
}

TEST_CASE("json envelope with args and ack requests an answer") {
  const Parsed p = parseJson(R"({"event": "move", "args": [1, 2], "ack": 7})");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("move", "[1, 2]", 7));
}

TEST_CASE("json envelope with ack and no event is an ack answer") {
  const Parsed with_data = parseJson(R"({"ack": 7, "data": "ok"})");
  REQUIRE(with_data.status == ParseStatus::Ok);
  CHECK(with_data.message == ackAnswer(7, R"(["ok"])"));

  const Parsed with_args = parseJson(R"({"args": [], "ack": 0})");
  REQUIRE(with_args.status == ParseStatus::Ok);
  CHECK(with_args.message == ackAnswer(0, "[]"));

  const Parsed bare = parseJson(R"({"ack":18446744073709551615})");
  REQUIRE(bare.status == ParseStatus::Ok);
  CHECK(bare.message == ackAnswer(18446744073709551615u, "[]"));
}

TEST_CASE("json envelope without data has no arguments") {
  const Parsed p = parseJson(R"({"event": "ping"})");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("ping", "[]"));
}

TEST_CASE("json envelope data null is one null argument") {
  const Parsed p = parseJson(R"({"event":"x","data":null})");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message.args == "[null]");
}

TEST_CASE("json envelope connect_error passes as an ordinary event") {
  const Parsed p = parseJson(R"({"event": "connect_error", "data": {"message": "unauthorized"}})");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("connect_error", R"([{"message": "unauthorized"}])"));
}

TEST_CASE("json envelope nsp accepted where the route allows it") {
  const Parsed p = parseJson(R"({"event": "chat", "nsp": "/admin", "data": 1})", true);
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("chat", "[1]", std::nullopt, "/admin"));
}

TEST_CASE("json envelope ignores unknown keys but checks their values") {
  const Parsed p = parseJson(R"({"id":"x","event":"a","meta":{"deep":[1,{"k":null}]},"data":2})");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("a", "[2]"));
  requireNotEnvelope(R"({"event":"a","meta":{"deep":[1,{"k":nul}]}})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","meta":[1,]})", "envelope is not JSON");
}

// simdjson On-Demand skips unvisited values by counting brackets, so these iterate without an
// error; found by the envelope fuzzer.
TEST_CASE("json envelope separators are checked at every depth") {
  requireNotEnvelope(R"({"event":"a","args":["x":"y"} ]})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","args":["x" "y"]})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","args":[{"k":1,}]})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","args":[{"k":1 "j":2}]})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","args":[1,2}})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a" "data":1})", "envelope is not JSON");
  requireNotEnvelope(R"(["a" 1])", "envelope is not JSON", Shape::Array);
  requireNotEnvelope(R"(["a",1:2])", "envelope is not JSON", Shape::Array);
  std::string out, error;
  std::vector<std::string> attachments;
  CHECK_FALSE(env::extractAttachments(R"(["x":1])", &out, &attachments, &error));
  CHECK_FALSE(env::extractAttachments(R"([{"a":[1 2]}])", &out, &attachments, &error));
}

TEST_CASE("json envelope keys match after unescaping") {
  const Parsed p = parseJson(R"({"ev\u0065nt":"a","d\u0061ta":1})");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("a", "[1]"));
}

TEST_CASE("json envelope whitespace around and inside values is kept or skipped as due") {
  const Parsed p = parseJson(" \r\n\t{ \"event\" :\t\"a\" , \"args\" : [ 1 ,\n 2 ] }\n ");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("a", "[ 1 ,\n 2 ]"));
  const Parsed d = parseJson("{\"event\":\"a\",\"data\" :  { \"k\" : [ ] }  }");
  REQUIRE(d.status == ParseStatus::Ok);
  CHECK(d.message.args == R"([{ "k" : [ ] }])");
}

TEST_CASE("unicode and escapes in arguments are preserved byte for byte") {
  const std::string data =
      R"({"t":"h\u00e9 \"q\" \\ \/ \n é 😀 \ud83d\ude00 \ud800 \u2028",)"
      R"("n":-1.5e+10,"b":[true,false]})";
  const Parsed p = parseJson(R"({"event":"chat","data":)" + data + "}");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message.args == "[" + data + "]");
  CHECK(env::renderEvent(Shape::Json, "chat", p.message.args) ==
        R"({"event":"chat","data":)" + data + "}");
}

TEST_CASE("event names are unescaped, surrogate pairs joined, lone surrogates replaced") {
  CHECK(parseJson(R"({"event":"caf\u00e9"})").message.event == "caf\xC3\xA9");
  CHECK(parseJson(R"({"event":"\ud83d\ude00"})").message.event == "\xF0\x9F\x98\x80");
  CHECK(parseJson(R"({"event":"a\ud800b"})").message.event == "a\xEF\xBF\xBD" "b");
  CHECK(parseJson(R"({"event":"\"\\\/\b\f\n\r\t"})").message.event == "\"\\/\b\f\n\r\t");
  CHECK(parseJson("{\"event\":\"\xE6\x97\xA5\"}").message.event == "\xE6\x97\xA5");
}

TEST_CASE("big and exotic numbers are valid JSON arguments") {
  const Parsed p =
      parseJson(R"({"event":"n","args":[123456789012345678901234567890,1e400,-0,0.5E-3]})");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message.args == "[123456789012345678901234567890,1e400,-0,0.5E-3]");
}

TEST_CASE("json envelope errors name the problem") {
  requireInvalid(R"({})", "missing \"event\"");
  requireInvalid(R"({"data":1})", "missing \"event\"");
  requireInvalid(R"({"event":1})", "\"event\" must be a string");
  requireInvalid(R"({"event":null})", "\"event\" must be a string");
  requireInvalid(R"({"event":["a"]})", "\"event\" must be a string");
  requireInvalid(R"({"event":"a","args":{"0":1}})", "\"args\" must be an array");
  requireInvalid(R"({"event":"a","args":"x"})", "\"args\" must be an array");
  requireInvalid(R"({"event":"a","ack":-1})", "\"ack\" must be a non-negative integer");
  requireInvalid(R"({"event":"a","ack":1.0})", "\"ack\" must be a non-negative integer");
  requireInvalid(R"({"event":"a","ack":1e2})", "\"ack\" must be a non-negative integer");
  requireInvalid(R"({"event":"a","ack":"7"})", "\"ack\" must be a non-negative integer");
  requireInvalid(R"({"event":"a","ack":18446744073709551616})",
                 "\"ack\" must be a non-negative integer");
  requireInvalid(R"({"ack":null})", "\"ack\" must be a non-negative integer");
  requireInvalid(R"({"event":"a","data":1,"args":[2]})", "both \"data\" and \"args\"");
  requireInvalid(R"({"event":"a","nsp":"/admin"})", "\"nsp\" not allowed on this route");
  requireInvalid(R"({"event":"a","nsp":"admin"})",
                 "\"nsp\" must be a string starting with \"/\" and without \",\"", true);
  requireInvalid(R"({"event":"a","nsp":"/a,1"})",
                 "\"nsp\" must be a string starting with \"/\" and without \",\"", true);
  requireInvalid(R"({"event":"a","nsp":""})",
                 "\"nsp\" must be a string starting with \"/\" and without \",\"", true);
  requireInvalid(R"({"event":"a","nsp":1})",
                 "\"nsp\" must be a string starting with \"/\" and without \",\"", true);
}

TEST_CASE("json envelope refuses a known key given twice") {
  requireInvalid(R"({"event":"a","event":"b"})", "duplicate key \"event\"");
  requireInvalid(R"({"event":"a","data":1,"data":2})", "duplicate key \"data\"");
  requireInvalid(R"({"event":"a","args":[],"args":[]})", "duplicate key \"args\"");
  requireInvalid(R"({"event":"a","ack":1,"ack":2})", "duplicate key \"ack\"");
  requireInvalid(R"({"event":"a","nsp":"/x","nsp":"/y"})", "duplicate key \"nsp\"", true);
  requireInvalid(R"({"event":"a","\u0065vent":"b"})", "duplicate key \"event\"");
  // Unknown keys may repeat.
  CHECK(parseJson(R"({"event":"a","x":1,"x":2})").status == ParseStatus::Ok);
}

TEST_CASE("the first problem in text order is reported") {
  requireInvalid(R"({"event":1,"ack":-1})", "\"event\" must be a string");
  requireInvalid(R"({"ack":-1,"event":1})", "\"ack\" must be a non-negative integer");
}

TEST_CASE("text that is not JSON, or not an object, is not an envelope") {
  requireNotEnvelope("hello", "envelope is not JSON");
  requireNotEnvelope("", "envelope is not JSON");
  requireNotEnvelope("   ", "envelope is not JSON");
  requireNotEnvelope("ping", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"chat")", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"chat",})", "envelope is not JSON");
  requireNotEnvelope(R"({"event" "chat"})", "envelope is not JSON");
  requireNotEnvelope(R"({event:"chat"})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"chat"} x)", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"chat"} {})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"chat"}})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","data":01})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","data":1.})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","data":-})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","data":tru})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","data":truex})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","data":"a"b})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","data":"\x"})", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","data":"\u12"})", "envelope is not JSON");
  requireNotEnvelope("{\"event\":\"a\",\"data\":\"tab\tin string\"}", "envelope is not JSON");
  requireNotEnvelope("{\"event\":\"a\",\"data\":\"\xC3\x28\"}", "envelope is not JSON");
  requireNotEnvelope(R"({"event":"a","ack":-})", "envelope is not JSON");
  requireNotEnvelope(R"({"ev\x":"a"})", "envelope is not JSON");
  requireNotEnvelope(R"(["chat",1])", "envelope is not a JSON object");
  requireNotEnvelope(R"("chat")", "envelope is not a JSON object");
  requireNotEnvelope("42", "envelope is not a JSON object");
  requireNotEnvelope("null", "envelope is not a JSON object");
}

TEST_CASE("semantic problems in text that is not JSON still make it not an envelope") {
  requireNotEnvelope(R"({"event":1,"data":[1,})", "envelope is not JSON");
}

TEST_CASE("nesting deeper than 256 levels is refused, 255 levels pass") {
  const auto nested = [](size_t levels) {
    return R"({"event":"d","data":)" + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  CHECK(parseJson(nested(255)).status == ParseStatus::Ok);
  requireInvalid(nested(256), "JSON nests deeper than 256 levels");
  requireInvalid(nested(100000), "JSON nests deeper than 256 levels");
  std::string out, error;
  CHECK_FALSE(env::inlineAttachments(std::string(300, '[') + std::string(300, ']'), {}, &out,
                                     &error));
  CHECK(error == "JSON nests deeper than 256 levels");
}

TEST_CASE("parse resets a reused message") {
  Message m = event("old", "[1]", 3, "/old");
  std::string error;
  REQUIRE(env::parse(R"({"event":"new"})", {}, &m, &error) == ParseStatus::Ok);
  CHECK(m == event("new", "[]"));
}

TEST_CASE("array envelope first element is the event, the rest its args") {
  const Parsed p = parseArray(R"(["chat", {"text": "hi"}])");
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message == event("chat", R"([{"text": "hi"}])"));

  const Parsed several = parseArray(" [ \"move\" , 1 ,[2], \"\\u00e9\" ] ");
  REQUIRE(several.status == ParseStatus::Ok);
  CHECK(several.message == event("move", "[1 ,[2], \"\\u00e9\" ]"));

  const Parsed none = parseArray(R"(["ping"])");
  REQUIRE(none.status == ParseStatus::Ok);
  CHECK(none.message == event("ping", "[]"));
}

TEST_CASE("array envelope errors") {
  Parsed p = parseArray("[]");
  CHECK(p.status == ParseStatus::Invalid);
  CHECK(p.error == "missing event name");
  p = parseArray("[1, 2]");
  CHECK(p.status == ParseStatus::Invalid);
  CHECK(p.error == "event name must be a string");
  p = parseArray(R"([{"event":"x"}])");
  CHECK(p.status == ParseStatus::Invalid);
  CHECK(p.error == "event name must be a string");
  requireNotEnvelope(R"({"event":"chat"})", "envelope is not a JSON array", Shape::Array);
  requireNotEnvelope(R"("chat")", "envelope is not a JSON array", Shape::Array);
  requireNotEnvelope("chat", "envelope is not JSON", Shape::Array);
  requireNotEnvelope(R"(["chat",])", "envelope is not JSON", Shape::Array);
  requireNotEnvelope(R"(["chat",1] 2)", "envelope is not JSON", Shape::Array);
  requireNotEnvelope(R"(["chat",1]])", "envelope is not JSON", Shape::Array);
  requireNotEnvelope(R"(["chat",[1,{"a":}]])", "envelope is not JSON", Shape::Array);
}

TEST_CASE("renderEvent picks data, args or nothing by argument count") {
  CHECK(env::renderEvent(Shape::Json, "ping", "[]") == R"({"event":"ping"})");
  CHECK(env::renderEvent(Shape::Json, "ping", " [ ] ") == R"({"event":"ping"})");
  CHECK(env::renderEvent(Shape::Json, "chat", R"([{"text":"hi"}])") ==
        R"({"event":"chat","data":{"text":"hi"}})");
  CHECK(env::renderEvent(Shape::Json, "chat", R"([ "a,b" ])") ==
        R"({"event":"chat","data":"a,b"})");
  CHECK(env::renderEvent(Shape::Json, "chat", R"([["x",1]])") ==
        R"({"event":"chat","data":["x",1]})");
  CHECK(env::renderEvent(Shape::Json, "chat", R"(["q\",1"])") ==
        R"({"event":"chat","data":"q\",1"})");
  CHECK(env::renderEvent(Shape::Json, "move", "[1,2]", 7) ==
        R"({"event":"move","args":[1,2],"ack":7})");
  CHECK(env::renderEvent(Shape::Json, "move", "[{\"a\":1},\n2]", std::nullopt, "/admin") ==
        "{\"event\":\"move\",\"nsp\":\"/admin\",\"args\":[{\"a\":1},\n2]}");
}

TEST_CASE("renderEvent escapes the event name") {
  CHECK(env::renderEvent(Shape::Json, std::string("a\"b\\c\n\x01\x1f\x7f\0", 10), "[]") ==
        R"({"event":"a\"b\\c\n\u0001\u001f)" "\x7f" R"(\u0000"})");
  CHECK(env::renderEvent(Shape::Json, "caf\xC3\xA9", "[]") == "{\"event\":\"caf\xC3\xA9\"}");
}

TEST_CASE("renderEvent in array shape drops ack and namespace") {
  CHECK(env::renderEvent(Shape::Array, "chat", R"([{"text":"hi"}])", 5, "/admin") ==
        R"(["chat",{"text":"hi"}])");
  CHECK(env::renderEvent(Shape::Array, "move", "[ 1, 2 ]") == R"(["move",1, 2])");
  CHECK(env::renderEvent(Shape::Array, "ping", "[]") == R"(["ping"])");
}

TEST_CASE("renderAckAnswer renders json only") {
  CHECK(env::renderAckAnswer(Shape::Json, 7, R"(["ok"])") == R"({"ack":7,"data":"ok"})");
  CHECK(env::renderAckAnswer(Shape::Json, 0, "[]") == R"({"ack":0})");
  CHECK(env::renderAckAnswer(Shape::Json, 3, "[1,2]", "/a") ==
        R"({"ack":3,"nsp":"/a","args":[1,2]})");
  CHECK(env::renderAckAnswer(Shape::Array, 7, R"(["ok"])").empty());
}

TEST_CASE("renderError wraps an escaped message") {
  CHECK(env::renderError("missing \"event\"") ==
        R"({"event":"error","data":{"message":"missing \"event\""}})");
}

TEST_CASE("textAsArgs makes one JSON string argument") {
  CHECK(env::textAsArgs("hello") == R"(["hello"])");
  CHECK(env::textAsArgs("") == R"([""])");
  CHECK(env::textAsArgs("a\"b\\\r\n\t\x02 \xE6\x97\xA5") ==
        R"(["a\"b\\\r\n\t\u0002 )" "\xE6\x97\xA5" R"("])");
  const Parsed p = parseArray(env::textAsArgs("ping \"x\""));
  REQUIRE(p.status == ParseStatus::Ok);
  CHECK(p.message.event == "ping \"x\"");
}

TEST_CASE("envelope -> message -> envelope round trips canonical text exactly") {
  const std::vector<std::string> texts = {
      R"({"event":"chat","data":{"text":"h\u00e9 😀"}})",
      R"({"event":"move","args":[1,2],"ack":7})",
      R"({"event":"chat","nsp":"/admin","data":1})",
      R"({"event":"ping"})",
      R"({"event":"e","data":[1,2]})",
      R"({"event":"caf)" "\xC3\xA9" R"(","data":"\ud800"})",
      R"({"ack":7,"data":"ok"})",
      R"({"ack":7,"nsp":"/a","args":["x",{"y":[]}]})",
      R"({"ack":1})",
  };
  for (const auto& text : texts) {
    INFO(text);
    const Parsed p = parseJson(text, true);
    REQUIRE(p.status == ParseStatus::Ok);
    CHECK(render(p.message) == text);
  }
  for (const std::string text : {R"(["chat",{"text":"hi"}])", R"(["move",1,2])", R"(["p"])"}) {
    INFO(text);
    const Parsed p = parseArray(text);
    REQUIRE(p.status == ParseStatus::Ok);
    CHECK(render(p.message, Shape::Array) == text);
  }
}

TEST_CASE("message -> envelope -> message round trips every field") {
  const std::vector<Message> messages = {
      event("chat", R"([{"text":"hi"}])"),
      event("move", "[1,2,3]", 42, "/admin"),
      event("\"quoted\" \\ \n name", "[]", 0),
      event("x", R"(["\u0000"])"),
      ackAnswer(9, R"([null])"),
      ackAnswer(18446744073709551615u, "[[],{}]"),
  };
  for (const auto& m : messages) {
    const std::string text = render(m);
    INFO(text);
    const Parsed p = parseJson(text, true);
    REQUIRE(p.status == ParseStatus::Ok);
    CHECK(p.message == m);
  }
  const Message m = event("chat", R"({"a":1},[2])");
  const Parsed a = parseArray(env::renderEvent(Shape::Array, "chat", R"([{"a":1},[2]])"));
  REQUIRE(a.status == ParseStatus::Ok);
  CHECK(a.message == event("chat", R"([{"a":1},[2]])"));
}

TEST_CASE("inlineAttachments replaces placeholders by base64 objects") {
  const std::vector<std::string> attachments = {std::string("\x01\x02\x03\x04", 4), "hi", ""};
  std::string out, error;
  REQUIRE(env::inlineAttachments(R"(["baz",{"_placeholder":true,"num":0}])", attachments, &out,
                                 &error));
  CHECK(out == R"(["baz",{"_base64":"AQIDBA=="}])");

  REQUIRE(env::inlineAttachments(
      R"([ {"a":[1,{"_placeholder":true,"num":1}], "b":{"num":2,"_placeholder":true}} ,)"
      R"( {"_placeholder":true,"num":0} ])",
      attachments, &out, &error));
  CHECK(out == R"([ {"a":[1,{"_base64":"aGk="}], "b":{"_base64":""}} , {"_base64":"AQIDBA=="} ])");
}

TEST_CASE("inlineAttachments leaves other objects and text untouched") {
  const std::string args =
      R"([{"_placeholder":false,"num":0},{"num":0},"{\"_placeholder\":true}",1])";
  std::string out, error;
  REQUIRE(env::inlineAttachments(args, {}, &out, &error));
  CHECK(out == args);
}

TEST_CASE("inlineAttachments replaces a placeholder containing another one as a whole") {
  std::string out, error;
  REQUIRE(env::inlineAttachments(
      R"([{"x":{"_placeholder":true,"num":1},"_placeholder":true,"num":0}])", {"A", "B"}, &out,
      &error));
  CHECK(out == R"([{"_base64":"QQ=="}])");
}

TEST_CASE("inlineAttachments encodes every byte value") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string out, error;
  REQUIRE(env::inlineAttachments(R"([{"_placeholder":true,"num":0}])", {all}, &out, &error));
  std::string back;
  std::vector<std::string> attachments;
  REQUIRE(env::extractAttachments(out, &back, &attachments, &error));
  CHECK(back == R"([{"_placeholder":true,"num":0}])");
  REQUIRE(attachments.size() == 1);
  CHECK(attachments[0] == all);
}

TEST_CASE("inlineAttachments fails cleanly on bad references and bad JSON") {
  std::string out, error;
  const std::vector<std::string> one = {"x"};
  CHECK_FALSE(env::inlineAttachments(R"([{"_placeholder":true,"num":1}])", one, &out, &error));
  CHECK(error == "placeholder \"num\" is not an attachment index");
  CHECK_FALSE(env::inlineAttachments(R"([{"_placeholder":true}])", one, &out, &error));
  CHECK(error == "placeholder \"num\" is not an attachment index");
  CHECK_FALSE(env::inlineAttachments(R"([{"_placeholder":true,"num":"0"}])", one, &out, &error));
  CHECK(error == "placeholder \"num\" is not an attachment index");
  CHECK_FALSE(env::inlineAttachments(R"([{"_placeholder":true,"num":-1}])", one, &out, &error));
  CHECK(error == "placeholder \"num\" is not an attachment index");
  CHECK_FALSE(env::inlineAttachments(R"([{"_placeholder":true,"num":0.0}])", one, &out, &error));
  CHECK(error == "placeholder \"num\" is not an attachment index");
  CHECK_FALSE(env::inlineAttachments(R"([{"_placeholder":true,"num":0}] x)", one, &out, &error));
  CHECK(error == "args are not JSON");
  CHECK_FALSE(env::inlineAttachments(R"([{"_placeholder":true,"num":0)", one, &out, &error));
  CHECK(error == "args are not JSON");
  CHECK_FALSE(env::inlineAttachments(R"({"_placeholder":true,"num":0})", one, &out, &error));
  CHECK(error == "args are not a JSON array");
}

TEST_CASE("extractAttachments turns base64 objects into numbered placeholders in text order") {
  std::string out, error;
  std::vector<std::string> attachments = {"stale"};
  REQUIRE(env::extractAttachments(
      R"(["a",{"x":[{"_base64":"AQID"},{"k":{"_base64":"aGk"}}]}, {"_base64" : "\/w=="}])", &out,
      &attachments, &error));
  CHECK(out ==
        R"(["a",{"x":[{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1}}]},)"
        R"( {"_placeholder":true,"num":2}])");
  REQUIRE(attachments.size() == 3);
  CHECK(attachments[0] == "\x01\x02\x03");
  CHECK(attachments[1] == "hi");
  CHECK(attachments[2] == "\xFF");
}

TEST_CASE("extractAttachments without base64 objects returns the args unchanged") {
  std::string out, error;
  std::vector<std::string> attachments;
  const std::string args = R"([ "_base64", {"b": "_base64"}, 1 ])";
  REQUIRE(env::extractAttachments(args, &out, &attachments, &error));
  CHECK(out == args);
  CHECK(attachments.empty());
}

TEST_CASE("extractAttachments fails cleanly on bad base64 objects") {
  std::string out, error;
  std::vector<std::string> attachments;
  CHECK_FALSE(env::extractAttachments(R"([{"_base64":"A"}])", &out, &attachments, &error));
  CHECK(error == "\"_base64\" is not valid base64");
  CHECK_FALSE(env::extractAttachments(R"([{"_base64":"AQ ID"}])", &out, &attachments, &error));
  CHECK(error == "\"_base64\" is not valid base64");
  CHECK_FALSE(env::extractAttachments(R"([{"_base64":"AQ-_"}])", &out, &attachments, &error));
  CHECK(error == "\"_base64\" is not valid base64");
  CHECK_FALSE(env::extractAttachments(R"([{"_base64":"A==="}])", &out, &attachments, &error));
  CHECK(error == "\"_base64\" is not valid base64");
  CHECK_FALSE(env::extractAttachments(R"([{"_base64":1}])", &out, &attachments, &error));
  CHECK(error == "\"_base64\" must be a string");
  CHECK_FALSE(env::extractAttachments(R"([{"_base64":"AQ==","name":"x"}])", &out, &attachments,
                                      &error));
  CHECK(error == "\"_base64\" must be the only key of its object");
  CHECK_FALSE(env::extractAttachments(R"([{"_placeholder":true,"num":0}])", &out, &attachments,
                                      &error));
  CHECK(error == "\"_placeholder\" objects are not allowed");
  CHECK_FALSE(env::extractAttachments(R"([{"_base64":"AQ=="},])", &out, &attachments, &error));
  CHECK(error == "args are not JSON");
  CHECK_FALSE(env::extractAttachments("\"AQ==\"", &out, &attachments, &error));
  CHECK(error == "args are not a JSON array");
}

TEST_CASE("extract then inline restores the canonical base64 text") {
  const std::string args = R"(["up",{"_base64":"AQIDBA=="},[{"_base64":""}]])";
  std::string placeholders, back, error;
  std::vector<std::string> attachments;
  REQUIRE(env::extractAttachments(args, &placeholders, &attachments, &error));
  CHECK(placeholders ==
        R"(["up",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]])");
  REQUIRE(env::inlineAttachments(placeholders, attachments, &back, &error));
  CHECK(back == args);
}
