// One side of a proxied WebSocket: frames in and out of a socket, whole messages to the owner,
// pings answered, the closing handshake, and write watermarks for backpressure.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "codec/ws_frame.h"
#include "proxy/dispatcher.h"
#include "proxy/output_buffer.h"

struct bufferevent;
struct evbuffer;
struct event;

namespace wsb::proxy {

struct Histogram;

class MaskSource;
class WsEndpoint;

// What the bridge that owns two endpoints hears from each. Callbacks never destroy the endpoint
// synchronously (the owner defers its deletion).
class WsEndpointOwner {
 public:
  virtual ~WsEndpointOwner() = default;
  // A whole data message. The owner may move the payload's bytes out (evbuffer_add_buffer);
  // whatever it leaves is discarded.
  virtual void onWsMessage(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) = 0;
  // A whole data message that arrived in one piece, unmasked where it was read: `payload` is
  // valid during the call only. Owners that forward bytes unchanged take it from there (no copy
  // into a buffer of its own) and return true; false has it come through onWsMessage instead.
  virtual bool onWsMessageView(WsEndpoint&, ws::Opcode, std::string_view /*payload*/) {
    return false;
  }
  // The peer sent a close frame (code 1005 when it had no code). Answer with sendClose().
  virtual void onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view reason) = 0;
  // The peer broke the protocol, vanished, or the connection failed. The endpoint has already
  // sent what it could (a close with `code` for violations); `code_for_other` is what the other
  // side should be told (1001 or 1011 are typical).
  virtual void onWsGone(WsEndpoint& from, uint16_t code, std::string_view reason) = 0;
  // Output fell to the low watermark after having passed the high one.
  virtual void onWsDrained(WsEndpoint& endpoint) = 0;
  // The TCP (and TLS) connection is finished; nothing more comes from this endpoint.
  virtual void onWsClosed(WsEndpoint& endpoint) = 0;
  virtual void onWsPong(WsEndpoint&, std::string_view /*payload*/) {}
};

struct WsEndpointOptions {
  uint64_t max_message = 16u << 20;
  size_t high_watermark = 1u << 20;    // output bytes beyond which the owner should pause the other side
  size_t low_watermark = 256u << 10;   // output bytes at which onWsDrained fires
  // TLS: input bytes libevent buffers before it stops reading (plain TCP reads only while the
  // endpoint is not paused, so at most one read waits in its input).
  size_t read_high_watermark = 256u << 10;
  Duration close_timeout{5000};        // wait for the peer's close reply, then drop the TCP
  // Read batches that carried messages observe their processing time here (null: not measured).
  Histogram* relay_latency = nullptr;
  // An upstream endpoint that breaks the protocol or vanishes is logged under this name (an
  // Endpoint's label, which outlives the connection); client endpoints ignore it.
  const std::string* upstream_label = nullptr;
};

class WsEndpoint : private Flushable {
 public:
  enum class Side { Client, Upstream };  // Client: we are its server (frames arrive masked)

  // Takes over `bev`, a connection past its HTTP handshake, with whatever it still buffers. Plain
  // TCP: the endpoint keeps only the socket and frees the bufferevent; TLS: the bufferevent
  // (bufferevent_openssl) stays and does all I/O.
  WsEndpoint(Dispatcher& dispatcher, bufferevent* bev, Side side, WsEndpointOptions options,
             MaskSource& masks, WsEndpointOwner& owner);
  ~WsEndpoint();
  WsEndpoint(const WsEndpoint&) = delete;
  WsEndpoint& operator=(const WsEndpoint&) = delete;

  // Starts reading; processes any bytes that arrived with the handshake.
  void start();

  // Queues a whole message; the payload's bytes are moved out of `payload` (server role) or
  // masked in place and moved (client role).
  void sendMessage(ws::Opcode opcode, evbuffer* payload);
  void sendMessage(ws::Opcode opcode, std::string_view payload);
  void sendPing(std::string_view payload = {});
  // Sends a close frame (once). When the peer's close already arrived, the TCP connection is
  // closed as soon as the output is flushed; otherwise after its reply or close_timeout.
  void sendClose(uint16_t code, std::string_view reason);
  // Drops the connection at once (after a best-effort flush of what is queued).
  void abort();

  // Reading stops while any reason holds it: backpressure from the other side, or shaping.
  enum PauseReason : uint8_t { kBackpressure = 1, kShaping = 2 };
  void pauseReading(PauseReason reason = kBackpressure);
  void resumeReading(PauseReason reason = kBackpressure);

  bool congested() const;            // output above the high watermark
  size_t outputSize() const;
  bool closeSent() const { return close_sent_; }
  bool closeReceived() const { return close_received_; }
  bool open() const { return !close_sent_ && !close_received_ && !gone_; }
  bool finished() const { return finished_; }
  Side side() const { return side_; }
  uint64_t messagesIn() const { return messages_in_; }
  uint64_t bytesIn() const { return bytes_in_; }
  uint64_t messagesOut() const { return messages_out_; }
  uint64_t bytesOut() const { return bytes_out_; }

  // FrameParser sink (public because the parser calls it; not for other users).
  void onMessageBegin(ws::Opcode opcode);
  void onMessageData(const uint8_t* data, size_t len);
  bool onMessageEnd();
  bool onControl(ws::Opcode opcode, const uint8_t* payload, size_t len);

 private:
  // Plain TCP reads this much per read() (libevent 2.1's evbuffer_read stops at 4,096 bytes and
  // asks FIONREAD first).
  static constexpr size_t kReadSize = 64 * 1024;

  static void onRead(bufferevent* bev, void* self);
  static void onWrite(bufferevent* bev, void* self);
  static void onEvent(bufferevent* bev, short what, void* self);
  static void onIo(int fd, short what, void* self);

  bool direct() const { return !tls_; }
  evbuffer* input() const;
  void setReading(bool on);
  void updateIoEvent();
  void readSocket();
  void queued();  // bytes were added to the output
  void flush() override;
  void wrote();   // output shrank: drained / closing bookkeeping
  void socketEvent(short what);

  // Parses the input buffer, then `fresh` bytes just read (kept in the input if parsing stops).
  void process(uint8_t* fresh = nullptr, size_t fresh_len = 0);
  template <typename Parser>
  void processWith(Parser& parser, uint8_t* fresh, size_t fresh_len);
  // Copies the start of a message still held as a view into message_ before its bytes go.
  void keepPartialMessage();
  evbuffer* message();  // created on demand
  template <typename CopyPayload>
  void queueFrame(ws::Opcode opcode, size_t len, CopyPayload copy_payload);
  void queueFrame(ws::Opcode opcode, std::string_view payload);
  void countSent(size_t len);
  void protocolError(uint16_t code, std::string_view reason);
  // An upstream that broke the protocol (we close it with `code`) or vanished (kAbnormal):
  // logged by its label.
  void logFault(uint16_t code, std::string_view why) const;
  void finish();  // TCP done: tell the owner once
  void closeWhenFlushed();

  Dispatcher& dispatcher_;
  // Plain TCP: the socket, with one event (EV_READ while reading, EV_WRITE while the socket
  // refuses bytes) and buffers that exist only while bytes wait in them: an idle connection
  // holds none. Output queued during a loop iteration is written by one send() in flush(). TLS:
  // bev_ does all I/O (until finish()).
  bool tls_;
  bufferevent* bev_ = nullptr;
  int fd_ = -1;
  event* io_event_ = nullptr;
  evbuffer* in_ = nullptr;   // bytes a pause left unparsed
  OutputBuffer out_;         // bytes the socket has not taken yet
  short io_armed_ = 0;       // the events io_event_ is added with
  bool reading_ = false;
  bool write_waiting_ = false;  // the socket refused bytes: EV_WRITE finishes the job
  bool flush_pending_ = false;
  Side side_;
  WsEndpointOptions options_;
  MaskSource& masks_;
  WsEndpointOwner& owner_;
  std::variant<ws::FrameParser<ws::Role::Server>, ws::FrameParser<ws::Role::Client>> parser_;
  // The data message being assembled: while it has arrived in one piece it is only a view of the
  // read buffer (view_); message_ holds it once it spans reads or frames.
  evbuffer* message_ = nullptr;
  const uint8_t* view_ = nullptr;
  size_t view_len_ = 0;
  ws::Opcode message_opcode_ = ws::Opcode::Binary;
  std::unique_ptr<Timer> close_timer_;  // only while closing

  uint8_t paused_ = 0;  // PauseReason bits
  bool processing_ = false;
  bool congested_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool closing_after_flush_ = false;
  bool gone_ = false;
  bool finished_ = false;

  uint64_t messages_in_ = 0, bytes_in_ = 0, messages_out_ = 0, bytes_out_ = 0;
};

}  // namespace wsb::proxy
