// WsEndpoint: frames <-> messages over one bufferevent, with the closing handshake.
#include "proxy/ws_endpoint.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <unistd.h>

#include <cerrno>
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
  if (bufferevent_openssl_get_ssl(bev_) == nullptr && bufferevent_getfd(bev_) >= 0) {
    // The bufferevent keeps its buffers and reports write errors; reading and the first write
    // attempt are ours (see fd_).
    fd_ = bufferevent_getfd(bev_);
    bufferevent_disable(bev_, EV_READ | EV_WRITE);
    read_event_ = event_new(dispatcher_.base(), fd_, EV_READ | EV_PERSIST, &WsEndpoint::onReadable, this);
    flush_event_ = event_new(dispatcher_.base(), -1, 0, &WsEndpoint::onFlush, this);
    queued();  // the handshake's reply may still be queued
  }
}

WsEndpoint::~WsEndpoint() {
  if (read_event_ != nullptr) event_free(read_event_);
  if (flush_event_ != nullptr) event_free(flush_event_);
  if (bev_ != nullptr) bufferevent_free(bev_);
  evbuffer_free(message_);
}

void WsEndpoint::start() {
  if (direct()) {
    setReading(paused_ == 0 && !close_received_ && !gone_);
  } else {
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
  }
  process();
}

// ---- reading ----

void WsEndpoint::onRead(bufferevent*, void* self) { static_cast<WsEndpoint*>(self)->process(); }

void WsEndpoint::onReadable(int, short, void* self) { static_cast<WsEndpoint*>(self)->readSocket(); }

void WsEndpoint::setReading(bool on) {
  if (!direct()) {
    if (on) {
      bufferevent_enable(bev_, EV_READ);
    } else {
      bufferevent_disable(bev_, EV_READ);
    }
    return;
  }
  if (on == reading_) return;
  reading_ = on;
  if (on) {
    event_add(read_event_, nullptr);
  } else {
    event_del(read_event_);
  }
}

void WsEndpoint::readSocket() {
  // One scratch buffer per worker thread: bytes are parsed where they were read and only what a
  // pause leaves unparsed is copied into the input buffer, so an idle connection holds none.
  static thread_local uint8_t scratch[kReadSize];
  ssize_t n = ::read(fd_, scratch, sizeof scratch);
  if (n == 0) {
    socketEvent(BEV_EVENT_READING | BEV_EVENT_EOF);
  } else if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      socketEvent(BEV_EVENT_READING | BEV_EVENT_ERROR);
    }
  } else {
    process(scratch, static_cast<size_t>(n));
  }
}

void WsEndpoint::process(uint8_t* fresh, size_t fresh_len) {
  // Only onReadable, never nested in a batch, passes fresh bytes; a nested call (resumeReading
  // from an owner callback) has nothing to add to the batch that is running.
  if (processing_ || finished_) return;
  processing_ = true;
  // Relay latency, per read batch: from the bytes read to what they became queued on the other
  // side (written out at the end of this loop iteration).
  uint64_t messages_before = messages_in_;
  std::chrono::steady_clock::time_point started;
  if (options_.relay_latency) started = dispatcher_.now();
  std::visit([&](auto& parser) { processWith(parser, fresh, fresh_len); }, parser_);
  if (options_.relay_latency && messages_in_ != messages_before) {
    options_.relay_latency->observe(
        std::chrono::duration_cast<std::chrono::microseconds>(dispatcher_.now() - started));
  }
  processing_ = false;
}

template <typename Parser>
void WsEndpoint::processWith(Parser& parser, uint8_t* fresh, size_t fresh_len) {
  evbuffer* in = bufferevent_get_input(bev_);
  auto stopped = [this] { return paused_ || close_received_ || gone_ || finished_; };
  while (!stopped()) {
    if (evbuffer_get_length(in) == 0) {
      if (fresh_len == 0) return;
      size_t consumed = parser.consume(fresh, fresh_len, *this);
      if (finished_) return;
      fresh += consumed;
      fresh_len -= consumed;
      if (parser.failed()) {
        protocolError(parser.error().code, parser.error().reason);
        return;
      }
      break;
    }
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
  if (finished_) return;
  if (close_received_ || gone_) {
    evbuffer_drain(in, evbuffer_get_length(in));
  } else if (fresh_len != 0) {
    // Paused: parsed on resume. A socket bufferevent keeps the end of its input frozen (only it
    // may add there), so thaw it for the add.
    evbuffer_unfreeze(in, 0);
    evbuffer_add(in, fresh, fresh_len);
    evbuffer_freeze(in, 0);
  }
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
        evbuffer_add(output(), body.data(), body.size());
        queued();
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
      setReading(false);
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
  setReading(false);
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
  evbuffer_add(output(), header, n);
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
      queued();
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
  evbuffer_add_buffer(output(), payload);
  ++messages_out_;
  bytes_out_ += len;
  if (outputSize() > options_.high_watermark) congested_ = true;
  queued();
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
  queued();
}

void WsEndpoint::sendPing(std::string_view payload) {
  if (finished_ || close_sent_) return;
  uint8_t mask[4];
  writeHeader(ws::Opcode::Ping, payload.size(), mask);
  std::string body(payload);
  if (side_ == Side::Upstream) ws::applyMask(reinterpret_cast<uint8_t*>(body.data()), body.size(), mask);
  evbuffer_add(output(), body.data(), body.size());
  queued();
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
  evbuffer_add(output(), payload.data(), payload.size());
  queued();
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
  if (!direct()) bufferevent_enable(bev_, EV_WRITE);
  queued();
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
  if (read_event_ != nullptr) {
    event_free(read_event_);
    event_free(flush_event_);
    read_event_ = flush_event_ = nullptr;
  }
  // libevent defers the free when called from inside this bufferevent's callback.
  bufferevent_free(bev_);
  bev_ = nullptr;
  owner_.onWsClosed(*this);
}

evbuffer* WsEndpoint::output() const { return bufferevent_get_output(bev_); }

void WsEndpoint::queued() {
  if (!direct() || flush_pending_ || write_armed_ || finished_) return;
  // Written once the callbacks of this loop iteration have run: every frame a read batch queued
  // goes out in one writev, with no epoll_ctl when the socket takes it all.
  flush_pending_ = true;
  event_active(flush_event_, EV_WRITE, 0);
}

void WsEndpoint::onFlush(int, short, void* self) { static_cast<WsEndpoint*>(self)->flush(); }

void WsEndpoint::flush() {
  flush_pending_ = false;
  if (finished_ || write_armed_) return;
  evbuffer* out = output();
  if (evbuffer_get_length(out) != 0) {
    // The bufferevent keeps the start of its output frozen (only it may drain there).
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, fd_);
    evbuffer_freeze(out, 1);
    // Whatever the socket refused (and any error other than "full", which libevent reports
    // through onEvent) is the bufferevent's to finish.
    if (evbuffer_get_length(out) != 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      write_armed_ = true;
      bufferevent_enable(bev_, EV_WRITE);
      return;
    }
  }
  wrote();
}

void WsEndpoint::onWrite(bufferevent*, void* self) {
  auto* e = static_cast<WsEndpoint*>(self);
  if (e->write_armed_ && e->outputSize() == 0) {
    e->write_armed_ = false;
    bufferevent_disable(e->bev_, EV_WRITE);
  }
  e->wrote();
}

void WsEndpoint::wrote() {
  if (closing_after_flush_) {
    if (outputSize() == 0) finish();
    return;
  }
  if (congested_ && outputSize() <= options_.low_watermark) {
    congested_ = false;
    owner_.onWsDrained(*this);
  }
}

void WsEndpoint::onEvent(bufferevent*, short what, void* self) {
  static_cast<WsEndpoint*>(self)->socketEvent(what);
}

void WsEndpoint::socketEvent(short what) {
  if (finished_) return;
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0) return;
  if ((close_sent_ && close_received_) || closing_after_flush_) {
    finish();
    return;
  }
  bool was_gone = gone_;
  gone_ = true;
  if (!was_gone) {
    owner_.onWsGone(*this, ws::close_code::kAbnormal,
                    (what & BEV_EVENT_EOF) ? "connection closed without a close frame"
                                           : "connection error");
  }
  finish();
}

// ---- flow control ----

void WsEndpoint::pauseReading(PauseReason reason) {
  if (finished_) return;
  if (paused_ == 0) setReading(false);
  paused_ |= reason;
}

void WsEndpoint::resumeReading(PauseReason reason) {
  if (finished_ || (paused_ & reason) == 0) return;
  paused_ &= static_cast<uint8_t>(~reason);
  if (paused_ != 0 || close_received_ || gone_) return;
  setReading(true);
  // Messages already buffered would otherwise wait for the next byte from the peer.
  process();
}

bool WsEndpoint::congested() const { return congested_; }

size_t WsEndpoint::outputSize() const {
  return bev_ == nullptr ? 0 : evbuffer_get_length(bufferevent_get_output(bev_));
}

}  // namespace wsb::proxy
