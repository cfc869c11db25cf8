// WsEndpoint: frames <-> messages over one bufferevent, with the closing handshake.
#include "proxy/ws_endpoint.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>

#include <cstring>
#include <vector>

#include "proxy/mask_source.h"
#include "proxy/stats.h"

namespace wsb::proxy {

WsEndpoint::WsEndpoint(Dispatcher& dispatcher, bufferevent* bev, Side side,
                       WsEndpointOptions options, MaskSource& masks, WsEndpointOwner& owner)
    : dispatcher_(dispatcher),
      bev_(bev),
      side_(side),
      options_(options),
      masks_(masks),
      owner_(owner),
      parser_(side == Side::Client
                  ? decltype(parser_)(std::in_place_index<0>, options.max_message)
                  : decltype(parser_)(std::in_place_index<1>, options.max_message)),
      message_(evbuffer_new()) {
  bufferevent_setcb(bev_, &WsEndpoint::onRead, &WsEndpoint::onWrite, &WsEndpoint::onEvent, this);
  bufferevent_setwatermark(bev_, EV_READ, 0, options_.read_high_watermark);
  bufferevent_setwatermark(bev_, EV_WRITE, options_.low_watermark, 0);
}

WsEndpoint::~WsEndpoint() {
  if (bev_ != nullptr) bufferevent_free(bev_);
  evbuffer_free(message_);
}

void WsEndpoint::start() {
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  process();
}

// ---- reading ----

void WsEndpoint::onRead(bufferevent*, void* self) { static_cast<WsEndpoint*>(self)->process(); }

void WsEndpoint::process() {
  if (processing_ || finished_) return;
  processing_ = true;
  // Relay latency, per read batch: from the bytes read to what they became queued on the other
  // side (libevent writes it out in this same loop iteration).
  uint64_t messages_before = messages_in_;
  std::chrono::steady_clock::time_point started;
  if (options_.relay_latency) started = dispatcher_.now();
  std::visit([this](auto& parser) { processWith(parser); }, parser_);
  if (options_.relay_latency && messages_in_ != messages_before) {
    options_.relay_latency->observe(
        std::chrono::duration_cast<std::chrono::microseconds>(dispatcher_.now() - started));
  }
  processing_ = false;
}

template <typename Parser>
void WsEndpoint::processWith(Parser& parser) {
  evbuffer* in = bufferevent_get_input(bev_);
  while (!paused_ && !close_received_ && !gone_ && !finished_) {
    if (evbuffer_get_length(in) == 0) return;
    evbuffer_iovec vec[16];
    int n = evbuffer_peek(in, -1, nullptr, vec, 16);
    if (n > 16) n = 16;
    size_t consumed = 0;
    for (int i = 0; i < n; ++i) {
      // The parser unmasks in place: the chain memory is ours until drained.
      size_t c = parser.consume(static_cast<uint8_t*>(vec[i].iov_base), vec[i].iov_len, *this);
      consumed += c;
      // A sink that stopped on the last frame of a segment consumed all of it: check the
      // reason too, or the next segment would be parsed after a pause or a close.
      if (c < vec[i].iov_len || paused_ || close_received_ || gone_ || finished_) break;
    }
    if (finished_) return;
    evbuffer_drain(in, consumed);
    if (parser.failed()) {
      protocolError(parser.error().code, parser.error().reason);
      return;
    }
  }
  if (close_received_ || gone_) evbuffer_drain(in, evbuffer_get_length(in));
}

void WsEndpoint::onMessageBegin(ws::Opcode opcode) { message_opcode_ = opcode; }

void WsEndpoint::onMessageData(const uint8_t* data, size_t len) { evbuffer_add(message_, data, len); }

bool WsEndpoint::onMessageEnd() {
  ++messages_in_;
  bytes_in_ += evbuffer_get_length(message_);
  owner_.onWsMessage(*this, message_opcode_, message_);
  evbuffer_drain(message_, evbuffer_get_length(message_));
  return !paused_ && !gone_ && !finished_;
}

bool WsEndpoint::onControl(ws::Opcode opcode, const uint8_t* payload, size_t len) {
  switch (opcode) {
    case ws::Opcode::Ping:
      // Control frames are hop by hop: wsbridge answers pings itself.
      if (!close_sent_) {
        uint8_t mask[4];
        writeHeader(ws::Opcode::Pong, len, mask);
        std::string body(reinterpret_cast<const char*>(payload), len);
        if (side_ == Side::Upstream) ws::applyMask(reinterpret_cast<uint8_t*>(body.data()), len, mask);
        bufferevent_write(bev_, body.data(), body.size());
      }
      return true;
    case ws::Opcode::Pong:
      owner_.onWsPong(*this, {reinterpret_cast<const char*>(payload), len});
      return true;
    case ws::Opcode::Close: {
      uint16_t code = ws::close_code::kNoStatus;
      std::string_view reason;
      ws::parseClosePayload(payload, len, &code, &reason);  // validated by the parser already
      close_received_ = true;
      bufferevent_disable(bev_, EV_READ);
      std::string reason_copy(reason);  // the payload lives in the input buffer
      if (close_sent_) closeWhenFlushed();
      owner_.onWsCloseFrame(*this, code, reason_copy);
      return false;
    }
    default:
      return true;
  }
}

void WsEndpoint::protocolError(uint16_t code, std::string_view reason) {
  if (gone_ || finished_) return;
  std::string why(reason);
  if (!close_sent_) {
    sendClose(code, why);
  }
  gone_ = true;
  bufferevent_disable(bev_, EV_READ);
  closeWhenFlushed();
  owner_.onWsGone(*this, code, why);
}

// ---- writing ----

void WsEndpoint::writeHeader(ws::Opcode opcode, uint64_t len, uint8_t* mask_out) {
  uint8_t header[ws::kMaxHeaderSize];
  const uint8_t* mask = nullptr;
  if (side_ == Side::Upstream) {
    masks_.next(mask_out);
    mask = mask_out;
  }
  size_t n = ws::writeFrameHeader(header, opcode, true, len, mask);
  evbuffer_add(bufferevent_get_output(bev_), header, n);
}

void WsEndpoint::sendMessage(ws::Opcode opcode, evbuffer* payload) {
  if (finished_ || close_sent_) return;
  size_t len = evbuffer_get_length(payload);
  if (len <= kCopyThreshold) {
    // Small messages: header and payload copied into the output's own space in one step, so
    // no chain is allocated or moved per message.
    evbuffer* out = bufferevent_get_output(bev_);
    evbuffer_iovec vec;
    if (evbuffer_reserve_space(out, ws::kMaxHeaderSize + len, &vec, 1) == 1) {
      auto* dst = static_cast<uint8_t*>(vec.iov_base);
      uint8_t mask[4];
      const uint8_t* key = nullptr;
      if (side_ == Side::Upstream) {
        masks_.next(mask);
        key = mask;
      }
      size_t header = ws::writeFrameHeader(dst, opcode, true, len, key);
      evbuffer_remove(payload, dst + header, len);
      if (key != nullptr) ws::applyMask(dst + header, len, key);
      vec.iov_len = header + len;
      evbuffer_commit_space(out, &vec, 1);
      ++messages_out_;
      bytes_out_ += len;
      if (outputSize() > options_.high_watermark) congested_ = true;
      return;
    }
  }
  uint8_t mask[4];
  writeHeader(opcode, len, mask);
  if (side_ == Side::Upstream && len > 0) {
    evbuffer_iovec vec[64];
    int n = evbuffer_peek(payload, -1, nullptr, nullptr, 0);
    std::vector<evbuffer_iovec> big;
    evbuffer_iovec* v = vec;
    if (n > 64) {
      big.resize(static_cast<size_t>(n));
      v = big.data();
    }
    n = evbuffer_peek(payload, -1, nullptr, v, n);
    size_t phase = 0;
    for (int i = 0; i < n; ++i) {
      ws::applyMask(static_cast<uint8_t*>(v[i].iov_base), v[i].iov_len, mask, phase);
      phase = (phase + v[i].iov_len) & 3;
    }
  }
  evbuffer_add_buffer(bufferevent_get_output(bev_), payload);
  ++messages_out_;
  bytes_out_ += len;
  if (outputSize() > options_.high_watermark) congested_ = true;
}

void WsEndpoint::sendMessage(ws::Opcode opcode, std::string_view payload) {
  if (finished_ || close_sent_) return;
  uint8_t mask[4];
  writeHeader(opcode, payload.size(), mask);
  evbuffer* out = bufferevent_get_output(bev_);
  if (side_ == Side::Upstream && !payload.empty()) {
    evbuffer_iovec vec;
    evbuffer_reserve_space(out, payload.size(), &vec, 1);
    auto* dst = static_cast<uint8_t*>(vec.iov_base);
    std::memcpy(dst, payload.data(), payload.size());
    ws::applyMask(dst, payload.size(), mask);
    vec.iov_len = payload.size();
    evbuffer_commit_space(out, &vec, 1);
  } else {
    evbuffer_add(out, payload.data(), payload.size());
  }
  ++messages_out_;
  bytes_out_ += payload.size();
  if (outputSize() > options_.high_watermark) congested_ = true;
}

void WsEndpoint::sendPing(std::string_view payload) {
  if (finished_ || close_sent_) return;
  uint8_t mask[4];
  writeHeader(ws::Opcode::Ping, payload.size(), mask);
  std::string body(payload);
  if (side_ == Side::Upstream) ws::applyMask(reinterpret_cast<uint8_t*>(body.data()), body.size(), mask);
  evbuffer_add(bufferevent_get_output(bev_), body.data(), body.size());
}

void WsEndpoint::sendClose(uint16_t code, std::string_view reason) {
  if (finished_ || close_sent_) return;
  // 1005 and 1006 are never sent: 1005 is "no code", 1006 means the peer vanished.
  if (code == ws::close_code::kAbnormal) code = ws::close_code::kGoingAway;
  std::string payload = ws::makeClosePayload(code, reason);
  uint8_t mask[4];
  writeHeader(ws::Opcode::Close, payload.size(), mask);
  if (side_ == Side::Upstream) {
    ws::applyMask(reinterpret_cast<uint8_t*>(payload.data()), payload.size(), mask);
  }
  evbuffer_add(bufferevent_get_output(bev_), payload.data(), payload.size());
  close_sent_ = true;
  if (close_received_ || gone_) {
    closeWhenFlushed();
  } else {
    close_timer_ = std::make_unique<Timer>(dispatcher_, [this] { abort(); });
    close_timer_->arm(options_.close_timeout);
  }
}

void WsEndpoint::closeWhenFlushed() {
  if (finished_) return;
  closing_after_flush_ = true;
  if (outputSize() == 0) {
    finish();
    return;
  }
  // Fire the write callback only once everything is out.
  bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
  bufferevent_enable(bev_, EV_WRITE);
  if (!close_timer_) {
    close_timer_ = std::make_unique<Timer>(dispatcher_, [this] { abort(); });
    close_timer_->arm(options_.close_timeout);
  }
}

void WsEndpoint::abort() {
  if (finished_) return;
  if (!close_sent_ || !close_received_) gone_ = true;
  finish();
}

void WsEndpoint::finish() {
  if (finished_) return;
  finished_ = true;
  if (close_timer_) close_timer_->cancel();
  // libevent defers the free when called from inside this bufferevent's callback.
  bufferevent_free(bev_);
  bev_ = nullptr;
  owner_.onWsClosed(*this);
}

void WsEndpoint::onWrite(bufferevent*, void* self) {
  auto* e = static_cast<WsEndpoint*>(self);
  if (e->closing_after_flush_) {
    if (e->outputSize() == 0) e->finish();
    return;
  }
  if (e->congested_ && e->outputSize() <= e->options_.low_watermark) {
    e->congested_ = false;
    e->owner_.onWsDrained(*e);
  }
}

void WsEndpoint::onEvent(bufferevent*, short what, void* self) {
  auto* e = static_cast<WsEndpoint*>(self);
  if (e->finished_) return;
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0) return;
  if ((e->close_sent_ && e->close_received_) || e->closing_after_flush_) {
    e->finish();
    return;
  }
  bool was_gone = e->gone_;
  e->gone_ = true;
  if (!was_gone) {
    e->owner_.onWsGone(*e, ws::close_code::kAbnormal,
                       (what & BEV_EVENT_EOF) ? "connection closed without a close frame"
                                              : "connection error");
  }
  e->finish();
}

// ---- flow control ----

void WsEndpoint::pauseReading(PauseReason reason) {
  if (finished_) return;
  if (paused_ == 0) bufferevent_disable(bev_, EV_READ);
  paused_ |= reason;
}

void WsEndpoint::resumeReading(PauseReason reason) {
  if (finished_ || (paused_ & reason) == 0) return;
  paused_ &= static_cast<uint8_t>(~reason);
  if (paused_ != 0 || close_received_ || gone_) return;
  bufferevent_enable(bev_, EV_READ);
  // Messages already buffered would otherwise wait for the next byte from the peer.
  process();
}

bool WsEndpoint::congested() const { return congested_; }

size_t WsEndpoint::outputSize() const {
  return bev_ == nullptr ? 0 : evbuffer_get_length(bufferevent_get_output(bev_));
}

}  // namespace wsb::proxy
