// The non-template half of the frame codec: UTF-8 validation, masking, close payloads, writers.
#include "codec/ws_frame.h"

#include <array>
#include <bit>
#include <cstring>

#include <simdjson.h>

namespace wsb::ws {

bool isValidCloseCode(uint16_t code) {
  // 1004-1006 and 1015 are reserved for local use; 1012-1014 are IANA-registered and sent by
  // real servers even though RFC 6455 predates them.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

namespace {

// A DFA in the spirit of Bjoern Hoehrmann's decoder: bytes fall into classes that say which
// continuation ranges they allow, and a state remembers what the next byte must be.
enum ByteClass : uint8_t {
  kAscii,
  kCont80,  // 80..8F
  kCont90,  // 90..9F
  kContA0,  // A0..BF
  kLead2,   // C2..DF
  kLeadE0,  // E0: next A0..BF (no overlongs)
  kLead3,   // E1..EC, EE..EF
  kLeadED,  // ED: next 80..9F (no surrogates)
  kLeadF0,  // F0: next 90..BF (no overlongs)
  kLead4,   // F1..F3
  kLeadF4,  // F4: next 80..8F (<= U+10FFFF)
  kNever,   // C0, C1, F5..FF
  kClassCount,
};

enum State : uint8_t {
  kAccept,
  kNeed1,
  kNeed2,
  kNeed3,
  kNeedA0toBF,     // after E0
  kNeed80to9F,     // after ED
  kNeed90toBF,     // after F0
  kNeed80to8F,     // after F4
  kReject,
  kStateCount,
};

constexpr std::array<uint8_t, 256> kByteClass = [] {
  std::array<uint8_t, 256> c{};
  for (int b = 0; b < 256; ++b) {
    ByteClass k = kNever;
    if (b < 0x80) k = kAscii;
    else if (b < 0x90) k = kCont80;
    else if (b < 0xA0) k = kCont90;
    else if (b < 0xC0) k = kContA0;
    else if (b < 0xC2) k = kNever;
    else if (b < 0xE0) k = kLead2;
    else if (b == 0xE0) k = kLeadE0;
    else if (b == 0xED) k = kLeadED;
    else if (b < 0xF0) k = kLead3;
    else if (b == 0xF0) k = kLeadF0;
    else if (b < 0xF4) k = kLead4;
    else if (b == 0xF4) k = kLeadF4;
    c[b] = k;
  }
  return c;
}();

constexpr size_t kClasses = kClassCount;
constexpr size_t kStates = kStateCount;

// Indexed by state * kClasses + class.
constexpr std::array<uint8_t, kStates * kClasses> kNext = [] {
  std::array<uint8_t, kStates * kClasses> t{};
  for (auto& s : t) s = kReject;
  auto set = [&t](State from, ByteClass cls, State to) { t[size_t{from} * kClasses + cls] = to; };
  set(kAccept, kAscii, kAccept);
  set(kAccept, kLead2, kNeed1);
  set(kAccept, kLeadE0, kNeedA0toBF);
  set(kAccept, kLead3, kNeed2);
  set(kAccept, kLeadED, kNeed80to9F);
  set(kAccept, kLeadF0, kNeed90toBF);
  set(kAccept, kLead4, kNeed3);
  set(kAccept, kLeadF4, kNeed80to8F);
  for (ByteClass cont : {kCont80, kCont90, kContA0}) {
    set(kNeed1, cont, kAccept);
    set(kNeed2, cont, kNeed1);
    set(kNeed3, cont, kNeed2);
  }
  set(kNeedA0toBF, kContA0, kNeed1);
  set(kNeed80to9F, kCont80, kNeed1);
  set(kNeed80to9F, kCont90, kNeed1);
  set(kNeed90toBF, kCont90, kNeed2);
  set(kNeed90toBF, kContA0, kNeed2);
  set(kNeed80to8F, kCont80, kNeed2);
  return t;
}();

constexpr uint64_t kHighBits = 0x8080808080808080ull;

// One DFA step per byte, skipping ASCII a word at a time between characters.
uint32_t runDfa(uint32_t state, const uint8_t* data, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (state == kAccept) {
      while (i + 8 <= len) {
        uint64_t word;
        std::memcpy(&word, data + i, 8);
        if (word & kHighBits) break;
        i += 8;
      }
      while (i < len && data[i] < 0x80) ++i;
      if (i == len) break;
    }
    state = kNext[state * kClasses + kByteClass[data[i]]];
    if (state == kReject) break;
    ++i;
  }
  return state;
}

// Where a trailing sequence that `data` cuts short begins (`len` when none is cut short).
size_t incompleteTail(const uint8_t* data, size_t len) {
  for (size_t back = 1; back <= 3 && back <= len; ++back) {
    uint8_t b = data[len - back];
    if ((b & 0xC0) == 0x80) continue;
    size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    return need > back ? len - back : len;
  }
  return len;
}

// Below this the DFA beats simdjson's per-call cost; above it simdjson's SIMD wins by ~10x on
// non-ASCII text.
constexpr size_t kBulkMin = 64;

}  // namespace

bool Utf8Validator::feed(const uint8_t* data, size_t len) {
  if (state_ == kReject) return false;
  if (len < kBulkMin) {
    state_ = runDfa(state_, data, len);
    return state_ != kReject;
  }
  // Finish a character carried over from the previous piece (at most 3 bytes).
  size_t start = 0;
  while (state_ != kAccept && state_ != kReject) {
    state_ = kNext[state_ * kClasses + kByteClass[data[start++]]];
  }
  if (state_ == kReject) return false;
  // simdjson needs whole characters: hold a character cut short at the end back for the DFA.
  size_t bulk_end = start + incompleteTail(data + start, len - start);
  if (!simdjson::validate_utf8(reinterpret_cast<const char*>(data + start), bulk_end - start)) {
    state_ = kReject;
    return false;
  }
  state_ = runDfa(kAccept, data + bulk_end, len - bulk_end);
  return state_ != kReject;
}

void applyMask(uint8_t* data, size_t len, const uint8_t key[4], size_t phase) {
  // The key as it lies in memory, rotated so its first byte is key[phase]; built with whole-word
  // arithmetic because byte stores read back as a word stall store forwarding.
  uint32_t key32;
  std::memcpy(&key32, key, 4);
  unsigned shift = static_cast<unsigned>(phase & 3) * 8;
  key32 = std::endian::native == std::endian::little ? std::rotr(key32, shift)
                                                     : std::rotl(key32, shift);
  uint64_t mask = (uint64_t{key32} << 32) | key32;
  uint8_t rotated[8];
  std::memcpy(rotated, &mask, 8);
  size_t i = 0;
  // Two words per step lets the compiler keep both in registers (or one vector register).
  for (; i + 16 <= len; i += 16) {
    uint64_t a;
    uint64_t b;
    std::memcpy(&a, data + i, 8);
    std::memcpy(&b, data + i + 8, 8);
    a ^= mask;
    b ^= mask;
    std::memcpy(data + i, &a, 8);
    std::memcpy(data + i + 8, &b, 8);
  }
  if (i + 8 <= len) {
    uint64_t a;
    std::memcpy(&a, data + i, 8);
    a ^= mask;
    std::memcpy(data + i, &a, 8);
    i += 8;
  }
  // i is a multiple of 8 here, so the tail starts at the same key phase as the words did.
  for (size_t k = 0; i < len; ++i, ++k) data[i] ^= rotated[k];
}

size_t writeFrameHeader(uint8_t* out, Opcode op, bool fin, uint64_t payload_len,
                        const uint8_t* mask) {
  out[0] = static_cast<uint8_t>((fin ? 0x80 : 0x00) | static_cast<uint8_t>(op));
  size_t size;
  if (payload_len < 126) {
    out[1] = static_cast<uint8_t>(payload_len);
    size = 2;
  } else if (payload_len <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(payload_len >> 8);
    out[3] = static_cast<uint8_t>(payload_len);
    size = 4;
  } else {
    out[1] = 127;
    for (size_t i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_len >> (56 - 8 * i));
    size = 10;
  }
  if (mask != nullptr) {
    out[1] |= 0x80;
    std::memcpy(out + size, mask, 4);
    size += 4;
  }
  return size;
}

std::string makeFrame(Opcode op, std::string_view payload, bool fin, const uint8_t* mask) {
  uint8_t header[kMaxHeaderSize];
  size_t header_size = writeFrameHeader(header, op, fin, payload.size(), mask);
  std::string frame;
  frame.reserve(header_size + payload.size());
  frame.append(reinterpret_cast<const char*>(header), header_size);
  frame.append(payload);
  if (mask != nullptr) {
    applyMask(reinterpret_cast<uint8_t*>(frame.data() + header_size), payload.size(), mask);
  }
  return frame;
}

std::string makeClosePayload(uint16_t code, std::string_view reason) {
  if (code == close_code::kNoStatus) return {};
  constexpr size_t kMaxReason = 125 - 2;
  if (reason.size() > kMaxReason) {
    size_t cut = kMaxReason;
    // Back up to the first byte of the character that would be split.
    while (cut > 0 && (static_cast<uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  std::string payload;
  payload.reserve(2 + reason.size());
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return payload;
}

uint16_t closePayloadError(const uint8_t* data, size_t len) {
  if (len == 0) return 0;
  if (len == 1) return close_code::kProtocolError;
  uint16_t code = static_cast<uint16_t>((data[0] << 8) | data[1]);
  if (!isValidCloseCode(code)) return close_code::kProtocolError;
  Utf8Validator utf8;
  if (!utf8.feed(data + 2, len - 2) || !utf8.complete()) return close_code::kInvalidPayload;
  return 0;
}

bool parseClosePayload(const uint8_t* data, size_t len, uint16_t* code, std::string_view* reason) {
  if (closePayloadError(data, len) != 0) return false;
  uint16_t parsed = close_code::kNoStatus;
  std::string_view text;
  if (len >= 2) {
    parsed = static_cast<uint16_t>((data[0] << 8) | data[1]);
    text = {reinterpret_cast<const char*>(data + 2), len - 2};
  }
  if (code != nullptr) *code = parsed;
  if (reason != nullptr) *reason = text;
  return true;
}

}  // namespace wsb::ws
