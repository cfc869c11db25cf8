// Fuzz target for the HTTP/1.1 codec: every split of the input parses alike, and what parsed
// serialises and parses back the same. Byte 0 picks the mode, byte 1 seeds the split.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "codec/http1.h"

using namespace wsb::http;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

// Piece sizes from a tiny xorshift seeded by the input, so a crash replays exactly.
class Splitter {
 public:
  explicit Splitter(uint8_t seed) : state_(seed * 2654435761u + 1), max_(1 + seed % 64) {}
  size_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return 1 + state_ % max_;
  }

 private:
  uint32_t state_;
  size_t max_;
};

struct Outcome {
  ParseState state;
  size_t consumed;
  int status;
  Request request;
  Response response;
  bool upgrade;
};

bool sameHeaders(const Headers& a, const Headers& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].value != b[i].value) return false;
  return true;
}

bool sameRequest(const Request& a, const Request& b) {
  return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
         a.version_major == b.version_major && a.version_minor == b.version_minor &&
         sameHeaders(a.headers, b.headers) && a.body == b.body && a.keep_alive == b.keep_alive;
}

bool sameResponse(const Response& a, const Response& b) {
  return a.status == b.status && a.reason == b.reason && a.version_minor == b.version_minor &&
         sameHeaders(a.headers, b.headers) && a.body == b.body;
}

// Framing headers describe the bytes they came in, not the re-serialised message.
Headers withoutFraming(const Headers& headers) {
  Headers out;
  for (const Header& h : headers)
    if (!iequals(h.name, "content-length") && !iequals(h.name, "transfer-encoding"))
      out.push_back(h);
  return out;
}

// Parses up to a few pipelined messages from `input`, each fed in pieces from `split` (or whole).
template <typename Parser, typename Record>
std::vector<Outcome> parseAll(Parser& parser, std::string_view input, Splitter* split, bool at_eof,
                              Record record) {
  std::vector<Outcome> outcomes;
  size_t offset = 0;
  for (int message = 0; message < 4; ++message) {
    parser.reset();
    size_t consumed = 0;
    while (offset < input.size() && parser.state() == ParseState::NeedMore) {
      size_t len = input.size() - offset;
      if (split != nullptr) len = std::min(len, split->next());
      size_t n = parser.feed(input.data() + offset, len);
      check(n <= len);
      if (parser.state() == ParseState::NeedMore) check(n == len);
      consumed += n;
      offset += n;
      if (parser.state() == ParseState::Error) offset = input.size();
    }
    Outcome outcome = record(parser, at_eof);
    outcome.consumed = consumed;
    outcomes.push_back(std::move(outcome));
    if (outcomes.back().state != ParseState::Done || offset == input.size()) break;
  }
  return outcomes;
}

void compare(const std::vector<Outcome>& whole, const std::vector<Outcome>& pieces) {
  check(whole.size() == pieces.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    check(whole[i].state == pieces[i].state);
    check(whole[i].status == pieces[i].status);
    if (whole[i].state == ParseState::Error) continue;  // where it stopped inside is moot
    check(whole[i].consumed == pieces[i].consumed);
    check(whole[i].upgrade == pieces[i].upgrade);
    check(sameRequest(whole[i].request, pieces[i].request));
    check(sameResponse(whole[i].response, pieces[i].response));
  }
}

void roundTripRequest(const Request& request) {
  Headers headers = withoutFraming(request.headers);
  std::string bytes = serializeRequest(request.method, request.target, headers, request.body);
  Limits roomy{1 << 20, 1 << 16, 1 << 24};
  RequestParser parser(roomy);
  size_t n = parser.feed(bytes.data(), bytes.size());
  check(parser.state() == ParseState::Done);
  check(n == bytes.size());
  const Request& again = parser.request();
  check(again.method == request.method && again.target == request.target);
  check(again.path == request.path && again.query == request.query);
  check(sameHeaders(withoutFraming(again.headers), headers));
  check(again.body == request.body);
}

void roundTripResponse(const Response& response) {
  Response copy = response;
  copy.headers = withoutFraming(response.headers);
  std::string bytes = serializeResponse(copy);
  Limits roomy{1 << 20, 1 << 16, 1 << 24};
  ResponseParser parser(roomy);
  size_t n = parser.feed(bytes.data(), bytes.size());
  check(parser.state() == ParseState::Done);
  check(n == bytes.size());
  const Response& again = parser.response();
  check(again.status == response.status);
  if (!response.reason.empty()) check(again.reason == response.reason);
  check(sameHeaders(withoutFraming(again.headers), copy.headers));
  check(again.body == response.body);
}

void exerciseHelpers(const Request& request, std::string_view input) {
  UpgradeCheck upgrade = checkWebSocketUpgrade(request);
  check(upgrade.status == 0 || upgrade.status == 400 || upgrade.status == 426);
  check(upgrade.ok() == upgrade.reason.empty());
  if (upgrade.ok()) {
    check(isWebSocketUpgrade(request));
    std::string nonce;
    check(base64Decode(*request.header("sec-websocket-key"), &nonce) && nonce.size() == 16);
    check(computeAcceptKey(*request.header("sec-websocket-key")).size() == 28);
  }
  std::string value;
  if (request.queryParam("token", &value)) check(value.size() <= request.query.size());
  if (request.cookie("token", &value)) check(value.find(';') == std::string::npos);

  std::string decoded;
  check(base64Decode(base64Encode(input), &decoded) && decoded == input);
  // Decoding is strict, so whatever decodes is the one canonical encoding of its bytes.
  if (base64Decode(input, &decoded)) check(base64Encode(decoded) == input);
  check(percentDecode(input).size() <= input.size());
  for (char c : jsonEscape(input)) check(static_cast<unsigned char>(c) >= 0x20);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const uint8_t seed = data[1];
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  Limits limits;
  if (mode & 2) limits = Limits{64u + seed, 1u + seed % 8u, seed};  // reach the limit paths

  if ((mode & 1) == 0) {
    RequestParser parser(limits);
    auto record = [](RequestParser& p, bool) {
      check((p.state() == ParseState::Error) == (p.errorStatus() != 0));
      check((p.state() == ParseState::Error) == !p.errorReason().empty());
      return Outcome{p.state(), 0, p.errorStatus(), p.request(), {}, p.upgrade()};
    };
    Splitter split(seed);
    auto whole = parseAll(parser, input, nullptr, false, record);
    auto pieces = parseAll(parser, input, &split, false, record);
    compare(whole, pieces);
    for (const Outcome& o : whole) {
      if (o.state == ParseState::Error)
        check(o.status == 400 || o.status == 413 || o.status == 431 || o.status == 505);
      if (o.state != ParseState::Done) continue;
      check(o.consumed > 0);
      roundTripRequest(o.request);
      exerciseHelpers(o.request, input);
    }
  } else {
    ResponseParser parser(limits);
    const bool no_body = (mode & 4) != 0;
    auto record = [](ResponseParser& p, bool at_eof) {
      if (at_eof) p.finishAtEof();
      int status = p.state() == ParseState::Error ? 1 : 0;
      check((status != 0) == !p.errorReason().empty());
      return Outcome{p.state(), 0, status, {}, p.response(), false};
    };
    parser.expectNoBody(no_body);
    Splitter split(seed);
    auto whole = parseAll(parser, input, nullptr, (mode & 8) != 0, record);
    auto pieces = parseAll(parser, input, &split, (mode & 8) != 0, record);
    compare(whole, pieces);
    for (const Outcome& o : whole)
      if (o.state == ParseState::Done && !no_body) roundTripResponse(o.response);
  }
  return 0;
}
