// Fuzz target for the WebSocket frame parser: both roles, random chunking and pauses, round trip.
//
// Input: byte 0 picks the role (bit 0) and max_message (bits 1-2); bytes 1-4 say which sink calls
// pause; byte 5 seeds the chunking; the rest is the byte stream.
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/ws_frame.h"

namespace {

using wsb::ws::FrameParser;
using wsb::ws::Opcode;
using wsb::ws::Role;

void check(bool ok) {
  if (!ok) std::abort();
}

// xorshift32: cheap and deterministic, so a crash input replays the same chunking.
struct Rng {
  uint32_t state;
  uint32_t next() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  }
};

struct Event {
  Opcode op;
  std::string payload;
  bool operator==(const Event&) const = default;
};

struct Sink {
  std::vector<Event> events;
  std::string data;
  Opcode op = Opcode::Binary;
  bool in_message = false;
  uint32_t pause_bits = 0;
  uint32_t calls = 0;
  uint64_t max_message = 0;

  bool keepGoing() { return ((pause_bits >> (calls++ & 31)) & 1) == 0; }

  void onMessageBegin(Opcode o) {
    check(!in_message && (o == Opcode::Text || o == Opcode::Binary));
    in_message = true;
    op = o;
    data.clear();
  }
  void onMessageData(const uint8_t* p, size_t n) {
    check(in_message && n > 0);
    data.append(reinterpret_cast<const char*>(p), n);
    check(data.size() <= max_message);
  }
  bool onMessageEnd() {
    check(in_message);
    if (op == Opcode::Text) check(simdjson::validate_utf8(data.data(), data.size()));
    events.push_back({op, data});
    in_message = false;
    return keepGoing();
  }
  bool onControl(Opcode o, const uint8_t* p, size_t n) {
    check(wsb::ws::isControl(o) && n <= 125);
    if (o == Opcode::Close) check(wsb::ws::closePayloadError(p, n) == 0);
    events.push_back({o, std::string(reinterpret_cast<const char*>(p), n)});
    return keepGoing();
  }
};

struct Result {
  std::vector<Event> events;
  uint16_t error = 0;
};

// Feeds the stream in chunks (or whole when rng is null), calling again after each pause.
template <Role role>
Result run(const uint8_t* bytes, size_t size, uint64_t max_message, uint32_t pause_bits,
           Rng* rng) {
  std::vector<uint8_t> buf(bytes, bytes + size);  // unmasked in place: a private copy
  FrameParser<role> parser(max_message);
  Sink sink;
  sink.pause_bits = pause_bits;
  sink.max_message = max_message;
  size_t offset = 0;
  while (offset < size && !parser.failed()) {
    size_t chunk = size - offset;
    if (rng != nullptr) {
      uint32_t r = rng->next();
      chunk = std::min<size_t>(chunk, (r & 3) == 0 ? 1 + (r >> 8) % 256 : 1 + (r >> 8) % 16);
    }
    size_t end = offset + chunk;
    while (offset < end) {
      size_t c = parser.consume(buf.data() + offset, end - offset, sink);
      check(c <= end - offset);
      offset += c;
      if (parser.failed()) break;
      check(c > 0);  // a pause always follows a whole frame, so progress was made
    }
  }
  if (parser.failed()) {
    uint16_t code = parser.error().code;
    check(code == 1002 || code == 1007 || code == 1009);
    size_t empty = 0;
    check(parser.consume(buf.data(), empty, sink) == 0 && parser.failed());
  }
  return {sink.events, parser.error().code};
}

template <Role role>
void fuzzRole(const uint8_t* stream, size_t size, uint64_t max_message, uint32_t pause_bits,
              Rng& rng) {
  Result chunked = run<role>(stream, size, max_message, pause_bits, &rng);
  Result whole = run<role>(stream, size, max_message, 0, nullptr);
  check(chunked.events == whole.events && chunked.error == whole.error);
  if (whole.error != 0) return;

  // Re-serialise what parsed (messages re-fragmented at a random point, masked toward a server)
  // and expect the same events back.
  uint8_t key[4] = {static_cast<uint8_t>(rng.next()), 0x5A, 0xA5, static_cast<uint8_t>(size)};
  const uint8_t* mask = role == Role::Server ? key : nullptr;
  std::string wire;
  for (const Event& e : whole.events) {
    if (wsb::ws::isControl(e.op)) {
      wire += wsb::ws::makeFrame(e.op, e.payload, true, mask);
      continue;
    }
    size_t cut = e.payload.empty() ? 0 : rng.next() % (e.payload.size() + 1);
    std::string_view payload = e.payload;
    if (cut == 0 || cut == payload.size()) {
      wire += wsb::ws::makeFrame(e.op, payload, true, mask);
    } else {
      wire += wsb::ws::makeFrame(e.op, payload.substr(0, cut), false, mask);
      wire += wsb::ws::makeFrame(Opcode::Continuation, payload.substr(cut), true, mask);
    }
  }
  Result again = run<role>(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(),
                           max_message, 0, nullptr);
  check(again.error == 0 && again.events == whole.events);
}

// The stream as one text: the incremental validator must agree with simdjson at any split.
void fuzzUtf8(const uint8_t* data, size_t size, Rng& rng) {
  wsb::ws::Utf8Validator v;
  size_t a = rng.next() % (size + 1);
  size_t b = rng.next() % (size + 1);
  if (a > b) std::swap(a, b);
  bool ours = v.feed(data, a) && v.feed(data + a, b - a) && v.feed(data + b, size - b) &&
              v.complete();
  check(ours == simdjson::validate_utf8(reinterpret_cast<const char*>(data), size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kPrefix = 6;
  if (size < kPrefix) return 0;
  static constexpr uint64_t kMaxMessages[4] = {1u << 20, 1000, 125, 0};
  uint64_t max_message = kMaxMessages[(data[0] >> 1) & 3];
  uint32_t pause_bits = uint32_t{data[1]} | uint32_t{data[2]} << 8 | uint32_t{data[3]} << 16 |
                        uint32_t{data[4]} << 24;
  Rng rng{0x9E3779B9u ^ (uint32_t{data[5]} << 3) ^ static_cast<uint32_t>(size)};
  const uint8_t* stream = data + kPrefix;
  size_t stream_size = size - kPrefix;
  if (data[0] & 1) {
    fuzzRole<Role::Server>(stream, stream_size, max_message, pause_bits, rng);
  } else {
    fuzzRole<Role::Client>(stream, stream_size, max_message, pause_bits, rng);
  }
  fuzzUtf8(stream, stream_size, rng);
  return 0;
}
