// Socket.IO v4/v5 packets: decoding with socket.io-parser's rules, lazy accessors, builders and
// binary attachment reassembly. Packets are the data of Engine.IO message packets (`4` + this).
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wsb::sio {

// Socket.IO protocol revision: 4 (socket.io 2.x, over Engine.IO 3) or 5 (socket.io 3+, over
// Engine.IO 4). Where they differ:
//   * v4 connects the default namespace implicitly: the server sends `0` unprompted after OPEN
//     and the client never sends CONNECT for "/".
//   * v4 CONNECT has no payload; auth travels as a query in the namespace ("/admin?token=1,",
//     see splitNamespace / appendQueryAsJson). The v4 reply is `0[/nsp,]` without a sid; v5
//     answers `0[/nsp,]{"sid":"..."}`.
//   * CONNECT_ERROR is a plain JSON string (or the app's error data) in v4, an object
//     {"message":...,"data":...} in v5.
//   EVENT, ACK, BINARY_*, DISCONNECT and placeholders are identical.
enum class Version : uint8_t { V4 = 4, V5 = 5 };

enum class PacketType : uint8_t {
  Connect = 0,
  Disconnect = 1,
  Event = 2,
  Ack = 3,
  ConnectError = 4,
  BinaryEvent = 5,
  BinaryAck = 6,
};

inline bool isBinary(PacketType type) {
  return type == PacketType::BinaryEvent || type == PacketType::BinaryAck;
}

enum class JsonKind : uint8_t { None, Object, Array, String, Number, True, False, Null };

// Largest ack id accepted: the JS peers hold ids as doubles, exact up to 2^53 - 1.
inline constexpr uint64_t kMaxAckId = (uint64_t{1} << 53) - 1;

// A decoded packet: views into the decoded text (never owned), plus what the decoder's JSON scan
// learned, so the event name and args are found without parsing the payload again.
struct Packet {
  PacketType type = PacketType::Event;
  uint32_t attachments = 0;    // BINARY_*: binary messages that follow
  std::string_view nsp = "/";  // v4 CONNECT may carry "?query" (see splitNamespace)
  std::optional<uint64_t> id;  // ack id
  std::string_view data;       // JSON payload as received; empty when absent
  std::string_view raw;        // the whole packet text: forward this when nothing changed
  // Readable bytes after the end of `raw` (and so of `data`), which simdjson may use as padding
  // instead of copying; set it when the buffer is known to have them.
  size_t slack = 0;

  JsonKind data_kind = JsonKind::None;
  // EVENT: the first element (name) as raw JSON (`"chat"`, or a number), its kind, and whether
  // the string has escapes. ACK: unused.
  std::string_view name_json;
  JsonKind name_kind = JsonKind::None;
  bool name_escaped = false;
  // EVENT: the elements after the name; ACK: all elements. Raw, comma-separated, no brackets:
  // `{"text":"hi"},2` for ["chat",{"text":"hi"},2]. arg_count counts them.
  std::string_view args_json;
  uint32_t arg_count = 0;
};

// Why text did not decode. The server answers every one by closing the whole Engine.IO
// connection; describe() gives socket.io-parser's message for the log.
enum class DecodeError : uint8_t {
  None,
  UnknownType,         // first character not 0..6 (also an empty packet)
  IllegalAttachments,  // BINARY_* count missing, not a number, or 0; placeholder num out of range
  TooManyAttachments,  // count over DecodeOptions::max_attachments
  InvalidAckId,        // ack id above kMaxAckId
  InvalidJson,         // payload is not JSON
  InvalidPayload,      // payload shape the type does not allow (see decodePacket)
  UnexpectedText,      // a text packet while attachments are pending
  UnexpectedBinary,    // an attachment with no BINARY_* packet pending
  InvalidUtf8,         // the text is not UTF-8
};
const char* describe(DecodeError error);

struct DecodeOptions {
  Version version = Version::V5;
  uint32_t max_attachments = 10;  // socket.io-parser's maxAttachments default
};

// Decodes `<type>[<attachments>-][<nsp>,][<id>][<json>]` as socket.io-parser 4.2 does:
//   * the namespace starts with '/' and runs to the first ',' or the end ("0/admin" is valid);
//   * the id is the digits after it; the JSON payload is the rest, and must be absent or:
//     CONNECT an object (v4: absent), DISCONNECT absent, CONNECT_ERROR a string or an object,
//     EVENT / BINARY_EVENT an array whose first element is a number or a string that is not a
//     reserved name (connect, connect_error, disconnect, disconnecting, newListener,
//     removeListener), ACK / BINARY_ACK an array;
//   * BINARY_* counts 1..max_attachments, and every {"_placeholder":true,"num":N} must have
//     0 <= N < count (checked here, not when the last attachment arrives as the ref impl does).
// Stricter than the ref impl where it is lenient by accident, so that whatever decodes here means
// the same to the server (docs/socketio-grammar.md lists each case):
//   * only ASCII digits count as digits in the attachment count and the ack id (JS's Number()
//     also takes whitespace as 0 and " 1", "0x1", "1e0" as 1, so `42 ["a"]` would be an EVENT
//     with ack id 0 there), and a payload may not start with whitespace;
//   * an empty packet is not a CONNECT; EVENT and ACK (and BINARY_*) need their array;
//   * a number event name must be written as JS writes it back (`1`, not `1.0`, `1e0`, `-0`,
//     at most 15 digits), a string name may not hold a lone UTF-16 surrogate escape;
//   * the text must be UTF-8.
// The v5 rules apply to v4 clients too: a v5 upstream would drop the connection on what v4 let
// through. A refused packet is never forwarded: the connection is closed ("parse error").
DecodeError decodePacket(std::string_view text, Packet* out, const DecodeOptions& options = {});

// ---- Lazy access with simdjson
// -------------------------------------------------------------------

// simdjson On-Demand over JSON that may lack simdjson's padding: parsed in place when the caller
// vouches for SIMDJSON_PADDING readable bytes after it, else from a copy in a buffer reused
// across calls. One per thread or per connection; the document lives until the next iterate().
class JsonReader {
 public:
  simdjson::simdjson_result<simdjson::ondemand::document> iterate(std::string_view json,
                                                                  size_t slack = 0);

 private:
  simdjson::ondemand::parser parser_;
  std::string copy_;
};

// The event name of an EVENT / BINARY_EVENT. A view into the packet when the name has no escapes
// (the usual case, no parsing at all), else unescaped by `reader` (valid until its next use).
// A number name comes back as its JSON text. Empty for other types, a missing payload, or a
// name simdjson cannot unescape (a lone surrogate).
std::optional<std::string_view> eventName(const Packet& packet, JsonReader& reader);

// The message of a CONNECT_ERROR: the string payload (v4 style), or the "message" string of the
// object payload (v5). Empty when there is none.
std::optional<std::string_view> connectErrorMessage(const Packet& packet, JsonReader& reader);

// v4 CONNECT namespaces carry the client's query: "/admin?token=1" -> "/admin", "token=1".
void splitNamespace(std::string_view nsp, std::string_view* path, std::string_view* query);

// Appends a query string as the JSON object socket.io 4 makes of it for a v4 client's CONNECT
// (Node's querystring.parse: '+' is a space, %XX decoded, a repeated key becomes an array):
// "a=1&b=x%20y&a=2" -> {"a":["1","2"],"b":"x y"}.
void appendQueryAsJson(std::string& out, std::string_view query);

// ---- Builders ----------------------------------------------------------------------------------
// Each appends one packet's text (without the Engine.IO `4`) to `out`. JSON arguments are written
// as given (the caller vouches for them); a namespace must not contain ',' (it ends the namespace
// on the wire, socket.io-parser's encoder refuses it).

// `<type>[<attachments>-][<nsp>,][<id>][<data>]` from the packet's type, attachments, nsp, id and
// data; the namespace is left out when it is "/" (as socket.io-parser's encoder does).
void appendPacket(std::string& out, const Packet& packet);

// CONNECT: `0[/nsp,][auth]`. v4 clients put their query in `nsp` and send no auth.
void appendConnect(std::string& out, std::string_view nsp, std::string_view auth_json = {});
// The server's answer to CONNECT: v5 `0[/nsp,]{"sid":"<sid>"}`, v4 `0[/nsp,]` (sid unused).
void appendConnectReply(std::string& out, Version version, std::string_view nsp,
                        std::string_view sid);
// CONNECT_ERROR: v5 `4[/nsp,]{"message":"<message>"[,"data":<data>]}`; v4 `4[/nsp,]"<message>"`,
// or the data itself when there is some (socket.io sends err.data || err.message to v4 clients).
void appendConnectError(std::string& out, Version version, std::string_view nsp,
                        std::string_view message, std::string_view data_json = {});
void appendDisconnect(std::string& out, std::string_view nsp);

// One argument of an event or ack: JSON text, or bytes that travel as a binary attachment.
struct Arg {
  std::string_view bytes;
  bool binary = false;
};

// EVENT `2[/nsp,][id]["<name>",args...]`. When an arg is binary, BINARY_EVENT `5<n>-...` with
// {"_placeholder":true,"num":i} in its place, and its bytes appended to `attachments` in num
// order (these are the n binary messages to send after the packet; `attachments` may be null
// only when no arg is binary).
void appendEvent(std::string& out, std::string_view nsp, std::string_view name,
                 std::span<const Arg> args, std::optional<uint64_t> id = {},
                 std::vector<std::string_view>* attachments = nullptr);
// EVENT from a JSON array of args (`[1,{"a":2}]`, or empty for none): the name is spliced in.
void appendEventJson(std::string& out, std::string_view nsp, std::string_view name,
                     std::string_view args_array_json, std::optional<uint64_t> id = {});
// ACK `3[/nsp,]<id>[args...]`, or BINARY_ACK as appendEvent.
void appendAck(std::string& out, std::string_view nsp, uint64_t id, std::span<const Arg> args,
               std::vector<std::string_view>* attachments = nullptr);

// A JSON string literal, escaped as JSON.stringify does (", \, and control characters).
void appendJsonString(std::string& out, std::string_view utf8);

// ---- Binary attachments ------------------------------------------------------------------------

// Collects the binary messages that follow a BINARY_EVENT / BINARY_ACK packet, as
// socket.io-parser's Decoder does. Feed every decoded text packet and every binary message of
// one connection direction in order.
class Reassembler {
 public:
  enum class Status : uint8_t {
    Ready,           // a packet is complete
    NeedAttachment,  // a BINARY_* packet is waiting for more binary messages
    Error,           // see error(); the connection is to be closed
  };

  // A text packet. Not binary: Ready at once; use the packet you passed, nothing is copied.
  // BINARY_*: its text is copied and NeedAttachment returned. While attachments are pending:
  // Error (UnexpectedText).
  Status addPacket(const Packet& packet);
  // One binary message: NeedAttachment until the last one, then Ready; with none pending, Error
  // (UnexpectedBinary).
  Status addAttachment(std::string_view bytes);

  // After addAttachment returned Ready: the BINARY_* packet (views into this object) and its
  // attachments, index = placeholder num. Valid until the next add*.
  const Packet& packet() const { return packet_; }
  const std::vector<std::string>& attachments() const { return attachments_; }
  size_t pending() const;
  DecodeError error() const { return error_; }
  void reset();

 private:
  std::string text_;
  Packet packet_;
  std::vector<std::string> attachments_;
  bool complete_ = false;
  DecodeError error_ = DecodeError::None;
};

}  // namespace wsb::sio
