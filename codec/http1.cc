// HTTP/1.1 message parsing on http-parser with our own limits, and the handshake helpers around it.
#include "codec/http1.h"

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <climits>

namespace wsb::http {

namespace {

constexpr char kWebSocketGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view text) {
  while (!text.empty() && isOws(text.front())) text.remove_prefix(1);
  while (!text.empty() && isOws(text.back())) text.remove_suffix(1);
  return text;
}

// RFC 9110 5.6.2 tchar. The system http-parser is built lenient and takes spaces in field names;
// "Content-Length : 5" must not reach anything that reads it differently (RFC 9112 5.1).
constexpr auto kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = table[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

bool isTokenChar(char c) { return kTokenChars[static_cast<unsigned char>(c)]; }

// RFC 9110 5.5: field values and reason phrases are HTAB, SP, VCHAR and obs-text. http-parser
// lets some controls through (a NUL at the start of a value, any in a reason phrase).
bool isControl(char c) {
  auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && c != '\t') || byte == 0x7f;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decodeComponent(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = hexValue(text[i + 1]);
      int lo = hexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

// True when any header called `name` lists `token`: Connection and Upgrade may be repeated.
bool anyHeaderHasToken(const Headers& headers, std::string_view name, std::string_view token) {
  for (const Header& h : headers)
    if (iequals(h.name, name) && hasToken(h.value, token)) return true;
  return false;
}

size_t countHeaders(const Headers& headers, std::string_view name) {
  return static_cast<size_t>(std::count_if(headers.begin(), headers.end(),
                                           [&](const Header& h) { return iequals(h.name, name); }));
}

void appendNumber(std::string& out, uint64_t value) {
  char digits[24];
  auto result = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, result.ptr);
}

// Header names and values from callers may carry user input (forwarded claims); CR, LF and NUL
// would let it inject headers, so they are dropped.
void appendSanitized(std::string& out, std::string_view text) {
  size_t start = out.size();
  out.append(text);
  auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  if (std::any_of(out.begin() + static_cast<ptrdiff_t>(start), out.end(), bad)) {
    out.erase(std::remove_if(out.begin() + static_cast<ptrdiff_t>(start), out.end(), bad),
              out.end());
  }
}

void appendHeaders(std::string& out, const Headers& headers) {
  for (const Header& h : headers) {
    appendSanitized(out, h.name);
    out += ": ";
    appendSanitized(out, h.value);
    out += "\r\n";
  }
}

bool hasHeader(const Headers& headers, std::string_view name) {
  return findHeader(headers, name) != nullptr;
}

// State shared by both parsers: http-parser itself, our limits, and where the pieces go.
struct Core {
  http_parser parser{};
  Limits limits;
  Headers* headers = nullptr;
  std::string* body = nullptr;
  size_t header_bytes = 0;  // bytes fed while the header section was still open
  size_t header_count = 0;  // header fields seen, kept or not
  bool headers_done = false;
  bool message_done = false;
  bool in_value = false;  // the last header callback was a value: the next field starts a header
  bool body_allowed = true;
  int error_status = 0;  // set by our callbacks when a limit or a rule fails
  const char* error_reason = nullptr;

  void init(http_parser_type type) {
    http_parser_init(&parser, type);
    parser.data = this;
    header_bytes = 0;
    headers_done = false;
    message_done = false;
    header_count = 0;
    in_value = false;
    body_allowed = true;
    error_status = 0;
    error_reason = nullptr;
  }

  int fail(int status, const char* reason) {
    error_status = status;
    error_reason = reason;
    return -1;
  }

  bool storing() const { return header_count <= limits.max_headers; }

  // Values may arrive in pieces; OWS around them is not part of the value (RFC 9110 5.5).
  void finishHeader() {
    if (headers->empty()) return;
    std::string& value = headers->back().value;
    size_t end = value.size();
    while (end > 0 && isOws(value[end - 1])) --end;
    value.resize(end);
  }

  bool versionSupported() const {
    return parser.http_major == 1 && (parser.http_minor == 0 || parser.http_minor == 1);
  }
};

Core& coreOf(http_parser* parser) { return *static_cast<Core*>(parser->data); }

// Header-level checks (version, count) wait for the end of the header section: a data callback
// fires wherever the input happened to be split, so checking earlier would make the answer to a
// request with two faults depend on the split. Memory stays bounded: extra headers are not kept.
// Trailer fields (after a chunked body) come through the same callbacks once the header section
// is done. They are checked like header fields but dropped, as RFC 9110 6.5.1 allows: appended
// to the headers, they would add fields (Connection, Host, credentials) after everything that
// read the headers had decided on them, and a re-serialised message would say something else.
int onHeaderField(http_parser* parser, const char* at, size_t len) {
  Core& core = coreOf(parser);
  if (!std::all_of(at, at + len, isTokenChar))
    return core.fail(400, "invalid character in header name");
  if (core.headers_done) return 0;  // a trailer field
  if (core.in_value || core.header_count == 0) {
    core.finishHeader();
    ++core.header_count;
    if (core.storing()) {
      if (core.headers->empty()) core.headers->reserve(16);
      core.headers->emplace_back();
    }
    core.in_value = false;
  }
  if (core.storing()) core.headers->back().name.append(at, len);
  return 0;
}

int onHeaderValue(http_parser* parser, const char* at, size_t len) {
  Core& core = coreOf(parser);
  core.in_value = true;
  if (std::any_of(at, at + len, isControl))
    return core.fail(400, "invalid character in header value");
  if (core.headers_done || !core.storing()) return 0;  // a trailer field, or one too many
  std::string& value = core.headers->back().value;
  if (value.empty()) {
    while (len > 0 && isOws(*at)) ++at, --len;
  }
  value.append(at, len);
  return 0;
}

// Common part of on_headers_complete: 0 to read a body, 1 to skip it, -1 on error.
int finishHeaders(Core& core) {
  core.headers_done = true;
  if (!core.versionSupported()) return core.fail(505, "HTTP version not supported");
  if (core.header_count > core.limits.max_headers) return core.fail(431, "too many headers");
  core.finishHeader();
  if (!core.body_allowed) return 1;
  uint64_t length = core.parser.content_length;
  if ((core.parser.flags & F_CHUNKED) == 0 && length != ULLONG_MAX) {
    if (length > core.limits.max_body) return core.fail(413, "body too large");
    core.body->reserve(static_cast<size_t>(length));
  }
  return 0;
}

int onBody(http_parser* parser, const char* at, size_t len) {
  Core& core = coreOf(parser);
  if (core.body->size() + len > core.limits.max_body) return core.fail(413, "body too large");
  core.body->append(at, len);
  return 0;
}

int onMessageComplete(http_parser* parser) {
  // Pausing makes http_parser_execute return right after the message's last byte, so whatever
  // follows (frames after an upgrade, a pipelined request) stays with the caller.
  coreOf(parser).message_done = true;
  http_parser_pause(parser, 1);
  return 0;
}

// Runs http-parser over `data`, never letting the header section pass limits.max_header_bytes.
// Returns the bytes consumed; the outcome is in core.message_done / error_status / http_errno.
size_t execute(Core& core, const http_parser_settings& settings, const char* data, size_t len) {
  size_t total = 0;
  while (total < len) {
    size_t chunk = len - total;
    bool counting = !core.headers_done;
    if (counting) chunk = std::min(chunk, core.limits.max_header_bytes - core.header_bytes);
    if (chunk == 0) {  // max_header_bytes 0; a zero-length execute would mean EOF
      core.fail(431, "header section too large");
      break;
    }
    size_t n = http_parser_execute(&core.parser, &settings, data + total, chunk);
    total += n;
    if (counting) core.header_bytes += n;
    if (core.message_done || HTTP_PARSER_ERRNO(&core.parser) != HPE_OK) break;
    // Checked here rather than before the next feed so the outcome does not depend on how the
    // bytes were split: a header section still open after the budget is too large.
    if (!core.headers_done && core.header_bytes >= core.limits.max_header_bytes) {
      core.fail(431, "header section too large");
      break;
    }
    if (n < chunk) break;  // http-parser stopped without saying why; do not spin
  }
  return total;
}

// Translates what execute() saw into a status and a reason; 0 when there is no error.
int errorOf(const Core& core, const char** reason) {
  if (core.error_status != 0) {
    *reason = core.error_reason;
    return core.error_status;
  }
  auto err = HTTP_PARSER_ERRNO(&core.parser);
  if (err == HPE_OK || err == HPE_PAUSED) return 0;
  *reason = http_errno_description(err);
  if (err == HPE_HEADER_OVERFLOW) return 431;
  if (err == HPE_INVALID_VERSION) return 505;  // "HTTP/12.0": http-parser takes one digit each
  return 400;
}

void splitTarget(Request& request) {
  std::string_view rest = request.target;
  bool absolute = false;
  if (!rest.empty() && rest.front() != '/' && rest.front() != '*') {
    // Absolute form (RFC 9112 3.2.2): the path starts after the authority.
    size_t scheme_end = rest.find("://");
    if (scheme_end != std::string_view::npos) {
      size_t path_start = rest.find_first_of("/?#", scheme_end + 3);
      rest.remove_prefix(path_start == std::string_view::npos ? rest.size() : path_start);
      absolute = true;
    }
  }
  rest = rest.substr(0, rest.find('#'));
  size_t question = rest.find('?');
  request.path.assign(rest.substr(0, question));
  if (request.path.empty() && absolute) request.path = "/";
  if (question == std::string_view::npos)
    request.query.clear();
  else
    request.query.assign(rest.substr(question + 1));
}

const char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

// ---- header helpers ----

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

const std::string* findHeader(const Headers& headers, std::string_view name) {
  for (const Header& h : headers)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

bool hasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (iequals(trimOws(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool Request::queryParam(std::string_view name, std::string* value) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    bool match = key.find_first_of("%+") == std::string_view::npos
                     ? key == name
                     : decodeComponent(key, true) == name;
    if (match) {
      if (value != nullptr)
        *value = eq == std::string_view::npos ? std::string()
                                              : decodeComponent(pair.substr(eq + 1), true);
      return true;
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return false;
}

bool Request::cookie(std::string_view name, std::string* value) const {
  for (const Header& h : headers) {
    if (!iequals(h.name, "cookie")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view pair = trimOws(rest.substr(0, semi));
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos && trimOws(pair.substr(0, eq)) == name) {
        std::string_view v = trimOws(pair.substr(eq + 1));
        // RFC 6265 4.1.1: a cookie-value may be wrapped in double quotes.
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        if (value != nullptr) value->assign(v);
        return true;
      }
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return false;
}

// ---- RequestParser ----

struct RequestParser::Impl : Core {
  RequestParser* owner = nullptr;

  static int onUrl(http_parser* parser, const char* at, size_t len) {
    static_cast<Impl&>(coreOf(parser)).owner->request_.target.append(at, len);
    return 0;
  }

  static int onHeadersComplete(http_parser* parser) {
    Impl& impl = static_cast<Impl&>(coreOf(parser));
    RequestParser& owner = *impl.owner;
    Request& request = owner.request_;
    request.method = http_method_str(static_cast<http_method>(parser->method));
    request.version_major = parser->http_major;
    request.version_minor = parser->http_minor;
    request.keep_alive = http_should_keep_alive(parser) != 0;
    splitTarget(request);
    // The bytes after an upgrade request belong to the new protocol, even with a Content-Length.
    owner.upgrade_ = parser->upgrade != 0;
    impl.body_allowed = !owner.upgrade_;
    return finishHeaders(impl);
  }

  static const http_parser_settings& settings() {
    static const http_parser_settings kSettings = {
        .on_message_begin = nullptr,
        .on_url = onUrl,
        .on_status = nullptr,
        .on_header_field = onHeaderField,
        .on_header_value = onHeaderValue,
        .on_headers_complete = onHeadersComplete,
        .on_body = onBody,
        .on_message_complete = onMessageComplete,
        .on_chunk_header = nullptr,
        .on_chunk_complete = nullptr,
    };
    return kSettings;
  }
};

RequestParser::RequestParser(Limits limits) : impl_(std::make_unique<Impl>()), limits_(limits) {
  reset();
}

RequestParser::~RequestParser() = default;

void RequestParser::reset() {
  impl_->init(HTTP_REQUEST);
  impl_->owner = this;
  impl_->limits = limits_;
  request_ = Request{};
  impl_->headers = &request_.headers;
  impl_->body = &request_.body;
  state_ = ParseState::NeedMore;
  error_status_ = 0;
  error_reason_.clear();
  upgrade_ = false;
}

size_t RequestParser::feed(const char* data, size_t len) {
  // A zero length would tell http-parser the stream ended.
  if (state_ != ParseState::NeedMore || len == 0) return 0;
  size_t consumed = execute(*impl_, Impl::settings(), data, len);
  const char* reason = nullptr;
  if (int status = errorOf(*impl_, &reason); status != 0) {
    state_ = ParseState::Error;
    error_status_ = status;
    error_reason_ = reason;
  } else if (impl_->message_done) {
    state_ = ParseState::Done;
  }
  return consumed;
}

// ---- ResponseParser ----

struct ResponseParser::Impl : Core {
  ResponseParser* owner = nullptr;
  bool expect_no_body = false;

  static int onStatus(http_parser* parser, const char* at, size_t len) {
    Impl& impl = static_cast<Impl&>(coreOf(parser));
    if (std::any_of(at, at + len, isControl))
      return impl.fail(400, "invalid character in reason phrase");
    impl.owner->response_.reason.append(at, len);
    return 0;
  }

  static int onHeadersComplete(http_parser* parser) {
    Impl& impl = static_cast<Impl&>(coreOf(parser));
    Response& response = impl.owner->response_;
    response.status = static_cast<int>(parser->status_code);
    response.version_minor = parser->http_minor;
    int status = response.status;
    // http-parser reads "20" as a status; RFC 9112 4 wants three digits.
    if (status < 100) return impl.fail(400, "invalid status code");
    // RFC 9112 6.3: 1xx, 204 and 304 never have a body, whatever the headers claim.
    impl.body_allowed = !(impl.expect_no_body || status < 200 || status == 204 || status == 304);
    return finishHeaders(impl);
  }

  static const http_parser_settings& settings() {
    static const http_parser_settings kSettings = {
        .on_message_begin = nullptr,
        .on_url = nullptr,
        .on_status = onStatus,
        .on_header_field = onHeaderField,
        .on_header_value = onHeaderValue,
        .on_headers_complete = onHeadersComplete,
        .on_body = onBody,
        .on_message_complete = onMessageComplete,
        .on_chunk_header = nullptr,
        .on_chunk_complete = nullptr,
    };
    return kSettings;
  }
};

ResponseParser::ResponseParser(Limits limits) : impl_(std::make_unique<Impl>()), limits_(limits) {
  reset();
}

ResponseParser::~ResponseParser() = default;

void ResponseParser::expectNoBody(bool value) { impl_->expect_no_body = value; }

void ResponseParser::reset() {
  impl_->init(HTTP_RESPONSE);
  impl_->owner = this;
  impl_->limits = limits_;
  response_ = Response{};
  impl_->headers = &response_.headers;
  impl_->body = &response_.body;
  state_ = ParseState::NeedMore;
  error_reason_.clear();
}

size_t ResponseParser::feed(const char* data, size_t len) {
  if (state_ != ParseState::NeedMore || len == 0) return 0;
  size_t consumed = execute(*impl_, Impl::settings(), data, len);
  const char* reason = nullptr;
  if (errorOf(*impl_, &reason) != 0) {
    state_ = ParseState::Error;
    error_reason_ = reason;
  } else if (impl_->message_done) {
    state_ = ParseState::Done;
  }
  return consumed;
}

void ResponseParser::finishAtEof() {
  if (state_ != ParseState::NeedMore) return;
  // A zero-length execute is http-parser's end-of-stream signal: it completes a body that runs
  // to the close and flags any other unfinished state.
  http_parser_execute(&impl_->parser, &Impl::settings(), nullptr, 0);
  const char* reason = nullptr;
  if (errorOf(*impl_, &reason) != 0) {
    state_ = ParseState::Error;
    error_reason_ = reason;
  } else if (impl_->message_done) {
    state_ = ParseState::Done;
  } else {
    state_ = ParseState::Error;
    error_reason_ = "connection closed before a response";
  }
}

// ---- WebSocket handshake ----

bool isWebSocketUpgrade(const Request& request) {
  return anyHeaderHasToken(request.headers, "upgrade", "websocket");
}

UpgradeCheck checkWebSocketUpgrade(const Request& request) {
  auto bad = [](std::string reason) { return UpgradeCheck{400, std::move(reason)}; };
  if (request.method != "GET") return bad("WebSocket upgrade requires GET");
  if (request.version_major < 1 || (request.version_major == 1 && request.version_minor < 1))
    return bad("WebSocket upgrade requires HTTP/1.1");
  size_t hosts = countHeaders(request.headers, "host");
  if (hosts == 0 || request.header("host")->empty()) return bad("missing Host header");
  if (hosts > 1) return bad("more than one Host header");
  if (!isWebSocketUpgrade(request)) return bad("Upgrade header does not list websocket");
  if (!anyHeaderHasToken(request.headers, "connection", "upgrade"))
    return bad("Connection header does not list upgrade");
  // Checked before the key so that a client speaking an older draft learns which version we take.
  const std::string* version = request.header("sec-websocket-version");
  if (version == nullptr || countHeaders(request.headers, "sec-websocket-version") != 1 ||
      trimOws(*version) != "13")
    return UpgradeCheck{426, "unsupported Sec-WebSocket-Version (only 13)"};
  const std::string* key = request.header("sec-websocket-key");
  if (key == nullptr) return bad("missing Sec-WebSocket-Key header");
  if (countHeaders(request.headers, "sec-websocket-key") > 1)
    return bad("more than one Sec-WebSocket-Key header");
  std::string nonce;
  if (!base64Decode(*key, &nonce) || nonce.size() != 16)
    return bad("Sec-WebSocket-Key is not base64 of 16 bytes");
  return UpgradeCheck{};
}

std::string computeAcceptKey(std::string_view key) {
  // The algorithm is fetched and the context allocated once per thread: EVP_Digest with
  // EVP_sha1() does both on every call, which costs more than hashing 60 bytes.
  static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  static thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (sha1 == nullptr || ctx == nullptr || EVP_DigestInit_ex(ctx.get(), sha1, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), key.data(), key.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), kWebSocketGuid, sizeof(kWebSocketGuid) - 1) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &digest_len) != 1) {
    return {};
  }
  return base64Encode(std::string_view(reinterpret_cast<const char*>(digest), digest_len));
}

std::string makeWebSocketKey() {
  // Nonces come from a per-thread block of RAND_bytes output: one call per 64 keys, not per key.
  constexpr size_t kNonce = 16;
  static thread_local unsigned char block[64 * kNonce];
  static thread_local size_t used = sizeof block;
  if (used == sizeof block) {
    if (RAND_bytes(block, sizeof block) != 1) return {};
    used = 0;
  }
  const char* nonce = reinterpret_cast<const char*>(block + used);
  used += kNonce;
  return base64Encode(std::string_view(nonce, kNonce));
}

// ---- writers ----

std::string_view reasonPhrase(int status) {
  switch (status) {
#define WSB_STATUS_PHRASE(num, name, string) \
  case num:                                  \
    return #string;
    HTTP_STATUS_MAP(WSB_STATUS_PHRASE)
#undef WSB_STATUS_PHRASE
    default:
      return {};
  }
}

std::string serializeResponse(const Response& response) {
  std::string out;
  out.reserve(128 + response.headers.size() * 48 + response.body.size());
  out += "HTTP/1.";
  appendNumber(out, response.version_minor == 0 ? 0 : 1);
  out += ' ';
  appendNumber(out, static_cast<uint64_t>(std::clamp(response.status, 100, 999)));
  out += ' ';
  appendSanitized(out, response.reason.empty() ? reasonPhrase(response.status)
                                               : std::string_view(response.reason));
  out += "\r\n";
  appendHeaders(out, response.headers);
  int status = response.status;
  bool bodiless = status < 200 || status == 204 || status == 304;
  if (!bodiless && !hasHeader(response.headers, "content-length") &&
      !hasHeader(response.headers, "transfer-encoding")) {
    out += "Content-Length: ";
    appendNumber(out, response.body.size());
    out += "\r\n";
  }
  out += "\r\n";
  out += response.body;
  return out;
}

std::string serializeRequest(std::string_view method, std::string_view target,
                             const Headers& headers, std::string_view body) {
  std::string out;
  out.reserve(64 + target.size() + headers.size() * 48 + body.size());
  appendSanitized(out, method);
  out += ' ';
  appendSanitized(out, target);
  out += " HTTP/1.1\r\n";
  appendHeaders(out, headers);
  // A POST without a length would leave the server waiting for a body that never comes.
  bool wants_length = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (wants_length && !hasHeader(headers, "content-length") &&
      !hasHeader(headers, "transfer-encoding")) {
    out += "Content-Length: ";
    appendNumber(out, body.size());
    out += "\r\n";
  }
  out += "\r\n";
  out.append(body);
  return out;
}

std::string errorResponse(int status, std::string_view json_body, const Headers& extra) {
  Response response;
  response.status = status;
  response.headers.reserve(2 + extra.size());
  response.headers.push_back({"Content-Type", "application/json"});
  response.headers.push_back({"Connection", "close"});
  response.headers.insert(response.headers.end(), extra.begin(), extra.end());
  response.body.assign(json_body);
  return serializeResponse(response);
}

// ---- text codecs ----

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += kBase64Alphabet[v & 63];
  }
  size_t left = bytes.size() - i;
  if (left > 0) {
    uint32_t v = at(i) << 16 | (left == 2 ? at(i + 1) << 8 : 0);
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += left == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool base64Decode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  out->reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    int v[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4 - pad; ++k) {
      v[k] = base64Value(text[i + k]);
      if (v[k] < 0) return false;
    }
    uint32_t n = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    // Bits below the last byte must be zero, so each byte string has exactly one encoding.
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) return false;
    out->push_back(static_cast<char>(n >> 16));
    if (pad < 2) out->push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(n & 0xff));
  }
  return true;
}

std::string percentDecode(std::string_view text) { return decodeComponent(text, false); }

std::string jsonEscape(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out += kHex[byte >> 4];
          out += kHex[byte & 15];
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string redactTarget(std::string_view target) {
  size_t mark = target.find('?');
  std::string out(target.substr(0, mark));
  if (mark == std::string_view::npos) return out;
  static constexpr std::string_view kPlain[] = {"EIO", "transport", "t", "b64", "j"};
  constexpr size_t kMaxName = 32;
  auto plainName = [](std::string_view name) {
    return !name.empty() && name.size() <= kMaxName &&
           std::all_of(name.begin(), name.end(), [](char c) {
             return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                    c == '.' || c == '[' || c == ']';
           });
  };
  out += '?';
  std::string_view rest = target.substr(mark + 1);
  for (bool first = true; !rest.empty() || first; first = false) {
    size_t amp = rest.find('&');
    std::string_view param = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (!first) out += '&';
    size_t eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    if (eq == std::string_view::npos || !plainName(name)) {
      if (!param.empty()) out += "<redacted>";
      continue;
    }
    out.append(name);
    bool plain = std::find(std::begin(kPlain), std::end(kPlain), name) != std::end(kPlain);
    out += '=';
    if (plain && plainName(param.substr(eq + 1))) {
      out.append(param.substr(eq + 1));
    } else {
      out += "<redacted>";
    }
  }
  return out;
}

}  // namespace wsb::http
