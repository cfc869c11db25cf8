// WsEndpoint: frames <-> messages over one socket (or TLS bufferevent), with the closing handshake.
#include "proxy/ws_endpoint.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <spdlog/fmt/fmt.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "proxy/mask_source.h"
#include "proxy/stats.h"
#include "proxy/upstream_log.h"

namespace wsb::proxy {

WsEndpoint::WsEndpoint(Dispatcher& dispatcher, bufferevent* bev, Side side,
                       WsEndpointOptions options, MaskSource& masks, WsEndpointOwner& owner)
    : dispatcher_(dispatcher),
      tls_(bufferevent_openssl_get_ssl(bev) != nullptr || bufferevent_getfd(bev) < 0),
      side_(side),
      options_(options),
      masks_(masks),
      owner_(owner),
      parser_(side == Side::Client
                  ? decltype(parser_)(std::in_place_index<0>, options.max_message)
                  : decltype(parser_)(std::in_place_index<1>, options.max_message)) {
  if (tls_) {
    bev_ = bev;
    bufferevent_setcb(bev_, &WsEndpoint::onRead, &WsEndpoint::onWrite, &WsEndpoint::onEvent, this);
    bufferevent_setwatermark(bev_, EV_READ, 0, options_.read_high_watermark);
    bufferevent_setwatermark(bev_, EV_WRITE, options_.low_watermark, 0);
    return;
  }
  // Plain TCP: keep the socket and what the handshake left in the buffers (bytes the peer sent
  // right after its handshake; our 101 if not yet written), then let the bufferevent go without
  // closing the socket.
  fd_ = bufferevent_getfd(bev);
  evbuffer* in = bufferevent_get_input(bev);
  if (evbuffer_get_length(in) != 0) {
    in_ = evbuffer_new();
    evbuffer_add_buffer(in_, in);
  }
  evbuffer* out = bufferevent_get_output(bev);
  if (size_t n = evbuffer_get_length(out); n != 0) {
    evbuffer_unfreeze(out, 1);  // a socket bufferevent keeps the start of its output frozen
    evbuffer_remove(out, out_.reserve(n), n);
    out_.commit(n);
    queued();
  }
  bufferevent_setfd(bev, -1);
  bufferevent_free(bev);
  io_event_ = event_new(dispatcher_.base(), fd_, 0, &WsEndpoint::onIo, this);
}

WsEndpoint::~WsEndpoint() {
  if (flush_pending_) dispatcher_.cancelFlush(this);
  if (io_event_ != nullptr) event_free(io_event_);
  if (fd_ >= 0) ::close(fd_);
  if (bev_ != nullptr) bufferevent_free(bev_);
  for (evbuffer* b : {in_, message_}) {
    if (b != nullptr) evbuffer_free(b);
  }
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

void WsEndpoint::onIo(int, short what, void* self) {
  auto* e = static_cast<WsEndpoint*>(self);
  if (what & EV_WRITE) e->flush();
  if ((what & EV_READ) && e->reading_ && !e->finished_) e->readSocket();
}

evbuffer* WsEndpoint::input() const {
  if (direct()) return in_;
  return bev_ == nullptr ? nullptr : bufferevent_get_input(bev_);
}

evbuffer* WsEndpoint::message() {
  if (message_ == nullptr) message_ = evbuffer_new();
  return message_;
}

void WsEndpoint::setReading(bool on) {
  if (finished_) return;
  if (!direct()) {
    if (on) {
      bufferevent_enable(bev_, EV_READ);
    } else {
      bufferevent_disable(bev_, EV_READ);
    }
    return;
  }
  reading_ = on;
  updateIoEvent();
}

void WsEndpoint::updateIoEvent() {
  if (io_event_ == nullptr) return;
  short want = static_cast<short>((reading_ ? EV_READ : 0) | (write_waiting_ ? EV_WRITE : 0));
  if (want == io_armed_) return;
  if (io_armed_ != 0) event_del(io_event_);
  io_armed_ = want;
  if (want == 0) return;
  event_assign(io_event_, dispatcher_.base(), fd_, static_cast<short>(want | EV_PERSIST),
               &WsEndpoint::onIo, this);
  event_add(io_event_, nullptr);
}

void WsEndpoint::readSocket() {
  // One scratch buffer per worker thread: bytes are parsed where they were read and only what a
  // pause leaves unparsed is copied into the input buffer.
  static thread_local uint8_t scratch[kReadSize];
  ssize_t n = ::recv(fd_, scratch, sizeof scratch, 0);
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
  // Only readSocket, never nested in a batch, passes fresh bytes; a nested call (resumeReading
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
  evbuffer* in = input();
  auto stopped = [this] { return paused_ || close_received_ || gone_ || finished_; };
  while (!stopped()) {
    if (in == nullptr || evbuffer_get_length(in) == 0) {
      if (fresh_len == 0) break;
      size_t consumed = parser.consume(fresh, fresh_len, *this);
      if (finished_) return;
      keepPartialMessage();
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
    keepPartialMessage();
    evbuffer_drain(in, consumed);
    if (parser.failed()) {
      protocolError(parser.error().code, parser.error().reason);
      return;
    }
  }
  if (finished_) return;
  if (close_received_ || gone_) {
    if (in != nullptr) evbuffer_drain(in, evbuffer_get_length(in));
  } else if (fresh_len != 0) {
    // Paused: parsed on resume.
    if (direct()) {
      if (in_ == nullptr) in_ = evbuffer_new();
      evbuffer_add(in_, fresh, fresh_len);
    } else {
      // A socket bufferevent keeps the end of its input frozen (only it may add there).
      evbuffer_unfreeze(in, 0);
      evbuffer_add(in, fresh, fresh_len);
      evbuffer_freeze(in, 0);
    }
  }
  if (direct() && in_ != nullptr && evbuffer_get_length(in_) == 0) {
    evbuffer_free(in_);
    in_ = nullptr;
  }
}

void WsEndpoint::onMessageBegin(ws::Opcode opcode) { message_opcode_ = opcode; }

void WsEndpoint::onMessageData(const uint8_t* data, size_t len) {
  if (view_ == nullptr && (message_ == nullptr || evbuffer_get_length(message_) == 0)) {
    view_ = data;
    view_len_ = len;
    return;
  }
  keepPartialMessage();
  evbuffer_add(message_, data, len);
}

void WsEndpoint::keepPartialMessage() {
  if (view_ == nullptr) return;
  evbuffer_add(message(), view_, view_len_);
  view_ = nullptr;
}

bool WsEndpoint::onMessageEnd() {
  ++messages_in_;
  if (message_ == nullptr || evbuffer_get_length(message_) == 0) {
    std::string_view payload(reinterpret_cast<const char*>(view_), view_ == nullptr ? 0 : view_len_);
    bytes_in_ += payload.size();
    if (owner_.onWsMessageView(*this, message_opcode_, payload)) {
      view_ = nullptr;
      return !paused_ && !gone_ && !finished_;
    }
    keepPartialMessage();
  } else {
    bytes_in_ += evbuffer_get_length(message_);
  }
  owner_.onWsMessage(*this, message_opcode_, message());  // message() exists even when empty
  evbuffer_drain(message_, evbuffer_get_length(message_));
  return !paused_ && !gone_ && !finished_;
}

bool WsEndpoint::onControl(ws::Opcode opcode, const uint8_t* payload, size_t len) {
  switch (opcode) {
    case ws::Opcode::Ping:
      // Control frames are hop by hop: wsbridge answers pings itself.
      if (!close_sent_) queueFrame(ws::Opcode::Pong, {reinterpret_cast<const char*>(payload), len});
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
  logFault(code, why);
  if (!close_sent_) {
    sendClose(code, why);
  }
  gone_ = true;
  setReading(false);
  closeWhenFlushed();
  owner_.onWsGone(*this, code, why);
}

// ---- writing ----

template <typename CopyPayload>
void WsEndpoint::queueFrame(ws::Opcode opcode, size_t len, CopyPayload copy_payload) {
  // Header and payload in one reserved span of the output: the payload is copied once and
  // masked where it lies.
  size_t room = ws::kMaxHeaderSize + len;
  evbuffer_iovec tls_space;
  uint8_t* dst;
  if (direct()) {
    dst = out_.reserve(room);
  } else {
    if (evbuffer_reserve_space(bufferevent_get_output(bev_), static_cast<ev_ssize_t>(room),
                               &tls_space, 1) != 1) {
      throw std::bad_alloc();
    }
    dst = static_cast<uint8_t*>(tls_space.iov_base);
  }
  uint8_t mask[4];
  const uint8_t* key = nullptr;
  if (side_ == Side::Upstream) {
    masks_.next(mask);
    key = mask;
  }
  size_t header = ws::writeFrameHeader(dst, opcode, true, len, key);
  copy_payload(dst + header);
  if (key != nullptr && len != 0) ws::applyMask(dst + header, len, key);
  if (direct()) {
    out_.commit(header + len);
  } else {
    tls_space.iov_len = header + len;
    evbuffer_commit_space(bufferevent_get_output(bev_), &tls_space, 1);
  }
  queued();
}

void WsEndpoint::queueFrame(ws::Opcode opcode, std::string_view payload) {
  queueFrame(opcode, payload.size(), [payload](uint8_t* dst) {
    if (!payload.empty()) std::memcpy(dst, payload.data(), payload.size());
  });
}

void WsEndpoint::sendMessage(ws::Opcode opcode, evbuffer* payload) {
  if (finished_ || close_sent_) return;
  size_t len = evbuffer_get_length(payload);
  queueFrame(opcode, len, [payload, len](uint8_t* dst) { evbuffer_remove(payload, dst, len); });
  countSent(len);
}

void WsEndpoint::sendMessage(ws::Opcode opcode, std::string_view payload) {
  if (finished_ || close_sent_) return;
  queueFrame(opcode, payload);
  countSent(payload.size());
}

void WsEndpoint::countSent(size_t len) {
  ++messages_out_;
  bytes_out_ += len;
  if (outputSize() > options_.high_watermark) congested_ = true;
}

void WsEndpoint::sendPing(std::string_view payload) {
  if (finished_ || close_sent_) return;
  queueFrame(ws::Opcode::Ping, payload);
}

void WsEndpoint::sendClose(uint16_t code, std::string_view reason) {
  if (finished_ || close_sent_) return;
  // 1005 and 1006 are never sent: 1005 is "no code", 1006 means the peer vanished.
  if (code == ws::close_code::kAbnormal) code = ws::close_code::kGoingAway;
  queueFrame(ws::Opcode::Close, ws::makeClosePayload(code, reason));
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
  if (!direct()) {
    // Fire the write callback only once everything is out.
    bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
    bufferevent_enable(bev_, EV_WRITE);
  }
  queued();
  if (!close_timer_) {
    close_timer_ = std::make_unique<Timer>(dispatcher_, [this] { abort(); });
    close_timer_->arm(options_.close_timeout);
  }
}

void WsEndpoint::abort() {
  if (finished_) return;
  if (!close_sent_ || !close_received_) gone_ = true;
  // Best effort: what the socket takes now still reaches the peer.
  if (direct()) out_.writeTo(fd_);
  finish();
}

void WsEndpoint::finish() {
  if (finished_) return;
  finished_ = true;
  if (close_timer_) close_timer_->cancel();
  if (direct()) {
    if (flush_pending_) dispatcher_.cancelFlush(this);
    flush_pending_ = false;
    event_free(io_event_);
    io_event_ = nullptr;
    ::close(fd_);
    fd_ = -1;
    // The input and the message may still be on the stack (an owner callback closed us): the
    // destructor frees them.
    out_.release();
  } else {
    // libevent defers the free when called from inside this bufferevent's callback. Other
    // calls see finished_ before they would touch it.
    bufferevent_free(bev_);
    bev_ = nullptr;
  }
  owner_.onWsClosed(*this);
}

void WsEndpoint::queued() {
  if (!direct() || flush_pending_ || write_waiting_ || finished_) return;
  // Written once the callbacks of this loop iteration have run: every frame a read batch queued
  // goes out in one send(), with no epoll_ctl when the socket takes it all.
  flush_pending_ = true;
  dispatcher_.flushSoon(this);
}

void WsEndpoint::flush() {
  flush_pending_ = false;
  if (finished_ || !direct()) return;
  if (!out_.empty()) {
    long n = out_.writeTo(fd_);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      socketEvent(BEV_EVENT_WRITING | BEV_EVENT_ERROR);
      return;
    }
  }
  bool refused = !out_.empty();
  if (refused != write_waiting_) {
    // Writable readiness is watched only while the socket refuses bytes.
    write_waiting_ = refused;
    updateIoEvent();
  }
  wrote();
}

void WsEndpoint::onWrite(bufferevent*, void* self) { static_cast<WsEndpoint*>(self)->wrote(); }

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
    const char* why = (what & BEV_EVENT_EOF) ? "connection closed without a close frame"
                                             : "connection error";
    // Mid-close, dropping the TCP connection instead of answering is no fault worth a line.
    if (!close_sent_ && !close_received_) logFault(ws::close_code::kAbnormal, why);
    owner_.onWsGone(*this, ws::close_code::kAbnormal, why);
  }
  finish();
}

void WsEndpoint::logFault(uint16_t code, std::string_view why) const {
  if (side_ != Side::Upstream || options_.upstream_label == nullptr) return;
  if (code == ws::close_code::kAbnormal) {
    logUpstreamFault(*options_.upstream_label, fmt::format("lost: {}", why));
  } else {
    logUpstreamFault(*options_.upstream_label, fmt::format("closed with {}: {}", code, why));
  }
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
  if (direct()) return out_.size();
  return bev_ == nullptr ? 0 : evbuffer_get_length(bufferevent_get_output(bev_));
}

}  // namespace wsb::proxy
