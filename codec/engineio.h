// Engine.IO v3/v4 packets, polling payloads and the OPEN handshake: pure encode and decode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wsb::eio {

// Engine.IO protocol revision: 3 (socket.io 1.x/2.x clients) or 4 (socket.io 3+).
enum class Version : uint8_t { V3 = 3, V4 = 4 };

// Same ids and wire digits in v3 and v4.
enum class PacketType : uint8_t {
  Open = 0,
  Close = 1,
  Ping = 2,
  Pong = 3,
  Message = 4,
  Upgrade = 5,
  Noop = 6,
};

inline char typeDigit(PacketType type) { return static_cast<char>('0' + static_cast<int>(type)); }

// One decoded packet. `data` points into the decoded input, or into the caller's storage
// string when it had to be base64-decoded; it is never owned.
struct Packet {
  PacketType type = PacketType::Message;
  bool binary = false;  // data is bytes (WS binary frame, base64 packet, v3 binary payload entry)
  std::string_view data;

  friend bool operator==(const Packet&, const Packet&) = default;
};

// Why bytes did not decode. The real server answers all of these by closing the session
// ("parse error"), except TooLarge: a polling POST over maxPayload gets 413 and the session lives.
enum class DecodeError : uint8_t {
  None,
  Empty,          // a packet with no type character
  UnknownType,    // type character/byte not 0..6
  InvalidBase64,  // 'b' packet whose data is not base64
  InvalidLength,  // v3 payload: bad `<len>:` prefix, or length runs past the end
  InvalidUtf8,    // v3 text payload not UTF-8 (its lengths count UTF-16 code units)
  TooLarge,       // payload over the max
};
const char* describe(DecodeError error);

// ---- Single packets ----------------------------------------------------------------------------

// Text form: type digit + data ("4hello", "2probe"). A leading 'b' is a base64 binary packet
// (v4: "b<base64>" is always a message; v3: "b<type digit><base64>"); its bytes are decoded
// into `storage` (overwritten), which must outlive the packet.
DecodeError decodeText(Version version, std::string_view text, Packet* out, std::string* storage);

// A WebSocket frame's payload. Text frames as decodeText. Binary frames: v4 carries the raw bytes
// of a message (no type byte); v3 starts with the type byte (0x04 for a message).
DecodeError decodeFrame(Version version, bool binary_frame, std::string_view payload, Packet* out,
                        std::string* storage);

// Appends the text form of a text packet: type digit + data.
void appendText(std::string& out, PacketType type, std::string_view data);

// Appends a binary packet in text form for polling: v4 "b<base64>", v3 "b<digit><base64>".
void appendBase64Packet(std::string& out, Version version, const Packet& packet);

// Bytes a binary WebSocket frame carries before the data: none in v4, the type byte in v3.
// Returned as a view so the caller can prepend it without copying the data.
std::string_view binaryFramePrefix(Version version, PacketType type);

// ---- Polling payloads --------------------------------------------------------------------------

// How a polling body is framed. Binary exists only in v3: an XHR2 client that did not ask for
// b64=1 posts, and is sent, `application/octet-stream` bodies of
// `<0|1><length digits as bytes 0..9><0xFF><packet>` entries (0 = UTF-8 text packet,
// 1 = type byte + bytes) whenever a packet is binary.
enum class PayloadFormat : uint8_t { Text, Binary };

// The framing engine.io uses for a response: v3 binary only when the client supports binary (no
// b64=1 in the query) and a packet is binary; text otherwise.
PayloadFormat responseFormat(Version version, bool client_supports_binary,
                             std::span<const Packet> packets);

// Appends packets as one polling body.
//   v4: text packets joined by \x1e, binary as "b<base64>" ("4hello\x1ebAQID"); a \x1e inside
//       text data cannot be expressed (the ref impl has the same limit).
//   v3 text: "<len>:<packet>" each, len in UTF-16 code units (JS string length), binary as
//       "b4<base64>"; no packets -> "0:".
//   v3 binary: see PayloadFormat.
void encodePayload(Version version, PayloadFormat format, std::span<const Packet> packets,
                   std::string& out);

// Decodes a polling body (a POST from a client, a GET response from a server). Packets decoded
// before an error are left in `out` (the ref impl delivers them too, then closes). Base64 data
// goes to `storage` (cleared, then reserved up front so views into it stay valid). Bodies over
// `max_payload` bytes -> TooLarge without decoding anything.
DecodeError decodePayload(Version version, PayloadFormat format, std::string_view body,
                          size_t max_payload, std::vector<Packet>& out, std::string& storage);

// JS String.length of UTF-8 text: UTF-16 code units (a 4-byte sequence counts 2). Assumes UTF-8.
size_t utf16Length(std::string_view utf8);

// ---- OPEN handshake ----------------------------------------------------------------------------

// The JSON of an OPEN packet ("0{...}"), in the key order engine.io writes it.
struct Handshake {
  std::string sid;
  std::vector<std::string> upgrades;              // ["websocket"] over polling, [] over websocket
  uint64_t ping_interval = 25000;                 // ms
  uint64_t ping_timeout = 20000;                  // ms
  std::optional<uint64_t> max_payload = 1000000;  // bytes; engine.io 3.x servers leave it out
};

// {"sid":"..","upgrades":[..],"pingInterval":N,"pingTimeout":N[,"maxPayload":N]}
void appendHandshake(std::string& out, const Handshake& handshake);

// Parses OPEN JSON (the packet's data). sid, upgrades, pingInterval and pingTimeout are required,
// maxPayload optional, other keys ignored. False when malformed.
bool parseHandshake(std::string_view json, Handshake* out);

// Copies OPEN JSON with only the value of the top-level "sid" replaced, every other byte kept
// (key order, spacing, unknown keys). False when the JSON has no string "sid" or is malformed.
bool replaceSid(std::string_view json, std::string_view new_sid, std::string* out);

// ---- Server errors -----------------------------------------------------------------------------

// What the engine.io server answers a bad HTTP request with: `status`, Content-Type
// application/json, body {"code":<code>,"message":"<message>"} (see errorBody). On a WebSocket
// upgrade request the ref impl instead writes a raw 400 with the message as text/html body.
struct ServerError {
  int code;
  int status;
  std::string_view message;
};

namespace server_error {
// `transport` missing or not enabled (checked first).
inline constexpr ServerError kTransportUnknown{0, 400, "Transport unknown"};
// `sid` given but no such session (also after it closed).
inline constexpr ServerError kSessionIdUnknown{1, 400, "Session ID unknown"};
// No sid and the method is not GET.
inline constexpr ServerError kBadHandshakeMethod{2, 400, "Bad handshake method"};
// Bad Origin characters, transport mismatch for a session, websocket without Upgrade, ...
inline constexpr ServerError kBadRequest{3, 400, "Bad request"};
// Rejected by the server's allowRequest.
inline constexpr ServerError kForbidden{4, 403, "Forbidden"};
// EIO neither "4" nor (when allowed) "3".
inline constexpr ServerError kUnsupportedProtocolVersion{5, 400, "Unsupported protocol version"};
}  // namespace server_error

// {"code":N,"message":"..."}; `message` overrides the standard text (engine.io passes the
// allowRequest rejection message through).
std::string errorBody(const ServerError& error, std::string_view message = {});

// Status for a polling POST whose body was over maxPayload (the session is kept).
inline constexpr int kPayloadTooLargeStatus = 413;

// ---- Base64 (standard alphabet, as Node's Buffer writes it)
// --------------------------------------

void appendBase64(std::string& out, std::string_view bytes);
// Accepts the standard and URL-safe alphabets, with or without '=' padding. False otherwise.
bool decodeBase64(std::string_view text, std::string& out);

}  // namespace wsb::eio
