// The body of FrameParser<role>: one loop over frames, fast when a whole frame is in the buffer.
#pragma once

#include <algorithm>
#include <cstring>

#include "codec/ws_frame.h"

namespace wsb::ws {

template <Role role>
bool FrameParser<role>::checkFirstBytes(uint8_t first, uint8_t second) {
  // No extension is negotiated, so any RSV bit is a violation (RFC 6455 5.2).
  if (first & kRsv) return fail(close_code::kProtocolError, "reserved bits set");
  uint8_t op = first & kOpcodeBits;
  bool control = (op & 0x8) != 0;
  if ((op > 0x2 && op < 0x8) || op > 0xA) return fail(close_code::kProtocolError, "unknown opcode");
  bool masked = (second & kMaskBit) != 0;
  if constexpr (role == Role::Server) {
    if (!masked) return fail(close_code::kProtocolError, "unmasked client frame");
  } else {
    if (masked) return fail(close_code::kProtocolError, "masked server frame");
  }
  uint8_t length7 = second & kLength7;
  if (control) {
    if (!(first & kFin)) return fail(close_code::kProtocolError, "fragmented control frame");
    if (length7 > 125) return fail(close_code::kProtocolError, "control frame over 125 bytes");
    if (op == 0x8 && length7 == 1) {
      return fail(close_code::kProtocolError, "close payload of 1 byte");
    }
  } else if (op == 0x0) {
    if (!in_message_) return fail(close_code::kProtocolError, "continuation without a message");
  } else if (in_message_) {
    return fail(close_code::kProtocolError, "new message inside a fragmented one");
  }
  return true;
}

template <Role role>
bool FrameParser<role>::startFrame(const uint8_t* header) {
  if (!checkFirstBytes(header[0], header[1])) return false;
  uint64_t length = header[1] & kLength7;
  size_t pos = 2;
  if (length == 126) {
    length = (uint64_t{header[2]} << 8) | header[3];
    pos = 4;
  } else if (length == 127) {
    length = 0;
    for (size_t i = 2; i < 10; ++i) length = (length << 8) | header[i];
    if (length >> 63) return fail(close_code::kProtocolError, "64-bit length with high bit set");
    pos = 10;
  }
  // Non-minimal length encodings are accepted: RFC 6455 5.2 asks senders for the minimal one
  // but gives receivers no reason to fail the connection over it.
  if constexpr (role == Role::Server) {
    std::memcpy(mask_, header + pos, 4);
    mask_phase_ = 0;
  }
  opcode_ = static_cast<Opcode>(header[0] & kOpcodeBits);
  fin_ = (header[0] & kFin) != 0;
  remaining_ = length;
  if (!isControl(opcode_)) {
    if (opcode_ != Opcode::Continuation) {
      message_size_ = 0;
      message_text_ = opcode_ == Opcode::Text;
      utf8_.reset();
    }
    // Refused on the header so an oversized message costs no more than its header.
    if (message_size_ > max_message_ || length > max_message_ - message_size_) {
      return fail(close_code::kTooBig, "message too big");
    }
    message_size_ += length;
  }
  in_frame_ = true;
  return true;
}

template <Role role>
size_t FrameParser<role>::spillHeader(const uint8_t* data, size_t len) {
  size_t taken = 0;
  if (header_len_ < 2) {
    taken = std::min<size_t>(2 - header_len_, len);
    std::memcpy(header_ + header_len_, data, taken);
    header_len_ = static_cast<uint8_t>(header_len_ + taken);
    if (header_len_ < 2) return taken;
  }
  size_t want = std::min(headerSize(header_[1]) - header_len_, len - taken);
  std::memcpy(header_ + header_len_, data + taken, want);
  header_len_ = static_cast<uint8_t>(header_len_ + want);
  return taken + want;
}

template <Role role>
template <typename Sink>
size_t FrameParser<role>::consume(uint8_t* data, size_t len, Sink& sink) {
  if (failed()) return 0;
  uint8_t* p = data;
  uint8_t* const end = data + len;
  for (;;) {
    if (!in_frame_) {
      if (p == end) return len;
      size_t avail = static_cast<size_t>(end - p);
      size_t header_size = avail >= 2 ? headerSize(p[1]) : kMaxHeaderSize;
      if (header_len_ == 0 && avail >= header_size) {
        // Common case: the whole header is here; parse it where it lies.
        if (!startFrame(p)) return static_cast<size_t>(p - data);
        p += header_size;
      } else {
        p += spillHeader(p, avail);
        if (header_len_ < 2) return len;
        if (!checkFirstBytes(header_[0], header_[1])) return static_cast<size_t>(p - data);
        if (header_len_ < headerSize(header_[1])) return len;
        header_len_ = 0;
        if (!startFrame(header_)) return static_cast<size_t>(p - data);
      }
      if (opcode_ == Opcode::Text || opcode_ == Opcode::Binary) {
        in_message_ = true;
        sink.onMessageBegin(opcode_);
      }
    }

    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, static_cast<size_t>(end - p)));
    const uint8_t* control_payload = p;  // where a control payload lies when it came whole
    if (!isControl(opcode_)) {
      if (n > 0) {
        if constexpr (role == Role::Server) {
          applyMask(p, n, mask_, mask_phase_);
          mask_phase_ = (mask_phase_ + n) & 3;
        }
        // Validated before the sink sees it, so invalid text never leaves the parser.
        if (message_text_ && !utf8_.feed(p, n)) {
          fail(close_code::kInvalidPayload, "invalid UTF-8 in text");
          return static_cast<size_t>(p - data);
        }
        sink.onMessageData(p, n);
      }
    } else if (control_len_ == 0 && n == remaining_) {
      if constexpr (role == Role::Server) applyMask(p, n, mask_);
    } else {
      if (!control_) control_ = std::make_unique<uint8_t[]>(125);
      std::memcpy(control_.get() + control_len_, p, n);
      control_len_ = static_cast<uint8_t>(control_len_ + n);
    }
    p += n;
    remaining_ -= n;
    if (remaining_ != 0) return len;
    in_frame_ = false;

    if (isControl(opcode_)) {
      size_t size = n;
      std::unique_ptr<uint8_t[]> held = std::move(control_);  // freed once the sink has it
      if (control_len_ != 0) {
        if constexpr (role == Role::Server) applyMask(held.get(), control_len_, mask_);
        control_payload = held.get();
        size = control_len_;
        control_len_ = 0;
      }
      if (opcode_ == Opcode::Close) {
        uint16_t code = closePayloadError(control_payload, size);
        if (code != 0) {
          fail(code, code == close_code::kInvalidPayload ? "invalid UTF-8 in close reason"
                                                         : "invalid close code");
          return static_cast<size_t>(p - data);
        }
      }
      if (!sink.onControl(opcode_, control_payload, size)) return static_cast<size_t>(p - data);
    } else if (fin_) {
      if (message_text_ && !utf8_.complete()) {
        fail(close_code::kInvalidPayload, "truncated UTF-8 at end of text");
        return static_cast<size_t>(p - data);
      }
      in_message_ = false;
      if (!sink.onMessageEnd()) return static_cast<size_t>(p - data);
    }
  }
}

}  // namespace wsb::ws
