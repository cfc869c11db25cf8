// Socket.IO packet codec: header parsing, a JSON scan for payload rules, builders, reassembly.
#include "codec/socketio.h"

#include <array>
#include <charconv>
#include <cstring>

namespace wsb::sio {

namespace {

constexpr std::string_view kReservedEvents[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Bytes that may appear unescaped inside a JSON string, other than the two that end a run.
constexpr std::array<bool, 256> makePlainTable() {
  std::array<bool, 256> table{};
  for (int c = 0x20; c < 256; ++c) table[c] = c != '"' && c != '\\';
  return table;
}
constexpr std::array<bool, 256> kPlainStringByte = makePlainTable();

// Does the raw content of a JSON string (between the quotes, escapes intact) spell `ascii`?
// Decodes escapes on the fly, so "\u0063onnect" is "connect" as JSON.parse sees it.
bool jsonStringEquals(std::string_view raw, bool escaped, std::string_view ascii) {
  if (!escaped) return raw == ascii;
  size_t j = 0;
  for (size_t i = 0; i < raw.size(); ++i, ++j) {
    if (j == ascii.size()) return false;
    char c = raw[i];
    if (c == '\\') {
      char e = raw[++i];  // the scanner guaranteed a complete escape
      switch (e) {
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 't':
          c = '\t';
          break;
        case 'u': {
          int unit = hexValue(raw[i + 1]) << 12 | hexValue(raw[i + 2]) << 8 |
                     hexValue(raw[i + 3]) << 4 | hexValue(raw[i + 4]);
          i += 4;
          if (unit >= 0x80) return false;  // the names compared against are ASCII
          c = static_cast<char>(unit);
          break;
        }
        default:
          c = e;
          break;  // " \ /
      }
    }
    if (c != ascii[j]) return false;
  }
  return j == ascii.size();
}

// What one pass over a payload learned. Top-level array fields are filled only for arrays.
struct JsonScan {
  JsonKind kind = JsonKind::None;
  uint32_t count = 0;  // top-level array elements
  JsonKind first_kind = JsonKind::None;
  std::string_view first;  // raw first element
  bool first_escaped = false;
  std::string_view inner;  // all elements, raw, no brackets
  std::string_view rest;   // elements after the first
  bool bad_placeholder = false;
};

// A JSON validator for exactly what JSON.parse accepts (RFC 8259), in one pass without
// allocating. Not simdjson: it must match JSON.parse where simdjson differs (lone surrogate
// escapes, numbers beyond double range are fine in JS), and it also checks placeholders.
class JsonScanner {
 public:
  JsonScanner(std::string_view json, uint32_t attachments)
      : p_(json.data()), end_(json.data() + json.size()), attachments_(attachments) {}

  bool scan(JsonScan* out);

 private:
  // Nesting deep enough for any real payload; bounded so the stack array stays small.
  static constexpr size_t kMaxDepth = 1024;
  enum MemberKey : uint8_t { kOtherKey, kPlaceholderKey, kNumKey };
  // Trivial, so the stack below costs nothing until used.
  struct Level {
    bool object;
    MemberKey key;     // key of the member whose value is being read
    bool placeholder;  // "_placeholder": true (last duplicate wins, as in JSON.parse)
    bool num_ok;       // "num" is a number in [0, attachments)
    bool bad_below;    // an invalid placeholder nested inside
  };

  void skipSpace() {
    while (p_ < end_ && isJsonSpace(*p_)) ++p_;
  }
  bool scanString(bool* escaped);
  bool scanNumber();
  bool scanLiteral(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0)
      return false;
    p_ += word.size();
    return true;
  }
  bool scanKey(Level& level);
  bool numInRange(const char* start) const;
  // Pops a closed container and hands a bad placeholder verdict to its parent.
  void close(JsonScan* out);

  const char* p_;
  const char* end_;
  uint32_t attachments_;
  std::array<Level, kMaxDepth> stack_;
  size_t depth_ = 0;
};

bool JsonScanner::scanString(bool* escaped) {
  ++p_;  // opening quote
  while (true) {
    while (p_ < end_ && kPlainStringByte[static_cast<uint8_t>(*p_)]) ++p_;
    if (p_ == end_) return false;
    char c = *p_++;
    if (c == '"') return true;
    if (c != '\\') return false;  // a raw control character
    if (p_ == end_) return false;
    *escaped = true;
    c = *p_++;
    if (c == 'u') {
      if (end_ - p_ < 4) return false;
      for (int i = 0; i < 4; ++i)
        if (hexValue(*p_++) < 0) return false;
    } else if (!std::strchr("\"\\/bfnrt", c) || c == '\0') {
      return false;
    }
  }
}

bool JsonScanner::scanNumber() {
  if (*p_ == '-') ++p_;
  if (p_ == end_ || !isDigit(*p_)) return false;
  if (*p_ == '0') {
    ++p_;
  } else {
    while (p_ < end_ && isDigit(*p_)) ++p_;
  }
  if (p_ < end_ && *p_ == '.') {
    ++p_;
    if (p_ == end_ || !isDigit(*p_)) return false;
    while (p_ < end_ && isDigit(*p_)) ++p_;
  }
  if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
    ++p_;
    if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (p_ == end_ || !isDigit(*p_)) return false;
    while (p_ < end_ && isDigit(*p_)) ++p_;
  }
  return true;
}

// Reads `"key"` and the ':' after it; leaves p_ at the member's value.
bool JsonScanner::scanKey(Level& level) {
  skipSpace();
  if (p_ == end_ || *p_ != '"') return false;
  const char* start = p_ + 1;
  bool escaped = false;
  if (!scanString(&escaped)) return false;
  level.key = kOtherKey;
  if (attachments_ > 0) {
    std::string_view key(start, static_cast<size_t>(p_ - 1 - start));
    if (jsonStringEquals(key, escaped, "_placeholder")) {
      level.key = kPlaceholderKey;
    } else if (jsonStringEquals(key, escaped, "num")) {
      level.key = kNumKey;
    }
  }
  skipSpace();
  if (p_ == end_ || *p_ != ':') return false;
  ++p_;
  skipSpace();
  return true;
}

// socket.io-parser: typeof num === "number" && num >= 0 && num < buffers.length.
bool JsonScanner::numInRange(const char* start) const {
  double value = 0;
  auto [ptr, ec] = std::from_chars(start, p_, value);
  return ec == std::errc() && ptr == p_ && value >= 0 && value < attachments_;
}

void JsonScanner::close(JsonScan* out) {
  Level& level = stack_[--depth_];
  // A valid placeholder stands for a buffer: the ref impl does not look inside it.
  bool bad = level.placeholder ? !level.num_ok : level.bad_below;
  if (!bad) return;
  if (depth_ == 0) {
    out->bad_placeholder = true;
  } else {
    stack_[depth_ - 1].bad_below = true;
  }
}

bool JsonScanner::scan(JsonScan* out) {
  const char* inner_start = nullptr;
  const char* inner_end = nullptr;
  const char* rest_start = nullptr;
  skipSpace();
  while (true) {
    // A value starts at p_.
    if (p_ == end_) return false;
    const char* start = p_;
    if (depth_ == 1 && !stack_[0].object && out->count == 0) inner_start = start;
    JsonKind kind;
    bool escaped = false;
    switch (*p_) {
      case '{':
      case '[': {
        if (depth_ == kMaxDepth) return false;
        bool object = *p_ == '{';
        stack_[depth_++] = Level{object, kOtherKey, false, false, false};
        ++p_;
        skipSpace();
        if (p_ < end_ && *p_ == (object ? '}' : ']')) {
          ++p_;
          close(out);
          kind = object ? JsonKind::Object : JsonKind::Array;
          break;
        }
        if (object && !scanKey(stack_[depth_ - 1])) return false;
        continue;  // read the first member / element
      }
      case '"':
        if (!scanString(&escaped)) return false;
        kind = JsonKind::String;
        break;
      case 't':
        if (!scanLiteral("true")) return false;
        kind = JsonKind::True;
        break;
      case 'f':
        if (!scanLiteral("false")) return false;
        kind = JsonKind::False;
        break;
      case 'n':
        if (!scanLiteral("null")) return false;
        kind = JsonKind::Null;
        break;
      default:
        if (!scanNumber()) return false;
        kind = JsonKind::Number;
        break;
    }
    // A value ended at p_; unwind every container it completes.
    while (true) {
      if (depth_ == 0) {
        out->kind = kind;
        skipSpace();
        return p_ == end_;
      }
      Level& level = stack_[depth_ - 1];
      if (level.object) {
        if (level.key == kPlaceholderKey) level.placeholder = kind == JsonKind::True;
        if (level.key == kNumKey) level.num_ok = kind == JsonKind::Number && numInRange(start);
      } else if (depth_ == 1) {
        if (++out->count == 1) {
          out->first_kind = kind;
          out->first = std::string_view(inner_start, static_cast<size_t>(p_ - inner_start));
          out->first_escaped = escaped;
        }
        inner_end = p_;
      }
      skipSpace();
      if (p_ == end_) return false;
      char c = *p_++;
      if (c == ',') {
        if (level.object) {
          if (!scanKey(level)) return false;
        } else {
          skipSpace();
          if (depth_ == 1 && out->count == 1) rest_start = p_;
        }
        break;  // read the next member / element
      }
      if (c != (level.object ? '}' : ']')) return false;
      // The closed container is now the value that ended (`start` only matters for numbers).
      bool top_array = depth_ == 1 && !level.object;
      kind = level.object ? JsonKind::Object : JsonKind::Array;
      escaped = false;
      close(out);
      if (top_array && inner_start) {
        out->inner = std::string_view(inner_start, static_cast<size_t>(inner_end - inner_start));
        if (rest_start)
          out->rest = std::string_view(rest_start, static_cast<size_t>(inner_end - rest_start));
      }
    }
  }
}

// Parses ASCII digits at text[*i...] into *value; false on overflow past `max`.
bool readNumber(std::string_view text, size_t* i, uint64_t max, uint64_t* value) {
  uint64_t v = 0;
  size_t j = *i;
  for (; j < text.size() && isDigit(text[j]); ++j) {
    v = v * 10 + static_cast<uint64_t>(text[j] - '0');
    if (v > max) return false;
  }
  *i = j;
  *value = v;
  return true;
}

// A number event name is what JS makes of it, String(Number(text)): "1e0" and "1.0" are "1",
// "-0" is "0", 2^53 + 1 rounds. Only the forms JS writes back unchanged are accepted (integers
// without a sign of zero or leading zeros, 15 digits at most), so the name filters see is the
// name the server dispatches.
bool isCanonicalName(std::string_view number) {
  std::string_view digits = number.substr(number.starts_with('-') ? 1 : 0);
  if (digits.empty() || digits.size() > 15) return false;
  for (char c : digits)
    if (!isDigit(c)) return false;
  if (digits[0] == '0') return digits.size() == 1 && digits.size() == number.size();
  return true;
}

// Escapes in a JSON string (raw, quotes removed, already scanned) that pair every UTF-16
// surrogate: a lone one is a name JSON.parse accepts but no UTF-8 can spell, so no filter could
// match it.
bool surrogatesPaired(std::string_view raw) {
  bool want_low = false;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      if (want_low) return false;
      continue;
    }
    char e = raw[++i];
    if (e != 'u') {
      if (want_low) return false;
      continue;
    }
    int unit = hexValue(raw[i + 1]) << 12 | hexValue(raw[i + 2]) << 8 | hexValue(raw[i + 3]) << 4 |
               hexValue(raw[i + 4]);
    i += 4;
    bool high = unit >= 0xD800 && unit <= 0xDBFF;
    bool low = unit >= 0xDC00 && unit <= 0xDFFF;
    if (low != want_low) return false;
    want_low = high;
  }
  return !want_low;
}

DecodeError checkShape(PacketType type, const JsonScan& scan, const DecodeOptions& options) {
  switch (type) {
    case PacketType::Connect:
      return options.version == Version::V5 && scan.kind == JsonKind::Object
                 ? DecodeError::None
                 : DecodeError::InvalidPayload;
    case PacketType::Disconnect:
      return DecodeError::InvalidPayload;
    case PacketType::ConnectError:
      return scan.kind == JsonKind::String || scan.kind == JsonKind::Object
                 ? DecodeError::None
                 : DecodeError::InvalidPayload;
    case PacketType::Event:
    case PacketType::BinaryEvent:
      if (scan.kind != JsonKind::Array) return DecodeError::InvalidPayload;
      if (scan.first_kind == JsonKind::Number) {
        return isCanonicalName(scan.first) ? DecodeError::None : DecodeError::InvalidPayload;
      }
      if (scan.first_kind != JsonKind::String) return DecodeError::InvalidPayload;
      {
        std::string_view name = scan.first.substr(1, scan.first.size() - 2);
        if (scan.first_escaped && !surrogatesPaired(name)) return DecodeError::InvalidPayload;
        for (std::string_view reserved : kReservedEvents)
          if (jsonStringEquals(name, scan.first_escaped, reserved))
            return DecodeError::InvalidPayload;
      }
      return DecodeError::None;
    case PacketType::Ack:
    case PacketType::BinaryAck:
      return scan.kind == JsonKind::Array ? DecodeError::None : DecodeError::InvalidPayload;
  }
  return DecodeError::InvalidPayload;
}

void appendNamespace(std::string& out, std::string_view nsp) {
  if (!nsp.empty() && nsp != "/") {
    out.append(nsp);
    out += ',';
  }
}

void appendNumber(std::string& out, uint64_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), n);
  (void)ec;  // 24 chars hold any uint64_t
  out.append(digits, end);
}

// `[<name>,args...]` or `[args...]` with placeholders for binary args; returns the count of those.
uint32_t appendArgs(std::string& out, std::string_view name, bool with_name,
                    std::span<const Arg> args, std::vector<std::string_view>* attachments) {
  uint32_t binary = 0;
  out += '[';
  if (with_name) appendJsonString(out, name);
  bool first = !with_name;
  for (const Arg& arg : args) {
    if (!first) out += ',';
    first = false;
    if (arg.binary) {
      out += "{\"_placeholder\":true,\"num\":";
      appendNumber(out, binary++);
      out += '}';
      attachments->push_back(arg.bytes);
    } else {
      out.append(arg.bytes);
    }
  }
  out += ']';
  return binary;
}

bool hasBinary(std::span<const Arg> args) {
  for (const Arg& arg : args)
    if (arg.binary) return true;
  return false;
}

// Appends the packet head and args, choosing the BINARY_* type when an arg is binary. The
// attachment count comes first on the wire but is known only after the args: write the args to
// the side only in that (rarer) case.
void appendWithArgs(std::string& out, PacketType type, PacketType binary_type, std::string_view nsp,
                    std::optional<uint64_t> id, std::string_view name, bool with_name,
                    std::span<const Arg> args, std::vector<std::string_view>* attachments) {
  if (!hasBinary(args)) {
    out += static_cast<char>('0' + static_cast<int>(type));
    appendNamespace(out, nsp);
    if (id) appendNumber(out, *id);
    appendArgs(out, name, with_name, args, nullptr);
    return;
  }
  std::string json;
  uint32_t count = appendArgs(json, name, with_name, args, attachments);
  out += static_cast<char>('0' + static_cast<int>(binary_type));
  appendNumber(out, count);
  out += '-';
  appendNamespace(out, nsp);
  if (id) appendNumber(out, *id);
  out += json;
}

// Re-points a view into `from` at the same bytes of `to` (a copy of `from`).
std::string_view rebase(std::string_view view, std::string_view from, std::string_view to) {
  auto at = reinterpret_cast<uintptr_t>(view.data());
  auto base = reinterpret_cast<uintptr_t>(from.data());
  if (view.empty() || at < base || at + view.size() > base + from.size()) return view;
  return to.substr(at - base, view.size());
}

void appendPercentDecoded(std::string& out, std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() && hexValue(text[i + 1]) >= 0 &&
               hexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(text[i + 1]) << 4 | hexValue(text[i + 2]));
      i += 2;
    } else {
      out += c;  // Node leaves a malformed escape as it is
    }
  }
}

}  // namespace

const char* describe(DecodeError error) {
  switch (error) {
    case DecodeError::None:
      return "ok";
    case DecodeError::UnknownType:
      return "unknown packet type";
    case DecodeError::IllegalAttachments:
      return "Illegal attachments";
    case DecodeError::TooManyAttachments:
      return "too many attachments";
    case DecodeError::InvalidAckId:
      return "invalid ack id";
    case DecodeError::InvalidJson:
      return "invalid payload (not JSON)";
    case DecodeError::InvalidPayload:
      return "invalid payload";
    case DecodeError::UnexpectedText:
      return "got plaintext data when reconstructing a packet";
    case DecodeError::UnexpectedBinary:
      return "got binary data when not reconstructing a packet";
    case DecodeError::InvalidUtf8:
      return "invalid UTF-8";
  }
  return "unknown error";
}

DecodeError decodePacket(std::string_view text, Packet* out, const DecodeOptions& options) {
  Packet packet;
  packet.raw = text;
  if (text.empty() || text[0] < '0' || text[0] > '6') return DecodeError::UnknownType;
  // JS peers see text as UTF-16: invalid UTF-8 becomes U+FFFD there, so bytes filters compare
  // would not be the string the server reads.
  if (!simdjson::validate_utf8(text.data(), text.size())) return DecodeError::InvalidUtf8;
  packet.type = static_cast<PacketType>(text[0] - '0');
  size_t i = 1;
  if (isBinary(packet.type)) {
    uint64_t count = 0;
    size_t start = i;
    // Past max_attachments is "too many" however many digits follow.
    bool fits = readNumber(text, &i, options.max_attachments, &count);
    if (fits && (i == start || i == text.size() || text[i] != '-'))
      return DecodeError::IllegalAttachments;
    if (!fits) {
      while (i < text.size() && isDigit(text[i])) ++i;
      return i < text.size() && text[i] == '-' ? DecodeError::TooManyAttachments
                                               : DecodeError::IllegalAttachments;
    }
    if (count == 0) return DecodeError::IllegalAttachments;
    packet.attachments = static_cast<uint32_t>(count);
    ++i;  // '-'
  }
  if (i < text.size() && text[i] == '/') {
    size_t comma = text.find(',', i);
    if (comma == std::string_view::npos) {
      packet.nsp = text.substr(i);
      i = text.size();
    } else {
      packet.nsp = text.substr(i, comma - i);
      i = comma + 1;
    }
  }
  if (i < text.size() && isDigit(text[i])) {
    uint64_t id = 0;
    if (!readNumber(text, &i, kMaxAckId, &id)) return DecodeError::InvalidAckId;
    packet.id = id;
  }
  if (i == text.size()) {
    // socket.io-parser lets these through with no data (an EVENT without a name, an ACK whose
    // callback runs with no arguments); no Socket.IO peer sends them.
    if (packet.type == PacketType::Event || packet.type == PacketType::BinaryEvent ||
        packet.type == PacketType::Ack || packet.type == PacketType::BinaryAck)
      return DecodeError::InvalidPayload;
  } else {
    packet.data = text.substr(i);
    if (isJsonSpace(packet.data[0])) return DecodeError::InvalidPayload;
    JsonScan scan;
    JsonScanner scanner(packet.data, packet.attachments);
    if (!scanner.scan(&scan)) return DecodeError::InvalidJson;
    if (auto error = checkShape(packet.type, scan, options); error != DecodeError::None)
      return error;
    if (scan.bad_placeholder) return DecodeError::IllegalAttachments;
    packet.data_kind = scan.kind;
    if (scan.kind == JsonKind::Array) {
      if (packet.type == PacketType::Event || packet.type == PacketType::BinaryEvent) {
        packet.name_json = scan.first;
        packet.name_kind = scan.first_kind;
        packet.name_escaped = scan.first_escaped;
        packet.args_json = scan.rest;
        packet.arg_count = scan.count - 1;
      } else {
        packet.args_json = scan.inner;
        packet.arg_count = scan.count;
      }
    }
  }
  *out = packet;
  return DecodeError::None;
}

simdjson::simdjson_result<simdjson::ondemand::document> JsonReader::iterate(std::string_view json,
                                                                            size_t slack) {
  if (slack >= simdjson::SIMDJSON_PADDING)
    return parser_.iterate(simdjson::padded_string_view(json, json.size() + slack));
  copy_.assign(json);
  copy_.append(simdjson::SIMDJSON_PADDING, ' ');
  return parser_.iterate(simdjson::padded_string_view(copy_.data(), json.size(), copy_.size()));
}

std::optional<std::string_view> eventName(const Packet& packet, JsonReader& reader) {
  if (packet.type != PacketType::Event && packet.type != PacketType::BinaryEvent) return {};
  if (packet.name_kind == JsonKind::Number) return packet.name_json;
  if (packet.name_kind != JsonKind::String) return {};
  if (!packet.name_escaped) return packet.name_json.substr(1, packet.name_json.size() - 2);
  simdjson::ondemand::document doc;
  simdjson::ondemand::array array;
  std::string_view name;
  if (reader.iterate(packet.data, packet.slack).get(doc) || doc.get_array().get(array)) return {};
  for (auto element : array) {
    if (element.get_string().get(name)) return {};
    return name;
  }
  return {};
}

std::optional<std::string_view> connectErrorMessage(const Packet& packet, JsonReader& reader) {
  if (packet.type != PacketType::ConnectError || packet.data.empty()) return {};
  simdjson::ondemand::document doc;
  std::string_view message;
  if (reader.iterate(packet.data, packet.slack).get(doc)) return {};
  if (packet.data_kind == JsonKind::String) {
    if (doc.get_string().get(message)) return {};
    return message;
  }
  simdjson::ondemand::object object;
  if (doc.get_object().get(object) ||
      object.find_field_unordered("message").get_string().get(message))
    return {};
  return message;
}

void splitNamespace(std::string_view nsp, std::string_view* path, std::string_view* query) {
  size_t mark = nsp.find('?');
  *path = nsp.substr(0, mark);
  *query = mark == std::string_view::npos ? std::string_view() : nsp.substr(mark + 1);
}

void appendQueryAsJson(std::string& out, std::string_view query) {
  // Pairs in first-seen key order, values grouped per key (querystring.parse semantics).
  struct Entry {
    std::string key;
    std::vector<std::string> values;
  };
  std::vector<Entry> entries;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string_view pair = query.substr(pos, amp == std::string_view::npos ? amp : amp - pos);
    pos = amp == std::string_view::npos ? query.size() + 1 : amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key, value;
    appendPercentDecoded(key, pair.substr(0, eq));
    if (eq != std::string_view::npos) appendPercentDecoded(value, pair.substr(eq + 1));
    Entry* entry = nullptr;
    for (Entry& e : entries)
      if (e.key == key) entry = &e;
    if (!entry) entry = &entries.emplace_back(Entry{std::move(key), {}});
    entry->values.push_back(std::move(value));
  }
  out += '{';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ',';
    appendJsonString(out, entries[i].key);
    out += ':';
    const auto& values = entries[i].values;
    if (values.size() == 1) {
      appendJsonString(out, values[0]);
      continue;
    }
    out += '[';
    for (size_t j = 0; j < values.size(); ++j) {
      if (j > 0) out += ',';
      appendJsonString(out, values[j]);
    }
    out += ']';
  }
  out += '}';
}

void appendPacket(std::string& out, const Packet& packet) {
  out += static_cast<char>('0' + static_cast<int>(packet.type));
  if (isBinary(packet.type)) {
    appendNumber(out, packet.attachments);
    out += '-';
  }
  appendNamespace(out, packet.nsp);
  if (packet.id) appendNumber(out, *packet.id);
  out.append(packet.data);
}

void appendConnect(std::string& out, std::string_view nsp, std::string_view auth_json) {
  out += '0';
  appendNamespace(out, nsp);
  out.append(auth_json);
}

void appendConnectReply(std::string& out, Version version, std::string_view nsp,
                        std::string_view sid) {
  out += '0';
  appendNamespace(out, nsp);
  if (version == Version::V4) return;
  out += "{\"sid\":";
  appendJsonString(out, sid);
  out += '}';
}

void appendConnectError(std::string& out, Version version, std::string_view nsp,
                        std::string_view message, std::string_view data_json) {
  out += '4';
  appendNamespace(out, nsp);
  if (version == Version::V4) {
    if (data_json.empty()) {
      appendJsonString(out, message);
    } else {
      out.append(data_json);
    }
    return;
  }
  out += "{\"message\":";
  appendJsonString(out, message);
  if (!data_json.empty()) {
    out += ",\"data\":";
    out.append(data_json);
  }
  out += '}';
}

void appendDisconnect(std::string& out, std::string_view nsp) {
  out += '1';
  appendNamespace(out, nsp);
}

void appendEvent(std::string& out, std::string_view nsp, std::string_view name,
                 std::span<const Arg> args, std::optional<uint64_t> id,
                 std::vector<std::string_view>* attachments) {
  appendWithArgs(out, PacketType::Event, PacketType::BinaryEvent, nsp, id, name, true, args,
                 attachments);
}

void appendEventJson(std::string& out, std::string_view nsp, std::string_view name,
                     std::string_view args_array_json, std::optional<uint64_t> id) {
  out += '2';
  appendNamespace(out, nsp);
  if (id) appendNumber(out, *id);
  out += '[';
  appendJsonString(out, name);
  // The elements between the outer brackets, if there are any.
  size_t open = args_array_json.find('[');
  size_t close = args_array_json.rfind(']');
  if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
    std::string_view inner = args_array_json.substr(open + 1, close - open - 1);
    while (!inner.empty() && isJsonSpace(inner.front())) inner.remove_prefix(1);
    if (!inner.empty()) {
      out += ',';
      out.append(inner);
    }
  }
  out += ']';
}

void appendAck(std::string& out, std::string_view nsp, uint64_t id, std::span<const Arg> args,
               std::vector<std::string_view>* attachments) {
  appendWithArgs(out, PacketType::Ack, PacketType::BinaryAck, nsp, id, {}, false, args,
                 attachments);
}

void appendJsonString(std::string& out, std::string_view utf8) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < utf8.size(); ++i) {
    auto c = static_cast<uint8_t>(utf8[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(utf8.substr(run, i - run));
    run = i + 1;
    out += '\\';
    switch (c) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '\b':
        out += 'b';
        break;
      case '\f':
        out += 'f';
        break;
      case '\n':
        out += 'n';
        break;
      case '\r':
        out += 'r';
        break;
      case '\t':
        out += 't';
        break;
      default:
        out += "u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(utf8.substr(run));
  out += '"';
}

Reassembler::Status Reassembler::addPacket(const Packet& packet) {
  if (error_ != DecodeError::None) return Status::Error;
  if (!complete_ && !text_.empty()) {
    error_ = DecodeError::UnexpectedText;
    return Status::Error;
  }
  if (!isBinary(packet.type)) return Status::Ready;
  // The header's bytes belong to the caller's read buffer: keep a copy and point into it.
  complete_ = false;
  attachments_.clear();
  text_.assign(packet.raw);
  packet_ = packet;
  packet_.slack = 0;
  for (std::string_view* view :
       {&packet_.raw, &packet_.nsp, &packet_.data, &packet_.name_json, &packet_.args_json})
    *view = rebase(*view, packet.raw, text_);
  return Status::NeedAttachment;
}

Reassembler::Status Reassembler::addAttachment(std::string_view bytes) {
  if (error_ != DecodeError::None) return Status::Error;
  if (complete_ || text_.empty()) {
    error_ = DecodeError::UnexpectedBinary;
    return Status::Error;
  }
  attachments_.emplace_back(bytes);
  if (attachments_.size() < packet_.attachments) return Status::NeedAttachment;
  complete_ = true;
  return Status::Ready;
}

size_t Reassembler::pending() const {
  if (complete_ || text_.empty()) return 0;
  return packet_.attachments - attachments_.size();
}

void Reassembler::reset() {
  text_.clear();
  packet_ = Packet();
  attachments_.clear();
  complete_ = false;
  error_ = DecodeError::None;
}

}  // namespace wsb::sio
