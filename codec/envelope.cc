// Envelope parsing and rendering on simdjson On-Demand, keeping argument bytes as they came.
#include "codec/envelope.h"

#include <simdjson.h>

#include <charconv>
#include <cstring>
#include <string>
#include <utility>

namespace wsb::envelope {
namespace {

namespace od = simdjson::ondemand;

// Deeper values are refused: the walk recurses once per level (about 200 bytes of stack each,
// several KiB under AddressSanitizer). Real payloads nest a handful of levels.
constexpr size_t kMaxDepth = 256;
constexpr const char* kTooDeep = "JSON nests deeper than 256 levels";

// One parser and one padded copy of the input per thread: simdjson reads up to
// SIMDJSON_PADDING bytes past the end, and reusing both keeps steady-state parsing
// allocation-free. One worker per thread, so nothing is shared.
struct Scratch {
  od::parser parser;
  std::string padded;
  std::string unescaped;  // an object key that had escapes, or a "_base64" string
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Copies text into the padded buffer and starts iterating it; *base is the copy.
bool startDocument(std::string_view text, od::document* doc, const char** base) {
  Scratch& s = scratch();
  const size_t need = text.size() + simdjson::SIMDJSON_PADDING;
  if (s.padded.size() < need) s.padded.resize(need);
  if (!text.empty()) std::memcpy(s.padded.data(), text.data(), text.size());
  std::memset(s.padded.data() + text.size(), 0, simdjson::SIMDJSON_PADDING);
  *base = s.padded.data();
  return s.parser.iterate(s.padded.data(), text.size(), s.padded.size()).get(*doc) ==
         simdjson::SUCCESS;
}

// On-Demand checks structure lazily; this says whether the document had nothing left over.
bool atEnd(od::document& doc) {
  const char* location = nullptr;
  return doc.current_location().get(location) == simdjson::OUT_OF_BOUNDS;
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trimRight(std::string_view s) {
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  return trimRight(s);
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 8259 number grammar; checked here rather than by simdjson, which refuses valid numbers
// it cannot represent (integers past 64 bits, 1e400).
bool isJsonNumber(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (isDigit(s[i])) {
    while (i < n && isDigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (i >= n || !isDigit(s[i])) return false;
    while (i < n && isDigit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= n || !isDigit(s[i])) return false;
    while (i < n && isDigit(s[i])) ++i;
  }
  return i == n;
}

// The inside of a JSON string (between the quotes): escapes well formed, no raw control
// characters. Any \uXXXX is accepted, lone surrogates included, as RFC 8259's grammar does
// (simdjson 3.0 refuses them). UTF-8 was checked for the whole input by simdjson.
bool isStringInterior(std::string_view s) {
  const size_t n = s.size();
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (++i >= n) return false;
      switch (s[i]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          break;
        case 'u':
          if (n - i < 5) return false;
          for (size_t k = 1; k <= 4; ++k) {
            if (hexValue(s[i + k]) < 0) return false;
          }
          i += 4;
          break;
        default:
          return false;
      }
    } else if (c < 0x20 || c == '"') {
      return false;
    }
  }
  return true;
}

bool isStringToken(std::string_view s) {
  return s.size() >= 2 && s.front() == '"' && s.back() == '"' &&
         isStringInterior(s.substr(1, s.size() - 2));
}

void appendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t hex4(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (size_t k = 0; k < 4; ++k) v = (v << 4) | static_cast<uint32_t>(hexValue(s[at + k]));
  return v;
}

// Appends the unescaped text of a string interior that passed isStringInterior. A lone
// surrogate becomes U+FFFD so that the result stays valid UTF-8.
void appendUnescaped(std::string* out, std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const size_t run = s.find('\\', i);
    if (run == std::string_view::npos) {
      out->append(s.substr(i));
      return;
    }
    out->append(s.substr(i, run - i));
    i = run + 1;
    const char e = s[i++];
    switch (e) {
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        uint32_t cp = hex4(s, i);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && n - i >= 6 && s[i] == '\\' && s[i + 1] == 'u') {
          const uint32_t low = hex4(s, i + 2);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        appendUtf8(out, cp);
        break;
      }
      default: out->push_back(e); break;  // " \ /
    }
  }
}

// Appends s as a JSON string, quotes included.
void appendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run_start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.substr(run_start, i - run_start));
    run_start = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(escape, sizeof escape);
      }
    }
  }
  out->append(s.substr(run_start));
  out->push_back('"');
}

void appendUint(std::string* out, uint64_t v) {
  char digits[20];
  const auto result = std::to_chars(digits, digits + sizeof digits, v);
  out->append(digits, result.ptr);
}

// A JSON number token that is a plain non-negative integer fitting 64 bits.
bool parseUint(std::string_view s, uint64_t* v) {
  if (s.empty() || !isDigit(s.front())) return false;
  const auto result = std::from_chars(s.data(), s.data() + s.size(), *v);
  return result.ec == std::errc() && result.ptr == s.data() + s.size();
}

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void appendBase64(std::string* out, std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  const size_t at = out->size();
  out->resize(at + (n + 2) / 3 * 4);
  char* w = out->data() + at;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    *w++ = kBase64Alphabet[v >> 18];
    *w++ = kBase64Alphabet[(v >> 12) & 0x3F];
    *w++ = kBase64Alphabet[(v >> 6) & 0x3F];
    *w++ = kBase64Alphabet[v & 0x3F];
  }
  if (i < n) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= uint32_t{p[i + 1]} << 8;
    *w++ = kBase64Alphabet[v >> 18];
    *w++ = kBase64Alphabet[(v >> 12) & 0x3F];
    *w++ = i + 1 < n ? kBase64Alphabet[(v >> 6) & 0x3F] : '=';
    *w++ = '=';
  }
}

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard alphabet, padding optional but correct when present, no whitespace.
bool decodeBase64(std::string_view s, std::string* out) {
  if (s.size() % 4 == 0 && !s.empty() && s.back() == '=') {
    s.remove_suffix(1);
    if (s.back() == '=') s.remove_suffix(1);
  }
  if (s.size() % 4 == 1) return false;
  out->clear();
  out->reserve(s.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : s) {
    const int v = base64Value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

// Walks a JSON value to its end, checking every nested value (On-Demand only checks what it is
// asked for), and gives its exact bytes. In the attachment modes it also rewrites marker
// objects into *out, copying everything between them unchanged.
class Walker {
 public:
  enum class Mode { Check, Inline, Extract };

  Walker(Mode mode, const char* base, size_t len) : mode_(mode), cursor_(base), end_(base + len) {}

  void inlineFrom(const std::vector<std::string>* attachments, std::string* out) {
    attachments_in_ = attachments;
    out_ = out;
  }
  void extractTo(std::vector<std::string>* attachments, std::string* out) {
    attachments_out_ = attachments;
    out_ = out;
  }

  // False on failure; why() is null when the input is not JSON, else says what else is wrong
  // (a marker, the nesting depth).
  bool walk(od::value& v, std::string_view* raw, size_t depth) {
    const std::string_view token = v.raw_json_token();
    od::json_type type;
    if (v.type().get(type) != simdjson::SUCCESS) return false;
    switch (type) {
      case od::json_type::array:
        return walkArray(v, token.data(), raw, depth);
      case od::json_type::object:
        return walkObject(v, token.data(), raw, depth);
      default:
        break;
    }
    // Scalars stay unconsumed: the enclosing iteration skips them.
    const std::string_view scalar = trimRight(token);
    bool ok = false;
    switch (type) {
      case od::json_type::string: ok = isStringToken(scalar); break;
      case od::json_type::number: ok = isJsonNumber(scalar); break;
      case od::json_type::boolean: ok = scalar == "true" || scalar == "false"; break;
      case od::json_type::null: ok = scalar == "null"; break;
      default: break;
    }
    if (raw != nullptr) *raw = scalar;
    return ok;
  }

  // The key of a field whose value is v, checked and unescaped; valid until the next key.
  bool key(od::field& field, od::value& v, std::string_view* key) {
    const char* begin = field.key().raw();
    // Back from the value over `"  :  ` to the key's closing quote.
    const char* p = v.raw_json_token().data();
    do --p; while (p > begin && isSpace(*p));
    if (p <= begin || *p != ':') return false;
    do --p; while (p >= begin && isSpace(*p));
    if (p < begin || *p != '"') return false;
    const std::string_view interior(begin, static_cast<size_t>(p - begin));
    if (!isStringInterior(interior)) return false;
    if (interior.find('\\') == std::string_view::npos) {
      *key = interior;
    } else {
      std::string& buffer = scratch().unescaped;
      buffer.clear();
      appendUnescaped(&buffer, interior);
      *key = buffer;
    }
    return true;
  }

  // On-Demand iteration does not check what separates values (`["a":1}` iterates as an array
  // of one string), so every value must be followed by `close`, or by a comma and more.
  bool separated(std::string_view value, char close) const {
    const char* p = skipSpace(value.data() + value.size());
    if (p < end_ && *p == close) return true;
    if (p >= end_ || *p != ',') return false;
    p = skipSpace(p + 1);
    return p < end_ && *p != close && (close != '}' || *p == '"');
  }

  // Copies what follows the last rewritten marker.
  void finish() { out_->append(cursor_, static_cast<size_t>(end_ - cursor_)); }

  const char* why() const { return why_; }

 private:
  const char* skipSpace(const char* p) const {
    while (p < end_ && isSpace(*p)) ++p;
    return p;
  }

  // Where a consumed container ends: the next token, less the whitespace before it.
  std::string_view extent(od::value& v, const char* start) {
    const char* next = nullptr;
    if (v.current_location().get(next) != simdjson::SUCCESS) next = end_;
    return trimRight(std::string_view(start, static_cast<size_t>(next - start)));
  }

  bool walkArray(od::value& v, const char* start, std::string_view* raw, size_t depth) {
    if (depth >= kMaxDepth) return fail(kTooDeep);
    od::array array;
    if (v.get_array().get(array) != simdjson::SUCCESS) return false;
    for (auto element : array) {
      od::value child;
      if (element.get(child) != simdjson::SUCCESS) return false;
      std::string_view child_raw;
      if (!walk(child, &child_raw, depth + 1) || !separated(child_raw, ']')) return false;
    }
    if (raw != nullptr) *raw = extent(v, start);
    return true;
  }

  enum class MarkerKey { None, Placeholder, Num, Base64 };

  MarkerKey markerKey(std::string_view name) const {
    if (mode_ == Mode::Inline) {
      if (name == "_placeholder") return MarkerKey::Placeholder;
      if (name == "num") return MarkerKey::Num;
    } else if (mode_ == Mode::Extract) {
      if (name == "_base64") return MarkerKey::Base64;
    }
    return MarkerKey::None;
  }

  bool walkObject(od::value& v, const char* start, std::string_view* raw, size_t depth) {
    if (depth >= kMaxDepth) return fail(kTooDeep);
    od::object object;
    if (v.get_object().get(object) != simdjson::SUCCESS) return false;
    // A marker found below is replaced; if this object is itself a marker, those replacements
    // are undone and the whole object replaced instead.
    const size_t out_mark = out_ != nullptr ? out_->size() : 0;
    const char* cursor_mark = cursor_;
    bool placeholder = false;
    std::string_view num;
    std::string_view base64;
    bool has_base64 = false;
    size_t keys = 0;
    for (auto result : object) {
      od::field field;
      if (std::move(result).get(field) != simdjson::SUCCESS) return false;
      od::value& child = field.value();
      std::string_view name;
      if (!key(field, child, &name)) return false;
      if (mode_ == Mode::Extract && name == "_placeholder") {
        return fail("\"_placeholder\" objects are not allowed");
      }
      // Decided before walking the value: nested keys reuse the buffer name may point into.
      const MarkerKey marker = markerKey(name);
      std::string_view child_raw;
      if (!walk(child, &child_raw, depth + 1) || !separated(child_raw, '}')) return false;
      ++keys;
      switch (marker) {
        case MarkerKey::Placeholder:
          placeholder = child_raw == "true";  // socket.io-parser: `_placeholder === true`
          break;
        case MarkerKey::Num:
          num = child_raw;
          break;
        case MarkerKey::Base64:
          has_base64 = true;
          base64 = child_raw;
          break;
        case MarkerKey::None:
          break;
      }
    }
    const std::string_view whole = extent(v, start);
    if (raw != nullptr) *raw = whole;
    if (placeholder) return replacePlaceholder(whole, num, out_mark, cursor_mark);
    if (has_base64) return replaceBase64(whole, base64, keys, out_mark, cursor_mark);
    return true;
  }

  bool replacePlaceholder(std::string_view whole, std::string_view num, size_t out_mark,
                          const char* cursor_mark) {
    uint64_t index = 0;
    if (!parseUint(num, &index) || index >= attachments_in_->size()) {
      return fail("placeholder \"num\" is not an attachment index");
    }
    rewind(out_mark, cursor_mark);
    copyUpTo(whole.data());
    out_->append("{\"_base64\":\"");
    appendBase64(out_, (*attachments_in_)[index]);
    out_->append("\"}");
    cursor_ = whole.data() + whole.size();
    return true;
  }

  bool replaceBase64(std::string_view whole, std::string_view base64, size_t keys,
                     size_t out_mark, const char* cursor_mark) {
    if (keys != 1) return fail("\"_base64\" must be the only key of its object");
    if (base64.empty() || base64.front() != '"') return fail("\"_base64\" must be a string");
    std::string& text = scratch().unescaped;
    text.clear();
    appendUnescaped(&text, base64.substr(1, base64.size() - 2));
    std::string bytes;
    if (!decodeBase64(text, &bytes)) return fail("\"_base64\" is not valid base64");
    attachments_out_->push_back(std::move(bytes));
    rewind(out_mark, cursor_mark);
    copyUpTo(whole.data());
    out_->append("{\"_placeholder\":true,\"num\":");
    appendUint(out_, attachments_out_->size() - 1);
    out_->push_back('}');
    cursor_ = whole.data() + whole.size();
    return true;
  }

  void rewind(size_t out_mark, const char* cursor_mark) {
    out_->resize(out_mark);
    cursor_ = cursor_mark;
  }

  void copyUpTo(const char* p) {
    out_->append(cursor_, static_cast<size_t>(p - cursor_));
    cursor_ = p;
  }

  bool fail(const char* why) {
    why_ = why;
    return false;
  }

  Mode mode_;
  const char* cursor_;  // input copied to *out_ up to here
  const char* end_;
  std::string* out_ = nullptr;
  const std::vector<std::string>* attachments_in_ = nullptr;
  std::vector<std::string>* attachments_out_ = nullptr;
  const char* why_ = nullptr;
};

ParseStatus notEnvelope(std::string* error, const char* why) {
  *error = why;
  return ParseStatus::NotEnvelope;
}

ParseStatus invalid(std::string* error, const char* why) {
  *error = why;
  return ParseStatus::Invalid;
}

// A walk fails on text that is not JSON, or on JSON nested too deeply to be an envelope.
ParseStatus walkFailure(const Walker& walker, std::string* error) {
  if (walker.why() != nullptr) return invalid(error, walker.why());
  return notEnvelope(error, "envelope is not JSON");
}

enum Key : unsigned { kEvent = 1, kData = 2, kArgs = 4, kAck = 8, kNsp = 16, kOther = 0 };

Key classify(std::string_view key) {
  if (key == "event") return kEvent;
  if (key == "data") return kData;
  if (key == "args") return kArgs;
  if (key == "ack") return kAck;
  if (key == "nsp") return kNsp;
  return kOther;
}

const char* duplicateError(Key key) {
  switch (key) {
    case kEvent: return "duplicate key \"event\"";
    case kData: return "duplicate key \"data\"";
    case kArgs: return "duplicate key \"args\"";
    case kAck: return "duplicate key \"ack\"";
    default: return "duplicate key \"nsp\"";
  }
}

ParseStatus parseObject(od::document& doc, const char* base, size_t len,
                        const ParseOptions& options, Message* out, std::string* error) {
  static constexpr const char* kNotJson = "envelope is not JSON";
  od::object object;
  if (doc.get_object().get(object) != simdjson::SUCCESS) return notEnvelope(error, kNotJson);
  Walker walker(Walker::Mode::Check, base, len);
  // The first semantic problem is reported only once the whole text is known to be JSON.
  const char* problem = nullptr;
  unsigned seen = 0;
  std::string_view data;
  std::string_view args;
  for (auto result : object) {
    od::field field;
    if (std::move(result).get(field) != simdjson::SUCCESS) return notEnvelope(error, kNotJson);
    od::value& value = field.value();
    std::string_view name;
    if (!walker.key(field, value, &name)) return notEnvelope(error, kNotJson);
    const Key key = classify(name);
    std::string_view raw;
    if (!walker.walk(value, &raw, 1)) return walkFailure(walker, error);
    if (!walker.separated(raw, '}')) return notEnvelope(error, kNotJson);
    if (key == kOther || problem != nullptr) continue;
    if ((seen & key) != 0) {
      problem = duplicateError(key);
      continue;
    }
    seen |= key;
    const bool is_string = raw.front() == '"';
    switch (key) {
      case kEvent:
        if (!is_string) {
          problem = "\"event\" must be a string";
        } else {
          appendUnescaped(&out->event, raw.substr(1, raw.size() - 2));
        }
        break;
      case kData:
        data = raw;
        break;
      case kArgs:
        if (raw.front() != '[') problem = "\"args\" must be an array";
        args = raw;
        break;
      case kAck: {
        uint64_t id = 0;
        if (!parseUint(raw, &id)) {
          problem = "\"ack\" must be a non-negative integer";
        } else {
          out->ack = id;
        }
        break;
      }
      case kNsp:
        if (!options.allow_nsp) {
          problem = "\"nsp\" not allowed on this route";
          break;
        }
        if (is_string) appendUnescaped(&out->nsp, raw.substr(1, raw.size() - 2));
        if (!is_string || out->nsp.empty() || out->nsp.front() != '/' ||
            out->nsp.find(',') != std::string::npos) {
          problem = "\"nsp\" must be a string starting with \"/\" and without \",\"";
        }
        break;
      case kOther:
        break;
    }
  }
  if (!atEnd(doc)) return notEnvelope(error, kNotJson);
  if (problem != nullptr) return invalid(error, problem);
  if ((seen & kData) != 0 && (seen & kArgs) != 0) {
    return invalid(error, "both \"data\" and \"args\"");
  }
  if ((seen & kEvent) == 0) {
    if ((seen & kAck) == 0) return invalid(error, "missing \"event\"");
    out->kind = Message::Kind::AckAnswer;
  }
  if ((seen & kData) != 0) {
    out->args.reserve(data.size() + 2);
    out->args.push_back('[');
    out->args.append(data);
    out->args.push_back(']');
  } else if ((seen & kArgs) != 0) {
    out->args.assign(args);
  } else {
    out->args.assign("[]");
  }
  return ParseStatus::Ok;
}

ParseStatus parseArray(od::document& doc, const char* base, size_t len, Message* out,
                       std::string* error) {
  static constexpr const char* kNotJson = "envelope is not JSON";
  od::array array;
  if (doc.get_array().get(array) != simdjson::SUCCESS) return notEnvelope(error, kNotJson);
  Walker walker(Walker::Mode::Check, base, len);
  size_t index = 0;
  bool event_is_string = false;
  const char* args_start = nullptr;
  for (auto element : array) {
    od::value value;
    if (element.get(value) != simdjson::SUCCESS) return notEnvelope(error, kNotJson);
    if (index == 1) args_start = value.raw_json_token().data();
    std::string_view raw;
    if (!walker.walk(value, &raw, 1)) return walkFailure(walker, error);
    if (!walker.separated(raw, ']')) return notEnvelope(error, kNotJson);
    if (index == 0 && raw.front() == '"') {
      event_is_string = true;
      appendUnescaped(&out->event, raw.substr(1, raw.size() - 2));
    }
    ++index;
  }
  if (!atEnd(doc)) return notEnvelope(error, kNotJson);
  if (index == 0) return invalid(error, "missing event name");
  if (!event_is_string) return invalid(error, "event name must be a string");
  if (args_start == nullptr) {
    out->args.assign("[]");
  } else {
    // From the second element through the closing bracket, which ends the trimmed text.
    const std::string_view whole = trimRight(std::string_view(base, len));
    out->args.push_back('[');
    out->args.append(args_start, static_cast<size_t>(whole.data() + whole.size() - args_start));
  }
  return ParseStatus::Ok;
}

// The elements of a JSON array text, as far as rendering cares: none, one (and which), or more.
// The text is assumed valid; on anything else this still stays inside it.
struct ArgsView {
  std::string_view inner;  // between the brackets, trimmed
  bool several = false;
};

ArgsView viewArgs(std::string_view args) {
  args = trim(args);
  if (!args.empty() && args.front() == '[') args.remove_prefix(1);
  if (!args.empty() && args.back() == ']') args.remove_suffix(1);
  ArgsView view{trim(args)};
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < view.inner.size(); ++i) {
    const char c = view.inner[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 0) {
      view.several = true;
      break;
    }
  }
  return view;
}

void appendArgsMember(std::string* out, std::string_view args_json, const ArgsView& view) {
  if (view.inner.empty()) return;
  if (view.several) {
    out->append(",\"args\":");
    out->append(trim(args_json));
  } else {
    out->append(",\"data\":");
    out->append(view.inner);
  }
}

}  // namespace

ParseStatus parse(std::string_view text, const ParseOptions& options, Message* out,
                  std::string* error) {
  out->kind = Message::Kind::Event;
  out->event.clear();
  out->args.clear();
  out->ack.reset();
  out->nsp.clear();
  od::document doc;
  const char* base = nullptr;
  od::json_type type;
  if (!startDocument(text, &doc, &base) || doc.type().get(type) != simdjson::SUCCESS) {
    return notEnvelope(error, "envelope is not JSON");
  }
  if (options.shape == Shape::Json) {
    if (type != od::json_type::object) return notEnvelope(error, "envelope is not a JSON object");
    return parseObject(doc, base, text.size(), options, out, error);
  }
  if (type != od::json_type::array) return notEnvelope(error, "envelope is not a JSON array");
  return parseArray(doc, base, text.size(), out, error);
}

std::string renderEvent(Shape shape, std::string_view event, std::string_view args_json,
                        std::optional<uint64_t> ack, std::string_view nsp) {
  const ArgsView view = viewArgs(args_json);
  std::string out;
  out.reserve(event.size() + args_json.size() + nsp.size() + 48);
  if (shape == Shape::Array) {
    out.push_back('[');
    appendJsonString(&out, event);
    if (!view.inner.empty()) {
      out.push_back(',');
      out.append(view.inner);
    }
    out.push_back(']');
    return out;
  }
  out.append("{\"event\":");
  appendJsonString(&out, event);
  if (!nsp.empty()) {
    out.append(",\"nsp\":");
    appendJsonString(&out, nsp);
  }
  appendArgsMember(&out, args_json, view);
  if (ack) {
    out.append(",\"ack\":");
    appendUint(&out, *ack);
  }
  out.push_back('}');
  return out;
}

std::string renderAckAnswer(Shape shape, uint64_t ack, std::string_view args_json,
                            std::string_view nsp) {
  if (shape == Shape::Array) return {};
  std::string out;
  out.reserve(args_json.size() + nsp.size() + 40);
  out.append("{\"ack\":");
  appendUint(&out, ack);
  if (!nsp.empty()) {
    out.append(",\"nsp\":");
    appendJsonString(&out, nsp);
  }
  appendArgsMember(&out, args_json, viewArgs(args_json));
  out.push_back('}');
  return out;
}

std::string renderError(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 44);
  out.append("{\"event\":\"error\",\"data\":{\"message\":");
  appendJsonString(&out, message);
  out.append("}}");
  return out;
}

std::string textAsArgs(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 4);
  out.push_back('[');
  appendJsonString(&out, text);
  out.push_back(']');
  return out;
}

namespace {

// Shared by inline and extract: both walk an argument array and rewrite marker objects.
bool rewriteAttachments(std::string_view args_json, Walker::Mode mode,
                        const std::vector<std::string>* attachments_in,
                        std::vector<std::string>* attachments_out, std::string* out,
                        std::string* error) {
  out->clear();
  static constexpr const char* kNotJson = "args are not JSON";
  od::document doc;
  const char* base = nullptr;
  od::json_type type;
  if (!startDocument(args_json, &doc, &base) || doc.type().get(type) != simdjson::SUCCESS) {
    *error = kNotJson;
    return false;
  }
  od::array array;
  if (type != od::json_type::array || doc.get_array().get(array) != simdjson::SUCCESS) {
    *error = type != od::json_type::array ? "args are not a JSON array" : kNotJson;
    return false;
  }
  Walker walker(mode, base, args_json.size());
  if (mode == Walker::Mode::Inline) {
    walker.inlineFrom(attachments_in, out);
  } else {
    walker.extractTo(attachments_out, out);
  }
  out->reserve(args_json.size());
  for (auto element : array) {
    od::value value;
    std::string_view raw;
    if (element.get(value) != simdjson::SUCCESS || !walker.walk(value, &raw, 1) ||
        !walker.separated(raw, ']')) {
      *error = walker.why() != nullptr ? walker.why() : kNotJson;
      return false;
    }
  }
  if (!atEnd(doc)) {
    *error = kNotJson;
    return false;
  }
  walker.finish();
  return true;
}

}  // namespace

bool inlineAttachments(std::string_view args_json, const std::vector<std::string>& attachments,
                       std::string* out, std::string* error) {
  return rewriteAttachments(args_json, Walker::Mode::Inline, &attachments, nullptr, out, error);
}

bool extractAttachments(std::string_view args_json, std::string* out,
                        std::vector<std::string>* attachments, std::string* error) {
  attachments->clear();
  return rewriteAttachments(args_json, Walker::Mode::Extract, nullptr, attachments, out, error);
}

}  // namespace wsb::envelope
