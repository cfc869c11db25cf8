// RFC 6455 frame parsing and writing for both roles: pure, incremental, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace wsb::ws {

enum class Opcode : uint8_t {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xA,
};

inline bool isControl(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

namespace close_code {
inline constexpr uint16_t kNormal = 1000;
inline constexpr uint16_t kGoingAway = 1001;
inline constexpr uint16_t kProtocolError = 1002;
inline constexpr uint16_t kUnsupportedData = 1003;
inline constexpr uint16_t kNoStatus = 1005;  // never on the wire
inline constexpr uint16_t kAbnormal = 1006;  // never on the wire
inline constexpr uint16_t kInvalidPayload = 1007;
inline constexpr uint16_t kPolicy = 1008;
inline constexpr uint16_t kTooBig = 1009;
inline constexpr uint16_t kMandatoryExtension = 1010;
inline constexpr uint16_t kInternalError = 1011;
inline constexpr uint16_t kServiceRestart = 1012;
inline constexpr uint16_t kTryAgainLater = 1013;
}  // namespace close_code

// RFC 6455 section 7.4: may this code appear in a close frame on the wire?
bool isValidCloseCode(uint16_t code);

// Which side's frames the parser reads. Server: reads a client's frames (must be masked).
// Client: reads a server's frames (must not be masked).
enum class Role { Server, Client };

struct ParseError {
  uint16_t code = 0;       // close code to send: 1002, 1007 or 1009
  const char* reason = "";  // short, static, for the close reason and the log
};

// Incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates, <= U+10FFFF) that can be fed
// a message in any number of pieces.
class Utf8Validator {
 public:
  // False as soon as the bytes so far cannot start a valid sequence.
  bool feed(const uint8_t* data, size_t len);
  // True when everything fed is valid and no sequence is left incomplete.
  bool complete() const { return state_ == 0; }
  void reset() { state_ = 0; }

 private:
  uint32_t state_ = 0;
};

// XOR `len` bytes with the 4-byte key, starting at key phase `phase` (0..3); word at a time.
void applyMask(uint8_t* data, size_t len, const uint8_t key[4], size_t phase = 0);

// Parses a stream of frames and calls the sink with whole messages' pieces.
//
// Sink requirements (plain member functions, called statically - no virtual dispatch):
//   void onMessageBegin(Opcode op);                 // Text or Binary, first frame of a message
//   void onMessageData(const uint8_t* data, size_t len);  // unmasked payload, any split
//   bool onMessageEnd();                            // FIN seen; false = stop consuming for now
//   bool onControl(Opcode op, const uint8_t* payload, size_t len);  // Ping/Pong/Close, whole,
//                                                   // unmasked; false = stop consuming for now
// Close payloads are checked (length 1, invalid code, invalid UTF-8 reason -> 1002/1007) before
// onControl is called. UTF-8 of Text messages is validated across fragments (-> 1007).
// Messages larger than max_message -> 1009 (checked on the frame header, before the payload).
template <Role role>
class FrameParser {
 public:
  explicit FrameParser(uint64_t max_message = 16u << 20) : max_message_(max_message) {}

  // Consumes bytes; masked payload is unmasked in place (hence non-const data). Returns the
  // number of bytes consumed: all of them unless the sink asked to stop or an error occurred.
  // After a stop, the count ends right after the frame whose callback returned false, and the
  // next call continues with the bytes after it. Once failed(), consume() returns 0.
  template <typename Sink>
  size_t consume(uint8_t* data, size_t len, Sink& sink);

  bool failed() const { return error_.code != 0; }
  const ParseError& error() const { return error_; }
  void setMaxMessage(uint64_t max_message) { max_message_ = max_message; }
  // True between the first frame of a data message and its final frame.
  bool inMessage() const { return in_message_; }

 private:
  // Frame header bits, as on the wire.
  static constexpr uint8_t kFin = 0x80;
  static constexpr uint8_t kRsv = 0x70;
  static constexpr uint8_t kOpcodeBits = 0x0F;
  static constexpr uint8_t kMaskBit = 0x80;
  static constexpr uint8_t kLength7 = 0x7F;

  // Header size announced by the second header byte.
  static size_t headerSize(uint8_t second) {
    size_t extra = (second & kLength7) == 126 ? 2 : (second & kLength7) == 127 ? 8 : 0;
    return 2 + extra + ((second & kMaskBit) ? 4 : 0);
  }
  bool fail(uint16_t code, const char* reason) {
    error_ = {code, reason};
    return false;
  }
  // Checks what the first two header bytes decide on their own, so a bad frame is refused even
  // when the rest of its header has not arrived.
  bool checkFirstBytes(uint8_t first, uint8_t second);
  // Validates a whole header and makes it the current frame.
  bool startFrame(const uint8_t* header);
  // Takes header bytes into header_ when a header is split across reads; returns the bytes taken.
  size_t spillHeader(const uint8_t* data, size_t len);

  uint64_t max_message_;
  ParseError error_;
  bool in_message_ = false;  // a Text/Binary message has begun and its FIN frame is not done
  bool in_frame_ = false;  // header parsed, payload (maybe empty) pending
  bool fin_ = false;  // of the current frame
  bool message_text_ = false;
  Opcode opcode_ = Opcode::Continuation;  // of the current frame
  uint8_t header_len_ = 0;  // bytes held in header_ while a header is split
  uint8_t control_len_ = 0;  // control payload bytes held in control_
  uint8_t mask_[4] = {};
  size_t mask_phase_ = 0;  // payload bytes of the current frame already unmasked, mod 4
  uint64_t remaining_ = 0;  // payload bytes left in the current frame
  uint64_t message_size_ = 0;  // payload bytes of the current message so far
  Utf8Validator utf8_;
  uint8_t header_[14] = {};
  // A control payload split across reads (rare: allocated only then, so an idle connection's
  // parser stays small).
  std::unique_ptr<uint8_t[]> control_;
};

// Largest frame header: 2 + 8 (length) + 4 (mask).
inline constexpr size_t kMaxHeaderSize = 14;

// Writes a frame header into `out` (at least kMaxHeaderSize bytes) and returns its size.
// `mask` = nullptr writes an unmasked (server) frame; else the 4-byte key is written and the
// caller masks the payload with applyMask(payload, len, mask).
size_t writeFrameHeader(uint8_t* out, Opcode op, bool fin, uint64_t payload_len,
                        const uint8_t* mask = nullptr);

// A whole frame as a string (for control frames, tests and small messages).
std::string makeFrame(Opcode op, std::string_view payload, bool fin = true,
                      const uint8_t* mask = nullptr);

// Close payload: 2-byte code + UTF-8 reason (truncated to fit 125 bytes on a char boundary).
// code 1005 gives an empty payload.
std::string makeClosePayload(uint16_t code, std::string_view reason);
// Parses a received close payload. Empty -> 1005. Returns false when invalid (length 1, code not
// allowed on the wire, reason not UTF-8).
bool parseClosePayload(const uint8_t* data, size_t len, uint16_t* code, std::string_view* reason);
// The close code a received close payload earns: 0 when valid, 1002 (length 1, code not allowed on
// the wire) or 1007 (reason not UTF-8).
uint16_t closePayloadError(const uint8_t* data, size_t len);

}  // namespace wsb::ws

#include "codec/ws_frame_impl.h"  // FrameParser<role>::consume
