// WsRelay: frames relayed between a client and an upstream WebSocket.
#include "proxy/ws_relay.h"

#include <event2/buffer.h>

namespace wsb::proxy {

namespace {
// What the other side is told when one side vanishes or breaks the protocol.
uint16_t codeForOther(const WsEndpoint& gone) {
  return gone.side() == WsEndpoint::Side::Client ? ws::close_code::kGoingAway
                                                 : ws::close_code::kInternalError;
}
}  // namespace

WsRelay::WsRelay(Dispatcher& dispatcher, MaskSource& masks, bufferevent* client,
                 bufferevent* upstream, const WsEndpointOptions& options,
                 filters::FilterChain* chain, std::function<void()> on_done)
    : client_(std::make_unique<WsEndpoint>(dispatcher, client, WsEndpoint::Side::Client, options,
                                           masks, *this)),
      upstream_(std::make_unique<WsEndpoint>(dispatcher, upstream, WsEndpoint::Side::Upstream,
                                             options, masks, *this)),
      chain_(chain != nullptr && !chain->empty() ? chain : nullptr),
      on_done_(std::move(on_done)) {}

void WsRelay::noteClose(uint16_t code, std::string_view reason, const char* by) {
  if (!close_info_.closed_by.empty()) return;
  close_info_.code = code;
  close_info_.reason = std::string(reason);
  close_info_.closed_by = by;
}

namespace {
const char* sideName(const WsEndpoint& e) {
  return e.side() == WsEndpoint::Side::Client ? "client" : "upstream";
}
}  // namespace

void WsRelay::start() {
  upstream_->start();
  client_->start();
}

void WsRelay::drain(std::string_view reason) {
  noteClose(ws::close_code::kGoingAway, reason, "wsbridge");
  client_->sendClose(ws::close_code::kGoingAway, reason);
  upstream_->sendClose(ws::close_code::kGoingAway, reason);
}

void WsRelay::notify(filters::Side toward, std::string_view notice) {
  endpoint(toward).sendMessage(ws::Opcode::Text, notice);
}

void WsRelay::close(uint16_t code, std::string_view reason) {
  noteClose(code, reason, "wsbridge");
  client_->sendClose(code, reason);
  upstream_->sendClose(ws::close_code::kGoingAway, reason);
}

bool WsRelay::admit(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) {
  if (chain_ == nullptr) return true;
  size_t len = evbuffer_get_length(payload);
  const char* bytes = reinterpret_cast<const char*>(evbuffer_pullup(payload, -1));
  return admitBytes(from, opcode, std::string_view(bytes == nullptr ? "" : bytes, len));
}

bool WsRelay::admitBytes(WsEndpoint& from, ws::Opcode opcode, std::string_view payload) {
  if (chain_ == nullptr) return true;
  filters::Message message{from.side() == WsEndpoint::Side::Client
                               ? filters::Direction::ToUpstream
                               : filters::Direction::ToClient,
                           opcode, payload};
  return chain_->onMessage(message) == filters::Status::Continue;
}

bool WsRelay::onWsMessageView(WsEndpoint& from, ws::Opcode opcode, std::string_view payload) {
  if (!forwardsUnchanged()) return false;
  // The common case: the message came in one read and goes out as it is, copied once from the
  // read buffer into the other side's output.
  WsEndpoint& to = peer(from);
  if (!usable(to) || to.closeSent()) return true;
  if (!admitBytes(from, opcode, payload)) return true;
  if (!usable(to) || to.closeSent()) return true;  // a filter may have closed the connection
  to.sendMessage(opcode, payload);
  if (to.congested()) from.pauseReading();
  return true;
}

void WsRelay::onWsMessage(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) {
  WsEndpoint& to = peer(from);
  if (!usable(to) || to.closeSent()) return;
  if (!admit(from, opcode, payload)) return;
  if (!usable(to) || to.closeSent()) return;  // a filter may have closed the connection
  to.sendMessage(opcode, payload);
  if (to.congested()) from.pauseReading();
}

void WsRelay::onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view reason) {
  WsEndpoint& to = peer(from);
  noteClose(code, reason, sideName(from));
  if (from.closeSent()) {
    // `from` answers a close we forwarded to it: hand its answer to the side waiting for it.
    if (usable(to) && to.closeReceived() && !to.closeSent()) to.sendClose(code, reason);
    return;
  }
  if (usable(to) && !to.closeSent()) {
    // Carried end to end: `from` gets its answer when `to` answers.
    pending(from) = {code, std::string(reason)};
    to.sendClose(code, reason);
  } else {
    from.sendClose(code, reason);
  }
}

void WsRelay::onWsGone(WsEndpoint& from, uint16_t code, std::string_view reason) {
  WsEndpoint& to = peer(from);
  noteClose(code, reason, sideName(from));
  if (!usable(to)) return;
  if (to.closeReceived() && !to.closeSent()) {
    PendingClose& p = pending(to);
    to.sendClose(p.code, p.reason);
  } else if (!to.closeSent()) {
    // A violation on one side is not the other side's fault: it hears "going away" (client
    // gone) or "internal error" (upstream gone), with the reason for the logs.
    to.sendClose(codeForOther(from), reason);
  }
}

void WsRelay::onWsPong(WsEndpoint& endpoint, std::string_view) {
  onPong(endpoint);
  if (chain_ != nullptr) {
    chain_->onPong(endpoint.side() == WsEndpoint::Side::Client ? filters::Side::Client
                                                               : filters::Side::Upstream);
  }
}

void WsRelay::onWsDrained(WsEndpoint& endpoint) { peer(endpoint).resumeReading(); }

void WsRelay::onWsClosed(WsEndpoint& endpoint) {
  WsEndpoint& other = peer(endpoint);
  if (usable(other)) {
    if (other.closeReceived() && !other.closeSent()) {
      PendingClose& p = pending(other);
      other.sendClose(p.code, p.reason);
    } else if (!other.closeSent()) {
      other.sendClose(codeForOther(endpoint), "peer closed");
    }
    // A paused side must not wait for a drain that can no longer come.
    other.resumeReading();
    return;
  }
  if (!done_) {
    done_ = true;
    on_done_();
  }
}

}  // namespace wsb::proxy
