// The relay bridge: two WebSocket endpoints, messages forwarded both ways, close frames carried
// end to end, backpressure by pausing the side whose peer does not drain.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "filters/chain.h"
#include "proxy/bridge.h"
#include "proxy/ws_endpoint.h"

namespace wsb::proxy {

class WsRelay : public Bridge, public WsEndpointOwner {
 public:
  // Takes ownership of both bufferevents (already past the HTTP handshake). `on_done` runs once
  // when both sides are closed; it must defer the relay's destruction.
  WsRelay(Dispatcher& dispatcher, MaskSource& masks, bufferevent* client, bufferevent* upstream,
          const WsEndpointOptions& options, filters::FilterChain* chain,
          std::function<void()> on_done);

  virtual ~WsRelay() = default;
  void start();

  // Bridge
  void drain(std::string_view reason) override;  // close 1001 to both sides
  const filters::CloseInfo& closeInfo() const override { return close_info_; }
  void notify(filters::Side toward, std::string_view notice) override;
  void ackError(filters::Side, const filters::Event&, std::string_view) override {}
  void close(uint16_t code, std::string_view reason) override;
  bool ping(filters::Side side) override {
    endpoint(side).sendPing();
    return true;
  }
  void pauseReading(filters::Side side) override {
    endpoint(side).pauseReading(WsEndpoint::kShaping);
  }
  void resumeReading(filters::Side side) override {
    endpoint(side).resumeReading(WsEndpoint::kShaping);
  }

  WsEndpoint& client() { return *client_; }
  WsEndpoint& upstream() { return *upstream_; }
  WsEndpoint& endpoint(filters::Side side) {
    return side == filters::Side::Client ? *client_ : *upstream_;
  }
  // Records a close decided by wsbridge itself (a filter, a drain) before it is sent.
  void noteClose(uint16_t code, std::string_view reason, const char* by);

 protected:
  // Decides whether a message from `from` is forwarded (true) or dropped; may rewrite the payload.
  // The raw relay runs the filter chain on the whole message; Socket.IO-aware relays override it.
  virtual bool admit(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload);
  // Hook for subclasses: a pong arrived on `endpoint`.
  virtual void onPong(WsEndpoint&) {}

  filters::FilterChain* chain() { return chain_; }
  // Relays that rewrite payloads (admit() overridden) return false: they get every message as an
  // evbuffer.
  virtual bool forwardsUnchanged() const { return true; }

 private:
  WsEndpoint& peer(WsEndpoint& e) { return &e == client_.get() ? *upstream_ : *client_; }
  bool usable(const WsEndpoint& e) const { return !e.finished(); }

  void onWsMessage(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) override;
  bool onWsMessageView(WsEndpoint& from, ws::Opcode opcode, std::string_view payload) override;
  // The filter chain's verdict on a whole message (true: forward it).
  bool admitBytes(WsEndpoint& from, ws::Opcode opcode, std::string_view payload);
  void onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view reason) override;
  void onWsGone(WsEndpoint& from, uint16_t code, std::string_view reason) override;
  void onWsDrained(WsEndpoint& endpoint) override;
  void onWsClosed(WsEndpoint& endpoint) override;
  void onWsPong(WsEndpoint& endpoint, std::string_view payload) override;

  // A close frame that came from one side and waits for the other side's answer.
  struct PendingClose {
    uint16_t code = 0;
    std::string reason;
  };
  PendingClose& pending(WsEndpoint& e) { return &e == client_.get() ? client_close_ : upstream_close_; }

  std::unique_ptr<WsEndpoint> client_;
  std::unique_ptr<WsEndpoint> upstream_;
  PendingClose client_close_;
  PendingClose upstream_close_;
  filters::FilterChain* chain_;  // null or empty: messages pass untouched
  filters::CloseInfo close_info_;
  std::function<void()> on_done_;
  bool done_ = false;
};

}  // namespace wsb::proxy
