// HTTP/1.1 request and response parsing (http-parser), RFC 6455 upgrade checks and writers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wsb::http {

struct Header {
  std::string name;  // as received
  std::string value;
};

using Headers = std::vector<Header>;

// First header named `name` (ASCII case-insensitive), or nullptr.
const std::string* findHeader(const Headers& headers, std::string_view name);
// True when a comma-separated header value lists `token` (case-insensitive, OWS trimmed).
bool hasToken(std::string_view list, std::string_view token);
bool iequals(std::string_view a, std::string_view b);

struct Request {
  std::string method;  // "GET"
  std::string target;  // raw request target, "/chat?token=x"
  std::string path;    // "/chat" (not decoded)
  std::string query;   // "token=x" (without '?')
  int version_major = 1;
  int version_minor = 1;
  Headers headers;
  std::string body;
  bool keep_alive = true;

  const std::string* header(std::string_view name) const { return findHeader(headers, name); }
  // Value of query parameter `name`, percent-decoded; empty optional when absent.
  bool queryParam(std::string_view name, std::string* value) const;
  // Value of cookie `name` from the Cookie header(s).
  bool cookie(std::string_view name, std::string* value) const;
};

struct Response {
  int status = 200;
  std::string reason;  // empty = the standard phrase for status
  int version_minor = 1;
  Headers headers;
  std::string body;

  const std::string* header(std::string_view name) const { return findHeader(headers, name); }
};

struct Limits {
  size_t max_header_bytes = 16 * 1024;  // request/status line + headers; beyond -> 431
  size_t max_headers = 100;             // beyond -> 431
  size_t max_body = 1 << 20;            // beyond -> 413
};

enum class ParseState { NeedMore, Done, Error };

// Incremental parser for one message at a time. feed() consumes bytes up to the end of the
// current message and no further: bytes after it (WebSocket frames after a 101, the next
// pipelined request) stay with the caller. After Done, reset() readies it for the next message.
class RequestParser {
 public:
  explicit RequestParser(Limits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Returns the number of bytes consumed.
  size_t feed(const char* data, size_t len);
  ParseState state() const { return state_; }
  int errorStatus() const { return error_status_; }  // 400, 413, 431, 505 ...
  const std::string& errorReason() const { return error_reason_; }
  // True when the request asked for a protocol upgrade (the body, if any, is not read).
  bool upgrade() const { return upgrade_; }
  Request& request() { return request_; }
  void reset();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  Limits limits_;
  ParseState state_ = ParseState::NeedMore;
  int error_status_ = 0;
  std::string error_reason_;
  bool upgrade_ = false;
  Request request_;
};

// Incremental parser for responses (an upstream's answer to our handshake or polling request).
class ResponseParser {
 public:
  explicit ResponseParser(Limits limits = {});
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Set before feeding when the request was HEAD (no body follows whatever the headers say).
  void expectNoBody(bool value);
  size_t feed(const char* data, size_t len);
  // A response delimited by connection close: call at EOF; turns NeedMore into Done if valid.
  void finishAtEof();
  ParseState state() const { return state_; }
  const std::string& errorReason() const { return error_reason_; }
  Response& response() { return response_; }
  void reset();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  Limits limits_;
  ParseState state_ = ParseState::NeedMore;
  std::string error_reason_;
  Response response_;
};

// RFC 6455 section 4.2.1 checks of a client's opening handshake.
struct UpgradeCheck {
  int status = 0;       // 0 = valid; else 400 or 426 (426 adds Sec-WebSocket-Version: 13)
  std::string reason;   // what is wrong, for the JSON body and the log
  bool ok() const { return status == 0; }
};
UpgradeCheck checkWebSocketUpgrade(const Request& request);
// True when the request asks for a WebSocket upgrade at all (Upgrade: websocket present).
bool isWebSocketUpgrade(const Request& request);

// base64(SHA-1(key + GUID)), RFC 6455 section 1.3.
std::string computeAcceptKey(std::string_view key);
// A fresh random Sec-WebSocket-Key (16 random bytes, base64).
std::string makeWebSocketKey();

std::string_view reasonPhrase(int status);
std::string serializeResponse(const Response& response);  // adds Content-Length unless 101/204/304
std::string serializeRequest(std::string_view method, std::string_view target,
                             const Headers& headers, std::string_view body = {});
// A complete error response with a JSON body {"error": "...", ...} and Connection: close.
std::string errorResponse(int status, std::string_view json_body, const Headers& extra = {});

std::string base64Encode(std::string_view bytes);
bool base64Decode(std::string_view text, std::string* out);
std::string percentDecode(std::string_view text);
std::string jsonEscape(std::string_view text);  // the inside of a JSON string literal

// A request target (or anything shaped "path?query") fit for a log line: the path, and each
// query parameter's value replaced by "<redacted>" ("/ws?token=x&v=1" -> "/ws?token=<redacted>&
// v=<redacted>"), since credentials travel there (auth.jwt query:NAME, Engine.IO sid). Only
// Engine.IO's own EIO, transport, t, b64 and j keep their values; a parameter without '=' or
// whose name does not look like one (long, odd characters: a token as the name) goes whole.
std::string redactTarget(std::string_view target);

}  // namespace wsb::http
