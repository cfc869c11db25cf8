// Maps envelope text (one WebSocket text message per Socket.IO event) to and from an event's name,
// JSON argument array, ack id and namespace, and binary attachments to and from base64 objects.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsb::envelope {

// The route option `envelope`.
//
// Json (the default): one JSON object per message.
//   {"event":"chat","data":{"text":"hi"}}     emit("chat", {...}): args = [data]
//   {"event":"move","args":[1,2],"ack":7}     any number of args; "ack" asks for an answer
//   {"ack":7,"data":"ok"}                     the answer to ack 7 (no "event")
//   {"event":"ping"}                          neither "data" nor "args": args = []
//   {"event":"chat","nsp":"/admin","data":1}  "nsp" only where the route allows it
//   "data" (any JSON value, one argument) and "args" (an array) exclude each other; "ack" is an
//   integer in 0..2^64-1; "nsp" starts with "/" and holds no "," (the Socket.IO wire format ends
//   the namespace at the first comma). Unknown keys are ignored, but their values must still be
//   valid JSON. A known key given twice is refused rather than "last wins": JSON parsers disagree
//   on which copy counts, and a filter must never judge a different value than the upstream gets.
//
// Array: the bare Socket.IO argument array ["chat", {...}], the first element being the event
//   name (a string). It has no room for an ack id or a namespace, so the array shape carries no
//   acks at all: parse never yields one, renderEvent drops the ack id and the namespace, and
//   renderAckAnswer renders nothing.
enum class Shape { Json, Array };

struct Message {
  enum class Kind { Event, AckAnswer };
  Kind kind = Kind::Event;
  std::string event;            // Kind::Event only; the unescaped name
  std::string args;             // JSON array text; each argument keeps its original bytes
  std::optional<uint64_t> ack;  // Event: answer requested under this id; AckAnswer: always set
  std::string nsp;              // empty = the route's namespace

  bool operator==(const Message&) const = default;
};

struct ParseOptions {
  Shape shape = Shape::Json;
  bool allow_nsp = false;
};

enum class ParseStatus {
  Ok,
  // Not JSON, or JSON but not the shape's container (object / array): the caller sends the text
  // as its route's text_event, with textAsArgs(text).
  NotEnvelope,
  // The shape's container but not a valid envelope: the caller answers renderError(*error).
  Invalid,
};

// Parses one text message. On anything but Ok, *error says why in a short phrase such as
// "missing \"event\"" or "\"ack\" must be a non-negative integer", and *out is unspecified.
// Every value is checked, nested ones included, and nothing may follow the top-level value.
// Not reentrant with itself or the attachment functions on one thread (they share a per-thread
// parser); distinct threads are independent.
ParseStatus parse(std::string_view text, const ParseOptions& options, Message* out,
                  std::string* error);

// An event (from upstream) as an envelope. args_json must be a valid JSON array: no arguments
// render no "data", one renders "data", several render "args". nsp "" renders no "nsp".
// Shape::Array renders ["event", ...args] and ignores ack and nsp.
std::string renderEvent(Shape shape, std::string_view event, std::string_view args_json,
                        std::optional<uint64_t> ack = std::nullopt, std::string_view nsp = {});

// An ack answer: {"ack":7,"data":...}. Shape::Array cannot express it and returns "".
std::string renderAckAnswer(Shape shape, uint64_t ack, std::string_view args_json,
                            std::string_view nsp = {});

// {"event":"error","data":{"message":"<message>"}}
std::string renderError(std::string_view message);

// The argument array for a text message that is not an envelope: ["<text as a JSON string>"].
// text should be valid UTF-8 (WebSocket text frames are checked before they get here).
std::string textAsArgs(std::string_view text);

// Socket.IO carries binary as {"_placeholder":true,"num":N} plus attachment N; the envelope
// carries it inline as {"_base64":"<standard base64, padded>"}.
//
// Replaces every placeholder (an object whose "_placeholder" is true, as socket.io-parser
// decides) anywhere in args_json by the base64 object of its attachment. A "num" that is not an
// index into attachments fails.
bool inlineAttachments(std::string_view args_json, const std::vector<std::string>& attachments,
                       std::string* out, std::string* error);

// The reverse: every object with a "_base64" key (which must be its only key, with a base64
// string value, padding optional) becomes a placeholder numbered in text order - the
// depth-first order socket.io-parser uses - and its bytes are appended to *attachments (cleared
// first). "_placeholder" keys are refused here, so a client cannot forge a reference to another
// attachment. Without "_base64" objects *out is args_json unchanged.
bool extractAttachments(std::string_view args_json, std::string* out,
                        std::vector<std::string>* attachments, std::string* error);

}  // namespace wsb::envelope
