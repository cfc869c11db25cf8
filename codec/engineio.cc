// Engine.IO v3/v4 packet, payload and handshake codec (see engineio.h for the wire formats).
#include "codec/engineio.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <utility>

namespace wsb::eio {

namespace {

constexpr char kRecordSeparator = '\x1e';
constexpr uint8_t kBinaryLengthEnd = 0xFF;
// Longest length prefix accepted in a payload: 10 digits already exceed any body we would take.
constexpr size_t kMaxLengthDigits = 10;

bool typeFromDigit(char c, PacketType* type) {
  if (c < '0' || c > '6') return false;
  *type = static_cast<PacketType>(c - '0');
  return true;
}

constexpr std::array<uint8_t, 256> makeBase64Table() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) v = 0xFF;
  for (int i = 0; i < 26; ++i) {
    table['A' + i] = static_cast<uint8_t>(i);
    table['a' + i] = static_cast<uint8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) table['0' + i] = static_cast<uint8_t>(52 + i);
  table['+'] = table['-'] = 62;  // '-' and '_': URL-safe alphabet, which Node also accepts
  table['/'] = table['_'] = 63;
  return table;
}
constexpr std::array<uint8_t, 256> kBase64Values = makeBase64Table();
constexpr char kBase64Chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64Length(size_t bytes) { return (bytes + 2) / 3 * 4; }

// Decodes base64 `text` onto the end of `storage` and returns a view of the new bytes. The caller
// guarantees capacity, so earlier views into `storage` stay valid.
bool appendDecodedBase64(std::string_view text, std::string& storage, std::string_view* bytes) {
  size_t start = storage.size();
  if (!decodeBase64(text, storage)) return false;
  *bytes = std::string_view(storage).substr(start);
  return true;
}

DecodeError decodeTextInto(Version version, std::string_view text, Packet* out,
                           std::string& storage) {
  if (text.empty()) return DecodeError::Empty;
  if (text[0] == 'b') {
    // v4: binary is always a message and has no type digit; v3 keeps the digit.
    std::string_view base64 = text.substr(1);
    out->type = PacketType::Message;
    if (version == Version::V3) {
      if (base64.empty()) return DecodeError::Empty;
      if (!typeFromDigit(base64[0], &out->type)) return DecodeError::UnknownType;
      base64.remove_prefix(1);
    }
    out->binary = true;
    if (!appendDecodedBase64(base64, storage, &out->data)) return DecodeError::InvalidBase64;
    return DecodeError::None;
  }
  if (!typeFromDigit(text[0], &out->type)) return DecodeError::UnknownType;
  out->binary = false;
  out->data = text.substr(1);
  return DecodeError::None;
}

void appendLength(std::string& out, size_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), n);
  (void)ec;  // cannot fail: 24 chars hold any size_t
  out.append(digits, end);
}

// v3 binary payload lengths are written one decimal digit per byte (values 0..9).
void appendDigitBytes(std::string& out, size_t n) {
  size_t start = out.size();
  appendLength(out, n);
  for (size_t i = start; i < out.size(); ++i) out[i] = static_cast<char>(out[i] - '0');
}

// Reads "<digits>" up to `terminator`, advancing `pos` past it. `digit_base` is '0' for ASCII
// digits and 0 for the digit bytes of the v3 binary payload.
bool readLength(std::string_view body, size_t* pos, char digit_base, char terminator,
                size_t* length) {
  size_t i = *pos;
  size_t value = 0;
  size_t digits = 0;
  for (; i < body.size() && body[i] != terminator; ++i, ++digits) {
    int d = body[i] - digit_base;
    if (d < 0 || d > 9 || digits == kMaxLengthDigits) return false;
    value = value * 10 + static_cast<size_t>(d);
  }
  if (digits == 0 || i == body.size()) return false;
  *pos = i + 1;
  *length = value;
  return true;
}

// Bytes of the first `units` UTF-16 code units of valid UTF-8 `text`; false when the text is
// shorter or the count would end inside a surrogate pair (a JS slice would split the character).
bool bytesForUtf16Units(std::string_view text, size_t units, size_t* bytes) {
  size_t i = 0;
  while (units > 0) {
    if (i >= text.size()) return false;
    auto lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      i += 1;
      units -= 1;
    } else if (lead >= 0xF0) {
      if (units < 2) return false;
      i += 4;
      units -= 2;
    } else {
      i += lead >= 0xE0 ? 3 : 2;
      units -= 1;
    }
  }
  *bytes = i;
  return true;
}

DecodeError decodeV4Payload(std::string_view body, std::vector<Packet>& out, std::string& storage) {
  // As the ref impl: split on \x1e, so an empty body is one empty (invalid) packet.
  size_t pos = 0;
  while (true) {
    size_t end = body.find(kRecordSeparator, pos);
    std::string_view text = body.substr(pos, end == std::string_view::npos ? end : end - pos);
    Packet packet;
    if (auto error = decodeTextInto(Version::V4, text, &packet, storage);
        error != DecodeError::None)
      return error;
    out.push_back(packet);
    if (end == std::string_view::npos) return DecodeError::None;
    pos = end + 1;
  }
}

DecodeError decodeV3TextPayload(std::string_view body, std::vector<Packet>& out,
                                std::string& storage) {
  if (body.empty()) return DecodeError::InvalidLength;
  if (!simdjson::validate_utf8(body)) return DecodeError::InvalidUtf8;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t units = 0;
    size_t bytes = 0;
    if (!readLength(body, &pos, '0', ':', &units) ||
        !bytesForUtf16Units(body.substr(pos), units, &bytes))
      return DecodeError::InvalidLength;
    if (bytes > 0) {  // "0:" is the empty payload
      Packet packet;
      if (auto error = decodeTextInto(Version::V3, body.substr(pos, bytes), &packet, storage);
          error != DecodeError::None)
        return error;
      out.push_back(packet);
    }
    pos += bytes;
  }
  return DecodeError::None;
}

DecodeError decodeV3BinaryPayload(std::string_view body, std::vector<Packet>& out,
                                  std::string& storage) {
  size_t pos = 0;
  while (pos < body.size()) {
    char kind = body[pos++];
    size_t length = 0;
    if ((kind != 0 && kind != 1) ||
        !readLength(body, &pos, 0, static_cast<char>(kBinaryLengthEnd), &length) ||
        length > body.size() - pos)
      return DecodeError::InvalidLength;
    std::string_view entry = body.substr(pos, length);
    pos += length;
    Packet packet;
    if (kind == 0) {
      // A text packet as UTF-8 bytes; the ref impl utf8-decodes it strictly enough to reject
      // malformed sequences.
      if (!simdjson::validate_utf8(entry)) return DecodeError::InvalidUtf8;
      if (auto error = decodeTextInto(Version::V3, entry, &packet, storage);
          error != DecodeError::None)
        return error;
    } else {
      if (entry.empty()) return DecodeError::Empty;
      if (static_cast<uint8_t>(entry[0]) > 6) return DecodeError::UnknownType;
      packet.type = static_cast<PacketType>(entry[0]);
      packet.binary = true;
      packet.data = entry.substr(1);
    }
    out.push_back(packet);
  }
  return DecodeError::None;
}

void appendV3TextPacket(std::string& out, const Packet& packet) {
  if (packet.binary) {
    appendLength(out, 2 + base64Length(packet.data.size()));
    out += ':';
    appendBase64Packet(out, Version::V3, packet);
  } else {
    appendLength(out, 1 + utf16Length(packet.data));
    out += ':';
    appendText(out, packet.type, packet.data);
  }
}

void appendV3BinaryEntry(std::string& out, const Packet& packet) {
  // Text packets stay text (kind 0) even in a binary body; only binary data is raw.
  out += static_cast<char>(packet.binary ? 1 : 0);
  appendDigitBytes(out, 1 + packet.data.size());
  out += static_cast<char>(kBinaryLengthEnd);
  out += packet.binary ? static_cast<char>(packet.type) : typeDigit(packet.type);
  out.append(packet.data);
}

// Enough JSON string escaping for handshake values (sids and transport names are plain tokens,
// but an upstream could send anything).
void appendQuoted(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    auto u = static_cast<uint8_t>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
}

// End (one past the closing quote) of the JSON string starting at json[start] == '"'.
size_t endOfJsonString(std::string_view json, size_t start) {
  for (size_t i = start + 1; i < json.size(); ++i) {
    if (json[i] == '\\') {
      ++i;
    } else if (json[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace

const char* describe(DecodeError error) {
  switch (error) {
    case DecodeError::None:
      return "ok";
    case DecodeError::Empty:
      return "empty packet";
    case DecodeError::UnknownType:
      return "unknown packet type";
    case DecodeError::InvalidBase64:
      return "invalid base64";
    case DecodeError::InvalidLength:
      return "invalid payload length";
    case DecodeError::InvalidUtf8:
      return "invalid UTF-8";
    case DecodeError::TooLarge:
      return "payload too large";
  }
  return "unknown error";
}

DecodeError decodeText(Version version, std::string_view text, Packet* out, std::string* storage) {
  storage->clear();
  storage->reserve(text.size());
  return decodeTextInto(version, text, out, *storage);
}

DecodeError decodeFrame(Version version, bool binary_frame, std::string_view payload, Packet* out,
                        std::string* storage) {
  if (!binary_frame) return decodeText(version, payload, out, storage);
  out->binary = true;
  if (version == Version::V4) {
    out->type = PacketType::Message;
    out->data = payload;
    return DecodeError::None;
  }
  if (payload.empty()) return DecodeError::Empty;
  if (static_cast<uint8_t>(payload[0]) > 6) return DecodeError::UnknownType;
  out->type = static_cast<PacketType>(payload[0]);
  out->data = payload.substr(1);
  return DecodeError::None;
}

void appendText(std::string& out, PacketType type, std::string_view data) {
  out += typeDigit(type);
  out.append(data);
}

void appendBase64Packet(std::string& out, Version version, const Packet& packet) {
  out += 'b';
  if (version == Version::V3) out += typeDigit(packet.type);
  appendBase64(out, packet.data);
}

std::string_view binaryFramePrefix(Version version, PacketType type) {
  static constexpr char kTypeBytes[] = {0, 1, 2, 3, 4, 5, 6};
  if (version == Version::V4) return {};
  return std::string_view(&kTypeBytes[static_cast<int>(type)], 1);
}

PayloadFormat responseFormat(Version version, bool client_supports_binary,
                             std::span<const Packet> packets) {
  if (version == Version::V4 || !client_supports_binary) return PayloadFormat::Text;
  for (const Packet& packet : packets)
    if (packet.binary) return PayloadFormat::Binary;
  return PayloadFormat::Text;
}

void encodePayload(Version version, PayloadFormat format, std::span<const Packet> packets,
                   std::string& out) {
  if (version == Version::V4) {
    for (size_t i = 0; i < packets.size(); ++i) {
      if (i > 0) out += kRecordSeparator;
      if (packets[i].binary) {
        appendBase64Packet(out, version, packets[i]);
      } else {
        appendText(out, packets[i].type, packets[i].data);
      }
    }
    return;
  }
  if (format == PayloadFormat::Binary) {
    for (const Packet& packet : packets) appendV3BinaryEntry(out, packet);
    return;
  }
  if (packets.empty()) out += "0:";
  for (const Packet& packet : packets) appendV3TextPacket(out, packet);
}

DecodeError decodePayload(Version version, PayloadFormat format, std::string_view body,
                          size_t max_payload, std::vector<Packet>& out, std::string& storage) {
  out.clear();
  storage.clear();
  if (body.size() > max_payload) return DecodeError::TooLarge;
  // Decoded base64 is never longer than its text, so this keeps views into storage stable.
  storage.reserve(body.size());
  if (version == Version::V4) return decodeV4Payload(body, out, storage);
  if (format == PayloadFormat::Binary) return decodeV3BinaryPayload(body, out, storage);
  return decodeV3TextPayload(body, out, storage);
}

size_t utf16Length(std::string_view utf8) {
  size_t units = 0;
  for (char c : utf8) {
    auto b = static_cast<uint8_t>(c);
    units += (b & 0xC0) != 0x80;  // one per character...
    units += b >= 0xF0;           // ...and a second for the surrogate pair of a 4-byte one
  }
  return units;
}

void appendHandshake(std::string& out, const Handshake& handshake) {
  out += "{\"sid\":";
  appendQuoted(out, handshake.sid);
  out += ",\"upgrades\":[";
  for (size_t i = 0; i < handshake.upgrades.size(); ++i) {
    if (i > 0) out += ',';
    appendQuoted(out, handshake.upgrades[i]);
  }
  out += "],\"pingInterval\":";
  appendLength(out, handshake.ping_interval);
  out += ",\"pingTimeout\":";
  appendLength(out, handshake.ping_timeout);
  if (handshake.max_payload) {
    out += ",\"maxPayload\":";
    appendLength(out, *handshake.max_payload);
  }
  out += '}';
}

bool parseHandshake(std::string_view json, Handshake* out) {
  // Once per session: a fresh parser and padded copy cost nothing worth pooling.
  simdjson::padded_string padded(json);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(object)) return false;
  Handshake result;
  result.max_payload.reset();
  bool have_sid = false, have_upgrades = false, have_interval = false, have_timeout = false;
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) return false;
    simdjson::ondemand::value value = field.value();
    if (key == "sid") {
      std::string_view sid;
      if (value.get_string().get(sid)) return false;
      result.sid.assign(sid);
      have_sid = true;
    } else if (key == "upgrades") {
      simdjson::ondemand::array array;
      if (value.get_array().get(array)) return false;
      result.upgrades.clear();
      for (auto element : array) {
        std::string_view name;
        if (element.get_string().get(name)) return false;
        result.upgrades.emplace_back(name);
      }
      have_upgrades = true;
    } else if (key == "pingInterval") {
      if (value.get_uint64().get(result.ping_interval)) return false;
      have_interval = true;
    } else if (key == "pingTimeout") {
      if (value.get_uint64().get(result.ping_timeout)) return false;
      have_timeout = true;
    } else if (key == "maxPayload") {
      uint64_t max_payload = 0;
      if (value.get_uint64().get(max_payload)) return false;
      result.max_payload = max_payload;
    }
  }
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) return false;
  if (!have_sid || !have_upgrades || !have_interval || !have_timeout) return false;
  *out = std::move(result);
  return true;
}

bool replaceSid(std::string_view json, std::string_view new_sid, std::string* out) {
  simdjson::padded_string padded(json);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(object)) return false;
  size_t sid_start = std::string_view::npos;
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) return false;
    simdjson::ondemand::value value = field.value();
    if (key != "sid") continue;
    // The token points into the padded copy, whose offsets match the original's.
    std::string_view token = value.raw_json_token();
    std::string_view sid;
    if (value.get_string().get(sid)) return false;
    sid_start = static_cast<size_t>(token.data() - padded.data());
  }
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) return false;
  if (sid_start == std::string_view::npos) return false;
  size_t sid_end = endOfJsonString(json, sid_start);
  if (sid_end == std::string_view::npos) return false;
  out->clear();
  out->reserve(json.size() + new_sid.size());
  out->append(json.substr(0, sid_start));
  appendQuoted(*out, new_sid);
  out->append(json.substr(sid_end));
  return true;
}

std::string errorBody(const ServerError& error, std::string_view message) {
  std::string body = "{\"code\":";
  appendLength(body, static_cast<size_t>(error.code));
  body += ",\"message\":";
  appendQuoted(body, message.empty() ? error.message : message);
  body += '}';
  return body;
}

void appendBase64(std::string& out, std::string_view bytes) {
  size_t start = out.size();
  out.resize(start + base64Length(bytes.size()));
  char* dst = out.data() + start;
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])); };
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    *dst++ = kBase64Chars[v >> 18];
    *dst++ = kBase64Chars[(v >> 12) & 63];
    *dst++ = kBase64Chars[(v >> 6) & 63];
    *dst++ = kBase64Chars[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    *dst++ = kBase64Chars[v >> 18];
    *dst++ = kBase64Chars[(v >> 12) & 63];
    *dst++ = rest == 2 ? kBase64Chars[(v >> 6) & 63] : '=';
    *dst++ = '=';
  }
}

bool decodeBase64(std::string_view text, std::string& out) {
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  if (padding > 0 && text.size() % 4 != 0) return false;
  text.remove_suffix(padding);
  if (text.size() % 4 == 1) return false;
  size_t start = out.size();
  out.resize(start + text.size() / 4 * 3 + (text.size() % 4 == 0 ? 0 : text.size() % 4 - 1));
  char* dst = out.data() + start;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    uint8_t v = kBase64Values[static_cast<uint8_t>(c)];
    if (v == 0xFF) {
      out.resize(start);
      return false;
    }
    acc = acc << 6 | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *dst++ = static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return true;
}

}  // namespace wsb::eio
